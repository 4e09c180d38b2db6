"""The pure fold against the conformance stories, without any store in between.

`tests/data/events.jsonl` interleaves the streams of 41 relationships, with
redeliveries and late events. Grouped by relationship (a redelivered
(source, event_id) kept once, arrival order otherwise untouched) and folded
with policy v1, each must give what `tests/data/expected.json` says, figures
that come from an independent implementation of DESIGN.md section 5.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from conformance import DATA, EXPECTED, RECORDED_AT

from domain.contract import parse_interaction
from domain.fold.facts import Fact
from domain.fold.scorer import replay
from domain.policy import Policy

ROOT = Path(__file__).resolve().parent.parent


def _stories() -> dict[str, list[Fact]]:
    """Facts per relationship in arrival order, each (source, event_id) once."""
    stories: dict[str, list[Fact]] = {}
    seen: dict[str, set[tuple[str, str]]] = {}
    with (DATA / "events.jsonl").open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            item = parse_interaction(line, received_at=RECORDED_AT)
            keys = seen.setdefault(item.relationship_id, set())
            if item.key in keys:
                continue
            keys.add(item.key)
            stories.setdefault(item.relationship_id, []).append(Fact.from_interaction(item))
    return stories


STORIES = _stories()


@pytest.fixture(scope="module")
def v1_policy() -> Policy:
    return Policy.from_toml((ROOT / "domain/policies/v1.toml").read_text())


def test_every_expected_relationship_is_in_the_events() -> None:
    assert set(STORIES) == set(EXPECTED)
    assert len(EXPECTED) == 41


def test_the_events_hold_redeliveries_and_late_events() -> None:
    """The data exercises what the grouping must cope with (else the test proves little)."""
    with (DATA / "events.jsonl").open("rb") as handle:
        lines = [line for line in handle if line.strip()]
    assert len(lines) > sum(len(facts) for facts in STORIES.values())
    assert any(
        later.occurred_at < earlier.occurred_at
        for facts in STORIES.values()
        for earlier, later in pairwise(facts)
    )


@pytest.mark.parametrize("relationship_id", list(EXPECTED))
def test_fold_matches_expected(relationship_id: str, v1_policy: Policy) -> None:
    expected = EXPECTED[relationship_id]
    scorer = replay(STORIES[relationship_id], v1_policy)
    standing = scorer.standing()

    assert standing.phase is not None
    assert standing.phase.value == expected["phase"]
    assert standing.stage.value == expected["stage"]
    assert standing.connection.value == expected["connection"]
    assert standing.trust == pytest.approx(expected["trust"], abs=1e-3)
    assert standing.cycle == expected["cycle"]
    assert standing.events == expected["events"]
    assert len(scorer.trust_changes) == expected["trust_changes"]
    assert [change.to_phase.value for change in scorer.phase_changes] == expected["phase_path"]

    fairness = standing.fairness
    totals = fairness.totals
    wanted = expected["fairness"]
    assert round(float(fairness.index), 4) == wanted["index"]
    assert fairness.status.value == wanted["status"]
    money = {
        "value_gap": totals.value_gap,
        "supplier.contributed": totals.supplier_contributed,
        "supplier.received": totals.supplier_received,
        "customer.contributed": totals.customer_contributed,
        "customer.received": totals.customer_received,
    }
    assert all(isinstance(value, Decimal) for value in money.values())
    assert {name: str(value) for name, value in money.items()} == {
        "value_gap": wanted["value_gap"],
        "supplier.contributed": wanted["supplier"]["contributed"],
        "supplier.received": wanted["supplier"]["received"],
        "customer.contributed": wanted["customer"]["contributed"],
        "customer.received": wanted["customer"]["received"],
    }
