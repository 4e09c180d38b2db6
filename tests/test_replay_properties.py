"""Replaying from the store equals folding what was accepted, however it arrived.

Random interleaved streams over a few relationships, with redeliveries and late
events, are recorded in random batch sizes through the real store; the replay of each
relationship must equal a pure fold of its accepted interactions in arrival order.
Which interactions are accepted is worked out here from the stream itself (the first
delivery of each event, late when it is dated before an earlier one of its
relationship), not taken from what the store answered.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.contract import Interaction, parse_interaction
from domain.fold.facts import Fact
from domain.fold.scorer import replay
from domain.ledger import Outcome, RelationshipLedger
from domain.relationship import Recorded
from projections.replay import replay_relationship
from service.policies import load_policy

START = datetime(2025, 1, 6, tzinfo=UTC)
KINDS = [
    "purchase",
    "trial",
    "service",
    "communication",
    "disagreement",
    "resolution",
    "agreement",
    "collaboration",
    "breach",
    "termination",
    "reactivation",
    "reward",
]

step = st.fixed_dictionaries(
    {
        "relationship": st.integers(0, 2),
        "kind": st.sampled_from(KINDS),
        "outcome": st.sampled_from(["met", "exceeded", "failed"]),
        "amount": st.integers(1, 50_000).map(lambda cents: f"{cents / 100:.2f}"),
        "days": st.integers(-40, 120),
        "redeliver": st.booleans(),
    }
)


def _stream(steps: list[dict], prefix: str) -> list[Interaction]:
    items: list[Interaction] = []
    clocks = [START, START, START]
    for n, s in enumerate(steps):
        r = s["relationship"]
        clocks[r] = clocks[r] + timedelta(days=s["days"])
        raw: dict = {
            "event_id": f"{prefix}-e{n}",  # unique in the store shared by examples
            "source": "prop",
            "relationship_id": f"{prefix}/{r}",
            "occurred_at": clocks[r].isoformat(),
            "kind": s["kind"],
            "actor": "customer",
            "parties": {"supplier": "acme", "customer": str(r)},
        }
        if s["kind"] in ("purchase", "trial", "service"):
            raw["outcome"] = s["outcome"]
        if s["kind"] in ("purchase", "trial", "reward"):
            raw["amount"], raw["currency"] = s["amount"], "EUR"
        if s["kind"] == "termination":
            raw["mode"] = "bilateral"
        items.append(parse_interaction(raw, received_at=clocks[r]))  # recorded as it happens
        if s["redeliver"]:
            items.append(items[-1])
    return items


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=1, max_size=60), batch=st.integers(1, 25))
def test_store_replay_equals_pure_fold(
    ledger: RelationshipLedger, steps: list[dict], batch: int
) -> None:
    prefix = uuid.uuid4().hex  # a fresh set of relationships in the shared store
    items = _stream(steps, prefix)
    outcomes: list[Outcome] = []
    for start in range(0, len(items), batch):
        outcomes.extend(ledger.record_batch(items[start : start + batch]))

    expected: list[Recorded] = []
    accepted: dict[str, list[Fact]] = {}
    delivered: set[str] = set()
    for item in items:
        if item.event_id in delivered:  # a redelivery: the same event again
            expected.append(Recorded.DUPLICATE)
            continue
        delivered.add(item.event_id)
        earlier = accepted.setdefault(item.relationship_id, [])
        late = any(item.occurred_at < fact.occurred_at for fact in earlier)
        expected.append(Recorded.LATE if late else Recorded.RECORDED)
        earlier.append(Fact.from_interaction(item))
    assert outcomes == expected

    policy = load_policy()
    for relationship_id, facts in accepted.items():
        stored = replay_relationship(ledger, relationship_id, policy)
        pure = replay(facts, policy)
        assert stored.standing == pure.standing()
        assert stored.standing.events == len(facts)
        assert stored.scorer.trust_changes == pure.trust_changes
        assert stored.scorer.phase_changes == pure.phase_changes
