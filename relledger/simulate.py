"""Realistic, reproducible interaction streams for the demo and the benchmarks.

Each relationship follows a persona (a loyal customer, a quarrelsome one, a fraud,
a churn, a revival...) that weights which interactions happen and how they turn
out. Streams are interleaved by time, with a few redeliveries, late arrivals and
corrections (retractions of an interaction recorded by mistake), as a real producer
would send them. What each kind carries comes from its row in `domain.kinds`.
Same seed, same stream.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.contract import IntakeLimits
from domain.kinds import KINDS, Kind, Money, Need

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
RETRACTED_SHARE = 0.004
"""How often an interaction is taken back by its producer soon after (a mistake)."""
SIMULATED_HISTORY = IntakeLimits(max_future_skew=timedelta(days=100 * 365))
"""Intake limits for recording a simulated history: its stories start in 2025 and run
for years, past today, which is no clock drift."""


@dataclass(frozen=True)
class Persona:
    name: str
    kinds: dict[str, float]
    success: float  # chance a transaction or service meets expectations
    exceed: float  # chance it exceeds them, given success
    mean_gap_days: float
    perceived: tuple[float, float] = (1.0, 1.0)  # perceived/amount range when stated
    ending: str | None = None  # "breach", "termination", "revival"


_BASE = {
    "purchase": 10.0,
    "service": 2.0,
    "communication": 2.0,
    "promise_kept": 1.0,
    "account_update": 0.7,
    "invitation": 0.5,
}

PERSONAS = [
    Persona(
        "loyal", {**_BASE, "agreement": 0.6, "collaboration": 1.0, "referral": 0.6}, 0.95, 0.3, 9
    ),
    Persona("steady", {**_BASE, "agreement": 0.3, "collaboration": 0.4}, 0.9, 0.15, 12),
    Persona(
        "quarrelsome",
        {**_BASE, "disagreement": 2.0, "resolution": 1.5, "promise_broken": 0.8},
        0.75,
        0.1,
        10,
    ),
    Persona("fraud", {**_BASE, "agreement": 0.3}, 0.9, 0.2, 10, ending="breach"),
    Persona("churn", {**_BASE, "disagreement": 1.0}, 0.6, 0.05, 14, ending="termination"),
    Persona("dormant", dict(_BASE), 0.85, 0.1, 45),
    Persona("revival", {**_BASE, "resolution": 0.5}, 0.8, 0.1, 12, ending="revival"),
    Persona("unfair", dict(_BASE), 0.85, 0.0, 11, perceived=(0.5, 0.85)),
    Persona(
        "generous",
        {**_BASE, "contribution": 0.5, "reward": 0.5},
        0.9,
        0.4,
        11,
        perceived=(1.1, 1.6),
    ),
]


def _money(value: float) -> str:
    return str(Decimal(f"{value:.2f}"))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def relationship_stream(
    rng: random.Random, relationship_id: str, persona: Persona, count: int, source: str = "crm"
) -> list[dict[str, Any]]:
    """One relationship's interactions in the order they happened."""
    at = START + timedelta(days=rng.uniform(0, 60), minutes=rng.randrange(600))
    customer = relationship_id.rsplit("/", 1)[-1]
    kinds = list(persona.kinds)
    weights = list(persona.kinds.values())
    ticket = rng.choice([40.0, 80.0, 150.0, 400.0, 1200.0])
    events: list[dict[str, Any]] = []
    ending_at = int(count * rng.uniform(0.55, 0.8)) if persona.ending else -1
    for n in range(count):
        event: dict[str, Any] = {
            "event_id": f"{relationship_id}#{n}",
            "source": source,
            "relationship_id": relationship_id,
            "occurred_at": _stamp(at),
            "actor": "customer",
        }
        if n == 0:
            event["kind"] = "contact"
            event["parties"] = {"supplier": "acme", "customer": customer}
        elif n == 1:
            event["kind"] = "trial"
        elif n == ending_at:
            event["kind"] = {"breach": "breach", "termination": "termination"}.get(
                persona.ending or "", "termination"
            )
        elif n == ending_at + 1 and persona.ending == "revival":
            event["kind"] = "reactivation"
        else:
            event["kind"] = rng.choices(kinds, weights)[0]
        _fill(rng, event, persona, ticket)
        events.append(event)
        if n > 1 and rng.random() < RETRACTED_SHARE:
            events.append(_retraction(event, at + timedelta(hours=rng.uniform(1, 48))))
        at += timedelta(days=rng.expovariate(1 / persona.mean_gap_days), minutes=rng.randrange(60))
    return events


