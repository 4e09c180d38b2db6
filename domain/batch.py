"""One attempt at recording a batch: each interaction decided in order, nothing saved yet.

The keys a batch offers (and the keys its retractions name) are looked up in the key
index once, in one query; what the batch itself records is added to that view as it
goes, so a key offered twice in one batch, or a retraction of an interaction recorded
earlier in the same batch, is decided exactly as it would be across two batches.
Each interaction is serialised to its canonical bytes once: those bytes are hashed into
the chain, digested for the key index and written into the stored event as they are.

The attempt only collects: the touched aggregates (with their pending events), the
new key rows and the retractions to mark. The ledger saves them in one transaction,
or, if another writer got there first, throws the attempt away and makes another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from uuid import UUID

from domain.chain import CanonicalRecord
from domain.contract import Interaction
from domain.errors import ContradictsRelationship, InteractionConflict, InteractionRejected
from domain.key_index import Key, KeyIndex, RecordedKey, content_digest
from domain.kinds import KINDS
from domain.relationship import Recorded, Relationship, relationship_uuid
from domain.text import quote

Outcome = Recorded | InteractionRejected


class BatchAttempt:
    def __init__(
        self,
        items: Sequence[Interaction],
        index: KeyIndex,
        find: Callable[[str, UUID], Relationship | None],
    ) -> None:
        offered: set[Key] = set()
        for item in items:
            offered.add(item.key)
            if item.ref is not None and KINDS[item.kind].retracts:
                offered.add((item.source, item.ref))
        self._known: dict[Key, RecordedKey] = dict(index.recorded_keys(offered))
        self._find = find
        self.touched: dict[UUID, Relationship] = {}
        self.new_keys: dict[Key, RecordedKey] = {}
        """Keys this attempt records, in order (a retraction in the batch may mark one)."""
        self.retracted: dict[Key, int] = {}
        """Keys recorded before this attempt that it takes back, with the retraction's
        version."""

    def decide(self, item: Interaction) -> Outcome:
        """Record `item` in its aggregate (in memory), or say why not."""
        record = CanonicalRecord(item.canonical())
        canonical = record.canonical
        digest = content_digest(canonical)
        earlier = self._known.get(item.key)
        if earlier is not None:
            if earlier.digest == digest:
                return Recorded.DUPLICATE
            return InteractionConflict(
                "event_id",
                f"already recorded with other content at {earlier.relationship_id!r} "
                f"#{earlier.version}",
            )
        rule = KINDS[item.kind]
        aggregate_id = relationship_uuid(item.relationship_id)
        try:
            target = self._retractable(item) if rule.retracts else None
            relationship = self.touched.get(aggregate_id) or self._find(
                item.relationship_id, aggregate_id
            )
            if relationship is None:
                relationship = Relationship.open(item, record, canonical)
                outcome = Recorded.RECORDED
            else:
                outcome = relationship.record(item, record, canonical)
        except InteractionRejected as rejection:
            return rejection
        self.touched[aggregate_id] = relationship
        recorded = RecordedKey(
            item.source,
            item.event_id,
            item.relationship_id,
            relationship.version,
            digest,
            retraction=rule.retracts,
        )
        self._known[item.key] = self.new_keys[item.key] = recorded
        if target is not None:
            self._take_back(target, relationship.version)
        return outcome

    def _retractable(self, item: Interaction) -> RecordedKey:
        """The interaction a retraction takes back: one earlier interaction of its own
        source in its own relationship, not itself a retraction, not taken back before."""
        assert item.ref is not None  # the contract requires it
        target = self._known.get((item.source, item.ref))
        if target is None or target.relationship_id != item.relationship_id:
            raise ContradictsRelationship(
                "ref",
                f"no interaction {quote(item.ref)} from source {quote(item.source)} in "
                f"relationship {quote(item.relationship_id)} to retract",
            )
        if target.retraction:
            raise ContradictsRelationship(
                "ref", f"{quote(item.ref)} is itself a retraction; a retraction is final"
            )
        if target.retracted_by is not None:
            raise ContradictsRelationship(
                "ref",
                f"{quote(item.ref)} was already retracted at {target.relationship_id!r} "
                f"#{target.retracted_by}",
            )
        return target

    def _take_back(self, target: RecordedKey, by: int) -> None:
        taken = replace(target, retracted_by=by)
        self._known[target.key] = taken
        if target.key in self.new_keys:
            self.new_keys[target.key] = taken
        else:
            self.retracted[target.key] = by
