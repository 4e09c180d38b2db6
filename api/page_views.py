"""What the relationship page shows, gathered from the service for one viewer.

Two sources of figures, as in the CLI: the read models (where the relationship stands
now, and the trust and phase histories the projector kept), and the audit replay from
the stored events, as of a moment and under a policy the store knows. The replay
(`LedgerService.replay_histories`) gives the same standing as `relledger replay
--as-of`, with the histories behind it (the lines drawn under an as-of moment or
another policy).

A replay is an audit: it needs the auditor role, and it is refused for a relationship
whose hash chain does not verify (the page says where it breaks instead of drawing
figures from a history that was changed behind the ledger's back).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.charts import (
    EMPTY_CHART,
    Bar,
    TrustChart,
    fairness_bars,
    moment,
    phase_cycles,
    trust_chart,
)
from domain.errors import Unverified
from service.ledger_service import LedgerService

EVENTS_PER_PAGE = 50
Row = dict[str, Any]


@dataclass(frozen=True)
class Figures:
    standing: Row
    trust: list[Row]
    phases: list[Row]


@dataclass(frozen=True)
class Chain:
    """The relationship's hash chain as `verify` found it: break versions and why."""

    breaks: dict[int, str]

    @property
    def intact(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> int | None:
        return min(self.breaks) if self.breaks else None


@dataclass(frozen=True)
class Difference:
    event_id: str
    occurred_at: str
    live: float | None
    other: float | None

    @property
    def delta(self) -> float | None:
        if self.live is None or self.other is None:
            return None
        return round(self.other - self.live, 4)


@dataclass(frozen=True)
class EventRow:
    stored: Row
    changes: list[Row]
    broken: str | None


@dataclass
class RelationshipPage:
    relationship_id: str
    auditor: bool
    figures: Figures
    chain: Chain
    as_of: datetime | None
    policy: str | None
    live_policy: str
    policies: list[str]
    first_day: str | None
    last_day: str | None
    notes: list[str]
    late: int = 0
    chart: TrustChart = EMPTY_CHART
    bars: list[Bar] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)
    refused: str | None = None
    differences: list[Difference] | None = None
    events: list[EventRow] | None = None
    page: int = 1
    pages: int = 1
    events_total: int = 0

    @property
    def replayed(self) -> bool:
        return self.refused is None and (self.as_of is not None or self.policy is not None)


def relationship_page(
    service: LedgerService,
    relationship_id: str,
    *,
    auditor: bool,
    as_of: datetime | None,
    policy: str | None,
    page: int,
) -> RelationshipPage:
    """Everything the page shows (raises NotFound for an unknown relationship or policy)."""
    live = Figures(
        service.standing(relationship_id),
        service.trust_history(relationship_id),
        service.phase_history(relationship_id),
    )
    breaks: dict[int, str] = {}
    for broken in service.verify(relationship_id).breaks:
        breaks[broken.version] = "; ".join(
            filter(None, [breaks.get(broken.version), broken.problem])
        )
    known = {entry["version"]: entry for entry in service.policies()}
    live_policy = next(name for name, entry in known.items() if entry["live"])
    if policy is not None:
        service.policy(policy)  # NotFound, naming the live one, for a policy it does not know
    everything: list[Row] = service.events(relationship_id, offset=0, limit=sys.maxsize)["items"]
    days = sorted(one["interaction"]["occurred_at"][:10] for one in everything)
    found = RelationshipPage(
        relationship_id=relationship_id,
        auditor=auditor,
        figures=live,
        chain=Chain(breaks),
        as_of=as_of,
        policy=policy,
        live_policy=live_policy,
        policies=list(known),
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
        notes=service.notes().lines(),
    )
    lines = {"read models": live.trust}
    if as_of is not None or policy is not None:
        lines = _replay_into(found, service)
    shown = everything
    if found.replayed and as_of is not None:
        shown = [one for one in everything if moment(one["interaction"]["occurred_at"]) <= as_of]
    found.late = sum(1 for one in shown if one["late"])
    standing = found.figures.standing
    rules = known.get(standing.get("policy", live_policy), known[live_policy])["rules"]
    cap = rules["trust"]["breach"]["credibility_cap"] if standing.get("credibility_lost") else None
    end = as_of if found.replayed else None
    found.chart = trust_chart(lines, found.figures.phases, credibility_cap=cap, end=end)
    found.bars = fairness_bars(standing["fairness"]) if "fairness" in standing else []
    found.cycles = phase_cycles(found.figures.phases)
    if auditor:
        _page_events(found, shown, page)
    return found


def _replay_into(found: RelationshipPage, service: LedgerService) -> dict[str, list[Row]]:
    """Replace the read models' figures by the replay's (or say why it was refused);
    the trust lines to draw."""
    found.refused = _refusal(found.auditor, found.chain)
    if found.refused is not None:
        return {"read models": found.figures.trust}
    chosen = found.policy or found.live_policy
    rid, as_of = found.relationship_id, found.as_of
    try:
        figures = _replayed(service, rid, as_of, chosen)
        base = None if found.policy is None else _replayed(service, rid, as_of, found.live_policy)
    except Unverified as error:
        found.refused = f"the replay was refused: {error}"
        return {"read models": found.figures.trust}
    found.figures = figures
    if base is None:
        return {f"replay under {chosen}": figures.trust}
    found.differences = _differences(base.trust, figures.trust)
    return {f"live policy {found.live_policy}": base.trust, f"policy {chosen}": figures.trust}


def _refusal(auditor: bool, chain: Chain) -> str | None:
    if not auditor:
        return "as-of and policy views replay the stored events: they need an auditor key"
    if not chain.intact:
        return (
            f"the hash chain is broken at #{chain.first_break}: replays of this "
            "relationship are refused until it is investigated"
        )
    return None


def _replayed(
    service: LedgerService, relationship_id: str, as_of: datetime | None, policy: str
) -> Figures:
    found = service.replay_histories(relationship_id, as_of=as_of, policy_name=policy)
    return Figures(found["standing"], found["trust_changes"], found["phase_changes"])


def _after_each_event(rows: list[Row]) -> dict[str, Row]:
    """The last trust change of each event (in recorded order)."""
    return {row["event_id"]: row for row in rows}


def _differences(live: list[Row], other: list[Row]) -> list[Difference]:
    """Trust after each event that moved it under either policy."""
    left, right = _after_each_event(live), _after_each_event(other)
    order = list(dict.fromkeys([*left, *right]))
    return [
        Difference(
            event,
            (left.get(event) or right[event])["occurred_at"],
            left[event]["after"] if event in left else None,
            right[event]["after"] if event in right else None,
        )
        for event in order
    ]


def _page_events(found: RelationshipPage, stored: list[Row], page: int) -> None:
    changes: dict[str, list[Row]] = {}
    for row in found.figures.trust:
        changes.setdefault(row["event_id"], []).append(row)
    found.events_total = len(stored)
    found.pages = max(1, -(-len(stored) // EVENTS_PER_PAGE))
    found.page = min(max(1, page), found.pages)
    start = (found.page - 1) * EVENTS_PER_PAGE
    found.events = [
        EventRow(
            one,
            changes.get(one["interaction"]["event_id"], []),
            found.chain.breaks.get(one["version"]),
        )
        for one in stored[start : start + EVENTS_PER_PAGE]
    ]
