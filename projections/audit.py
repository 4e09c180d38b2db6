"""`verify`: check every stored event against what relledger recorded, and report each break.

For every stored event it checks:

- its content against its chain hash, in version order (`domain.chain.ChainCursor`),
  and that no version is missing;
- its topic: the event class the library rebuilds the relationship with, which the hash
  does not cover (an edited topic would otherwise pass, and the next recording to that
  relationship fail);
- that it names the relationship whose aggregate holds it: a record moved into another
  relationship is reported where it is stored, naming whose it is, and the gap it left is
  reported where it was, so records nobody touched are never blamed;
- its place in the log: the read models fold the log in position order, so a
  relationship whose events stand out of version order there is reported, once per
  event that would have to move back (`domain.chain.misplaced`).

Each problem is reported once, against the record that has it. The whole ledger is read
in one pass over the log with a small state per relationship (memory grows with
relationships, not events); a relationship found out of order in the log is read again
by itself, in version order. One relationship alone is read by itself from the start.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.chain import ChainBreak, ChainCursor, ChainEntry, link, misplaced
from domain.errors import Damaged, Unverified
from domain.ledger import RelationshipLedger
from domain.relationship import Relationship, relationship_uuid
from domain.stored import StoredInteraction, UnreadableRecord
from domain.text import quote
from projections.eventlog import events_table, has_events_table, log_order
from projections.view import RelationshipView, open_view

OPENED_TOPIC = get_topic(Relationship.Opened)  # type: ignore[attr-defined]  # made by @event
RECORDED_TOPIC = get_topic(Relationship.InteractionRecorded)


def expected_topic(version: int) -> str:
    """The topic relledger stores an event under: a relationship opens with version 1."""
    return OPENED_TOPIC if version == 1 else RECORDED_TOPIC


class LedgerMissing(Damaged):
    """The store has no events table: nothing to verify, and nothing is intact."""


class ChainBroken(Unverified):
    """A relationship's stored events fail verification: anything folded from them is
    folded from a history nobody can vouch for."""

    def __init__(self, relationship_id: str, breaks: list[ChainBreak]) -> None:
        more = f" (and {len(breaks) - 1} more break(s))" if len(breaks) > 1 else ""
        super().__init__(
            f"{breaks[0]}{more}: the history of {quote(relationship_id)} fails "
            "verification, so it is not replayed (relledger verify lists every break; an "
            "unverified replay shows it anyway)"
        )
        self.relationship_id = relationship_id
        self.breaks = breaks


@dataclass
class VerifyReport:
    relationships: int = 0
    records: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return not self.breaks

    def summary(self) -> str:
        """One line: what was checked and what was found."""
        if self.records == 0:
            return "no interactions recorded yet: nothing to verify"
        verdict = "intact" if self.intact else f"{len(self.breaks)} break(s)"
        return f"{self.records} records in {self.relationships} relationships: {verdict}"

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


Stored = StoredInteraction | UnreadableRecord


class _Chain:
    """What verification holds for one aggregate: its chain so far and what it found."""

    __slots__ = (
        "aggregate_id",
        "cursor",
        "findings",
        "foreign",
        "head",
        "last_version",
        "name",
        "reread",
    )

    def __init__(self, aggregate_id: UUID, name: str | None = None) -> None:
        self.aggregate_id = aggregate_id
        self.name = name
        """Its relationship: asked for by name, or once one of its own records named it."""
        self.cursor = ChainCursor()
        self.findings: list[tuple[int, str]] = []
        self.foreign: set[int] = set()
        """Versions holding another relationship's record."""
        self.head: str | None = None
        self.last_version = 0
        self.reread = False
        """Out of version order in the log: checked again by itself once the log is read."""

    def add(self, stored: Stored) -> None:
        """The aggregate's next stored event, in version order."""
        problem = _unreadable(stored)
        if problem is not None:
            self.findings.append((stored.version, f"unreadable: {problem}"))
            self.cursor.skip(stored.version)
            return
        assert isinstance(stored, StoredInteraction)
        if relationship_uuid(stored.relationship_id) != self.aggregate_id:
            if self._renamed(stored):
                return
            event_id = quote(stored.record.get("event_id"))
            self.findings.append(
                (
                    stored.version,
                    f"holds a record of {quote(stored.relationship_id)} (event {event_id}): "
                    "moved here from that relationship",
                )
            )
            self.foreign.add(stored.version)
            return  # not part of this chain: the record after it finds the gap
        self.name = stored.relationship_id
        expected = expected_topic(stored.version)
        if stored.topic != expected:
            self.findings.append(
                (
                    stored.version,
                    f"stored as the wrong kind of event ({stored.topic}, where relledger "
                    f"records {expected}): its topic was edited",
                )
            )
        problem = self.cursor.check(stored.chain_entry())
        if problem is not None:
            self.findings.append((stored.version, problem))
        self.head = stored.chain_hash

    def _renamed(self, stored: StoredInteraction) -> bool:
        """Whether `stored` is this chain's next record with only its relationship_id
        edited (then it is reported as such, and the chain goes on through it)."""
        name, cursor = self.name, self.cursor
        if name is None or cursor.previous is None or stored.version != cursor.expected_version:
            return False
        own = {**stored.record, "relationship_id": name}
        if link(cursor.previous, own) != stored.chain_hash:
            return False
        self.findings.append(
            (
                stored.version,
                f"names {quote(stored.relationship_id)} instead of {quote(name)}: its "
                "relationship_id was edited",
            )
        )
        cursor.check(ChainEntry(stored.version, own, stored.chain_hash))
        self.head = stored.chain_hash
        return True

    def check_log_order(self, placed: list[tuple[int, int]]) -> None:
        """Report each of its own events that stands out of version order in the log
        (`placed`: position and version of each, in log order)."""
        own = [(p, version) for p, version in placed if version not in self.foreign]
        versions = [version for _, version in own]
        moved = misplaced(versions)
        kept = [index for index in range(len(own)) if index not in moved]
        for index in sorted(moved):
            position, version = own[index]
            at = bisect_left(kept, index)  # the kept events around it: one is on its wrong side
            if at > 0 and versions[kept[at - 1]] > version:
                where = f"after #{versions[kept[at - 1]]}"
            else:
                where = f"before #{versions[kept[at]]}"
            self.findings.append(
                (
                    version,
                    f"out of order in the log: stored at position {position}, {where}; "
                    "the read models fold the log in this order",
                )
            )

    def breaks(self) -> list[ChainBreak]:
        name = self.name or f"(aggregate {self.aggregate_id})"
        return [ChainBreak(name, version, problem) for version, problem in self.findings]


