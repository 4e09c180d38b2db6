"""`verify`: recompute every hash chain from the stored records and report each break."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from domain.chain import ChainBreak, ChainEntry, verify_chain
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


def verify_ledger(ledger: RelationshipLedger, relationship_id: str | None = None) -> VerifyReport:
    """Check all relationships (or one); `heads` holds each chain's last hash for anchoring."""
    chains: dict[UUID, list[ChainEntry]] = defaultdict(list)
    names: dict[UUID, str] = {}
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
        names.setdefault(stored.aggregate_id, stored.relationship_id)
        chains[stored.aggregate_id].append(stored.chain_entry())
    for aggregate_id, chain in chains.items():
        name = names[aggregate_id]
        chain.sort(key=lambda entry: entry.version)
        report.breaks.extend(verify_chain(name, chain))
        report.heads[name] = chain[-1].chain_hash
    report.relationships = len(chains)
    report.breaks.sort(key=lambda found: (found.relationship_id, found.version))
    return report
