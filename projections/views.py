"""The JSON shapes that `show`, `replay`, `trust-history`, `phase-history` and the
stored-events listing promise, over the CLI and HTTP alike.

A replay answers the standing's shape plus `verified`: whether the relationship's stored
events passed verification before they were folded (an unverified replay is one asked
for as such, to look at a history that fails it).

Trust and the fairness index are numbers rounded to 4 places; money is decimal text.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.fold.fairness import Fairness
from domain.fold.records import PhaseChange, Standing, TrustChange
from domain.stored import StoredInteraction

PLACES = 4


def number(value: float | Decimal) -> float:
    return round(float(value), PLACES)


def when(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def fairness_view(fairness: Fairness) -> dict[str, Any]:
    totals = fairness.totals
    return {
        "index": number(fairness.index),
        "status": fairness.status.value,
        "value_gap": str(totals.value_gap),
        "supplier": {
            "contributed": str(totals.supplier_contributed),
            "received": str(totals.supplier_received),
        },
        "customer": {
            "contributed": str(totals.customer_contributed),
            "received": str(totals.customer_received),
        },
    }


def standing_view(relationship_id: str, standing: Standing) -> dict[str, Any]:
    return {
        "relationship_id": relationship_id,
        "phase": None if standing.phase is None else standing.phase.value,
        "stage": standing.stage.value,
        "connection": standing.connection.value,
        "trust": number(standing.trust),
        "credibility_lost": standing.credibility_lost,
        "cycle": standing.cycle,
        "events": standing.events,
        "late_events": standing.late_events,
        "retracted": standing.retracted,
        "fairness": fairness_view(standing.fairness),
        "policy": standing.policy,
        "parties": None
        if standing.parties is None
        else {"supplier": standing.parties[0], "customer": standing.parties[1]},
        "currency": standing.currency,
        "first_event_at": None
        if standing.first_event_at is None
        else when(standing.first_event_at),
        "last_event_at": None if standing.last_event_at is None else when(standing.last_event_at),
    }


def replay_view(relationship_id: str, standing: Standing, *, verified: bool) -> dict[str, Any]:
    """The standing recomputed from the stored events (`replay --json`): the `show --json`
    shape, and whether the events were verified before they were folded."""
    return {**standing_view(relationship_id, standing), "verified": verified}


def trust_change_view(change: TrustChange) -> dict[str, Any]:
    return {
        "event_id": change.event_id,
        "occurred_at": when(change.occurred_at),
        "rule": change.rule,
        "before": number(change.before),
        "after": number(change.after),
        "delta": number(change.delta),
        "policy": change.policy,
    }


def phase_change_view(change: PhaseChange) -> dict[str, Any]:
    return {
        "event_id": change.event_id,
        "occurred_at": when(change.occurred_at),
        "from": None if change.from_phase is None else change.from_phase.value,
        "to": change.to_phase.value,
        "rule": change.rule,
    }


def stored_interaction_view(stored: StoredInteraction) -> dict[str, Any]:
    """One recorded interaction as the store holds it: its version in the relationship's
    chain, when it was recorded, whether it arrived late, its chain hash, and the
    interaction exactly as it was recorded (canonical, money as decimal text)."""
    return {
        "version": stored.version,
        "recorded_at": when(stored.recorded_at),
        "late": stored.late,
        "chain_hash": stored.chain_hash,
        "interaction": stored.record,
    }