def _unreadable(stored: Stored) -> str | None:
    """Why a stored event cannot be checked at all: it does not decode, or decodes to
    something else than text where its relationship and its hash belong."""
    if isinstance(stored, UnreadableRecord):
        return stored.error
    for name, value in (
        ("relationship_id", stored.relationship_id),
        ("chain hash", stored.chain_hash),
    ):
        if not isinstance(value, str):
            return f"its {name} is {quote(value)}, not text"
    return None


def verify_ledger(
    ledger: RelationshipLedger,
    relationship_id: str | None = None,
    *,
    view: RelationshipView | None = None,
) -> VerifyReport:
    """Check all relationships (or one); `heads` holds each chain's last hash for anchoring.

    Raises `LedgerMissing` when the store has no events table at all.
    """
    view = view or open_view(ledger)
    if relationship_id is not None:
        return verify_relationship(ledger, relationship_id, view=view)
    _require_events_table(view, ledger)
    chains: dict[UUID, _Chain] = {}
    report = VerifyReport()
    for stored in ledger.scan():
        report.records += 1
        chain = chains.get(stored.aggregate_id)
        if chain is None:
            chain = chains[stored.aggregate_id] = _Chain(stored.aggregate_id)
        if chain.reread:
            continue
        if stored.version < chain.last_version:  # out of version order in the log
            chain.reread = True
            continue
        chain.last_version = stored.version
        chain.add(stored)
    for aggregate_id, chain in chains.items():
        if chain.reread:
            chains[aggregate_id] = _reread(ledger, view, aggregate_id, ledger.chain(aggregate_id))
    return _report(chains.values(), report)


def verify_relationship(
    ledger: RelationshipLedger,
    relationship_id: str,
    *,
    upto: int | None = None,
    view: RelationshipView | None = None,
) -> VerifyReport:
    """Check one relationship's stored events (its first `upto`, if given) by themselves:
    the events its aggregate holds, and their places in the log. No events: an empty
    report (the caller says the relationship is unknown)."""
    view = view or open_view(ledger)
    _require_events_table(view, ledger)
    aggregate_id = relationship_uuid(relationship_id)
    stored = [one for one in ledger.chain(aggregate_id) if upto is None or one.version <= upto]
    report = VerifyReport(records=len(stored))
    if not stored:
        return report
    chain = _reread(ledger, view, aggregate_id, stored, upto, name=relationship_id)
    return _report([chain], report)


def _require_events_table(view: RelationshipView, ledger: RelationshipLedger) -> None:
    if not has_events_table(view, ledger):
        raise LedgerMissing(
            f"the events table {events_table(ledger)} is missing: the ledger was removed, "
            "or this is not a relledger store"
        )


def _reread(
    ledger: RelationshipLedger,
    view: RelationshipView,
    aggregate_id: UUID,
    stored: list[Stored],
    upto: int | None = None,
    *,
    name: str | None = None,
) -> _Chain:
    """One aggregate checked by itself: its events in version order, then their places in
    the log."""
    chain = _Chain(aggregate_id, name)
    for one in stored:
        chain.add(one)
    placed = log_order(view, ledger, aggregate_id)
    if upto is not None:
        placed = [(position, version) for position, version in placed if version <= upto]
    chain.check_log_order(placed)
    return chain


def _report(chains: Iterable[_Chain], report: VerifyReport) -> VerifyReport:
    for chain in chains:
        report.relationships += 1
        report.breaks.extend(chain.breaks())
        if chain.name is not None and chain.head is not None:
            report.heads[chain.name] = chain.head
    report.breaks.sort(key=lambda found: (found.relationship_id, found.version))
    return report