def _retraction(mistake: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "event_id": f"{mistake['event_id']}-retracted",
        "source": mistake["source"],
        "relationship_id": mistake["relationship_id"],
        "occurred_at": _stamp(at),
        "kind": Kind.RETRACTION.value,
        "actor": "supplier",
        "ref": mistake["event_id"],
        "note": "recorded by mistake",
    }


def _fill(rng: random.Random, event: dict[str, Any], persona: Persona, ticket: float) -> None:
    """The fields the kind's row requires, drawn as the persona would have them."""
    kind = Kind(event["kind"])
    rule = KINDS[kind]
    if rule.outcome is Need.REQUIRED:
        if rng.random() < persona.success:
            event["outcome"] = "exceeded" if rng.random() < persona.exceed else "met"
        else:
            event["outcome"] = "failed"
    if rule.amount is Need.REQUIRED:
        amount = ticket * rng.uniform(0.6, 1.5) * (0.5 if kind is Kind.TRIAL else 1.0)
        event["amount"] = _money(amount)
        event["currency"] = "EUR"
        stated = kind is Kind.PURCHASE and persona.perceived != (1.0, 1.0)
        if stated and event["outcome"] != "failed":
            event["perceived_value"] = _money(amount * rng.uniform(*persona.perceived))
        if rule.money in (Money.CONTRIBUTED, Money.RECEIVED):
            event["actor"] = rng.choice(["supplier", "customer"])
    if rule.ref is Need.REQUIRED:
        event["ref"] = f"{event['event_id']}-promise"
    if rule.mode is Need.REQUIRED:
        event["mode"] = rng.choice(["unilateral", "bilateral"])
    if kind in (Kind.COMMUNICATION, Kind.INVITATION, Kind.COLLABORATION):
        event["actor"] = rng.choice(["supplier", "customer"])


def simulate(
    relationships: int, events_per_relationship: int, *, seed: int = 7, prefix: str = "demo"
) -> Iterator[dict[str, Any]]:
    """Interleaved interactions of many relationships, ~1% redelivered and ~1% late (never
    an interaction that is retracted: its retraction would arrive first and be refused)."""
    rng = random.Random(seed)
    streams = []
    for index in range(relationships):
        persona = PERSONAS[index % len(PERSONAS)]
        count = max(2, int(rng.gauss(events_per_relationship, events_per_relationship / 4)))
        name = f"{prefix}/{persona.name}-{index:05d}"
        streams.append(relationship_stream(rng, name, persona, count))
    merged = heapq.merge(*streams, key=lambda event: event["occurred_at"])
    retracted = {
        event["ref"] for stream in streams for event in stream if event["kind"] == "retraction"
    }
    held: dict[str, dict[str, Any]] = {}
    for event in merged:
        relationship_id = event["relationship_id"]
        if relationship_id in held:
            yield event
            yield held.pop(relationship_id)  # arrives after a later one: late
            continue
        first = event["event_id"].endswith("#0")
        if rng.random() < 0.01 and not first and event["event_id"] not in retracted:
            held[relationship_id] = event
            continue
        yield event
        if rng.random() < 0.01:
            yield event  # a redelivery
    yield from held.values()
