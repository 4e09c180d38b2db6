"""`relledger policy show` and `policy diff FILE`: the live policy, and what another one
would change (rules side by side, then the figures of every relationship replayed
under both), with one name meaning one set of rules wherever a file is offered."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from cli_process import relledger, with_stories
from conformance import EXPECTED

LIVE = Path(__file__).parents[1] / "domain" / "policies" / "v1.toml"


def _policy(folder: Path, version: str, *changes: tuple[str, str]) -> Path:
    text = LIVE.read_text().replace('version = "v1"', f'version = "{version}"')
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    path = folder / f"{version}.toml"
    path.write_text(text)
    return path


@pytest.fixture
def loaded(store_url: str) -> str:
    return with_stories(store_url)


def test_policy_show_prints_the_live_policy_and_every_rule(loaded: str) -> None:
    shown = json.loads(relledger(loaded, "policy", "show", "--json").stdout)
    rules = tomllib.loads(LIVE.read_text())
    assert (shown["version"], shown["live"]) == ("v1", True)
    assert shown["rules"]["trust.gain_rate"] == rules["trust"]["gain_rate"]
    assert shown["rules"]["phase.commitment_min_trust"] == rules["phase"]["commitment_min_trust"]
    assert len(shown["rules"]) == sum(
        len(value) if isinstance(value, dict) else 1
        for section in rules.values()
        if isinstance(section, dict)
        for value in section.values()
    )
    table = relledger(loaded, "policy", "show")
    assert table.returncode == 0 and "policy v1 (live)" in table.stdout
    assert "trust.gain_rate" in table.stdout


def test_policy_diff_lists_rules_then_the_figures_that_would_change(
    loaded: str, tmp_path: Path
) -> None:
    slow = _policy(tmp_path, "slow", ("gain_rate = 5.0", "gain_rate = 2.0"))
    found = relledger(loaded, "policy", "diff", str(slow), "--limit", "3", "--json")
    assert found.returncode == 0, found.stderr
    diff = json.loads(found.stdout)
    assert (diff["live"], diff["file"]) == ("v1", "slow")
    assert diff["rules"] == [
        {"rule": "trust.gain_rate", "live": 5.0, "file": 2.0, "change": "changed"}
    ]
    relationships = diff["relationships"]
    assert relationships["compared"] == len(EXPECTED)
    assert 3 < relationships["changed"] <= len(EXPECTED)
    listed = relationships["listed"]
    assert len(listed) == 3
    drops = [abs(b - a) for a, b in (item["changes"]["trust"] for item in listed)]
    assert drops == sorted(drops, reverse=True)
    for item in listed:  # each figure is what replay --policy answers
        replayed = json.loads(
            relledger(
                loaded, "replay", item["relationship_id"], "--policy", str(slow), "--json"
            ).stdout
        )
        live, under_file = item["changes"]["trust"]
        assert (live, under_file) == (EXPECTED[item["relationship_id"]]["trust"], replayed["trust"])

    table = relledger(loaded, "policy", "diff", str(slow), "--limit", "2")
    assert table.returncode == 0
    assert "trust.gain_rate" in table.stdout and "changed" in table.stdout
    assert f"{relationships['changed']} of {len(EXPECTED)} relationships" in table.stdout


def test_a_diff_with_the_same_rules_changes_nothing(loaded: str, tmp_path: Path) -> None:
    same = _policy(tmp_path, "same")
    diff = json.loads(relledger(loaded, "policy", "diff", str(same), "--json").stdout)
    assert diff["rules"] == [] and diff["relationships"]["changed"] == 0
    assert diff["relationships"]["listed"] == []


def test_a_file_reusing_a_known_version_with_other_rules_is_refused(
    loaded: str, tmp_path: Path
) -> None:
    impostor = _policy(tmp_path, "v1", ("gain_rate = 5.0", "gain_rate = 9.0"))
    for command in (
        ["policy", "diff", str(impostor)],
        ["replay", "acme/steady", "--policy", str(impostor)],
    ):
        refused = relledger(loaded, *command)
        assert refused.returncode == 2, command
        assert "'v1' is known in this store with other rules" in refused.stderr
        assert refused.stdout == ""
