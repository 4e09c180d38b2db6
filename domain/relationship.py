"""The `Relationship` aggregate: the write side of one relationship's ledger.

It holds only what its invariants need (parties, currency, the idempotency keys
already recorded with a digest of what each one recorded, which of them were
retracted, the clock and the chain head); the scoring lives in the folds, so a
policy change never touches recorded history.

A key offered again is a duplicate only if its canonical content is the same: a
producer reusing an `event_id` for something else is a conflict, refused and
reported, never silently dropped.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple, cast
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.chain import GENESIS, canonical_json, link
from domain.contract import Interaction
from domain.errors import ContractViolation, ContradictsRelationship, InteractionConflict
from domain.kinds import KINDS
from domain.text import quote

_NAMESPACE = uuid5(NAMESPACE_URL, "https://relledger.invalid/relationship")


@lru_cache(maxsize=65536)
def relationship_uuid(relationship_id: str) -> UUID:
    """The aggregate id: derived from the producers' key, so any process finds the same one."""
    return uuid5(_NAMESPACE, relationship_id)


class Recorded(StrEnum):
    """What happened to one offered interaction."""

    RECORDED = "recorded"
    LATE = "late"
    DUPLICATE = "duplicate"


def content_digest(record: dict[str, Any]) -> bytes:
    """A short digest of an interaction's canonical content, to tell a redelivery
    (same digest) from a conflicting reuse of its key (another digest)."""
    return hashlib.blake2b(canonical_json(record), digest_size=16).digest()


class _Recorded(NamedTuple):
    version: int
    digest: bytes
    retraction: bool = False


class Relationship(Aggregate):
    @staticmethod
    def create_id(interaction: dict[str, Any], chain_hash: str) -> UUID:
        return relationship_uuid(interaction["relationship_id"])

    @classmethod
    def open(cls, item: Interaction) -> Relationship:
        """Start a relationship's ledger with its first interaction, which must name the parties."""
        if item.parties is None:
            raise ContractViolation("parties", "required on a relationship's first event")
        if KINDS[item.kind].retracts:
            raise _nothing_to_retract(item)
        record = item.canonical()
        return cls(interaction=record, chain_hash=link(GENESIS, record))

    @event("Opened")
    def __init__(self, interaction: dict[str, Any], chain_hash: str) -> None:
        parties = interaction["parties"]
        self.relationship_id: str = interaction["relationship_id"]
        self.supplier: str = parties["supplier"]
        self.customer: str = parties["customer"]
        self.currency: str | None = None
        self.keys: dict[tuple[str, str], _Recorded] = {}
        self.retracted: dict[tuple[str, str], int] = {}
        """Keys taken back, and the version of the retraction that did it."""
        self.clock: datetime | None = None
        self.head = GENESIS
        self._apply(interaction, chain_hash, 1)

    def record(self, item: Interaction) -> Recorded:
        """Append an interaction, unless it was recorded before (a redelivery).

        Raises `InteractionConflict` when its key was recorded with other content.
        """
        record = item.canonical()
        earlier = self.keys.get(item.key)
        if earlier is not None:
            if earlier.digest != content_digest(record):
                raise InteractionConflict(
                    "event_id",
                    f"already recorded with other content at {self.relationship_id!r} "
                    f"#{earlier.version}",
                )
            return Recorded.DUPLICATE
        self._check_consistent(item)
        if KINDS[item.kind].retracts:
            self._check_retractable(item)
        late = self.clock is not None and item.occurred_at < self.clock
        self.trigger_event(
            self.InteractionRecorded,
            interaction=record,
            late=late,
            chain_hash=link(self.head, record),
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

    def _check_retractable(self, item: Interaction) -> None:
        """A retraction takes back one earlier interaction of its own source, once."""
        assert item.ref is not None  # the contract requires it
        target = self.keys.get((item.source, item.ref))
        if target is None:
            raise _nothing_to_retract(item)
        if target.retraction:
            raise ContradictsRelationship(
                "ref", f"{quote(item.ref)} is itself a retraction; a retraction is final"
            )
        by = self.retracted.get((item.source, item.ref))
        if by is not None:
            raise ContradictsRelationship(
                "ref", f"{quote(item.ref)} was already retracted at {self.relationship_id!r} #{by}"
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
            cast(Relationship, aggregate)._apply(
                self.interaction, self.chain_hash, self.originator_version
            )

    def _apply(self, interaction: dict[str, Any], chain_hash: str, version: int) -> None:
        source = interaction["source"]
        retraction = KINDS[interaction["kind"]].retracts
        self.keys[(source, interaction["event_id"])] = _Recorded(
            version, content_digest(interaction), retraction
        )
        if retraction:  # it moves no clock: lateness is the interactions' own
            self.retracted[(source, interaction["ref"])] = version
        else:
            occurred_at = datetime.fromisoformat(interaction["occurred_at"])
            if self.clock is None or occurred_at > self.clock:
                self.clock = occurred_at
        currency = interaction.get("currency")
        if currency is not None:
            self.currency = currency
        self.head = chain_hash


def _nothing_to_retract(item: Interaction) -> ContradictsRelationship:
    return ContradictsRelationship(
        "ref",
        f"no interaction {quote(item.ref or '')} from source {quote(item.source)} in "
        f"relationship {quote(item.relationship_id)} to retract",
    )
