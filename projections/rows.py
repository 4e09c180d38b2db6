"""Fold results as table rows, and rows back as the JSON shapes of `views`.

A summary row keeps the unrounded figures (so sorting and digests are exact)
and the fold state to resume from; the views round only at the edge, exactly as
a replay does, so `show` from the read models and `replay` print the same object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from domain.fold.records import PhaseChange, TrustChange
from domain.fold.scorer import Scorer
from domain.fold.state import dump_state
from projections.views import number, when

Row = tuple[Any, ...]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(moment: datetime) -> int:
    """Microseconds since 1970 UTC: exact, and sorts and compares as time does everywhere."""
    return (moment - _EPOCH) // _MICROSECOND


def summary_row(relationship_id: str, scorer: Scorer, position: int) -> Row:
    standing = scorer.standing()
    totals = standing.fairness.totals
    last = standing.last_event_at
    return (
        relationship_id,
        None if standing.phase is None else standing.phase.value,
        standing.stage.value,
        standing.connection.value,
        standing.trust,
        int(standing.credibility_lost),
        standing.cycle,
        standing.events,
        standing.late_events,
        standing.open_disagreements,
        None if last is None else when(last),
        None if last is None else epoch_us(last),
        float(standing.fairness.index),
        standing.fairness.status.value,
        str(totals.value_gap),
        str(totals.supplier_contributed),
        str(totals.supplier_received),
        str(totals.customer_contributed),
        str(totals.customer_received),
        standing.policy,
        position,
        orjson.dumps(dump_state(scorer)).decode(),
    )


def trust_rows(relationship_id: str, position: int, changes: Sequence[TrustChange]) -> list[Row]:
    return [
        (
            relationship_id,
            position,
            n,
            change.event_id,
            when(change.occurred_at),
            epoch_us(change.occurred_at),
            change.rule,
            change.before,
            change.after,
            change.delta,
            change.policy,
        )
        for n, change in enumerate(changes)
    ]


def phase_rows(
    relationship_id: str, position: int, changes: Sequence[PhaseChange], policy: str
) -> list[Row]:
    return [
        (
            relationship_id,
            position,
            n,
            change.event_id,
            when(change.occurred_at),
            epoch_us(change.occurred_at),
            None if change.from_phase is None else change.from_phase.value,
            change.to_phase.value,
            change.rule,
            policy,
        )
        for n, change in enumerate(changes)
    ]


def standing_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The object `show --json` promises (the same keys and rounding as a replay)."""
    return {
        "relationship_id": row["relationship_id"],
        "phase": row["phase"],
        "stage": row["stage"],
        "connection": row["connection"],
        "trust": number(row["trust"]),
        "credibility_lost": bool(row["credibility_lost"]),
        "cycle": row["cycle"],
        "events": row["events"],
        "fairness": {
            "index": number(row["fairness_index"]),
            "status": row["fairness_status"],
            "value_gap": row["value_gap"],
            "supplier": {
                "contributed": row["supplier_contributed"],
                "received": row["supplier_received"],
            },
            "customer": {
                "contributed": row["customer_contributed"],
                "received": row["customer_received"],
            },
        },
        "policy": row["policy"],
    }


def trust_change_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "event_id": row["event_id"],
        "occurred_at": row["occurred_at"],
        "rule": row["rule"],
        "before": number(row["trust_before"]),
        "after": number(row["trust_after"]),
        "delta": number(row["delta"]),
        "policy": row["policy"],
    }


def phase_change_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "event_id": row["event_id"],
        "occurred_at": row["occurred_at"],
        "from": row["from_phase"],
        "to": row["to_phase"],
        "rule": row["rule"],
    }
