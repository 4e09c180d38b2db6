"""Rebuild the read models from zero beside the live ones, compare, then switch.

The live generation keeps answering while the new one is built from the whole
log (under the current policy or a new one). Both are then brought to the same
log position and compared relationship by relationship; the differences are
reported (a changed policy, or a hand-corrupted row), and the new generation
becomes live in one transaction that also checks nobody moved the live one
after the comparison. `check` only compares, and leaves the live tables alone.

Quarantine lives per generation, so a rebuild tries every quarantined relationship
again from its first event; the report lists those the new generation still
quarantines (and, as differences, those quarantined in one generation only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import OperationalError, ProgrammingError

from domain.errors import Conflict, PolicyError
from domain.ledger import RelationshipLedger
from domain.policy import Policy
from domain.retry import retry_call
from projections.digest import Difference, compare, compare_quarantine, quarantine_of
from projections.projector import Progress, Projector
from projections.quarantine import Quarantined
from projections.tables import Generation
from projections.view import RelationshipView

MOVING_PATIENCE_S = 10.0
"""How long a rebuild keeps comparing again while the live read models move under it."""


class RebuildRaced(Conflict):
    """The live read models kept moving (or another rebuild switched them) meanwhile."""


class _LiveMoved(Exception):
    """The live generation moved between the comparison and the switch: compare again."""


@dataclass
class RebuildReport:
    old_generation: int
    new_generation: int
    old_policy: str
    new_policy: str
    position: int = 0
    relationships: int = 0
    differences: list[Difference] = field(default_factory=list)
    switched: bool = False
    quarantined: list[Quarantined] = field(default_factory=list)
    """Relationships the new generation still quarantines (the events never change)."""

    def summary(self) -> str:
        """One sentence: what was rebuilt, how it compared, what is live now."""
        outcome = (
            f"generation {self.new_generation} is live"
            if self.switched
            else f"generation {self.old_generation} left live (--check)"
        )
        compared = (
            f"{len(self.differences)} difference(s) from generation "
            f"{self.old_generation} (policy {self.old_policy})"
        )
        return (
            f"rebuilt {self.relationships} relationships up to position {self.position} "
            f"under policy {self.new_policy}: {compared}; {outcome}; "
            f"{len(self.quarantined)} still quarantined"
        )

    def view(self, limit: int = 100) -> dict[str, Any]:
        """The JSON shape `projections rebuild --json` prints (at most `limit` listed)."""
        return {
            "old_generation": self.old_generation,
            "new_generation": self.new_generation,
            "old_policy": self.old_policy,
            "new_policy": self.new_policy,
            "position": self.position,
            "relationships": self.relationships,
            "differences": [
                {"relationship_id": d.relationship_id, "problem": d.problem}
                for d in self.differences
            ],
            "switched": self.switched,
            "quarantined": len(self.quarantined),
            "quarantine": [held.view() for held in self.quarantined[:limit]],
        }


def rebuild(
    ledger: RelationshipLedger,
    view: RelationshipView,
    policy: Policy | None = None,
    *,
    check: bool = False,
    on_progress: Progress | None = None,
) -> RebuildReport:
    """Build, compare, and (unless `check`) switch; `policy` None keeps the live one."""
    live = view.require_live()
    new_policy = policy or live.policy()
    old = view.generation(live.generation)
    if policy is not None and policy.version == live.policy().version and policy != live.policy():
        raise PolicyError(
            f"this policy file says version {policy.version!r} but its rules differ from the "
            f"live {policy.version!r}: give the new rules a new version, so every figure "
            "keeps naming the rules that produced it"
        )
    new = view.allocate()
    report = RebuildReport(live.generation, new.number, live.policy().version, new_policy.version)
    building = Projector(ledger, view, target=(new, new_policy))
    following = Projector(ledger, view, target=(old, live.policy()))
    try:
        building.catch_up(on_progress=on_progress)

        def compare_and_finish() -> RebuildReport:
            position = max(building.catch_up().position, following.catch_up().position)
            building.catch_up(until=position)
            following.catch_up(until=position)
            report.differences = compare(view, old, new) + compare_quarantine(view, old, new)
            report.relationships = _count(view, new)
            report.quarantined = quarantine_of(view, new)
            if not _finish(view, report, old, new, new_policy, position, check):
                raise _LiveMoved
            report.position = position
            return report

        try:
            return retry_call(
                compare_and_finish,
                what="compare and switch the read models",
                retry_on=(_LiveMoved,),
                give_up_after=MOVING_PATIENCE_S,
            )
        except _LiveMoved:
            raise RebuildRaced(
                "the live read models kept moving during the comparison; stop `relledger "
                "project --follow` and ingestion for a moment, then rebuild again"
            ) from None
    except (OperationalError, ProgrammingError) as error:
        if (view.live() or live).generation != old.number:
            raise RebuildRaced(
                "another rebuild switched the read models while this one was running; "
                "this one is discarded"
            ) from error
        _discard(view, new)
        raise
    except BaseException:
        _discard(view, new)
        raise


def _discard(view: RelationshipView, generation: Generation) -> None:
    with view.transaction() as cursor:
        view.discard(cursor, generation)


def _finish(
    view: RelationshipView,
    report: RebuildReport,
    old: Generation,
    new: Generation,
    policy: Policy,
    position: int,
    check: bool,
) -> bool:
    """Switch (or, for a check, discard) if nothing moved since the comparison."""
    with view.transaction() as cursor:
        live = view.claim(cursor)
        if live.generation != old.number:
            raise RebuildRaced(
                f"another rebuild made generation {live.generation} live meanwhile; "
                "this one is discarded"
            )
        if view.position(cursor, old) != position or view.position(cursor, new) != position:
            return False
        if check:
            view.discard(cursor, new)
        else:
            view.switch(cursor, new, policy)
            report.switched = True
    return True


def _count(view: RelationshipView, generation: Generation) -> int:
    found = view.query(f"SELECT COUNT(*) AS n FROM {generation.table('summary')}")
    return int(found[0]["n"])
