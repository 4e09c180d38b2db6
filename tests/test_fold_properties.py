"""Properties of the fold over random, valid interaction streams (policy v1).

The streams use every kind, outcome and actor, Decimal amounts, timestamps that mostly
move forward (sometimes by a dormant gap) and now and then a late event. About half
of them leave out breaches, failures and terminations so that long climbs to
expansion and commitment happen too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stories import load_v1

from domain.contract import TRANSACTIONS, Actor, Kind, Outcome
from domain.fold.facts import Fact
from domain.fold.records import Phase
from domain.fold.scorer import Scorer, replay
from domain.policy import Policy

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
DAY = 86400

FEW = settings(max_examples=100, deadline=None)

_CALM_KINDS = [
    *["purchase"] * 8,
    *["trial"] * 2,
    *["service"] * 2,
    "contact",
    "communication",
    "agreement",
    "promise",
    "promise_kept",
    "disagreement",
    "resolution",
    "collaboration",
    "referral",
    "contribution",
    "reward",
    "account_update",
    "invitation",
    "reactivation",
]
_ROUGH_KINDS = [*_CALM_KINDS, "promise_broken", "breach", "termination", "disagreement"]

_cents = st.integers(1, 10_000_000)  # amounts 0.01 .. 100000.00
_perceived_mills = st.none() | st.integers(0, 150_000_000)  # 0.000 .. 150000.000
# Days after the clock: mostly busy, sometimes just under or over the 30-day dormancy
# threshold, rarely a long silence; a negative step is a late event that many days back.
_steps = st.sampled_from(
    [*[0, 1, 1, 2, 2, 3, 3, 5, 7, 10] * 3, 14, 20, 29, 30, 31, 45, 200, -1, -3, -30, -90]
)
_seconds = st.integers(0, DAY - 1)
_actors = st.sampled_from(Actor)


@st.composite
def fact_streams(draw: st.DrawFn, max_size: int = 60) -> list[Fact]:
    rough = draw(st.booleans())
    kinds = st.sampled_from([Kind(name) for name in (_ROUGH_KINDS if rough else _CALM_KINDS)])
    outcomes = st.sampled_from(
        [Outcome.MET, Outcome.EXCEEDED, Outcome.EXCEEDED, Outcome.FAILED]
        if rough
        else [Outcome.MET, Outcome.EXCEEDED]
    )
    size = draw(st.integers(0, max_size))  # uniform: st.lists would favour short streams
    clock = START
    facts: list[Fact] = []
    for number in range(size):
        kind = draw(kinds)
        step = draw(_steps) if facts else 0
        at = clock + timedelta(days=step, seconds=draw(_seconds))
        clock = max(clock, at)
        amount = perceived = outcome = None
        if kind in TRANSACTIONS or kind in (Kind.CONTRIBUTION, Kind.REWARD):
            amount = Decimal(draw(_cents)).scaleb(-2)
        if kind in TRANSACTIONS:
            mills = draw(_perceived_mills)
            perceived = None if mills is None else Decimal(mills).scaleb(-3)
        if kind in TRANSACTIONS or kind is Kind.SERVICE:
            outcome = draw(outcomes)
        facts.append(
            Fact(
                event_id=f"e{number + 1}",
                occurred_at=at,
                kind=kind,
                actor=draw(_actors),
                amount=amount,
                perceived_value=perceived,
                outcome=outcome,
            )
        )
    return facts


@pytest.fixture(scope="module")
def v1_policy() -> Policy:
    return load_v1()


# (1) ---------------------------------------------------------------------------------------


@FEW
@given(facts=fact_streams())
def test_a_fold_is_deterministic(facts: list[Fact], v1_policy: Policy) -> None:
    policy = v1_policy
    first = replay(facts, policy)
    second = replay(list(facts), policy)
    assert first.standing() == second.standing()
    assert first.trust_changes == second.trust_changes
    assert first.phase_changes == second.phase_changes


# (2) ---------------------------------------------------------------------------------------


@FEW
@given(facts=fact_streams(), data=st.data())
def test_incremental_fold_equals_replay(
    facts: list[Fact], data: st.DataObject, v1_policy: Policy
) -> None:
    policy = v1_policy
    split = data.draw(st.integers(0, len(facts)), label="split")
    scorer = Scorer(policy).apply_all(facts[:split])
    assert scorer.standing() == replay(facts[:split], policy).standing()

    scorer.apply_all(facts[split:])
    whole = replay(facts, policy)
    assert scorer.standing() == whole.standing()
    assert scorer.trust_changes == whole.trust_changes
    assert scorer.phase_changes == whole.phase_changes
    if facts:
        days = data.draw(st.integers(0, 400), label="as_of days after the last event")
        later = max(fact.occurred_at for fact in facts) + timedelta(days=days)
        assert scorer.standing(later) == whole.standing(later)


# (3) ---------------------------------------------------------------------------------------


@FEW
@given(facts=fact_streams())
def test_trust_stays_in_bounds_and_capped_after_a_breach(
    facts: list[Fact], v1_policy: Policy
) -> None:
    policy = v1_policy
    cap = policy.trust.breach.credibility_cap
    scorer = Scorer(policy)
    breached = False
    for fact in facts:
        scorer.apply(fact)
        breached = breached or fact.kind is Kind.BREACH
        assert 0.0 <= scorer.trust <= 100.0
        if breached:
            assert scorer.trust <= cap
        assert scorer.standing().credibility_lost is breached
    for change in scorer.trust_changes:
        assert 0.0 <= change.before <= 100.0
        assert 0.0 <= change.after <= 100.0


# (4) ---------------------------------------------------------------------------------------

_EVIDENCE = {"met", "exceeded", "failed"} | {kind.value for kind in Kind}


@FEW
@given(facts=fact_streams())
def test_trust_changes_are_non_zero_and_chain(facts: list[Fact], v1_policy: Policy) -> None:
    policy = v1_policy
    scorer = replay(facts, policy)
    changes = scorer.trust_changes
    for change in changes:
        assert change.delta != 0
        assert change.policy == "v1"
        kind, _, evidence = change.rule.partition(":")
        assert change.rule in ("dormancy", "breach") or (
            kind in ("gain", "loss") and evidence in _EVIDENCE
        )
    for earlier, later in pairwise(changes):
        assert later.before == earlier.after
    assert (changes[0].before if changes else scorer.trust) == policy.trust.initial
    assert (changes[-1].after if changes else policy.trust.initial) == scorer.standing().trust
    # changes come in the order of the events that caused them
    position = {fact.event_id: index for index, fact in enumerate(facts)}
    order = [position[change.event_id] for change in changes]
    assert order == sorted(order)
    for change in changes:
        assert change.occurred_at == facts[position[change.event_id]].occurred_at


# (5) ---------------------------------------------------------------------------------------

_MOVES = {
    "first_event": ({None}, Phase.AWARENESS),
    "first_transaction": ({None, Phase.AWARENESS}, Phase.EXPLORATION),
    "proven_in_exploration": ({Phase.EXPLORATION}, Phase.EXPANSION),
    "failed_exploration": ({Phase.EXPLORATION}, Phase.DISSOLUTION),
    "committed": ({Phase.EXPANSION}, Phase.COMMITMENT),
    "trust_below_commitment": ({Phase.COMMITMENT}, Phase.EXPANSION),
    "trust_below_expansion": ({Phase.EXPANSION}, Phase.EXPLORATION),
    "termination": (
        {Phase.AWARENESS, Phase.EXPLORATION, Phase.EXPANSION, Phase.COMMITMENT},
        Phase.DISSOLUTION,
    ),
    "breach": (
        {Phase.AWARENESS, Phase.EXPLORATION, Phase.EXPANSION, Phase.COMMITMENT},
        Phase.DISSOLUTION,
    ),
    "revival": ({Phase.DISSOLUTION}, Phase.EXPLORATION),
}


@FEW
@given(facts=fact_streams())
def test_phase_changes_chain(facts: list[Fact], v1_policy: Policy) -> None:
    scorer = replay(facts, v1_policy)
    changes = scorer.phase_changes
    standing = scorer.standing()
    if not facts:
        assert changes == [] and standing.phase is None
        return
    assert changes[0].from_phase is None
    assert all(change.from_phase is not None for change in changes[1:])
    for earlier, later in pairwise(changes):
        assert later.from_phase == earlier.to_phase
    assert changes[-1].to_phase == standing.phase
    for change in changes:
        sources, target = _MOVES[change.rule]
        assert change.from_phase in sources and change.to_phase is target, change
    revivals = sum(change.rule == "revival" for change in changes)
    assert standing.cycle == 1 + revivals


# a few more invariants that cost nothing ---------------------------------------------------


@FEW
@given(facts=fact_streams())
def test_counts_fairness_and_money(facts: list[Fact], v1_policy: Policy) -> None:
    standing = replay(facts, v1_policy).standing()
    assert standing.events == len(facts)
    latest: datetime | None = None
    late = 0
    for fact in facts:
        if latest is not None and fact.occurred_at < latest:
            late += 1
        latest = fact.occurred_at if latest is None else max(latest, fact.occurred_at)
    assert standing.late_events == late
    assert standing.last_event_at == latest
    fairness = standing.fairness
    assert -1 <= fairness.index <= 1
    totals = fairness.totals
    money = [
        totals.supplier_contributed,
        totals.supplier_received,
        totals.customer_contributed,
        totals.customer_received,
        totals.value_gap,
    ]
    assert all(isinstance(value, Decimal) for value in money)
    transactions = [fact for fact in facts if fact.kind in TRANSACTIONS]
    paid = sum((fact.amount or Decimal(0) for fact in transactions), Decimal(0))
    rewarded = sum(
        (
            fact.amount or Decimal(0)
            for fact in facts
            if fact.kind is Kind.REWARD and fact.actor is Actor.CUSTOMER
        ),
        Decimal(0),
    )
    # the customer receives what it perceived plus its rewards; the gap is perceived - paid
    assert totals.value_gap == totals.customer_received - rewarded - paid
