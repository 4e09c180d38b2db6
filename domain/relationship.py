"""The `Relationship` aggregate: the write side of one relationship's ledger.

It holds only what its invariants need, and nothing that grows with its history:
the parties, the currency, the clock (the latest `occurred_at`, as microseconds since
1970 so a snapshot keeps it exactly) and the chain head. So the library's snapshots of
it stay a few hundred bytes, and loading it costs the same after 20 events or 20,000.
Which keys were recorded, with which content, and which were retracted, is the
ledger's key index (`domain.key_index`), not aggregate state. The scoring lives in
the folds, so a policy change never touches recorded history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, cast
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as LibrarySnapshot

from domain.chain import GENESIS, link_bytes
from domain.contract import Interaction
from domain.errors import ContractViolation, ContradictsRelationship
from domain.kinds import KINDS

SNAPSHOT_EVERY = 50
"""The ledger snapshots a relationship every this many events (the library's snapshots):
loading one reads its latest snapshot and at most this many events less one."""

_NAMESPACE = uuid5(NAMESPACE_URL, "https://relledger.invalid/relationship")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@lru_cache(maxsize=65536)
def relationship_uuid(relationship_id: str) -> UUID:
    """The aggregate id: derived from the producers' key, so any process finds the same one."""
    return uuid5(_NAMESPACE, relationship_id)


def epoch_us(moment: datetime) -> int:
    """Microseconds since 1970 UTC: exact, comparable, and plain JSON in a snapshot."""
    return (moment - _EPOCH) // _MICROSECOND


class Recorded(StrEnum):
    """What happened to one offered interaction."""

    RECORDED = "recorded"
    LATE = "late"
    DUPLICATE = "duplicate"


class Relationship(Aggregate):
    @staticmethod
    def create_id(interaction: dict[str, Any], chain_hash: str) -> UUID:
        return relationship_uuid(interaction["relationship_id"])

    @classmethod
    def open(cls, item: Interaction, record: dict[str, Any], canonical: bytes) -> Relationship:
        """Start a relationship's ledger with its first interaction, which must name the
        parties (`record` is its canonical form, `canonical` that form's bytes)."""
        if item.parties is None:
            raise ContractViolation("parties", "required on a relationship's first event")
        return cls(interaction=record, chain_hash=link_bytes(GENESIS, canonical))

    @event("Opened")
    def __init__(self, interaction: dict[str, Any], chain_hash: str) -> None:
        parties = interaction["parties"]
        self.relationship_id: str = interaction["relationship_id"]
        self.supplier: str = parties["supplier"]
        self.customer: str = parties["customer"]
        self.currency: str | None = None
        self.clock_us: int | None = None
        self.head = GENESIS
        self._apply(interaction, chain_hash)

    def record(self, item: Interaction, record: dict[str, Any], canonical: bytes) -> Recorded:
        """Append an interaction the ledger found new (its key is not recorded yet);
        `record` is its canonical form and `canonical` that form's bytes, hashed as is.

        Raises `ContradictsRelationship` for other parties or another currency.
        """
        self._check_consistent(item)
        late = self.clock_us is not None and epoch_us(item.occurred_at) < self.clock_us
        self.trigger_event(
            self.InteractionRecorded,
            interaction=record,
            late=late,
            chain_hash=link_bytes(self.head, canonical),
        )
        return Recorded.LATE if late else Recorded.RECORDED

    def _check_consistent(self, item: Interaction) -> None:
        parties = item.parties
        if parties is not None and (parties.supplier, parties.customer) != (
            self.supplier,
            self.customer,
        ):
            raise ContradictsRelationship(
                "parties",
                f"relationship '{self.relationship_id}' is between supplier "
                f"'{self.supplier}' and customer '{self.customer}'",
            )
        if item.currency is not None and self.currency not in (None, item.currency):
            raise ContradictsRelationship(
                "currency",
                f"relationship '{self.relationship_id}' is kept in {self.currency}, "
                f"not {item.currency}",
            )

    class InteractionRecorded(Aggregate.Event):
        """An interaction appended after the first; `late` if it occurred before the clock.

        Declared explicitly (rather than with `@event` on a method) because it is the
        hot path of every ingest: `trigger_event` skips the decorator's argument
        coercion, which cost a third of the recording time.
        """

        interaction: dict[str, Any]
        late: bool
        chain_hash: str

        def apply(self, aggregate: Aggregate) -> None:
            cast(Relationship, aggregate)._apply(self.interaction, self.chain_hash)

    class Snapshot(LibrarySnapshot):
        """The library's snapshot, with the two times it keeps read back as datetimes
        (stored state is JSON: everything else of ours is JSON-native)."""

        def mutate(self, _: None) -> Aggregate:
            aggregate = cast(Aggregate, super().mutate(_))
            state = aggregate.__dict__
            for name in ("_created_on", "_modified_on"):
                if isinstance(state.get(name), str):
                    state[name] = datetime.fromisoformat(state[name])
            return aggregate

    def _apply(self, interaction: dict[str, Any], chain_hash: str) -> None:
        if not KINDS[interaction["kind"]].retracts:  # a retraction moves no clock
            occurred_at = epoch_us(datetime.fromisoformat(interaction["occurred_at"]))
            if self.clock_us is None or occurred_at > self.clock_us:
                self.clock_us = occurred_at
        currency = interaction.get("currency")
        if currency is not None:
            self.currency = currency
        self.head = chain_hash
