"""Fold results as table rows, and rows back as the JSON shapes of `views`.

A summary row keeps the unrounded figures (so sorting and digests are exact)
and the fold state to resume from; the views round only at the edge, exactly as
a replay does, so `show` from the read models and `replay` print the same object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from domain.fold.fairness import Fairness, FairnessStatus, Ledger
from domain.fold.records import Connection, Phase, PhaseChange, Standing, TrustChange
from domain.fold.scorer import Scorer
from domain.fold.stage import Stage
from domain.fold.state import dump_state
from projections.views import phase_change_view, standing_view, trust_change_view, when

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
        *(standing.parties or (None, None)),
        standing.retracted,
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
    """The object `show --json` promises: the row read back into a `Standing` and shown
    by `views`, so the read models and a replay share one definition of that shape."""
    last = row["last_event_at"]
    standing = Standing(
        phase=None if row["phase"] is None else Phase(row["phase"]),
        stage=Stage(row["stage"]),
        connection=Connection(row["connection"]),
        trust=row["trust"],
        credibility_lost=bool(row["credibility_lost"]),
        cycle=row["cycle"],
        events=row["events"],
        late_events=row["late_events"],
        open_disagreements=row["open_disagreements"],
        fairness=Fairness(
            index=Decimal(row["fairness_index"]),
            status=FairnessStatus(row["fairness_status"]),
            totals=Ledger(
                supplier_contributed=Decimal(row["supplier_contributed"]),
                supplier_received=Decimal(row["supplier_received"]),
                customer_contributed=Decimal(row["customer_contributed"]),
                customer_received=Decimal(row["customer_received"]),
                value_gap=Decimal(row["value_gap"]),
            ),
        ),
        last_event_at=None if last is None else datetime.fromisoformat(last),
        as_of=None,
        policy=row["policy"],
        parties=None if row["supplier"] is None else (row["supplier"], row["customer"]),
        retracted=row["retracted"] or 0,  # null in rows projected before retractions existed
    )
    return standing_view(row["relationship_id"], standing)


def trust_change_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    change = TrustChange(
        event_id=row["event_id"],
        occurred_at=datetime.fromisoformat(row["occurred_at"]),
        rule=row["rule"],
        before=row["trust_before"],
        after=row["trust_after"],
        policy=row["policy"],
    )
    return trust_change_view(change)


def phase_change_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    change = PhaseChange(
        event_id=row["event_id"],
        occurred_at=datetime.fromisoformat(row["occurred_at"]),
        from_phase=None if row["from_phase"] is None else Phase(row["from_phase"]),
        to_phase=Phase(row["to_phase"]),
        rule=row["rule"],
    )
    return phase_change_view(change)
