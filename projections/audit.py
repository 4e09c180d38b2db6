"""`verify`: recompute every hash chain from the stored records and report each break."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.chain import ChainBreak, ChainCursor
from domain.ledger import RelationshipLedger, UnreadableRecord
from domain.relationship import relationship_uuid


@dataclass
class VerifyReport:
    relationships: int = 0
    records: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return not self.breaks

    def view(self) -> dict[str, Any]:
        """The JSON shape of `verify --json` (and of the HTTP API's verify routes)."""
        return {
            "intact": self.intact,
            "relationships": self.relationships,
            "records": self.records,
            "breaks": [
                {"relationship_id": b.relationship_id, "version": b.version, "problem": b.problem}
                for b in self.breaks
            ],
            "heads": self.heads,
        }


def verify_ledger(ledger: RelationshipLedger, relationship_id: str | None = None) -> VerifyReport:
    """Check all relationships (or one); `heads` holds each chain's last hash for anchoring.

    Streams the log once, keeping one `ChainCursor` per relationship: memory grows
    with the number of relationships, never with the number of events.
    """
    cursors: dict[UUID, ChainCursor] = {}
    report = VerifyReport()
    wanted = None if relationship_id is None else relationship_uuid(relationship_id)
    for stored in ledger.scan():
        if wanted is not None and stored.aggregate_id != wanted:
            continue
        report.records += 1
        if isinstance(stored, UnreadableRecord):
            report.breaks.append(
                ChainBreak(str(stored.aggregate_id), stored.version, f"unreadable: {stored.error}")
            )
            continue
        cursor = cursors.get(stored.aggregate_id)
        if cursor is None:
            cursor = cursors[stored.aggregate_id] = ChainCursor(stored.relationship_id)
        report.breaks.extend(cursor.check(stored.chain_entry()))
        report.heads[cursor.relationship_id] = stored.chain_hash
    report.relationships = len(cursors)
    report.breaks.sort(key=lambda found: (found.relationship_id, found.version))
    return report
