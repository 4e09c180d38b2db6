"""Event state as JSON, through orjson (after eventsourcing's examples/aggregate7).

Interaction records are JSON-native by construction (money is already text), so
the only value needing care is the library's own `timestamp`, revived here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import Transcoder


class OrjsonTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        stamp = state.get("timestamp") if isinstance(state, dict) else None
        if isinstance(stamp, str):
            state["timestamp"] = datetime.fromisoformat(stamp)
        return state
