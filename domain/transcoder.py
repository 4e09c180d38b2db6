"""Event state as JSON, through orjson (after eventsourcing's examples/aggregate7).

Interaction records are JSON-native by construction (money is already text), so
the only value needing care is the library's own `timestamp`, revived here. A new
event's interaction is a `CanonicalRecord`: its canonical bytes, already hashed, are
embedded as they are (`orjson.Fragment`), so each event is serialised once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import Transcoder

from domain.chain import CanonicalRecord


def _embed(value: Any) -> Any:
    """What orjson is given for the subclasses it passes through: a canonical record's
    own bytes; any other subclass of a JSON type as that type."""
    if isinstance(value, CanonicalRecord):
        return orjson.Fragment(value.canonical)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class OrjsonTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_embed, option=orjson.OPT_PASSTHROUGH_SUBCLASS)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        stamp = state.get("timestamp") if isinstance(state, dict) else None
        if isinstance(stamp, str):
            state["timestamp"] = datetime.fromisoformat(stamp)
        return state
