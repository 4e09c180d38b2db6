"""`relledger replay` refuses questions with no true answer instead of answering an empty
standing, and says which policy it used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_process import relledger, with_stories
from conformance import EXPECTED

LIVE = Path(__file__).parents[1] / "domain" / "policies" / "v1.toml"


@pytest.fixture
def loaded(store_url: str) -> str:
    return with_stories(store_url)


def test_as_of_before_the_first_event_and_a_version_beyond_the_last_are_errors(
    loaded: str,
) -> None:
    first = relledger(loaded, "replay", "acme/steady", "--version", "1", "--json")
    assert json.loads(first.stdout)["events"] == 1
    early = relledger(loaded, "replay", "acme/steady", "--as-of", "2000-01-01T00:00:00Z")
    assert early.returncode == 2 and early.stdout == ""
    assert early.stderr.strip().splitlines() == [
        "error: 'acme/steady' did not exist yet as of 2000-01-01T00:00:00+00:00 (its first "
        "interaction occurred at 2025-01-06T09:01:00+00:00)"
    ]
    last = EXPECTED["acme/steady"]["events"]
    beyond = relledger(loaded, "replay", "acme/steady", "--version", str(last + 1), "--json")
    assert beyond.returncode == 2 and beyond.stdout == ""
    assert f"beyond its last record ({last})" in beyond.stderr
    at_last = relledger(loaded, "replay", "acme/steady", "--version", str(last), "--json")
    assert at_last.returncode == 0 and json.loads(at_last.stdout)["events"] == last


def test_replay_says_which_policy_it_used(loaded: str, tmp_path: Path) -> None:
    live = relledger(loaded, "replay", "acme/steady")
    assert live.returncode == 0 and "policy: v1 (live)" in live.stdout
    assert json.loads(relledger(loaded, "replay", "acme/steady", "--json").stdout)["policy"] == "v1"
    other = tmp_path / "gentle.toml"
    other.write_text(LIVE.read_text().replace('version = "v1"', 'version = "gentle"'))
    named = relledger(loaded, "replay", "acme/steady", "--policy", str(other))
    assert named.returncode == 0 and f"policy: gentle (from {other})" in named.stdout


def test_replay_prints_csv_like_show(loaded: str) -> None:
    """`--csv` gives the standing's rows as `show --csv` does, the policy note on stderr."""
    replayed = relledger(loaded, "replay", "acme/steady", "--csv")
    shown = relledger(loaded, "show", "acme/steady", "--csv")
    assert replayed.returncode == 0 and shown.returncode == 0, replayed.stderr
    assert replayed.stdout == shown.stdout and replayed.stdout.count("\n") > 5
    assert "policy: v1 (live)" in replayed.stderr
    both = relledger(loaded, "replay", "acme/steady", "--csv", "--json")
    assert both.returncode == 2 and "choose one" in both.stderr
