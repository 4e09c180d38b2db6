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

The queries read the live generation through the stable views, so a view redefined by
hand would make them show other figures than either generation holds: the views are
checked against the definition relledger gives them, a redefined one is reported (and
fails `check`), and the switch puts every view back.

A live generation whose tracking record contradicts its rows or the log cannot be
brought to a common position to compare with (`projections.tracking`): the rebuild
refuses it and names `from_zero`, which builds a new generation from position 0 and
switches to it without comparing, whatever the old one's tracking says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import OperationalError, ProgrammingError

from domain.errors import Conflict, Invalid, PolicyError
from domain.ledger import RelationshipLedger
from domain.policy import Policy
from domain.retry import retry_call
from projections.digest import Difference, compare, compare_quarantine, quarantine_of
from projections.projector import Progress, Projector
from projections.quarantine import Quarantined
from projections.tables import Generation
from projections.tracking import check_tracking
from projections.view import Live, RelationshipView

MOVING_PATIENCE_S = 10.0
"""How long a rebuild keeps comparing again while the live read models move under it."""


class RebuildRaced(Conflict):
    """The live read models kept moving (or another rebuild switched them) meanwhile."""

    @classmethod
    def superseded(cls, generation: int) -> RebuildRaced:
        """Another rebuild made `generation` live before this one could switch."""
        return cls(
            f"another rebuild made generation {generation} live meanwhile; this one is discarded"
        )


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
    redefined_views: list[str] = field(default_factory=list)
    """Stable views that were not relledger's definition (the switch puts them back)."""
    from_zero: bool = False
    """Built from position 0 and switched to without comparing with the old generation."""

    @property
    def consistent(self) -> bool:
        """What the queries read was what a fresh fold gives (no difference, no view
        redefined)."""
        return not self.differences and not self.redefined_views

    def summary(self) -> str:
        """One sentence: what was rebuilt, how it compared, what is live now."""
        outcome = (
            f"generation {self.new_generation} is live"
            if self.switched
            else f"generation {self.old_generation} left live (--check)"
        )
        if self.from_zero:
            compared = f"not compared with generation {self.old_generation} (--from-zero)"
        else:
            compared = (
                f"{len(self.differences)} difference(s) from generation "
                f"{self.old_generation} (policy {self.old_policy})"
            )
        if self.redefined_views:
            compared += f", {len(self.redefined_views)} view(s) redefined"
        return (
            f"rebuilt {self.relationships} relationships up to position {self.position} "
            f"under policy {self.new_policy}: {compared}; {outcome}; "
            f"{len(self.quarantined)} still quarantined"
        )

    def view_problems(self) -> list[str]:
        """One line per redefined view."""
        repair = "the switch put it back" if self.switched else "a rebuild puts it back"
        return [
            f"view {name}: not the definition relledger gives it (redefined, replaced or "
            f"dropped by hand), so the queries do not read generation "
            f"{self.old_generation} as it is; {repair}"
            for name in self.redefined_views
        ]

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
            "from_zero": self.from_zero,
            "redefined_views": self.redefined_views,
            "quarantined": len(self.quarantined),
            "quarantine": [held.view() for held in self.quarantined[:limit]],
        }


def rebuild(
    ledger: RelationshipLedger,
    view: RelationshipView,
    policy: Policy | None = None,
    *,
    check: bool = False,
    from_zero: bool = False,
    on_progress: Progress | None = None,
) -> RebuildReport:
    """Build, compare, and (unless `check`) switch; `policy` None keeps the live one.

    `from_zero` builds and switches without comparing (the old generation's tracking
    may be anything); otherwise a damaged tracking record raises `TrackingDamaged`."""
    if check and from_zero:
        raise Invalid(
            "a check compares with the live read models and a rebuild --from-zero replaces "
            "them without comparing: ask for one or the other"
        )
    live = view.require_live()
    new_policy = policy or live.policy()
    old = view.generation(live.generation)
    if policy is not None and policy.version == live.policy().version and policy != live.policy():
        raise PolicyError(
            f"this policy file says version {policy.version!r} but its rules differ from the "
            f"live {policy.version!r}: give the new rules a new version, so every figure "
            "keeps naming the rules that produced it"
        )
    if not from_zero:
        check_tracking(view, ledger, old)
    new = view.allocate()
    report = RebuildReport(live.generation, new.number, live.policy().version, new_policy.version)
    report.redefined_views = view.redefined_views(old)
    report.from_zero = from_zero
    building = Projector(ledger, view, target=(new, new_policy))
    try:
        building.catch_up(on_progress=on_progress)
        if from_zero:
            return _switch_from_zero(view, report, live, new, new_policy)
        following = Projector(ledger, view, target=(old, live.policy()))

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


def _switch_from_zero(
    view: RelationshipView,
    report: RebuildReport,
    live: Live,
    new: Generation,
    policy: Policy,
) -> RebuildReport:
    """Make the new generation live as far as it got: whatever was recorded meanwhile,
    the projector goes on from its own tracking record after the switch."""
    report.relationships = _count(view, new)
    report.quarantined = quarantine_of(view, new)
    with view.transaction() as cursor:
        now = view.claim(cursor)
        if now.generation != live.generation:
            raise RebuildRaced.superseded(now.generation)
        report.position = view.position(cursor, new)
        view.switch(cursor, new, policy)
        report.switched = True
    return report


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
            raise RebuildRaced.superseded(live.generation)
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
