"""A fold resumed from its saved state gives exactly what an uninterrupted fold gives."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_replay_properties import _stream, step

from domain.errors import PolicyError
from domain.fold.facts import Fact
from domain.fold.scorer import Scorer, replay
from domain.fold.state import FORMAT, dump_state, load_state
from service.policies import load_policy

POLICY = load_policy()


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=80), cut=st.integers(0, 80))
def test_resuming_from_saved_state_changes_nothing(steps: list[dict], cut: int) -> None:
    facts = [
        Fact.from_interaction(item) for item in _stream(steps, "p") if item.relationship_id == "p/0"
    ]
    whole = replay(facts, POLICY)
    first = replay(facts[:cut], POLICY)
    saved = orjson.loads(orjson.dumps(dump_state(first)))  # through JSON, as the view stores it
    resumed = load_state(saved, POLICY).apply_all(facts[cut:])
    assert resumed.standing() == whole.standing()
    assert first.trust_changes + resumed.trust_changes == whole.trust_changes
    assert first.phase_changes + resumed.phase_changes == whole.phase_changes


def test_a_state_made_under_another_policy_is_refused() -> None:
    other = POLICY.model_copy(update={"version": "v2"})
    with pytest.raises(PolicyError, match="rebuild the read models"):
        load_state(dump_state(Scorer(other)), POLICY)


FORMAT_1_STATE = (
    '{"format":1,"policy":"v1","trust":33.95355926397832,"credibility_lost":false,'
    '"phase":"exploration","cycle":1,"cycle_started":"2025-01-09T12:09:54+00:00",'
    '"successes":2,"agreement_seen":false,"clock":"2025-04-02T07:43:51+00:00",'
    '"connection":"formation","open_disagreements":0,"events":6,"late_events":0,'
    '"parties":["acme","generous-22148"],"retracted":0,'
    '"totals":["2036.68","2036.68","2036.68","2407.626","370.946"],'
    '"volume":{"count":2,"first_at":"2025-01-13T17:47:21+00:00",'
    '"recent":[["2025-01-13T17:47:21+00:00","544.38"],["2025-04-02T07:43:51+00:00","1492.30"]]}}'
)
"""A summary row's state as format 1 wrote it (read models projected before format 2)."""


def _same_state(a: Scorer, b: Scorer) -> None:
    for name in Scorer.__slots__:
        if name == "volume":
            assert (a.volume.count, a.volume.first_at, list(a.volume.recent)) == (
                b.volume.count,
                b.volume.first_at,
                list(b.volume.recent),
            )
        else:
            assert getattr(a, name) == getattr(b, name), name


def test_a_format_1_state_still_loads_and_dumps_as_the_current_format() -> None:
    old = load_state(orjson.loads(FORMAT_1_STATE), POLICY)
    assert old.parties == ("acme", "generous-22148")
    assert old.totals.value_gap == Decimal("370.946")
    assert [str(amount) for _, amount in old.volume.recent] == ["544.38", "1492.30"]
    current = dump_state(old)
    assert current[0] == FORMAT == 3
    _same_state(load_state(orjson.loads(orjson.dumps(current)), POLICY), old)


FORMAT_2_STATE = (
    '[2,"v1",33.95355926397832,false,"exploration",1,"2025-01-09T12:09:54+00:00",2,false,'
    '"2025-04-02T07:43:51+00:00","formation",0,6,0,"acme","generous-22148",0,'
    '"2036.68","2036.68","2036.68","2407.626","370.946",2,"2025-01-13T17:47:21+00:00",'
    '"2025-01-13T17:47:21+00:00","544.38","2025-04-02T07:43:51+00:00","1492.30"]'
)
"""The same state as format 2 wrote it (before currency and first event time were kept)."""


def test_a_format_2_state_still_loads_without_currency_or_first_event() -> None:
    old = load_state(orjson.loads(FORMAT_2_STATE), POLICY)
    _same_state(old, load_state(orjson.loads(FORMAT_1_STATE), POLICY))
    assert (old.currency, old.first_event_at) == (None, None)
    assert old.volume.count == 2
    assert [str(amount) for _, amount in old.volume.recent] == ["544.38", "1492.30"]


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=60))
def test_the_current_format_round_trips_every_field(steps: list[dict]) -> None:
    facts = [
        Fact.from_interaction(item) for item in _stream(steps, "p") if item.relationship_id == "p/0"
    ]
    scorer = replay(facts, POLICY)
    scorer.trust_changes.clear()
    scorer.phase_changes.clear()
    text = orjson.dumps(dump_state(scorer))
    _same_state(load_state(orjson.loads(text), POLICY), scorer)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(PolicyError, match="format"):
        load_state([99, "v1"], POLICY)
    with pytest.raises(PolicyError, match="format"):
        load_state({"format": 7}, POLICY)
