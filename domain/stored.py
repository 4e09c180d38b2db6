"""What the store hands back: one stored interaction, one entry of the log, or a row that
no longer decodes.

Reading never stops at a damaged row: it becomes an `UnreadableRecord` in its place, so
`verify` can name it, the projector can set its relationship aside, and every other
relationship goes on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.chain import ChainEntry
from domain.errors import Damaged
from domain.fold.facts import Fact


class CorruptRecord(Damaged):
    """A stored record no longer decodes: itself evidence of tampering or corruption."""


@dataclass(frozen=True, slots=True)
class StoredInteraction:
    """One interaction as the store holds it: position, content, flags and chain hash."""

    relationship_id: str
    aggregate_id: UUID
    version: int
    record: dict[str, Any]
    late: bool
    chain_hash: str
    recorded_at: datetime
    topic: str
    """The stored event's type, as the library records it (which class decodes it)."""

    def fact(self) -> Fact:
        return Fact.from_record(self.record)

    def chain_entry(self) -> ChainEntry:
        return ChainEntry(self.version, self.record, self.chain_hash)


@dataclass(frozen=True, slots=True)
class LoggedInteraction:
    """An interaction at its position in the ledger-wide notification log."""

    position: int
    relationship_id: str
    record: dict[str, Any]
    version: int


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    """A stored row that no longer decodes: itself evidence of tampering or corruption."""

    aggregate_id: UUID
    version: int
    error: str
    position: int | None = None
    """Its position in the notification log, when it was read from there."""

    def problem(self) -> CorruptRecord:
        """The error to raise where a fold cannot go on without this record."""
        return CorruptRecord(
            f"record {self.version} of aggregate {self.aggregate_id} cannot be read "
            f"({self.error}); run relledger verify"
        )


UNREADABLE = (KeyError, TypeError, ValueError)
"""What decoding a tampered or corrupted row raises (orjson's errors are ValueErrors)."""


def unreadable(row: StoredEvent, error: Exception, position: int | None = None) -> UnreadableRecord:
    return UnreadableRecord(
        aggregate_id=UUID(str(row.originator_id)),
        version=row.originator_version,
        error=str(error),
        position=position,
    )


LogRow = tuple[int, str, int, bytes]
"""One row of the log as the projector needs it: position, aggregate id (text),
version and stored state, without the library's notification object around it."""


@runtime_checkable
class RelationshipReader(Protocol):
    """The store's recorder reading many relationships' events at once: what a batch of
    interactions needs of the relationships it does not hold in memory."""

    def heads(self, aggregate_ids: Collection[UUID]) -> Mapping[UUID, int]:
        """The latest stored version of each of these relationships that has events (a
        relationship missing from the answer has none: it is new)."""
        ...

    def stored_events(self, aggregate_ids: Collection[UUID]) -> Sequence[StoredEvent]:
        """Every stored event of these relationships, each relationship's in order."""
        ...


@runtime_checkable
class LogReader(Protocol):
    """The store's recorder reading a page of the log straight from the events table."""

    def log_rows(self, after: int, limit: int, until: int | None) -> Sequence[LogRow]:
        """Up to `limit` rows after position `after` (and at most `until`), in order."""
        ...
