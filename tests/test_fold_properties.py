"""Properties of the fold over random, valid interaction streams (policy v1).

The streams use every kind, outcome and actor, Decimal amounts, timestamps that mostly
move forward (sometimes by a dormant gap) and now and then a late event. About half
of them leave out breaches, failures and terminations so that long climbs to
expansion and commitment happen too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stories import load_v1

from domain.contract import Actor
from domain.fold.facts import Fact
from domain.fold.records import Phase
from domain.fold.scorer import Scorer, replay
from domain.kinds import TRANSACTIONS, Kind, Outcome
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


# Reference models: the rules of docs/policy.md (policy v1) restated in the plainest way,
# numbers included, sharing nothing with domain/fold but the Fact they read. ----------------

_STRENGTHS = {
    "met": 1.0,
    "exceeded": 2.0,
    "promise_kept": 2.0,
    "referral": 3.0,
    "collaboration": 2.0,
    "resolution": 1.5,
    "agreement": 1.5,
    "communication": 0.5,
    "account_update": 0.25,
    "invitation": 0.25,
}
_SEVERITIES = {"failed": 2.0, "promise_broken": 3.0, "disagreement": 1.0}


def reference_trust(facts: list[Fact]) -> list[tuple[str, str, float]]:
    """Every trust change as (event, rule, trust after), from the table in "Trust"."""
    trust, clock, lost = 30.0, None, False
    changes: list[tuple[str, str, float]] = []

    def move(fact: Fact, rule: str, value: float) -> None:
        nonlocal trust
        value = min(100.0, max(0.0, value))
        if lost:
            value = min(value, 40.0)
        if value != trust:
            trust = value
            changes.append((fact.event_id, rule, value))

    for fact in facts:
        if clock is not None and fact.occurred_at > clock:
            days = (fact.occurred_at - clock).total_seconds() / DAY
            if days > 30 and trust > 30:
                move(fact, "dormancy", trust - (trust - 30) * (1 - 2 ** (-days / 180)))
        clock = fact.occurred_at if clock is None else max(clock, fact.occurred_at)
        if fact.kind is Kind.BREACH:
            lost = True
            move(fact, "breach", 0.2 * trust)
            continue
        evidence: str | None = fact.kind.value
        if evidence in ("trial", "purchase", "service"):  # the evidence is the outcome
            evidence = fact.outcome.value if fact.outcome is not None else None
        if evidence in _STRENGTHS:
            move(fact, f"gain:{evidence}", trust + 5 * _STRENGTHS[evidence] * (100 - trust) / 100)
        elif evidence in _SEVERITIES:
            move(fact, f"loss:{evidence}", trust - 10 * _SEVERITIES[evidence] * trust / 100)
    return changes


def reference_fairness(facts: list[Fact]) -> tuple[Fraction, str]:
    """The fairness index, exactly, and its status, from "Fairness"."""
    given = {Actor.SUPPLIER: Fraction(0), Actor.CUSTOMER: Fraction(0)}
    got = {Actor.SUPPLIER: Fraction(0), Actor.CUSTOMER: Fraction(0)}
    for fact in facts:
        if fact.amount is None:
            continue
        amount = Fraction(fact.amount)
        if fact.kind in (Kind.TRIAL, Kind.PURCHASE):
            if fact.perceived_value is not None:
                perceived = Fraction(fact.perceived_value)
            elif fact.outcome is Outcome.EXCEEDED:
                perceived = Fraction(6, 5) * amount
            elif fact.outcome is Outcome.FAILED:
                perceived = Fraction(0)
            else:
                perceived = amount
            given[Actor.CUSTOMER] += amount
            got[Actor.CUSTOMER] += perceived
            given[Actor.SUPPLIER] += amount
            got[Actor.SUPPLIER] += amount
        elif fact.kind is Kind.CONTRIBUTION:
            given[fact.actor] += amount
        elif fact.kind is Kind.REWARD:
            got[fact.actor] += amount

    def equity(party: Actor) -> Fraction | None:  # None: infinite
        if given[party] == 0:
            return Fraction(1) if got[party] == 0 else None
        return got[party] / given[party]

    supplier, customer = equity(Actor.SUPPLIER), equity(Actor.CUSTOMER)
    if supplier is None or customer is None:
        index = Fraction((supplier is None) - (customer is None))
    elif supplier + customer == 0:
        index = Fraction(0)
    else:
        index = (supplier - customer) / (supplier + customer)
    if abs(index) <= Fraction(5, 100):
        return index, "balanced"
    return index, "supplier_advantaged" if index > 0 else "customer_advantaged"


def reference_stage(facts: list[Fact], end: datetime) -> str:
    """The development stage with windows ending at `end`, from "Development stage"."""
    window = timedelta(days=90)
    deals = [fact for fact in facts if fact.kind in (Kind.TRIAL, Kind.PURCHASE)]
    if len(deals) < 3 or end - min(fact.occurred_at for fact in deals) < window:
        return "emerging"
    last = sum(f.amount or 0 for f in deals if end - window < f.occurred_at <= end)
    before = sum(f.amount or 0 for f in deals if end - 2 * window < f.occurred_at <= end - window)
    if before == 0:
        return "growth" if last > 0 else "decline"
    change = Fraction(last - before) / Fraction(before)
    if change > Fraction(15, 100):
        return "growth"
    if change < Fraction(-15, 100):
        return "decline"
    return "maturity"


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
    # and what it always gives is what the trust rules say
    expected = reference_trust(facts)
    changes = first.trust_changes
    assert [(c.event_id, c.rule) for c in changes] == [(e, rule) for e, rule, _ in expected]
    for change, (_, _, after) in zip(changes, expected, strict=True):
        assert change.after == pytest.approx(after, rel=1e-9, abs=1e-9)
    final = expected[-1][2] if expected else 30.0
    assert first.standing().trust == pytest.approx(final, rel=1e-9, abs=1e-9)


def assert_matches_reference(scorer: Scorer, facts: list[Fact], end: datetime | None) -> None:
    """Fairness and stage as the reference models compute them from `facts`."""
    standing = scorer.standing(end)
    index, status = reference_fairness(facts)
    assert abs(Fraction(standing.fairness.index) - index) < Fraction(1, 10**20)
    assert standing.fairness.status.value == status
    clock = max((fact.occurred_at for fact in facts), default=None)
    moment = end or clock
    expected = "emerging" if moment is None else reference_stage(facts, moment)
    assert standing.stage.value == expected


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
    assert_matches_reference(scorer, facts[:split], None)

    scorer.apply_all(facts[split:])
    whole = replay(facts, policy)
    assert scorer.standing() == whole.standing()
    assert scorer.trust_changes == whole.trust_changes
    assert scorer.phase_changes == whole.phase_changes
    assert_matches_reference(scorer, facts, None)
    if facts:
        days = data.draw(st.integers(0, 400), label="as_of days after the last event")
        later = max(fact.occurred_at for fact in facts) + timedelta(days=days)
        assert scorer.standing(later) == whole.standing(later)
        assert_matches_reference(scorer, facts, later)


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
