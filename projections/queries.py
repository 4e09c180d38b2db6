"""The questions users ask of the read models, as plain functions.

The CLI calls these today and an HTTP API can call them tomorrow: each takes the
view and plain arguments and returns JSON-ready data. They read the stable SQL
views, so they always see the live generation, never a rebuild in progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from domain.fold.fairness import FairnessStatus
from domain.fold.records import Connection, Phase
from domain.fold.stage import Stage
from domain.ledger import RelationshipLedger
from domain.relationship import epoch_us, relationship_uuid
from projections.quarantine import Quarantined
from projections.read_models import (
    QUARANTINE,
    phase_change_from_row,
    standing_from_row,
    trust_change_from_row,
)
from projections.tracking import positions
from projections.view import RelationshipView
from projections.views import number


class SortKey(StrEnum):
    """What `list` can sort by (each maps to one indexed or cheap column)."""

    RELATIONSHIP = "relationship_id"
    TRUST = "trust"
    FAIRNESS = "fairness_index"
    EVENTS = "events"
    LAST_EVENT = "last_event_us"


@dataclass(frozen=True)
class Filters:
    phase: Phase | None = None
    stage: Stage | None = None
    connection: Connection | None = None
    fairness: FairnessStatus | None = None
    party: str | None = None
    """A supplier or customer name: relationships where it is either party."""

    def where(self) -> tuple[str, list[Any]]:
        pairs = [
            ("phase", self.phase),
            ("stage", self.stage),
            ("connection", self.connection),
            ("fairness_status", self.fairness),
        ]
        conditions = [f"{column} = ?" for column, value in pairs if value is not None]
        params: list[Any] = [value.value for _, value in pairs if value is not None]
        if self.party is not None:
            conditions.append("(supplier = ? OR customer = ?)")
            params += [self.party, self.party]
        if not conditions:
            return "", []
        return " WHERE " + " AND ".join(conditions), params


def _name(view: RelationshipView, stable: str) -> str:
    return view.dialect.name(stable)


def standing(view: RelationshipView, relationship_id: str) -> dict[str, Any] | None:
    """Where a relationship stands, or None if the read models do not know it.

    A quarantined relationship also has `quarantined` (the event that failed, why): its
    figures are those from before that event, or absent if it failed at its first.
    """
    rows = view.query(
        f"SELECT * FROM {_name(view, 'relationship_summary')} WHERE relationship_id = ?",
        [relationship_id],
    )
    held = quarantined(view, relationship_id)
    if held is None:
        return standing_from_row(rows[0]) if rows else None
    found: dict[str, Any] = (
        standing_from_row(rows[0]) if rows else {"relationship_id": relationship_id}
    )
    found["quarantined"] = held.view()
    return found


def changes_after(
    view: RelationshipView, position: int, *, limit: int = 500
) -> list[tuple[int, dict[str, Any]]]:
    """Standings the projector changed after log `position`, in the order it applied
    them: (position of the last event applied, standing). A relationship changed several
    times since appears once, as it stands now, at its latest position, so a reader that
    resumes after the last position it saw misses no relationship's change."""
    rows = view.query(
        f"SELECT * FROM {_name(view, 'relationship_summary')} WHERE position > ? "
        f"ORDER BY position LIMIT {int(limit)}",
        [position],
    )
    return [(int(row["position"]), standing_from_row(row)) for row in rows]


def quarantined(view: RelationshipView, relationship_id: str) -> Quarantined | None:
    """The quarantine record of one relationship, if it is quarantined."""
    rows = view.query(
        f"SELECT * FROM {_name(view, 'quarantined_relationships')} WHERE aggregate_id = ?",
        [str(relationship_uuid(relationship_id))],
    )
    if not rows:
        return None
    held: Quarantined = QUARANTINE.load(rows[0])
    return held


def quarantine(view: RelationshipView, *, limit: int = 100) -> tuple[int, list[Quarantined]]:
    """How many relationships are quarantined, and the first `limit` in log order."""
    table = _name(view, "quarantined_relationships")
    total = view.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
    rows = view.query(f"SELECT * FROM {table} ORDER BY position LIMIT {int(limit)}")
    return int(total), [QUARANTINE.load(row) for row in rows]


def trust_history(view: RelationshipView, relationship_id: str) -> list[dict[str, Any]]:
    rows = view.query(
        f"SELECT * FROM {_name(view, 'trust_changes')} WHERE relationship_id = ? "
        "ORDER BY position, n",
        [relationship_id],
    )
    return [trust_change_from_row(row) for row in rows]


def phase_history(view: RelationshipView, relationship_id: str) -> list[dict[str, Any]]:
    rows = view.query(
        f"SELECT * FROM {_name(view, 'phase_changes')} WHERE relationship_id = ? "
        "ORDER BY position, n",
        [relationship_id],
    )
    return [phase_change_from_row(row) for row in rows]


@dataclass(frozen=True)
class Listing:
    total: int
    offset: int
    items: list[dict[str, Any]]

    def view(self, next_page: Callable[[int], Any] = int) -> dict[str, Any]:
        """The one JSON shape of a page, for `list --json` and `GET /v1/relationships`:
        its items, how many match in all, where it starts, and how to ask for the next
        page (null on the last): `next_page` of the next page's offset, which the CLI
        gives as it is (`--offset`) and the HTTP API as an opaque cursor."""
        after = self.offset + len(self.items)
        return {
            "items": self.items,
            "total": self.total,
            "offset": self.offset,
            "next": next_page(after) if self.items and after < self.total else None,
        }


