"""A fold's working state as JSON-ready data, so a projection can resume a fold.

A read model that follows the log must not refold a relationship from its first
event each time one more arrives. It keeps this state next to the figures and
continues from it. Every value survives a JSON round trip exactly: money as
decimal text, trust as a float (JSON keeps it bit for bit), times as `datetime`s
that the caller's JSON encoder writes as ISO 8601 with their offset (orjson does,
natively and fast) and `load_state` reads back; so a resumed fold gives the same
figures as a fresh one.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.errors import PolicyError
from domain.fold.fairness import Ledger
from domain.fold.records import Connection, Phase
from domain.fold.scorer import Scorer
from domain.policy import Policy

FORMAT = 3
"""The current layout: one flat JSON array (see `dump_state`). Format 2 (the same array
without currency and first event time) and format 1 (an object with named keys) are
still read, so read models written before stay resumable."""

_PHASES = {phase.value: phase for phase in Phase}
_CONNECTIONS = {connection.value: connection for connection in Connection}
_TOTALS = (
    "supplier_contributed",
    "supplier_received",
    "customer_contributed",
    "customer_received",
    "value_gap",
)
_SIZE = 22
"""Fixed items both array formats share, from the format to the totals."""
_EXTRA = {2: 0, 3: 2}
"""Items after the shared ones and before the volume: format 3's currency and first
event time."""


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def dump_state(scorer: Scorer) -> list[Any]:
    """What `load_state` needs to continue this fold (not the histories already taken).

    Format 3 is a flat array, the items in a fixed order (a projection dumps and loads
    one per relationship it touches, so names for each value cost more than they tell):
    format, policy, trust, credibility_lost, phase, cycle, cycle_started, successes,
    agreement_seen, clock, connection, open_disagreements, events, late_events,
    supplier, customer, retracted, the five totals (`_TOTALS`, as decimal text),
    currency, first_event_at, then the volume's count and first_at, then its recent
    amounts as pairs of items (time, decimal text), oldest first.
    """
    volume, totals, parties = scorer.volume, scorer.totals, scorer.parties
    state: list[Any] = [
        FORMAT,
        scorer.policy.version,
        scorer.trust,
        scorer.credibility_lost,
        None if scorer.phase is None else scorer.phase.value,
        scorer.cycle,
        scorer.cycle_started,
        scorer.successes,
        scorer.agreement_seen,
        scorer.clock,
        scorer.connection.value,
        scorer.open_disagreements,
        scorer.events,
        scorer.late_events,
        None if parties is None else parties[0],
        None if parties is None else parties[1],
        scorer.retracted,
        str(totals.supplier_contributed),
        str(totals.supplier_received),
        str(totals.customer_contributed),
        str(totals.customer_received),
        str(totals.value_gap),
        scorer.currency,
        scorer.first_event_at,
        volume.count,
        volume.first_at,
    ]
    for at, amount in volume.recent:
        state.append(at)
        state.append(str(amount))
    return state


def load_state(state: list[Any] | dict[str, Any], policy: Policy) -> Scorer:
    """A scorer that continues exactly where the dumped one stopped (format 2, or the
    format 1 object older versions wrote).

    Refuses a state made under another policy version: mixing two policies in one
    fold would produce figures neither policy gives.
    """
    if isinstance(state, dict):
        return _load_v1(state, policy)
    if not isinstance(state, list) or not state or state[0] not in _EXTRA:
        found = state[0] if isinstance(state, list) and state else state
        raise PolicyError(f"fold state format {found!r} is not {FORMAT}")
    _check_policy(state[1], policy)
    scorer = Scorer(policy)
    (
        _,
        _,
        scorer.trust,
        scorer.credibility_lost,
        phase,
        scorer.cycle,
        cycle_started,
        scorer.successes,
        scorer.agreement_seen,
        clock,
        connection,
        scorer.open_disagreements,
        scorer.events,
        scorer.late_events,
        supplier,
        customer,
        scorer.retracted,
        *totals,
    ) = state[:_SIZE]
    scorer.phase = None if phase is None else _PHASES[phase]
    scorer.cycle_started = None if cycle_started is None else datetime.fromisoformat(cycle_started)
    scorer.clock = None if clock is None else datetime.fromisoformat(clock)
    scorer.connection = _CONNECTIONS[connection]
    scorer.parties = None if supplier is None else (supplier, customer)
    scorer.totals = Ledger(
        Decimal(totals[0]),
        Decimal(totals[1]),
        Decimal(totals[2]),
        Decimal(totals[3]),
        Decimal(totals[4]),
    )
    at = _SIZE + _EXTRA[state[0]]
    if at > _SIZE:
        scorer.currency = state[_SIZE]
        scorer.first_event_at = _parse_time(state[_SIZE + 1])
    volume = scorer.volume
    volume.count = state[at]
    volume.first_at = _parse_time(state[at + 1])
    recent = state[at + 2 :]
    if len(recent) % 2:
        raise ValueError("fold state: an unpaired recent amount")
    volume.recent.extend(
        (datetime.fromisoformat(at), Decimal(amount))
        for at, amount in zip(recent[::2], recent[1::2], strict=True)
    )
    return scorer


def _check_policy(version: Any, policy: Policy) -> None:
    if version != policy.version:
        raise PolicyError(
            f"this fold state was made under policy {version!r}, not "
            f"{policy.version!r}; rebuild the read models to change policy"
        )


def _load_v1(state: dict[str, Any], policy: Policy) -> Scorer:
    """Format 1: one object with named keys."""
    if state.get("format") != 1:
        raise PolicyError(f"fold state format {state.get('format')!r} is not {FORMAT}")
    _check_policy(state["policy"], policy)
    scorer = Scorer(policy)
    scorer.trust = state["trust"]
    scorer.credibility_lost = state["credibility_lost"]
    scorer.phase = None if state["phase"] is None else _PHASES[state["phase"]]
    scorer.cycle = state["cycle"]
    scorer.cycle_started = _parse_time(state["cycle_started"])
    scorer.successes = state["successes"]
    scorer.agreement_seen = state["agreement_seen"]
    scorer.clock = _parse_time(state["clock"])
    scorer.connection = _CONNECTIONS[state["connection"]]
    scorer.open_disagreements = state["open_disagreements"]
    scorer.events = state["events"]
    scorer.late_events = state["late_events"]
    parties = state.get("parties")  # absent from states written before parties were kept
    scorer.parties = None if parties is None else (parties[0], parties[1])
    scorer.retracted = state.get("retracted", 0)  # absent before retractions existed
    scorer.totals = Ledger(*(Decimal(text) for text in state["totals"]))
    volume = state["volume"]
    scorer.volume.count = volume["count"]
    scorer.volume.first_at = _parse_time(volume["first_at"])
    scorer.volume.recent.extend(
        (datetime.fromisoformat(at), Decimal(amount)) for at, amount in volume["recent"]
    )
    return scorer
