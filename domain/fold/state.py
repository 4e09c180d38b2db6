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

FORMAT = 1

_PHASES = {phase.value: phase for phase in Phase}
_CONNECTIONS = {connection.value: connection for connection in Connection}
_TOTALS = (
    "supplier_contributed",
    "supplier_received",
    "customer_contributed",
    "customer_received",
    "value_gap",
)


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def dump_state(scorer: Scorer) -> dict[str, Any]:
    """What `load_state` needs to continue this fold (not the histories already taken)."""
    volume = scorer.volume
    return {
        "format": FORMAT,
        "policy": scorer.policy.version,
        "trust": scorer.trust,
        "credibility_lost": scorer.credibility_lost,
        "phase": None if scorer.phase is None else scorer.phase.value,
        "cycle": scorer.cycle,
        "cycle_started": scorer.cycle_started,
        "successes": scorer.successes,
        "agreement_seen": scorer.agreement_seen,
        "clock": scorer.clock,
        "connection": scorer.connection.value,
        "open_disagreements": scorer.open_disagreements,
        "events": scorer.events,
        "late_events": scorer.late_events,
        "parties": None if scorer.parties is None else list(scorer.parties),
        "retracted": scorer.retracted,
        "totals": [str(getattr(scorer.totals, name)) for name in _TOTALS],
        "volume": {
            "count": volume.count,
            "first_at": volume.first_at,
            "recent": [[at, str(amount)] for at, amount in volume.recent],
        },
    }


def load_state(state: dict[str, Any], policy: Policy) -> Scorer:
    """A scorer that continues exactly where the dumped one stopped.

    Refuses a state made under another policy version: mixing two policies in one
    fold would produce figures neither policy gives.
    """
    if state.get("format") != FORMAT:
        raise PolicyError(f"fold state format {state.get('format')!r} is not {FORMAT}")
    if state["policy"] != policy.version:
        raise PolicyError(
            f"this fold state was made under policy {state['policy']!r}, not "
            f"{policy.version!r}; rebuild the read models to change policy"
        )
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
