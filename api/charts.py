"""The geometry of the pages' charts, computed in Python and drawn by the templates as SVG.

Hand-made SVG rather than a charting library: the charts are two (trust over time with
phase bands behind it, and fairness bars), the server already holds every figure, and
an SVG written by the server needs no script to appear, prints as it shows, and keeps
every point an element a test or a screen reader can find. Each function here takes the
JSON shapes the service answers (trust history, phase history, fairness) and returns
coordinates in a fixed viewBox, so the templates only place what was computed.

Time runs left to right by `occurred_at`; a point is drawn where the change happened
and the line joins the points in recorded order, so an interaction that arrived late
shows as the line stepping back in time, which is what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

WIDTH, HEIGHT = 800, 320
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 40
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
TRUST_MAX = 100.0
X_TICKS = 5
Row = dict[str, Any]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    row: Row
    label: str
    late: bool
    """Its event occurred before one recorded earlier: drawn apart from the line."""


@dataclass(frozen=True)
class Line:
    name: str
    points: list[Point]

    @property
    def path(self) -> str:
        """The line through the points in time order (a late one stands beside it)."""
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points if not p.late)


@dataclass(frozen=True)
class Band:
    x: float
    width: float
    phase: str
    row: Row
    cycle: int


@dataclass(frozen=True)
class Mark:
    """A labelled vertical line (a cycle boundary) or horizontal one (the cap)."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class TrustChart:
    lines: list[Line]
    bands: list[Band]
    cycles: list[Mark]
    cap: Mark | None
    x_ticks: list[Tick]
    y_ticks: list[Tick]

    @property
    def any_late(self) -> bool:
        return any(point.late for line in self.lines for point in line.points)


EMPTY_CHART = TrustChart([], [], [], None, [], [])


class _Scale:
    def __init__(self, start: datetime, end: datetime) -> None:
        if end <= start:
            start, end = start - timedelta(days=1), end + timedelta(days=1)
        self.start, self.span = start, (end - start).total_seconds()

    def x(self, at: datetime) -> float:
        return LEFT + PLOT_W * (at - self.start).total_seconds() / self.span

    def ticks(self) -> list[Tick]:
        step = self.span / (X_TICKS - 1)
        times = [self.start + timedelta(seconds=step * n) for n in range(X_TICKS)]
        return [Tick(self.x(at), at.date().isoformat()) for at in times]


def y_of(trust: float) -> float:
    return TOP + PLOT_H * (1 - trust / TRUST_MAX)


def point_label(row: Row, line: str, late: bool) -> str:
    """What a point says when hovered or focused (and to a screen reader)."""
    arrived = " (arrived late)" if late else ""
    return (
        f"{line}: {row['occurred_at']}{arrived}, event {row['event_id']}, rule {row['rule']}, "
        f"trust {row['before']} -> {row['after']}, policy {row['policy']}"
    )


def _points(rows: list[Row], name: str, scale: _Scale) -> list[Point]:
    points: list[Point] = []
    clock: datetime | None = None
    for row in rows:
        at = moment(row["occurred_at"])
        late = clock is not None and at < clock
        clock = at if clock is None else max(clock, at)
        label = point_label(row, name, late)
        points.append(Point(scale.x(at), y_of(row["after"]), row, label, late))
    return points


def trust_chart(
    lines: dict[str, list[Row]],
    phases: list[Row],
    *,
    credibility_cap: float | None,
    end: datetime | None = None,
) -> TrustChart:
    """Trust lines (by name, first is the main one) over phase bands; `credibility_cap`
    is drawn from the first breach on (or across, if credibility was lost without a
    recorded breach change); `end` stretches the time axis (an as-of moment)."""
    times = [moment(row["occurred_at"]) for rows in lines.values() for row in rows]
    times += [moment(row["occurred_at"]) for row in phases]
    if not times:
        return TrustChart([], [], [], None, [], _y_ticks())
    last = max(times) if end is None else max(max(times), end)
    scale = _Scale(min(times), last)
    drawn = [Line(name, _points(rows, name, scale)) for name, rows in lines.items()]
    bands, cycles = _bands(phases, scale, last)
    return TrustChart(
        drawn, bands, cycles, _cap(lines, credibility_cap, scale), scale.ticks(), _y_ticks()
    )


def _y_ticks() -> list[Tick]:
    return [Tick(y_of(value), f"{value:.0f}") for value in (0, 25, 50, 75, 100)]


def phase_cycles(phases: list[Row]) -> list[int]:
    """The cycle each phase change belongs to: a revival (out of dissolution) starts one."""
    cycle, found = 1, []
    for row in phases:
        if row["rule"] == "revival":
            cycle += 1
        found.append(cycle)
    return found


def _bands(phases: list[Row], scale: _Scale, end: datetime) -> tuple[list[Band], list[Mark]]:
    """One band per phase change, from it to the next (a late change never runs a band
    backwards: it starts where the previous one did)."""
    starts: list[float] = []
    for row in phases:
        x = scale.x(moment(row["occurred_at"]))
        starts.append(max(x, starts[-1]) if starts else x)
    stops = [*starts[1:], scale.x(end)]
    cycles = phase_cycles(phases)
    bands = [
        Band(x, max(0.0, stop - x), row["to"], row, cycle)
        for x, stop, row, cycle in zip(starts, stops, phases, cycles, strict=True)
    ]
    marks = [
        Mark(band.x, TOP, band.x, TOP + PLOT_H, f"cycle {band.cycle}")
        for before, band in pairwise(bands)
        if band.cycle != before.cycle
    ]
    return bands, marks


def _cap(lines: dict[str, list[Row]], cap: float | None, scale: _Scale) -> Mark | None:
    if cap is None:
        return None
    main = next(iter(lines.values()), [])
    breaches = [moment(row["occurred_at"]) for row in main if row["rule"] == "breach"]
    x = scale.x(min(breaches)) if breaches else LEFT
    y = y_of(cap)
    return Mark(x, y, LEFT + PLOT_W, y, f"credibility cap {cap:g}")


@dataclass(frozen=True)
class Bar:
    party: str
    flow: str
    amount: str
    x: float
    y: float
    width: float


FAIRNESS_W, FAIRNESS_BAR, FAIRNESS_LABEL = 560, 22, 150


def fairness_bars(fairness: Row) -> list[Bar]:
    """Contributed and received for each party, on one scale."""
    flows = [
        (party, flow, str(fairness[party][flow]))
        for party in ("supplier", "customer")
        for flow in ("contributed", "received")
    ]
    largest = max((Decimal(amount) for _, _, amount in flows), default=Decimal(0))
    room = FAIRNESS_W - FAIRNESS_LABEL - 90
    return [
        Bar(
            party,
            flow,
            amount,
            FAIRNESS_LABEL,
            8 + n * (FAIRNESS_BAR + 8),
            0.0 if largest == 0 else float(Decimal(amount) / largest) * room,
        )
        for n, (party, flow, amount) in enumerate(flows)
    ]