def list_relationships(
    view: RelationshipView,
    filters: Filters = Filters(),
    *,
    sort: SortKey = SortKey.RELATIONSHIP,
    descending: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> Listing:
    """One page of relationships matching `filters`, and how many match in all."""
    where, params = filters.where()
    table = _name(view, "relationship_summary")
    total = view.query(f"SELECT COUNT(*) AS n FROM {table}{where}", params)[0]["n"]
    direction = "DESC" if descending else "ASC"
    tie = "" if sort is SortKey.RELATIONSHIP else ", relationship_id"
    rows = view.query(
        f"SELECT * FROM {table}{where} ORDER BY {sort.value} {direction}{tie} "
        f"LIMIT {int(limit)} OFFSET {int(offset)}",
        params,
    )
    return Listing(int(total), offset, [standing_from_row(row) for row in rows])


_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)


def trust_drops(
    view: RelationshipView,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """Relationships whose trust fell most between `since` and `until` (open-ended
    where not given), with the causes.

    The fall is the net of every change in the period (gains offset losses); the
    causes are that period's falls, largest first, each naming its event and rule.
    """
    table = _name(view, "trust_changes")
    period = [epoch_us(since or _EARLIEST), epoch_us(until or _LATEST)]
    worst = view.query(
        f"SELECT relationship_id, SUM(delta) AS net FROM {table} "
        "WHERE occurred_us >= ? AND occurred_us <= ? GROUP BY relationship_id "
        f"HAVING SUM(delta) < 0 ORDER BY net ASC, relationship_id LIMIT {int(limit)}",
        period,
    )
    found = []
    for row in worst:
        causes = view.query(
            f"SELECT * FROM {table} WHERE relationship_id = ? AND occurred_us >= ? "
            "AND occurred_us <= ? AND delta < 0 ORDER BY delta ASC, position, n",
            [row["relationship_id"], *period],
        )
        current = standing(view, row["relationship_id"])
        found.append(
            {
                "relationship_id": row["relationship_id"],
                "net_change": number(row["net"]),
                "trust": None if current is None else current["trust"],
                "phase": None if current is None else current["phase"],
                "causes": [trust_change_from_row(cause) for cause in causes],
            }
        )
    return found


_COUNTED: dict[str, type[StrEnum]] = {
    "phase": Phase,
    "stage": Stage,
    "connection": Connection,
    "fairness_status": FairnessStatus,
}


def distribution(view: RelationshipView) -> dict[str, dict[str, int]]:
    """How many relationships are in each phase, stage, connection and fairness status:
    every value in the domain's order (phases as a relationship goes through them), zero
    counts included."""
    table = _name(view, "relationship_summary")
    counts: dict[str, dict[str, int]] = {}
    for column, values in _COUNTED.items():
        rows = view.query(f"SELECT {column} AS value, COUNT(*) AS n FROM {table} GROUP BY {column}")
        found = {str(row["value"]): int(row["n"]) for row in rows}
        counts[column] = {value.value: found.pop(value.value, 0) for value in values}
        counts[column].update(found)
    return counts


def fairness_outliers(view: RelationshipView, *, limit: int = 10) -> list[dict[str, Any]]:
    """The most one-sided exchanges, whichever party they favour."""
    rows = view.query(
        f"SELECT * FROM {_name(view, 'relationship_summary')} "
        "WHERE fairness_status <> 'balanced' "
        f"ORDER BY ABS(fairness_index) DESC, relationship_id LIMIT {int(limit)}"
    )
    return [standing_from_row(row) for row in rows]


@dataclass(frozen=True)
class Status:
    generation: int
    policy: str
    position: int
    head: int
    quarantined: int = 0
    quarantine: list[Quarantined] = field(default_factory=list)
    """The first quarantined relationships, in log order (`quarantined` counts them all)."""
    problem: str | None = None
    """Why the read models cannot go on from their tracking record, if they cannot."""

    @property
    def lag(self) -> int:
        return max(0, self.head - self.position)

    def view(self) -> dict[str, Any]:
        """The JSON shape of `projections status --json`; `quarantined` is the metric (how
        many), `quarantine` the first of them."""
        return {
            "generation": self.generation,
            "policy": self.policy,
            "position": self.position,
            "head": self.head,
            "lag": self.lag,
            "quarantined": self.quarantined,
            "quarantine": [held.view() for held in self.quarantine],
            "problem": self.problem,
        }


def status(view: RelationshipView, ledger: RelationshipLedger, *, limit: int = 100) -> Status:
    """Which generation is live, under which policy, how far behind the log it is, which
    relationships are quarantined (up to `limit` of them listed), and whether its tracking
    record contradicts its rows or the log (`problem`)."""
    live = view.require_live()
    found = positions(view, ledger, view.generation(live.generation))
    count, listed = quarantine(view, limit=limit)
    return Status(
        live.generation,
        live.policy().version,
        found.tracked,
        found.head,
        count,
        listed,
        found.problem(),
    )
