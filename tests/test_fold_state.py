"""A fold resumed from its saved state gives exactly what an uninterrupted fold gives."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_replay_properties import _stream, step

from domain.errors import PolicyError
from domain.fold.facts import Fact
from domain.fold.scorer import Scorer, replay
from domain.fold.state import dump_state, load_state
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
