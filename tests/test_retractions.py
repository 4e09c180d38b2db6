"""Retractions: a producer takes back an interaction recorded by mistake, and history stays
append-only.

The story: the bistro's supplier records a failed purchase that never happened (it was
meant for another customer) and takes it back two days later, after one more good
purchase. The figures must become those of the story without the mistake, while the
histories keep what was shown in between and record the step to the corrected figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from read_models import assert_answers_as_folded

from domain.contract import Interaction, parse_interaction
from domain.errors import ContradictsRelationship
from domain.fold.facts import Fact
from domain.fold.records import Standing
from domain.fold.scorer import RETRACTION_RULE, replay
from domain.kinds import Kind
from domain.relationship import Recorded
from projections.replay import replay_relationship
from projections.views import standing_view
from service.ledger_service import LedgerService
from service.policies import load_policy

REL = "acme/bistro"
POLICY = load_policy()


def _event(n: int, day: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"crm-{n}",
        "source": "crm",
        "relationship_id": REL,
        "occurred_at": f"2026-03-{day:02d}T10:00:00Z",
        "kind": kind,
        "actor": "customer",
        **fields,
    }


def _purchase(n: int, day: int, outcome: str, amount: str = "120.00") -> dict[str, Any]:
    return _event(n, day, "purchase", amount=amount, currency="EUR", outcome=outcome)


MISTAKE = _purchase(6, 8, "failed", amount="900.00")
RETRACTION = _event(8, 11, "retraction", actor="supplier", ref="crm-6", note="wrong customer")
STORY = [
    _event(1, 1, "contact", parties={"supplier": "acme", "customer": "bistro"}),
    _event(2, 2, "trial", amount="40.00", currency="EUR", outcome="met"),
    _purchase(3, 3, "met"),
    _purchase(4, 5, "exceeded"),
    _purchase(5, 6, "met"),
    MISTAKE,
    _purchase(7, 10, "met"),
    RETRACTION,
    _purchase(9, 14, "met"),
]
RECORDED_AT = datetime.fromisoformat("2026-04-01T00:00:00+00:00")


def _items(events: list[dict[str, Any]]) -> list[Interaction]:
    return [parse_interaction(event, received_at=RECORDED_AT) for event in events]


def _facts(events: list[dict[str, Any]]) -> list[Fact]:
    return [Fact.from_interaction(item) for item in _items(events)]


@pytest.fixture
def service(store_url: str) -> Iterator[LedgerService]:
    opened = LedgerService.open(store_url)
    yield opened
    opened.close()


def test_the_figures_become_those_of_the_story_without_the_mistake() -> None:
    corrected = replay(_facts(STORY), POLICY)
    without = replay(_facts([e for e in STORY if e not in (MISTAKE, RETRACTION)]), POLICY)
    assert corrected.standing() == _with_retracted(without.standing(), 1)
    assert corrected.events == 7  # neither the mistake nor its retraction counts
    # the mistake was a large failed purchase: it had cost trust and fairness
    before = replay(_facts(STORY[:7]), POLICY)
    assert before.trust < corrected.trust
    assert before.totals.value_gap == corrected.totals.value_gap - 900


def test_the_histories_keep_what_was_shown_and_record_the_step() -> None:
    before = replay(_facts(STORY[:7]), POLICY)
    folded = replay(_facts(STORY), POLICY)
    shown = len(before.trust_changes)
    assert folded.trust_changes[:shown] == before.trust_changes  # nothing rewritten
    step = folded.trust_changes[shown]
    assert (step.event_id, step.rule) == ("crm-8", RETRACTION_RULE)
    assert step.before == before.trust
    corrected_then = replay(
        _facts([e for e in STORY[:8] if e not in (MISTAKE, RETRACTION)]), POLICY
    )
    assert step.after == corrected_then.trust
    assert [c.event_id for c in folded.trust_changes[shown + 1 :]] == ["crm-9"]


def test_a_retraction_that_changes_the_phase_records_the_step_in_the_phase_history() -> None:
    opened = _event(1, 1, "contact", parties={"supplier": "acme", "customer": "bistro"})
    breach = _event(2, 3, "breach", actor="supplier")
    taken_back = _event(3, 4, "retraction", actor="supplier", ref="crm-2")
    folded = replay(_facts([opened, _purchase(4, 2, "met"), breach, taken_back]), POLICY)
    assert folded.credibility_lost is False
    last = folded.phase_changes[-1]
    assert (last.rule, last.event_id, last.to_phase.value) == (
        RETRACTION_RULE,
        "crm-3",
        "exploration",
    )


def test_the_read_models_follow_a_retraction_as_a_rebuild_does(service: LedgerService) -> None:
    service.record(_items(STORY[:7]))
    service.catch_up()  # the read models show the mistake...
    shown_before = service.trust_history(REL)
    service.record(_items(STORY[7:]))
    service.catch_up()  # ...then fold the retraction incrementally
    incremental = (service.standing(REL), service.trust_history(REL), service.phase_history(REL))
    assert incremental[1][: len(shown_before)] == shown_before
    assert [row["rule"] for row in incremental[1]].count(RETRACTION_RULE) == 1
    assert_answers_as_folded(service.view, replay_relationship(service.ledger, REL, POLICY))
    service.rebuild(None, check=False)
    rebuilt = (service.standing(REL), service.trust_history(REL), service.phase_history(REL))
    assert rebuilt == incremental
    assert incremental[0]["retracted"] == 1
    assert incremental[0]["events"] == 7


def test_a_replay_as_of_before_the_retraction_shows_the_old_figures(
    service: LedgerService,
) -> None:
    service.record(_items(STORY))
    old = service.replay(REL, as_of=datetime.fromisoformat("2026-03-10T12:00:00+00:00"))
    expected = replay(_facts(STORY[:7]), POLICY)
    assert old["trust"] == standing_view(REL, expected.standing())["trust"]
    assert old["retracted"] == 0
    assert service.replay(REL)["retracted"] == 1


@pytest.mark.parametrize(
    ("offered", "reason"),
    [
        (
            _event(10, 15, "retraction", ref="crm-99"),
            "ref: no interaction 'crm-99' from source 'crm' in relationship 'acme/bistro' "
            "to retract",
        ),
        (
            {**_event(10, 15, "retraction", ref="crm-3"), "source": "billing"},
            "ref: no interaction 'crm-3' from source 'billing' in relationship "
            "'acme/bistro' to retract",
        ),
        (
            _event(10, 15, "retraction", ref="crm-8"),
            "ref: 'crm-8' is itself a retraction; a retraction is final",
        ),
        (
            _event(10, 15, "retraction", ref="crm-6"),
            "ref: 'crm-6' was already retracted at 'acme/bistro' #8",
        ),
    ],
    ids=["unknown", "another-source", "a-retraction", "twice"],
)
def test_what_cannot_be_retracted_is_refused_and_changes_nothing(
    service: LedgerService, offered: dict[str, Any], reason: str
) -> None:
    service.record(_items(STORY))
    before = service.replay(REL)
    [outcome] = service.record(_items([offered]))
    assert isinstance(outcome, ContradictsRelationship)
    assert str(outcome) == reason
    assert service.replay(REL) == before


def test_a_ref_of_another_relationship_is_refused(service: LedgerService) -> None:
    service.record(_items(STORY))
    other = {
        **_event(1, 1, "contact", parties={"supplier": "acme", "customer": "deli"}),
        "relationship_id": "acme/deli",
        "event_id": "crm-100",
    }
    wrong = {**_event(101, 2, "retraction", ref="crm-3"), "relationship_id": "acme/deli"}
    outcomes = service.record(_items([other, wrong]))
    assert outcomes[0] is Recorded.RECORDED
    assert isinstance(outcomes[1], ContradictsRelationship)
    assert "in relationship 'acme/deli' to retract" in str(outcomes[1])


def test_a_retraction_cannot_open_a_relationship_and_its_redelivery_is_a_duplicate(
    service: LedgerService,
) -> None:
    first = {**RETRACTION, "parties": {"supplier": "acme", "customer": "bistro"}}
    [refused] = service.record(_items([first]))
    assert isinstance(refused, ContradictsRelationship)
    service.record(_items(STORY))
    assert service.record(_items([RETRACTION])) == [Recorded.DUPLICATE]


_KINDS = st.sampled_from(["communication", "purchase", "disagreement", "resolution", "breach"])


@settings(max_examples=150, deadline=None)
@given(
    kinds=st.lists(_KINDS, min_size=2, max_size=25),
    outcomes=st.lists(st.sampled_from(["met", "exceeded", "failed"]), min_size=26, max_size=26),
    data=st.data(),
)
def test_any_retraction_leaves_the_standing_of_the_story_without_the_pair(
    kinds: list[str], outcomes: list[str], data: st.DataObject
) -> None:
    events = [_event(0, 1, "contact", parties={"supplier": "acme", "customer": "bistro"})]
    for n, kind in enumerate(kinds, start=1):
        fields: dict[str, Any] = {}
        if kind == "purchase":
            fields = {"amount": f"{10 * n}.00", "currency": "EUR", "outcome": outcomes[n]}
        events.append(_event(n, 1 + n, kind, **fields))
    target = data.draw(st.integers(0, len(events) - 1))
    at = data.draw(st.integers(target + 1, len(events)))
    day = data.draw(st.integers(1, 28))
    retraction = _event(99, day, "retraction", actor="supplier", ref=events[target]["event_id"])
    story = [*events[:at], retraction, *events[at:]]
    folded = replay(_facts(story), POLICY)
    without = replay(_facts([e for n, e in enumerate(events) if n != target]), POLICY)
    expected = _with_retracted(without.standing(), 1)
    if expected.parties is None:  # the first interaction, naming the parties, was retracted
        expected = _with_parties(expected, ("acme", "bistro"))
    if "purchase" in kinds:  # the relationship stays kept in the currency it was given
        expected = replace(expected, currency="EUR")
    assert folded.standing() == expected
    assert Kind.RETRACTION not in {f.kind for f in _facts(events)}


def _with_retracted(standing: Standing, count: int) -> Standing:
    return replace(standing, retracted=count)


def _with_parties(standing: Standing, parties: tuple[str, str]) -> Standing:
    return replace(standing, parties=parties)
