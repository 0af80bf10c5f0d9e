"""Typo tolerance for the catalog's search, pure: how a query of plain words is read, how
many typos each word may have, the distance that counts them, and the deletion variants
the lexicon is searched by. No I/O: workers/catalog/search.py asks the database.

The rule (docs/decisions.md, "Search (issue 17)"):

- a word of fewer than 4 letters must be spelled exactly; from 4 letters one typo is
  forgiven, from 8 letters two (Typesense's and Algolia's budget: "lmap" finds "lamp");
- a typo is an insertion, a deletion, a substitution or the swap of two adjacent letters
  (optimal string alignment distance: "lantren" is one typo from "lantern");
- a word with a digit in it (a number, a model, a SKU) is matched exactly, as PostgreSQL's
  text parser reads it;
- a word the catalog knows (it is in the lexicon) is taken as meant: only an unknown word
  is corrected, to the known words within its budget;
- the last word also matches as a prefix once it has two letters (the shopper may still be
  typing it).

Finding the corrections: the lexicon stores, for each word, the word and the strings left
by deleting one letter (words of 4 letters and more) or up to two letters (8 and more). Two
words within the distance share such a variant (a substitution or a swap is one deletion on
each side, an insertion one on the longer side), so the query's own variants find every
candidate through one GIN lookup, and the distance here keeps the true ones. The lexicon
side of that rule is the SQL function `catalog.word_deletions` (migration 0019): the
thresholds below and the function's must agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ONE_TYPO_FROM = 4
TWO_TYPOS_FROM = 8
# The longest word the lexicon keeps (longer "words" are codes and run-together junk).
LEXICON_WORD_MAX = 32
# The shortest last word that also matches as a prefix: a one-letter prefix matches
# nearly every product.
PREFIX_FROM = 2
# Corrections per word, the closest and most common first: a bound on the text query.
MAX_CORRECTIONS = 8

# Web-search operators: a phrase, an exclusion, an alternative. A query with them means
# exactly what it says (a correction could bring back what `-word` excludes).
_OPERATORS = re.compile(r'"|(?:^|\s)-\S|\bor\b', re.IGNORECASE)
_LETTERS = re.compile(r"[^\W\d_]+")
_DIGIT = re.compile(r"\d")


def typo_budget(word: str) -> int:
    """How many typos `word` (as typed) may have and still match a known word."""
    if not word.isalpha() or len(word) > LEXICON_WORD_MAX + 2:
        return 0  # digits or other signs: exact; longer than any lexicon word and two typos
    if len(word) >= TWO_TYPOS_FROM:
        return 2
    return 1 if len(word) >= ONE_TYPO_FROM else 0


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance between `a` and `b`, or `limit + 1` once it is
    certain to exceed `limit`: insertions, deletions, substitutions and swaps of two
    adjacent letters cost one each (a letter is never edited twice)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1] and cost:
                best = min(best, before[j - 2] + 1)
            current[j] = best
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


def deletion_variants(word: str, depth: int) -> frozenset[str]:
    """`word` and every string left by deleting up to `depth` of its letters."""
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return frozenset(found)


def lexicon_variants(word: str) -> frozenset[str]:
    """What the lexicon stores for a word it keeps (the SQL function `catalog.word_deletions`
    computes the same): deep enough for every query word within its budget to meet it."""
    if len(word) >= TWO_TYPOS_FROM:
        return deletion_variants(word, 2)
    return deletion_variants(word, 1 if len(word) >= ONE_TYPO_FROM else 0)


@dataclass(frozen=True)
class Word:
    """A word of a plain query, lowercased."""

    text: str
    # Matched as a prefix too (the last word, while the shopper may still be typing it).
    prefix: bool = False

    @property
    def budget(self) -> int:
        return typo_budget(self.text)

    def variants(self) -> frozenset[str]:
        """What to look the lexicon up by for this word's corrections (empty: none allowed)."""
        return deletion_variants(self.text, self.budget) if self.budget else frozenset()


@dataclass(frozen=True)
class PlainQuery:
    """A query of plain words: the words that may be corrected or completed, and the
    chunks with digits in them (numbers, models, SKUs), matched exactly."""

    words: tuple[Word, ...]
    exact: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.words and not self.exact


def read_query(q: str, *, operators: bool = True) -> PlainQuery | None:
    """The plain words of `q`; None for a query with web-search operators (matched as
    PostgreSQL's `websearch_to_tsquery` reads it, without corrections). With `operators`
    false (autocomplete: a half-typed `"` or `-` is no operator), any text is plain words."""
    if operators and _OPERATORS.search(q):
        return None
    words: list[Word] = []
    exact: list[str] = []
    chunks = q.lower().split()
    for chunk in chunks:
        if _DIGIT.search(chunk):
            exact.append(chunk)
        else:
            words += [Word(w) for w in _LETTERS.findall(chunk)]
    if words and chunks and not _DIGIT.search(chunks[-1]) and len(words[-1].text) >= PREFIX_FROM:
        words[-1] = Word(words[-1].text, prefix=True)
    return PlainQuery(tuple(words), tuple(exact))


def corrections(word: Word, known: Mapping[str, int]) -> tuple[str, ...]:
    """The known words `word` may be a typo of, closest first, then the most common
    (`known`: lexicon candidates → how many live products use them). None for a word the
    catalog knows as typed: it is taken as meant."""
    if word.text in known or not word.budget:
        return ()
    scored = []
    for candidate, uses in known.items():
        distance = osa_distance(word.text, candidate, word.budget)
        if distance <= word.budget:
            scored.append((distance, -uses, candidate))
    return tuple(c for _, _, c in sorted(scored)[:MAX_CORRECTIONS])


def _quoted(term: str) -> str:
    """A term for `to_tsquery`: quoted, so PostgreSQL's parser reads it as it reads the
    products' text (one term may become several lexemes, joined as a phrase)."""
    return "'" + term.replace("'", "''").replace("\\", "\\\\") + "'"


def tsquery_text(query: PlainQuery, corrected: Mapping[str, Iterable[str]] | None = None, *, weight: str = "") -> str:
    """The query as `to_tsquery` text: every word (or its prefix, or a correction from
    `corrected`), AND every exact chunk. Without `corrected`: the exact reading only.
    `weight` ("A"): match only there (the name, in the products' search vector)."""
    groups = []
    for word in query.words:
        options = [_quoted(word.text) + (f":{weight}" if weight else "")]
        if word.prefix:
            options.append(_quoted(word.text) + f":*{weight}")
        options += [_quoted(c) + (f":{weight}" if weight else "") for c in (corrected or {}).get(word.text, ())]
        groups.append(options[0] if len(options) == 1 else "(" + " | ".join(options) + ")")
    groups += [_quoted(chunk) + (f":{weight}" if weight else "") for chunk in query.exact]
    return " & ".join(groups)
