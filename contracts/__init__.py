"""The message language every Agora process speaks: frozen pydantic models and names.

Nothing in here does I/O. A module per service (`users.py`, ...) holds that service's
commands, replies and events; `topology.py` names exchanges, queues and routing keys;
`envelope.py` names the headers every message carries; `errors.py` the error reply.
"""
