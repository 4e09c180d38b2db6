"""Rebuild the read models from zero beside the live ones, compare, then switch.

The live generation keeps answering while the new one is built from the whole
log (under the current policy or a new one). Both are then brought to the same
log position and compared relationship by relationship; the differences are
reported (a changed policy, or a hand-corrupted row), and the new generation
becomes live in one transaction that also checks nobody moved the live one
after the comparison. `check` only compares, and leaves the live tables alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eventsourcing.persistence import OperationalError, ProgrammingError

from domain.errors import LedgerError, PolicyError
from domain.ledger import RelationshipLedger
from domain.policy import Policy
from projections.digest import Difference, compare
from projections.projector import Progress, Projector
from projections.tables import Generation
from projections.view import RelationshipView

ATTEMPTS = 5


class RebuildRaced(LedgerError):
    """The live read models kept moving (or another rebuild switched them) meanwhile."""


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
        for _ in range(ATTEMPTS):
            position = max(building.catch_up().position, following.catch_up().position)
            building.catch_up(until=position)
            following.catch_up(until=position)
            report.differences = compare(view, old, new)
            report.relationships = _count(view, new)
            if _finish(view, report, old, new, new_policy, position, check):
                report.position = position
                return report
        raise RebuildRaced(
            "the live read models kept moving during the comparison; stop `relledger project "
            "--follow` and ingestion for a moment, then rebuild again"
        )
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
