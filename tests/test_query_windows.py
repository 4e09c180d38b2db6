"""`at-risk` over a period and `list --sort`, through the CLI, on SQLite and PostgreSQL.

Five customers of acme in the first half of 2025, each losing (or gaining) trust at its
own moments. Every figure below is worked out by hand from docs/policy.md (v1): a gain of
strength s closes the gap to 100 by 5·s %, a loss of severity v takes 10·v % of trust, a
breach leaves 20 %. Gaps between events stay under 30 days while trust is above 30, so no
dormancy decay creeps in.

    harbor   contact, contact, purchase met 200 (30 -> 33.5), contact,
             purchase failed 100 on 3 Feb (33.5 -> 26.8: -6.7)
    mixed    contact, purchase exceeded 100 on 1 Feb (30 -> 37: +7),
             disagreement on 10 Feb (37 -> 33.3: -3.7), referral on 12 Feb (-> 43.305: +10.005)
    orchard  promise, promise broken on 20 Mar (30 -> 21: -9), supplier contribution 50
    quarry   contact, promise, disagreement on 20 Apr (30 -> 27: -3), contact, contact,
             breach on 15 Jun (27 -> 5.4: -21.6)
    steady   purchase met 100 on 10 Jan (30 -> 33.5), purchase met 100 perceived at 90
             on 20 Jan (-> 36.825)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from relledger.cli import app

runner = CliRunner()

Invoke = Callable[..., Result]

# (event_id, occurred_at, kind, more fields): each relationship's story, told in order.
STORIES: dict[str, list[tuple[str, str, str, dict[str, Any]]]] = {
    "acme/harbor": [
        ("h1", "2025-01-02T10:00:00Z", "contact", {}),
        ("h2", "2025-01-03T10:00:00Z", "contact", {}),
        ("h3", "2025-01-06T10:00:00Z", "purchase", {"amount": "200.00", "outcome": "met"}),
        ("h4", "2025-01-20T10:00:00Z", "contact", {}),
        ("h5", "2025-02-03T10:00:00Z", "purchase", {"amount": "100.00", "outcome": "failed"}),
    ],
    "acme/mixed": [
        ("m1", "2025-01-28T09:00:00Z", "contact", {}),
        ("m2", "2025-02-01T09:00:00Z", "purchase", {"amount": "100.00", "outcome": "exceeded"}),
        ("m3", "2025-02-10T09:00:00Z", "disagreement", {}),
        ("m4", "2025-02-12T09:00:00Z", "referral", {}),
    ],
    "acme/orchard": [
        ("o1", "2025-03-10T12:00:00Z", "promise", {}),
        ("o2", "2025-03-20T12:00:00Z", "promise_broken", {"ref": "o1"}),
        ("o3", "2025-03-21T12:00:00Z", "contribution", {"actor": "supplier", "amount": "50.00"}),
    ],
    "acme/quarry": [
        ("q1", "2025-04-01T08:00:00Z", "contact", {}),
        ("q2", "2025-04-05T08:00:00Z", "promise", {}),
        ("q3", "2025-04-20T08:00:00Z", "disagreement", {}),
        ("q4", "2025-05-10T08:00:00Z", "contact", {}),
        ("q5", "2025-05-30T08:00:00Z", "contact", {}),
        ("q6", "2025-06-15T08:00:00Z", "breach", {"actor": "supplier"}),
    ],
    "acme/steady": [
        ("s1", "2025-01-10T15:00:00Z", "purchase", {"amount": "100.00", "outcome": "met"}),
        (
            "s2",
            "2025-01-20T15:00:00Z",
            "purchase",
            {"amount": "100.00", "outcome": "met", "perceived_value": "90.00"},
        ),
    ],
}

TRUST_NOW = {
    "acme/harbor": 33.5 * 0.8,
    "acme/mixed": 37 * 0.9 + 0.15 * (100 - 37 * 0.9),
    "acme/orchard": 30 * 0.7,
    "acme/quarry": 27 * 0.2,
    "acme/steady": 33.5 + 0.05 * (100 - 33.5),
}

# Fairness F = (E_s - E_c) / (E_s + E_c), E = received / contributed (1 when both are 0).
FAIRNESS = {
    "acme/harbor": Fraction(1 - Fraction(2, 3)) / (1 + Fraction(2, 3)),  # E_c = 200/300
    "acme/mixed": (1 - Fraction(6, 5)) / (1 + Fraction(6, 5)),  # E_c = 120/100
    "acme/orchard": Fraction(0 - 1, 0 + 1),  # E_s = 0/50, E_c = 1 (nothing either way)
    "acme/quarry": Fraction(0),  # no money at all
    "acme/steady": (1 - Fraction(19, 20)) / (1 + Fraction(19, 20)),  # E_c = 190/200
}


def _lines() -> str:
    """The stories as the CRM and billing would send them, interleaved by time."""
    messages = []
    for relationship_id, story in STORIES.items():
        customer = relationship_id.split("/")[1]
        for event_id, occurred_at, kind, more in story:
            message: dict[str, Any] = {
                "event_id": event_id,
                "source": "billing" if "amount" in more else "crm",
                "relationship_id": relationship_id,
                "occurred_at": occurred_at,
                "kind": kind,
                "actor": "customer",
                "parties": {"supplier": "acme", "customer": customer},
                **more,
            }
            if "amount" in more:
                message["currency"] = "EUR"
            messages.append(message)
    messages.sort(key=lambda message: message["occurred_at"])
    return "".join(json.dumps(message) + "\n" for message in messages)


@pytest.fixture
def cli(store_url: str, tmp_path: Path) -> Invoke:
    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["--db", store_url, *args])

    events = tmp_path / "first-half-2025.jsonl"
    events.write_text(_lines())
    ingested = invoke("ingest", str(events))
    assert ingested.exit_code == 0, ingested.output
    assert "recorded 20 (late 0)" in ingested.stdout and "rejected 0" in ingested.stdout
    return invoke


def at_risk(cli: Invoke, *period: str) -> list[dict[str, Any]]:
    result = cli("at-risk", *period, "--json")
    assert result.exit_code == 0, result.output
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def summary(found: list[dict[str, Any]]) -> list[tuple[str, float, list[tuple[str, str, float]]]]:
    return [
        (
            item["relationship_id"],
            item["net_change"],
            [(cause["event_id"], cause["rule"], cause["delta"]) for cause in item["causes"]],
        )
        for item in found
    ]


def expect(*rows: tuple[str, float, list[tuple[str, str, float]]]) -> list[Any]:
    """The rows of `summary`, with figures compared to 4 places as they are printed."""
    return [
        (name, pytest.approx(net, abs=1e-4), [(e, r, pytest.approx(d, abs=1e-4)) for e, r, d in c])
        for name, net, c in rows
    ]


# --- at-risk over a period --------------------------------------------------------------


def test_february_shows_the_failed_order_but_not_the_dispute_that_was_made_up(
    cli: Invoke,
) -> None:
    found = at_risk(cli, "--since", "2025-02-01T00:00:00Z", "--until", "2025-02-28T23:59:59Z")
    # harbor's January gain (+3.5) is outside; mixed fell 3.7 but gained 17.005 that month;
    # orchard's (March) and quarry's (April, June) falls are after it
    assert summary(found) == expect(("acme/harbor", -6.7, [("h5", "loss:failed", -6.7)]))
    assert found[0]["trust"] == pytest.approx(TRUST_NOW["acme/harbor"], abs=1e-4)
    assert found[0]["phase"] == "exploration"


def test_a_week_that_holds_only_the_dispute(cli: Invoke) -> None:
    found = at_risk(cli, "--since", "2025-02-05T00:00:00Z", "--until", "2025-02-11T00:00:00Z")
    # the purchase before (1 Feb) and the referral after (12 Feb) are outside the week
    assert summary(found) == expect(("acme/mixed", -3.7, [("m3", "loss:disagreement", -3.7)]))
    assert found[0]["trust"] == pytest.approx(TRUST_NOW["acme/mixed"], abs=1e-4)


def test_spring_ranks_the_largest_fall_first(cli: Invoke) -> None:
    found = at_risk(cli, "--since", "2025-03-01T00:00:00Z", "--until", "2025-05-31T23:59:59Z")
    # quarry's breach (15 Jun) comes after: within the period it lost only 3
    assert summary(found) == expect(
        ("acme/orchard", -9.0, [("o2", "loss:promise_broken", -9.0)]),
        ("acme/quarry", -3.0, [("q3", "loss:disagreement", -3.0)]),
    )


def test_since_without_until_runs_to_the_end(cli: Invoke) -> None:
    found = at_risk(cli, "--since", "2025-06-01T00:00:00Z")
    assert summary(found) == expect(("acme/quarry", -21.6, [("q6", "breach", -21.6)]))
    assert found[0]["trust"] == pytest.approx(TRUST_NOW["acme/quarry"], abs=1e-4)
    assert found[0]["phase"] == "dissolution"


def test_the_whole_half_year_nets_each_relationship(cli: Invoke) -> None:
    found = at_risk(cli, "--since", "2025-01-01T00:00:00Z", "--until", "2025-06-30T23:59:59Z")
    assert summary(found) == expect(
        ("acme/quarry", -24.6, [("q6", "breach", -21.6), ("q3", "loss:disagreement", -3.0)]),
        ("acme/orchard", -9.0, [("o2", "loss:promise_broken", -9.0)]),
        ("acme/harbor", 3.5 - 6.7, [("h5", "loss:failed", -6.7)]),
    )  # mixed and steady end the half year above where they started


def test_both_ends_of_the_period_are_included(cli: Invoke) -> None:
    moment = "2025-03-20T12:00:00Z"  # orchard's broken promise
    assert summary(at_risk(cli, "--since", moment, "--until", moment)) == expect(
        ("acme/orchard", -9.0, [("o2", "loss:promise_broken", -9.0)])
    )
    assert at_risk(cli, "--since", "2025-03-01T00:00:00Z", "--until", "2025-03-20T11:59:59Z") == []
    assert at_risk(cli, "--since", "2025-03-20T12:00:01Z", "--until", "2025-04-19T23:59:59Z") == []


def test_the_period_may_be_given_in_another_zone(cli: Invoke) -> None:
    # 11:00 in Paris (winter time) is harbor's failed order at 10:00 UTC
    found = at_risk(
        cli, "--since", "2025-02-03T11:00:00+01:00", "--until", "2025-02-03T11:00:00+01:00"
    )
    assert summary(found) == expect(("acme/harbor", -6.7, [("h5", "loss:failed", -6.7)]))
    after = at_risk(cli, "--since", "2025-02-03T11:00:01+01:00", "--until", "2025-02-09T00:00Z")
    assert after == []


def test_the_human_table_names_the_period_and_the_causes(cli: Invoke, store_url: str) -> None:
    """On a terminal (rich's TTY_COMPATIBLE=1, a real process): the title names the period."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "relledger",
            "--db",
            store_url,
            "at-risk",
            "--since",
            "2025-06-01T00:00:00Z",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TTY_COMPATIBLE": "1", "COLUMNS": "200", "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "since 2025-06-01T00:00:00Z" in result.stdout
    assert "acme/quarry" in result.stdout and "q6 breach -21.600" in result.stdout
    assert "acme/orchard" not in result.stdout


# --- list --sort ------------------------------------------------------------------------


def listed(cli: Invoke, *options: str) -> list[dict[str, Any]]:
    result = cli("list", *options, "--json")
    assert result.exit_code == 0, result.output
    found: list[dict[str, Any]] = json.loads(result.stdout)["items"]
    return found


def names(found: list[dict[str, Any]]) -> list[str]:
    return [item["relationship_id"] for item in found]


def ranked(figure: dict[str, Any]) -> list[str]:
    """The relationships from smallest to largest figure (all figures differ)."""
    assert len(set(figure.values())) == len(figure)
    return sorted(figure, key=lambda name: figure[name])


EVENTS = {name: len(story) for name, story in STORIES.items()}
LAST_EVENT = {name: max(at for _, at, _, _ in story) for name, story in STORIES.items()}


@pytest.mark.parametrize("desc", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize(
    ("key", "figure"),
    [("events", EVENTS), ("last_event_us", LAST_EVENT), ("fairness_index", FAIRNESS)],
)
def test_list_sorts_by_each_figure(
    cli: Invoke, key: str, figure: dict[str, Any], desc: bool
) -> None:
    expected = ranked(figure)[::-1] if desc else ranked(figure)
    assert expected != sorted(STORIES) and expected != sorted(STORIES, reverse=True)
    found = listed(cli, "--sort", key, *(["--desc"] if desc else []))
    assert names(found) == expected


def test_the_figures_sorted_on_are_the_ones_shown(cli: Invoke) -> None:
    for item in listed(cli, "--sort", "events"):
        name = item["relationship_id"]
        assert item["events"] == EVENTS[name]
        assert item["fairness"]["index"] == pytest.approx(float(FAIRNESS[name]), abs=1e-4)
        assert item["trust"] == pytest.approx(TRUST_NOW[name], abs=1e-4)


def test_a_page_of_a_sorted_list(cli: Invoke) -> None:
    # the two most recently active relationships after the most recent one
    page = listed(cli, "--sort", "last_event_us", "--desc", "--limit", "2", "--offset", "1")
    assert names(page) == ranked(LAST_EVENT)[::-1][1:3]
    # the most one-sided in the customer's favour
    assert names(listed(cli, "--sort", "fairness_index", "--limit", "1")) == ["acme/orchard"]
