"""Hand-made stories: what a user of the ledger would notice, figure by figure.

Expected numbers are worked out by hand from DESIGN.md section 5 (policy v1):

    gain of strength s:    T += 5*s*(100 - T)/100   i.e. the gap (100 - T) shrinks by (1 - 0.05*s)
    loss of severity v:    T -= 10*v*T/100          i.e. T is multiplied by (1 - 0.1*v)
    breach:                T := 0.2*T, then T <= 40 for ever
    dormancy (gap > 30 d): T := 30 + (T - 30) * 2^(-days/180), only when T > 30

Strengths: met 1, exceeded 2, promise_kept 2, referral 3, collaboration 2, resolution 1.5,
agreement 1.5, communication 0.5, account_update/invitation 0.25. Severities: failed 2,
promise_broken 3, disagreement 1. Trust starts at 30.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from stories import Story, load_v1

from domain.contract import parse_interaction
from domain.fold.facts import Fact
from domain.fold.fairness import Fairness, FairnessStatus
from domain.fold.records import Connection, Phase
from domain.fold.scorer import Scorer, replay
from domain.fold.stage import Stage
from domain.policy import Policy

AWARENESS, EXPLORATION, EXPANSION, COMMITMENT, DISSOLUTION = (
    Phase.AWARENESS,
    Phase.EXPLORATION,
    Phase.EXPANSION,
    Phase.COMMITMENT,
    Phase.DISSOLUTION,
)


@pytest.fixture
def v1_policy() -> Policy:
    return load_v1()


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-9)


def phase_moves(scorer: Scorer) -> list[tuple[str, Phase | None, Phase, str]]:
    return [(c.event_id, c.from_phase, c.to_phase, c.rule) for c in scorer.phase_changes]


def trust_moves(scorer: Scorer) -> list[tuple[str, str]]:
    return [(c.event_id, c.rule) for c in scorer.trust_changes]


# --- stories reused by several tests ----------------------------------------------------


def four_exceeded() -> Story:
    """Four exceeded purchases, a day apart: expansion on the fourth.

    gap 70 -> 63 -> 56.7 -> 51.03 -> 45.927, so T = 37, 43.3, 48.97, 54.073.
    """
    story = Story()
    for _ in range(4):
        story.purchase(outcome="exceeded")
    return story


def committed_by_agreement() -> Story:
    """Committed on day 90 through an agreement, with T = 72.8240669486875 (e10).

    8 exceeded purchases, days 0..70: gap 70 * 0.9^8 = 30.1327047, T = 69.8672953
    agreement day 80:      gap * 0.925 = 27.8727518475,          T = 72.1272481525
    communication day 90:  gap * 0.975 = 27.1759330513125,       T = 72.8240669486875
    """
    story = Story()
    for day in range(0, 80, 10):
        story.purchase(outcome="exceeded", on=day)
    return story.agreement(on=80).communication(on=90)


def committed_by_successes() -> Story:
    """Ten exceeded purchases every 10 days, days 0..90: committed on the tenth (e10).

    gap 70 * 0.9^10 = 24.407490807, T = 75.592509193
    """
    story = Story()
    for day in range(0, 100, 10):
        story.purchase(outcome="exceeded", on=day)
    return story


# --- one step of trust per kind ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fields", "trust", "rule"),
    [
        ("purchase", {"amount": "10", "outcome": "met"}, 33.5, "gain:met"),  # 30 + 0.05*70
        ("trial", {"amount": "10", "outcome": "exceeded"}, 37.0, "gain:exceeded"),  # 30 + 0.1*70
        ("purchase", {"amount": "10", "outcome": "failed"}, 24.0, "loss:failed"),  # 30 * 0.8
        ("service", {"outcome": "met"}, 33.5, "gain:met"),
        ("service", {"outcome": "exceeded"}, 37.0, "gain:exceeded"),
        ("service", {"outcome": "failed"}, 24.0, "loss:failed"),
        ("promise_kept", {}, 37.0, "gain:promise_kept"),  # 30 + 0.1*70
        ("referral", {}, 40.5, "gain:referral"),  # 30 + 0.15*70
        ("collaboration", {}, 37.0, "gain:collaboration"),  # 30 + 0.1*70
        ("resolution", {}, 35.25, "gain:resolution"),  # 30 + 0.075*70
        ("agreement", {}, 35.25, "gain:agreement"),  # 30 + 0.075*70
        ("communication", {}, 31.75, "gain:communication"),  # 30 + 0.025*70
        ("account_update", {}, 30.875, "gain:account_update"),  # 30 + 0.0125*70
        ("invitation", {}, 30.875, "gain:invitation"),  # 30 + 0.0125*70
        ("promise_broken", {}, 21.0, "loss:promise_broken"),  # 30 * 0.7
        ("disagreement", {}, 27.0, "loss:disagreement"),  # 30 * 0.9
        ("breach", {}, 6.0, "breach"),  # 30 * 0.2
    ],
)
def test_one_event_moves_trust(
    kind: str, fields: dict[str, str], trust: float, rule: str, v1_policy: Policy
) -> None:
    scorer = Story().event(kind, **fields).fold(v1_policy)
    assert scorer.standing().trust == approx(trust)
    [change] = scorer.trust_changes
    assert (change.event_id, change.rule, change.policy) == ("e1", rule, "v1")
    assert change.before == 30.0
    assert change.after == approx(trust)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("contact", {}),
        ("promise", {}),
        ("contribution", {"amount": "10"}),
        ("reward", {"amount": "10"}),
        ("termination", {}),
        ("reactivation", {}),
    ],
)
def test_kinds_that_do_not_move_trust(kind: str, fields: dict[str, str], v1_policy: Policy) -> None:
    scorer = Story().contact().event(kind, **fields).fold(v1_policy)
    assert scorer.standing().trust == 30.0
    assert scorer.trust_changes == []


def test_each_change_is_audited_in_order(v1_policy: Policy) -> None:
    story = (
        Story()
        .contact()
        .purchase(outcome="met")  # 30 + 0.05*70 = 33.5
        .promise()  # nothing until resolved
        .promise_broken()  # 33.5 * 0.7 = 23.45
        .resolution()  # 23.45 + 0.075*76.55 = 29.19125
    )
    scorer = story.fold(v1_policy)
    assert trust_moves(scorer) == [
        ("e2", "gain:met"),
        ("e4", "loss:promise_broken"),
        ("e5", "gain:resolution"),
    ]
    afters = [change.after for change in scorer.trust_changes]
    assert afters == [approx(33.5), approx(23.45), approx(29.19125)]
    assert scorer.trust_changes[1].occurred_at == story.day(3)


# --- awareness and exploration ----------------------------------------------------------


def test_a_contact_opens_awareness(v1_policy: Policy) -> None:
    standing = Story().contact().fold(v1_policy).standing()
    assert standing.phase is AWARENESS
    assert standing.cycle == 1
    assert standing.connection is Connection.FORMATION
    assert standing.trust == 30.0


def test_awareness_to_exploration_on_the_first_trial(v1_policy: Policy) -> None:
    scorer = Story().contact().communication(days=2).trial(days=5).fold(v1_policy)
    assert phase_moves(scorer) == [
        ("e1", None, AWARENESS, "first_event"),
        ("e3", AWARENESS, EXPLORATION, "first_transaction"),
    ]


def test_talking_is_not_exploring(v1_policy: Policy) -> None:
    story = Story().contact().communication().agreement().referral().service(outcome="met")
    scorer = story.fold(v1_policy)
    assert scorer.standing().phase is AWARENESS
    assert len(scorer.phase_changes) == 1


def test_a_purchase_as_first_event_goes_straight_to_exploration(v1_policy: Policy) -> None:
    scorer = Story().purchase().fold(v1_policy)
    assert phase_moves(scorer) == [("e1", None, EXPLORATION, "first_transaction")]


# --- exploration -> expansion -----------------------------------------------------------


def test_three_successes_are_not_enough_below_trust_50(v1_policy: Policy) -> None:
    story = Story().purchase(outcome="exceeded").purchase(outcome="exceeded")
    story.purchase(outcome="exceeded")
    standing = story.fold(v1_policy).standing()
    assert standing.trust == approx(48.97)  # 100 - 70 * 0.9^3 = 100 - 51.03
    assert standing.phase is EXPLORATION

    scorer = story.purchase(outcome="exceeded").fold(v1_policy)
    assert scorer.standing().trust == approx(54.073)  # 100 - 51.03 * 0.9 = 100 - 45.927
    assert phase_moves(scorer)[-1] == ("e4", EXPLORATION, EXPANSION, "proven_in_exploration")


def test_trust_50_is_not_enough_below_three_successes(v1_policy: Policy) -> None:
    story = Story().purchase(outcome="met")  # gap 70 * 0.95 = 66.5, T = 33.5
    story.referral().referral().referral()  # gap 66.5 * 0.85^3 = 40.8393125, T = 59.1606875
    story.purchase(outcome="met")  # gap * 0.95 = 38.797346875, T = 61.202653125
    scorer = story.fold(v1_policy)
    assert scorer.standing().trust == approx(61.202653125)
    assert scorer.standing().phase is EXPLORATION  # only 2 successes

    scorer = story.purchase(outcome="met").fold(v1_policy)
    assert scorer.standing().trust == approx(63.14252046875)  # gap 36.85747953125
    assert phase_moves(scorer)[-1] == ("e6", EXPLORATION, EXPANSION, "proven_in_exploration")


def test_services_raise_trust_but_are_not_successes(v1_policy: Policy) -> None:
    story = Story().purchase(outcome="met").referral().referral().referral()  # T = 59.1606875
    story.service(outcome="met").service(outcome="exceeded")
    assert story.fold(v1_policy).standing().phase is EXPLORATION  # 1 success
    story.trial(outcome="met")
    assert story.fold(v1_policy).standing().phase is EXPLORATION  # 2 successes
    story.purchase(outcome="met")
    assert story.fold(v1_policy).standing().phase is EXPANSION  # 3


# --- expansion -> commitment ------------------------------------------------------------


def test_commitment_through_an_agreement_after_90_days(v1_policy: Policy) -> None:
    story = committed_by_agreement()
    before = replay(story.facts[:9], v1_policy)  # up to the agreement on day 80
    assert before.standing().trust == approx(72.1272481525)
    assert before.standing().phase is EXPANSION  # T >= 70 and an agreement, but 80 days old

    scorer = story.fold(v1_policy)
    assert scorer.standing().trust == approx(72.8240669486875)
    assert scorer.standing().phase is COMMITMENT
    assert [p.value for _, _, p, _ in phase_moves(scorer)] == [
        "exploration",
        "expansion",
        "commitment",
    ]
    assert phase_moves(scorer)[-1] == ("e10", EXPANSION, COMMITMENT, "committed")


def test_commitment_through_ten_successes(v1_policy: Policy) -> None:
    story = Story()
    for day in range(0, 45, 5):  # 9 exceeded purchases: gap 70 * 0.9^9, T = 72.88056577
        story.purchase(outcome="exceeded", on=day)
    story.contact(on=70).contact(on=95)
    standing = story.fold(v1_policy).standing()
    assert standing.trust == approx(72.88056577)
    assert standing.phase is EXPANSION  # 95 days old, T >= 70, but 9 successes, no agreement

    scorer = story.purchase(outcome="exceeded", on=100).fold(v1_policy)
    assert scorer.standing().trust == approx(75.592509193)  # gap 70 * 0.9^10 = 24.407490807
    assert phase_moves(scorer)[-1] == ("e12", EXPANSION, COMMITMENT, "committed")


def test_commitment_waits_until_the_relationship_is_90_days_old(v1_policy: Policy) -> None:
    story = Story()
    for day in range(0, 50, 5):  # 10 exceeded purchases by day 45: T = 75.592509193
        story.purchase(outcome="exceeded", on=day)
    story.contact(on=70).contact(on=89.99)  # no gap above 30 days: no dormancy
    assert story.fold(v1_policy).standing().phase is EXPANSION

    scorer = story.contact(on=90).fold(v1_policy)
    assert scorer.standing().trust == approx(75.592509193)
    assert phase_moves(scorer)[-1] == ("e13", EXPANSION, COMMITMENT, "committed")


def test_no_commitment_below_trust_70(v1_policy: Policy) -> None:
    story = Story()
    for day in range(0, 100, 10):  # 10 met purchases: gap 70 * 0.95^10 = 41.91158574668652
        story.purchase(outcome="met", on=day)
    story.agreement(on=91)  # gap * 0.925 = 38.76821681568502
    standing = story.fold(v1_policy).standing()
    assert standing.trust == approx(61.23178318431498)
    assert standing.phase is EXPANSION


# --- falling back -----------------------------------------------------------------------


def test_commitment_falls_back_to_expansion_then_exploration(v1_policy: Policy) -> None:
    story = committed_by_agreement()  # T = 72.8240669486875 on day 90
    story.disagreement()  # * 0.9 = 65.54166025381875: still >= 60
    assert story.fold(v1_policy).standing().phase is COMMITMENT

    story.disagreement()  # * 0.9 = 58.98749422843687 < 60
    scorer = story.fold(v1_policy)
    assert scorer.standing().trust == approx(58.98749422843687)
    assert phase_moves(scorer)[-1] == ("e12", COMMITMENT, EXPANSION, "trust_below_commitment")

    story.promise_broken()  # * 0.7 = 41.29124595990581: still >= 40
    assert story.fold(v1_policy).standing().phase is EXPANSION

    story.disagreement()  # * 0.9 = 37.16212136391523 < 40
    scorer = story.fold(v1_policy)
    assert scorer.standing().trust == approx(37.16212136391523)
    assert phase_moves(scorer)[-1] == ("e14", EXPANSION, EXPLORATION, "trust_below_expansion")
    assert scorer.standing().connection is Connection.DIVERGENCE


# --- failed trials, termination ---------------------------------------------------------


def test_a_failed_trial_ends_the_relationship(v1_policy: Policy) -> None:
    scorer = Story().contact().trial(amount="40", outcome="failed", days=3).fold(v1_policy)
    standing = scorer.standing()
    assert standing.trust == 24.0  # 30 * 0.8
    assert standing.phase is DISSOLUTION
    assert [p.value for _, _, p, _ in phase_moves(scorer)] == [
        "awareness",
        "exploration",
        "dissolution",
    ]
    assert phase_moves(scorer)[-1] == ("e2", EXPLORATION, DISSOLUTION, "failed_exploration")
    assert standing.cycle == 1


def test_a_failed_first_trial_is_not_revived_by_itself(v1_policy: Policy) -> None:
    scorer = Story().trial(outcome="failed").fold(v1_policy)
    assert phase_moves(scorer) == [
        ("e1", None, EXPLORATION, "first_transaction"),
        ("e1", EXPLORATION, DISSOLUTION, "failed_exploration"),
    ]
    assert scorer.standing().cycle == 1


def test_a_failed_trial_with_trust_to_spare_keeps_exploring(v1_policy: Policy) -> None:
    scorer = Story().purchase(outcome="exceeded").trial(outcome="failed").fold(v1_policy)
    assert scorer.standing().trust == approx(29.6)  # 37 * 0.8, not below 25
    assert scorer.standing().phase is EXPLORATION


def test_failed_services_lower_trust_but_only_a_transaction_ends_exploration(
    v1_policy: Policy,
) -> None:
    story = Story().purchase(outcome="met")  # 33.5
    story.service(outcome="failed").service(outcome="failed")  # 33.5 * 0.8^2 = 21.44
    standing = story.fold(v1_policy).standing()
    assert standing.trust == approx(21.44)
    assert standing.phase is EXPLORATION

    scorer = story.purchase(outcome="failed").fold(v1_policy)  # 21.44 * 0.8 = 17.152
    assert scorer.standing().trust == approx(17.152)
    assert phase_moves(scorer)[-1] == ("e4", EXPLORATION, DISSOLUTION, "failed_exploration")


@pytest.mark.parametrize(
    ("story", "phase"),
    [
        (lambda: Story().contact(), AWARENESS),
        (lambda: Story().purchase(), EXPLORATION),
        (four_exceeded, EXPANSION),
        (committed_by_agreement, COMMITMENT),
    ],
    ids=["awareness", "exploration", "expansion", "commitment"],
)
def test_termination_dissolves_from_any_phase(
    story: Callable[[], Story], phase: Phase, v1_policy: Policy
) -> None:
    told = story()
    assert told.fold(v1_policy).standing().phase is phase
    trust_before = told.fold(v1_policy).standing().trust
    scorer = told.termination().fold(v1_policy)
    last = f"e{len(told.facts)}"
    assert phase_moves(scorer)[-1] == (last, phase, DISSOLUTION, "termination")
    assert scorer.standing().trust == trust_before
    assert all(change.event_id != last for change in scorer.trust_changes)


def test_events_after_dissolution_are_counted_but_do_not_revive(v1_policy: Policy) -> None:
    story = Story().purchase().termination()
    story.contact().communication().agreement().service(outcome="met").collaboration()
    scorer = story.fold(v1_policy)
    standing = scorer.standing()
    assert standing.phase is DISSOLUTION
    assert standing.events == 7
    assert standing.cycle == 1
    assert len(scorer.phase_changes) == 2


# --- breach -----------------------------------------------------------------------------


def test_breach_collapses_trust_and_credibility(v1_policy: Policy) -> None:
    scorer = Story().contact().breach().fold(v1_policy)
    standing = scorer.standing()
    assert standing.trust == approx(6.0)  # 0.2 * 30, below 15
    assert standing.credibility_lost
    assert standing.phase is DISSOLUTION
    assert phase_moves(scorer)[-1] == ("e2", AWARENESS, DISSOLUTION, "breach")
    [change] = scorer.trust_changes
    assert (change.rule, change.before, change.after) == ("breach", 30.0, approx(6.0))
    assert standing.connection is Connection.DIVERGENCE
    assert standing.open_disagreements == 1


def test_breach_drops_commitment_straight_to_exploration(v1_policy: Policy) -> None:
    story = committed_by_successes()  # T = 75.592509193
    scorer = story.breach().fold(v1_policy)
    assert scorer.standing().trust == approx(15.1185018386)  # 0.2 * 75.592509193, not < 15
    assert [m for m in phase_moves(scorer) if m[0] == "e11"] == [
        ("e11", COMMITMENT, EXPANSION, "trust_below_commitment"),
        ("e11", EXPANSION, EXPLORATION, "trust_below_expansion"),
    ]


def test_breach_below_15_dissolves_commitment_at_once(v1_policy: Policy) -> None:
    story = committed_by_agreement()  # T = 72.8240669486875
    scorer = story.breach().fold(v1_policy)
    assert scorer.standing().trust == approx(14.5648133897375)  # 0.2 * 72.8240669486875
    assert [m for m in phase_moves(scorer) if m[0] == "e11"] == [
        ("e11", COMMITMENT, DISSOLUTION, "breach"),
    ]


def test_after_a_breach_trust_never_exceeds_40(v1_policy: Policy) -> None:
    story = committed_by_successes().breach()  # T = 15.1185018386, exploration
    story.referral()  # gap 84.8814981614 * 0.85 = 72.14927343719, T = 27.85072656281
    story.referral()  # gap * 0.85 = 61.3268824216115,             T = 38.6731175783885
    story.referral()  # gap * 0.85 = 52.12784..., T would be 47.87 -> capped at 40
    story.referral()  # already at the cap: no change recorded
    scorer = story.fold(v1_policy)
    assert [c.after for c in scorer.trust_changes[-3:]] == [
        approx(27.85072656281),
        approx(38.6731175783885),
        40.0,
    ]
    assert trust_moves(scorer)[-1] == ("e14", "gain:referral")
    assert scorer.standing().trust == 40.0


def test_credibility_stays_lost_across_a_revival(v1_policy: Policy) -> None:
    story = Story().contact().breach()  # T = 6, dissolved
    story.reactivation()
    for _ in range(12):
        story.purchase(outcome="exceeded")
    standing = story.fold(v1_policy).standing()
    assert standing.cycle == 2
    assert standing.trust == 40.0
    assert standing.credibility_lost
    assert standing.phase is EXPLORATION  # 12 successes, but expansion needs T >= 50


# --- revival ----------------------------------------------------------------------------


def test_reactivation_starts_cycle_2_with_counters_reset(v1_policy: Policy) -> None:
    story = four_exceeded()  # expansion, T = 54.073, 4 successes
    story.termination().reactivation()
    scorer = story.fold(v1_policy)
    assert phase_moves(scorer)[-2:] == [
        ("e5", EXPANSION, DISSOLUTION, "termination"),
        ("e6", DISSOLUTION, EXPLORATION, "revival"),
    ]
    assert scorer.standing().cycle == 2
    assert scorer.standing().trust == approx(54.073)  # trust carries over

    story.purchase(outcome="exceeded").purchase(outcome="exceeded")  # gap 45.927 * 0.9^2
    standing = story.fold(v1_policy).standing()
    assert standing.trust == approx(62.79913)  # 100 - 37.20087
    assert standing.phase is EXPLORATION  # 2 successes in this cycle, not 6

    scorer = story.purchase(outcome="exceeded").fold(v1_policy)
    assert phase_moves(scorer)[-1] == ("e9", EXPLORATION, EXPANSION, "proven_in_exploration")


def test_a_new_purchase_revives_and_counts_as_the_first_success(v1_policy: Policy) -> None:
    story = Story().contact().trial(outcome="failed")  # T = 24, dissolved
    story.purchase(outcome="met")  # 24 + 0.05*76 = 27.8
    scorer = story.fold(v1_policy)
    assert scorer.standing().trust == approx(27.8)
    assert phase_moves(scorer)[-1] == ("e3", DISSOLUTION, EXPLORATION, "revival")
    assert scorer.standing().cycle == 2

    story.referral().referral().referral()  # gap 72.2 * 0.85^3 = 44.339825, T = 55.660175
    story.purchase(outcome="met")  # gap * 0.95 = 42.12283375, T = 57.87716625; 2 successes
    assert story.fold(v1_policy).standing().phase is EXPLORATION
    scorer = story.purchase(outcome="met").fold(v1_policy)  # T = 59.9833079375; 3 successes
    assert scorer.standing().trust == approx(59.9833079375)
    assert phase_moves(scorer)[-1] == ("e8", EXPLORATION, EXPANSION, "proven_in_exploration")


def revived_in_expansion() -> Story:
    """Committed on day 90, terminated on 91, reactivated on 92 (cycle 2 starts), expansion
    again on day 120 after 3 exceeded purchases: gap 27.1759330513125 * 0.9^3, T = 80.1887448056.
    """
    story = committed_by_agreement().termination(on=91).reactivation(on=92)
    for day in (100, 110, 120):
        story.purchase(outcome="exceeded", on=day)
    return story


def test_the_cycle_age_restarts_at_a_revival(v1_policy: Policy) -> None:
    story = revived_in_expansion()
    story.agreement(on=150)  # gap 19.811255194406813 * 0.925, T = 81.6745889451737
    standing = story.fold(v1_policy).standing()
    assert standing.trust == approx(81.6745889451737)
    assert standing.phase is EXPANSION  # the new cycle is 58 days old
    assert standing.cycle == 2

    story.contact(on=180)  # 88 days
    assert story.fold(v1_policy).standing().phase is EXPANSION
    scorer = story.contact(on=182).fold(v1_policy)  # 90 days
    assert phase_moves(scorer)[-1] == ("e18", EXPANSION, COMMITMENT, "committed")


def test_the_agreement_counts_only_in_its_own_cycle(v1_policy: Policy) -> None:
    story = revived_in_expansion()
    story.communication(on=150).communication(on=180).communication(on=182)
    standing = story.fold(v1_policy).standing()
    assert standing.trust > 70  # only gains since 80.19
    assert standing.phase is EXPANSION  # 90 days into cycle 2 but no agreement in it

    scorer = story.agreement(on=183).fold(v1_policy)
    assert phase_moves(scorer)[-1] == ("e19", EXPANSION, COMMITMENT, "committed")


def test_reactivating_a_live_relationship_changes_nothing(v1_policy: Policy) -> None:
    scorer = Story().contact().disagreement().reactivation().fold(v1_policy)
    standing = scorer.standing()
    assert standing.phase is AWARENESS
    assert standing.cycle == 1
    assert standing.connection is Connection.DIVERGENCE  # the quarrel is still open
    assert standing.open_disagreements == 1
    assert len(scorer.phase_changes) == 1


# --- dormancy ---------------------------------------------------------------------------


def test_a_60_day_silence_pulls_trust_toward_30(v1_policy: Policy) -> None:
    scorer = Story().purchase(outcome="exceeded").contact(days=60).fold(v1_policy)
    # 30 + (37 - 30) * 2^(-60/180) = 30 + 7 * 0.7937005259840998
    assert scorer.standing().trust == approx(35.5559036818887)
    [_, faded] = scorer.trust_changes
    assert (faded.event_id, faded.rule, faded.before) == ("e2", "dormancy", 37.0)
    assert faded.after == approx(35.5559036818887)


def test_dormancy_comes_before_the_event_s_own_change(v1_policy: Policy) -> None:
    scorer = Story().purchase(outcome="exceeded").purchase(outcome="met", days=60).fold(v1_policy)
    # 35.5559036818887 + 0.05 * (100 - 35.5559036818887)
    assert scorer.standing().trust == approx(38.778108497794264)
    assert trust_moves(scorer) == [("e1", "gain:exceeded"), ("e2", "dormancy"), ("e2", "gain:met")]
    assert scorer.trust_changes[2].before == scorer.trust_changes[1].after


def test_no_decay_after_exactly_30_days(v1_policy: Policy) -> None:
    scorer = Story().purchase(outcome="exceeded").contact(days=30).fold(v1_policy)
    assert scorer.standing().trust == 37.0
    assert len(scorer.trust_changes) == 1


@pytest.mark.parametrize(
    ("days", "trust"),
    [
        (30.5, 36.22429516931317),  # 30 + 7 * 2^(-30.5/180)
        (45.5, 35.87495232486346),  # 30 + 7 * 2^(-45.5/180) = 30 + 7 * 0.8392789035519225
        (180, 33.5),  # one half-life: 30 + 7 / 2
        (360, 31.75),  # two: 30 + 7 / 4
    ],
)
def test_the_whole_gap_counts_in_fractional_days(
    days: float, trust: float, v1_policy: Policy
) -> None:
    scorer = Story().purchase(outcome="exceeded").contact(days=days).fold(v1_policy)
    assert scorer.standing().trust == approx(trust)


def test_dormancy_never_raises_low_trust(v1_policy: Policy) -> None:
    story = Story().contact().service(outcome="failed")  # 30 * 0.8 = 24
    scorer = story.contact(days=60).contact(days=365).fold(v1_policy)
    assert scorer.standing().trust == approx(24.0)
    assert trust_moves(scorer) == [("e2", "loss:failed")]


def test_dormancy_leaves_trust_at_30_alone(v1_policy: Policy) -> None:
    scorer = Story().contact().contact(days=400).fold(v1_policy)
    assert scorer.standing().trust == 30.0
    assert scorer.trust_changes == []


def test_a_late_event_causes_no_decay_and_keeps_the_clock(v1_policy: Policy) -> None:
    story = Story().purchase(outcome="exceeded").contact(days=20)  # T = 37, clock day 20
    story.contact(on=-100)  # late: 120 days before the clock
    scorer = story.fold(v1_policy)
    standing = scorer.standing()
    assert standing.trust == 37.0
    assert standing.late_events == 1
    assert standing.last_event_at == story.day(20)

    story.contact(on=50)  # 30 days after the clock (not 150 after the late event)
    assert story.fold(v1_policy).standing().trust == 37.0


def test_dormancy_measures_from_the_clock_not_the_late_event(v1_policy: Policy) -> None:
    story = Story().purchase(outcome="exceeded", on=0).contact(on=-50).contact(on=60)
    # the gap is 60 days from the clock (day 0): 30 + 7 * 2^(-60/180)
    assert story.fold(v1_policy).standing().trust == approx(35.5559036818887)


# --- development stage ------------------------------------------------------------------


def stage_of(story: Story, as_of_day: float | None = None) -> Stage:
    scorer = story.fold()
    return scorer.standing(None if as_of_day is None else story.day(as_of_day)).stage


def test_emerging_with_fewer_than_3_transactions() -> None:
    story = Story().purchase(on=0).purchase(on=200)
    assert stage_of(story) is Stage.EMERGING


def test_emerging_while_the_first_transaction_is_under_90_days_old() -> None:
    story = Story().purchase(on=0).purchase(on=10).purchase(on=89)
    assert stage_of(story) is Stage.EMERGING
    assert stage_of(story, as_of_day=89.99) is Stage.EMERGING
    # at day 90: last (0, 90] = 100 + 100, before (-90, 0] = 100 -> +100 %
    assert stage_of(story, as_of_day=90) is Stage.GROWTH


@pytest.mark.parametrize(
    ("last", "stage"),
    [
        ("500", Stage.GROWTH),  # (500 - 200) / 200 = +150 %
        ("230.01", Stage.GROWTH),  # +15.005 %
        ("230", Stage.MATURITY),  # +15 % exactly: not above
        ("200", Stage.MATURITY),  # 0 %
        ("170", Stage.MATURITY),  # -15 % exactly: not below
        ("169.99", Stage.DECLINE),  # -15.005 %
        ("20", Stage.DECLINE),  # -90 %
    ],
)
def test_growth_maturity_decline(last: str, stage: Stage) -> None:
    # windows end on day 100: before = (-80, 10] holds days 0 and 10 (200), last = (10, 100]
    story = Story().purchase("100", on=0).purchase("100", on=10).purchase(last, on=100)
    assert stage_of(story) is stage


def test_a_transaction_exactly_90_days_before_the_end_is_in_the_earlier_window() -> None:
    story = Story().purchase("100", on=0).purchase("50", on=50).purchase("50", on=90)
    # end day 90: before (-90, 0] = 100, last (0, 90] = 50 + 50 -> 0 % (not growth from zero)
    assert stage_of(story) is Stage.MATURITY


def test_a_transaction_exactly_180_days_before_the_end_counts_nowhere() -> None:
    story = Story().purchase("100", on=0).purchase("100", on=50).purchase("100", on=150)
    # end day 150: before (-30, 60] = 200, last (60, 150] = 100 -> -50 %
    assert stage_of(story) is Stage.DECLINE
    # as_of day 179: before (-1, 89] = 200, last (89, 179] = 100 -> -50 %
    assert stage_of(story, as_of_day=179) is Stage.DECLINE
    # as_of day 180: before (0, 90] = 100 (day 0 drops out), last (90, 180] = 100 -> 0 %
    assert stage_of(story, as_of_day=180) is Stage.MATURITY


def test_an_empty_earlier_window() -> None:
    story = Story().purchase(on=0).purchase(on=200).purchase(on=201)
    # end day 201: before (21, 111] = 0, last (111, 201] = 200 -> growth
    assert stage_of(story) is Stage.GROWTH
    # as_of day 300: before (120, 210] = 200, last (210, 300] = 0 -> -100 %
    assert stage_of(story, as_of_day=300) is Stage.DECLINE
    # as_of day 400: both windows empty -> decline
    assert stage_of(story, as_of_day=400) is Stage.DECLINE


def test_failed_transactions_count_as_volume() -> None:
    story = Story().purchase(on=0).purchase(on=10)
    story.purchase(outcome="failed", on=95).purchase(on=100)
    # end day 100: before (-80, 10] = 200, last (10, 100] = 100 failed + 100 met -> 0 %
    assert stage_of(story) is Stage.MATURITY  # without the failed one: -50 %, decline


def test_a_late_transaction_counts_in_its_own_window() -> None:
    story = Story().purchase("100", on=0).purchase("100", on=10).purchase("200", on=100)
    assert stage_of(story) is Stage.MATURITY
    story.purchase("100", on=5)  # late, in the earlier window: 300 against 200 -> -33 %
    assert stage_of(story) is Stage.DECLINE


def test_a_late_transaction_dated_first_makes_the_relationship_older() -> None:
    story = Story().contact(on=0)
    story.purchase("100", on=100).purchase("100", on=110).purchase("100", on=120)
    # end day 120: the first purchase (day 100) is only 20 days old
    assert stage_of(story) is Stage.EMERGING
    story.purchase("100", on=20)  # an order from day 20, entered late: now the first one
    # 100 days old; before (-60, 30] = 100 (day 20), last (30, 120] = 300 -> +200 %
    assert stage_of(story) is Stage.GROWTH


def test_replay_as_of_folds_only_what_had_happened() -> None:
    story = Story().purchase("100", on=0).purchase("100", on=10).purchase("100", on=100)
    story.purchase("900", on=150).termination(on=160)
    moment = story.day(120)
    scorer = replay(story.facts, load_v1(), as_of=moment)
    standing = scorer.standing(moment)
    assert standing.events == 3
    assert standing.phase is EXPLORATION
    assert standing.as_of == moment
    assert standing.last_event_at == story.day(100)
    # end day 120: before (-60, 30] = 200, last (30, 120] = 100 -> -50 %
    assert standing.stage is Stage.DECLINE


# --- connection -------------------------------------------------------------------------


def connection_after(story: Story) -> tuple[Connection, int]:
    standing = story.fold().standing()
    return standing.connection, standing.open_disagreements


def test_connection_starts_in_formation() -> None:
    assert connection_after(Story().contact().purchase()) == (Connection.FORMATION, 0)


def test_disagreement_diverges_and_agreement_converges() -> None:
    story = Story().contact().disagreement()
    assert connection_after(story) == (Connection.DIVERGENCE, 1)
    assert connection_after(story.agreement()) == (Connection.CONVERGENCE, 1)


def test_an_agreement_converges_only_from_divergence() -> None:
    assert connection_after(Story().contact().agreement()) == (Connection.FORMATION, 0)
    story = Story().contact().collaboration().agreement()
    assert connection_after(story) == (Connection.ASSOCIATION, 0)


def test_a_resolution_converges_only_from_divergence() -> None:
    assert connection_after(Story().contact().resolution()) == (Connection.FORMATION, 0)
    story = Story().contact().disagreement().resolution()
    assert connection_after(story) == (Connection.CONVERGENCE, 0)
    story = Story().contact().collaboration().resolution()
    assert connection_after(story) == (Connection.ASSOCIATION, 0)


def test_collaboration_associates_only_with_nothing_open() -> None:
    story = Story().contact().disagreement().disagreement().resolution()
    assert connection_after(story) == (Connection.CONVERGENCE, 1)
    assert connection_after(story.collaboration()) == (Connection.CONVERGENCE, 1)
    story.resolution()
    assert connection_after(story) == (Connection.CONVERGENCE, 0)
    assert connection_after(story.collaboration()) == (Connection.ASSOCIATION, 0)


def test_association_falls_back_to_divergence() -> None:
    story = Story().contact().collaboration().disagreement()
    assert connection_after(story) == (Connection.DIVERGENCE, 1)


def test_open_disagreements_never_go_below_zero() -> None:
    story = Story().contact().resolution().resolution().disagreement()
    assert connection_after(story) == (Connection.DIVERGENCE, 1)


def test_a_breach_opens_a_disagreement() -> None:
    story = Story().contact().collaboration().breach()
    assert connection_after(story) == (Connection.DIVERGENCE, 1)


def test_reactivation_returns_to_formation() -> None:
    story = Story().contact().disagreement().breach().reactivation()
    assert connection_after(story) == (Connection.FORMATION, 0)


# --- fairness ---------------------------------------------------------------------------


def fairness_after(story: Story) -> Fairness:
    return story.fold().standing().fairness


def test_nothing_exchanged_is_balanced() -> None:
    fairness = fairness_after(Story().contact())
    assert fairness.index == 0  # E_s = E_c = 1 (C = 0 and R = 0)
    assert fairness.status is FairnessStatus.BALANCED


def test_a_side_that_gave_and_received_nothing_has_equity_1() -> None:
    story = Story().contribution("100", actor="customer").reward("50", actor="customer")
    # E_c = 50/100 = 0.5, E_s = 1 (C = 0, R = 0): F = (1 - 0.5) / (1 + 0.5) = 1/3
    fairness = fairness_after(story)
    assert round(float(fairness.index), 4) == 0.3333
    assert fairness.status is FairnessStatus.SUPPLIER_ADVANTAGED


def test_a_supplier_that_gave_without_return() -> None:
    fairness = fairness_after(Story().contribution("100", actor="supplier"))
    # E_s = 0/100 = 0, E_c = 1: F = (0 - 1) / (0 + 1) = -1
    assert fairness.index == -1
    assert fairness.status is FairnessStatus.CUSTOMER_ADVANTAGED


@pytest.mark.parametrize(
    ("rewarded", "index", "status"),
    [
        (["customer"], -1, FairnessStatus.CUSTOMER_ADVANTAGED),  # E_c infinite
        (["supplier"], 1, FairnessStatus.SUPPLIER_ADVANTAGED),  # E_s infinite
        (["supplier", "customer"], 0, FairnessStatus.BALANCED),  # both infinite
    ],
)
def test_something_for_nothing(rewarded: list[str], index: int, status: FairnessStatus) -> None:
    story = Story().contact()
    for actor in rewarded:
        story.reward("25.00", actor=actor)
    fairness = fairness_after(story)
    assert fairness.index == index
    assert fairness.status is status


def test_an_infinite_side_wins_over_any_finite_one() -> None:
    story = Story().reward("1", actor="supplier").contribution("100", actor="customer")
    # E_s = 1/0 infinite, E_c = 0/100 = 0 -> F = +1
    assert fairness_after(story).index == 1
    story = Story().contribution("50", actor="supplier").reward("100", actor="supplier")
    story.reward("0.01", actor="customer")
    # E_s = 100/50 = 2, E_c = 0.01/0 infinite -> F = -1
    fairness = fairness_after(story)
    assert fairness.index == -1
    assert fairness.status is FairnessStatus.CUSTOMER_ADVANTAGED


@pytest.mark.parametrize(
    ("outcome", "received", "gap", "index", "status"),
    [
        # met: p = a = 100.00; E_s = E_c = 1
        ("met", "100.00", "0.00", 0.0, FairnessStatus.BALANCED),
        # exceeded: p = 1.2 * 100.00 = 120.000; E_c = 1.2; F = -0.2 / 2.2 = -0.0909
        ("exceeded", "120.000", "20.000", -0.0909, FairnessStatus.CUSTOMER_ADVANTAGED),
        # failed: p = 0; E_c = 0; F = 1 / 1 = 1
        ("failed", "0", "-100.00", 1.0, FairnessStatus.SUPPLIER_ADVANTAGED),
    ],
)
def test_perceived_value_defaults_by_outcome(
    outcome: str, received: str, gap: str, index: float, status: FairnessStatus
) -> None:
    fairness = fairness_after(Story().purchase("100.00", outcome=outcome))
    totals = fairness.totals
    assert str(totals.customer_received) == received
    assert str(totals.customer_contributed) == "100.00"
    assert str(totals.supplier_contributed) == "100.00"
    assert str(totals.supplier_received) == "100.00"
    assert str(totals.value_gap) == gap
    assert round(float(fairness.index), 4) == index
    assert fairness.status is status


@pytest.mark.parametrize("outcome", ["met", "exceeded", "failed"])
def test_a_stated_perceived_value_wins_over_the_default(outcome: str) -> None:
    story = Story().trial("80.00", outcome=outcome).purchase("20", perceived_value="30.50")
    story.event("trial", amount="80.00", outcome=outcome, perceived_value="64.00")
    totals = fairness_after(story).totals
    default = {"met": "80.00", "exceeded": "96.000", "failed": "0"}[outcome]
    assert totals.customer_received == Decimal(default) + Decimal("30.50") + Decimal("64.00")
    assert totals.value_gap == totals.customer_received - Decimal("180.00")


def test_contributions_and_rewards_go_to_the_actor() -> None:
    story = (
        Story()
        .purchase("100.00", outcome="met")
        .purchase("40.00", outcome="failed")
        .contribution("10.00", actor="customer")
        .reward("5.00", actor="supplier")
    )
    fairness = fairness_after(story)
    totals = fairness.totals
    assert str(totals.supplier_contributed) == "140.00"  # 100 + 40
    assert str(totals.supplier_received) == "145.00"  # 100 + 40 + 5
    assert str(totals.customer_contributed) == "150.00"  # 100 + 40 + 10
    assert str(totals.customer_received) == "100.00"  # 100 + 0
    assert str(totals.value_gap) == "-40.00"  # (100 - 100) + (0 - 40)
    # E_s = 145/140 = 29/28, E_c = 100/150 = 2/3; F = (31/84) / (143/84) = 31/143
    assert round(float(fairness.index), 4) == 0.2168
    assert fairness.status is FairnessStatus.SUPPLIER_ADVANTAGED


def test_the_balanced_band_includes_its_edge() -> None:
    # E_s = 105/100 = 1.05, E_c = 95/100 = 0.95: F = 0.10 / 2.00 = 0.05 exactly
    story = Story().purchase("100", perceived_value="95").reward("5", actor="supplier")
    fairness = fairness_after(story)
    assert fairness.index == Decimal("0.05")
    assert fairness.status is FairnessStatus.BALANCED
    # E_c = 0.9499: F = 0.1001 / 1.9999 = 0.05005...
    story = Story().purchase("100", perceived_value="94.99").reward("5", actor="supplier")
    assert fairness_after(story).status is FairnessStatus.SUPPLIER_ADVANTAGED


def test_money_stays_decimal() -> None:
    story = Story()
    for _ in range(10):
        story.purchase("0.10", outcome="exceeded")
    story.contribution("0.1", actor="supplier").reward("0.2", actor="customer")
    fairness = fairness_after(story)
    totals = fairness.totals
    for value in (
        totals.supplier_contributed,
        totals.supplier_received,
        totals.customer_contributed,
        totals.customer_received,
        totals.value_gap,
        fairness.index,
    ):
        assert isinstance(value, Decimal)
    assert str(totals.customer_received) == "1.400"  # 10 * 1.2 * 0.10 + 0.2, no float noise
    assert str(totals.value_gap) == "0.200"  # 10 * (0.120 - 0.10)
    assert str(totals.supplier_contributed) == "1.10"


LARGEST_AMOUNT = "999999999999999999.999999"  # the contract's limit: 18 digits, then 6


def test_the_largest_accepted_amounts_add_up_to_the_last_digit() -> None:
    """Money is Decimal end to end: a wholesale account of a thousand purchases of the
    largest amount the contract lets in, every other one exceeding expectations (its
    perceived value, 1.2 times the amount, has 7 decimals), keeps every digit of its
    totals: 29 significant digits, one more than Decimal's default context holds."""
    received_at = datetime(2025, 6, 1, tzinfo=UTC)
    facts: list[Fact] = []
    for n in range(1000):
        item = parse_interaction(
            {
                "event_id": f"order-{n}",
                "source": "billing",
                "relationship_id": "acme/wholesale",
                "occurred_at": f"2024-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
                "kind": "purchase",
                "actor": "customer",
                "amount": LARGEST_AMOUNT,
                "currency": "EUR",
                "outcome": "exceeded" if n % 2 else "met",
            },
            received_at=received_at,
        )
        facts.append(Fact.from_interaction(item))
    totals = replay(facts, load_v1()).standing().fairness.totals
    micros = 999999999999999999999999  # the amount in millionths, as an exact integer
    paid = 1000 * micros * 10  # in ten-millionths, the unit of 1.2 times the amount
    perceived = 500 * micros * 10 + 500 * micros * 12
    assert totals.customer_contributed == totals.supplier_contributed == Decimal(paid).scaleb(-7)
    assert totals.supplier_received == Decimal(paid).scaleb(-7)
    assert totals.customer_received == Decimal(perceived).scaleb(-7)
    assert str(totals.customer_received) == "1099999999999999999999.9989000"
    assert totals.value_gap == Decimal(perceived - paid).scaleb(-7)
