"""Field encryption at rest: AES-256-GCM with a key id stored beside each value.

Keys come from configuration as `kid:base64key,kid2:base64key`; new values use the
current key id, old values keep decrypting with the key they name, so keys rotate
without a rewrite. The associated data binds a ciphertext to its row and column:
a value copied into another user's row does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class KeyConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Sealed:
    ciphertext: str
    key_id: str


class FieldCipher:
    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise KeyConfigError(f"current data key id {current!r} is not among the configured keys")
        for kid, key in keys.items():
            if len(key) != 32:
                raise KeyConfigError(f"data key {kid!r} must be 32 bytes (AES-256)")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        # Blind-index keys: derived from each data key, never the data key itself.
        self._index_keys = {
            kid: HKDF(hashes.SHA256(), 32, salt=None, info=b"agora blind index").derive(key)
            for kid, key in keys.items()
        }
        self._current = current

    @classmethod
    def from_config(cls, data_keys: str, current: str) -> FieldCipher:
        if not data_keys:
            raise KeyConfigError("AGORA_DATA_KEYS is not set (scripts/up generates one for development)")
        keys: dict[str, bytes] = {}
        for item in data_keys.split(","):
            kid, _, b64 = item.strip().partition(":")
            keys[kid] = base64.b64decode(b64, validate=True)
        return cls(keys, current or next(iter(keys)))

    @property
    def current_key_id(self) -> str:
        return self._current

    def seal(self, plaintext: str, context: str) -> Sealed:
        nonce = os.urandom(12)
        ct = self._keys[self._current].encrypt(nonce, plaintext.encode(), context.encode())
        return Sealed(base64.b64encode(nonce + ct).decode(), self._current)

    def open(self, sealed: Sealed, context: str) -> str:
        raw = base64.b64decode(sealed.ciphertext)
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise KeyConfigError(f"data key {sealed.key_id!r} is no longer configured")
        return aead.decrypt(raw[:12], raw[12:], context.encode()).decode()

    def blind_index(self, value: str, purpose: str) -> Sealed:
        """A keyed hash (HMAC-SHA256) of `value` under the current key, to find a sealed value
        by equality without opening every row; `ciphertext` holds the hex digest."""
        return Sealed(self._digest(self._current, value, purpose), self._current)

    def blind_indexes(self, value: str, purpose: str) -> list[str]:
        """The digests of `value` under every configured key: a row indexed before a rotation
        is still found."""
        return [self._digest(kid, value, purpose) for kid in self._index_keys]

    def _digest(self, kid: str, value: str, purpose: str) -> str:
        return hmac.new(self._index_keys[kid], f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()
