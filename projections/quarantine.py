"""Quarantine: a relationship whose stored events cannot be folded, or whose rows cannot
be stored, is set aside so that it never stops the read side for everyone else.

Stored events never change, and the contract that admits them has tightened over
time: a store may hold an interaction dated in year 1 (the stage windows cannot
subtract from it) or a relationship_id with a NUL (PostgreSQL refuses it as text).
Such a relationship keeps the rows it had before the event that failed, and a
record here says which event failed, why, and under which policy. The record
belongs to a generation, so a rebuild (after a fix to the code or the policy)
tries the relationship again from its first event.

Everything in a record must be storable even when the relationship_id itself is
not: the record is keyed by the aggregate id (a UUID derived from the id), and the
id, the event_id and the reason are kept with control characters escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.relationship import relationship_uuid
from domain.stored import LoggedInteraction, UnreadableRecord
from domain.text import one_line, readable

REASON_LIMIT = 300
"""How many characters of an error's message a reason keeps."""


@dataclass(frozen=True, slots=True)
class Quarantined:
    """One quarantined relationship: the event that failed, why, and under which policy."""

    aggregate_id: UUID
    relationship_id: str
    position: int
    event_id: str
    reason: str
    policy: str

    @classmethod
    def at(cls, entry: LoggedInteraction, error: BaseException, policy: str) -> Quarantined:
        event_id = entry.record.get("event_id")
        return cls(
            aggregate_id=relationship_uuid(entry.relationship_id),
            relationship_id=storable(entry.relationship_id),
            position=entry.position,
            event_id=storable(event_id if isinstance(event_id, str) else repr(event_id)),
            reason=reason(error),
            policy=policy,
        )

    @classmethod
    def unreadable(cls, record: UnreadableRecord, policy: str) -> Quarantined:
        """A record that no longer decodes: its relationship is known only by its
        aggregate id (its relationship_id is in the unreadable part)."""
        assert record.position is not None
        return cls(
            aggregate_id=record.aggregate_id,
            relationship_id=f"(unreadable) {record.aggregate_id}",
            position=record.position,
            event_id=f"(record {record.version})",
            reason=storable(f"CorruptRecord: {record.error}; run relledger verify")[:REASON_LIMIT],
            policy=policy,
        )

    def view(self) -> dict[str, Any]:
        """The JSON shape `projections status` lists and `show` nests as `quarantined`."""
        return {
            "relationship_id": self.relationship_id,
            "aggregate_id": str(self.aggregate_id),
            "position": self.position,
            "event_id": self.event_id,
            "reason": self.reason,
            "policy": self.policy,
        }

    def __str__(self) -> str:
        where = f"at position {self.position} (event {self.event_id})"
        return f"{self.relationship_id} {where}: {self.reason}"


def storable(text: str) -> str:
    """`text` as any database stores it: unchanged if printable, else escaped (`\\x00`)."""
    return readable(text, limit=400)


def reason(error: BaseException) -> str:
    """One line naming the error's type and message, escaped and bounded."""
    return storable(one_line(error))[:REASON_LIMIT]
