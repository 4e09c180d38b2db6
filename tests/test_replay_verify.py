"""`replay` verifies what it replays, over the CLI and HTTP alike, on both backends.

A replay folds a relationship's stored events: if those fail verification, the figures
would look authoritative while resting on an edited history. So a broken chain refuses
the replay with its break on one line (exit 1, HTTP 409), and an auditor who wants to
look anyway asks for an unverified replay, which says so.
"""

from __future__ import annotations

import json
from pathlib import Path

from api_server import serving_api
from conformance import EXPECTED
from tamper import StoredRows, cli, loaded

from service.keys import Role

STEADY = "/v1/relationships/acme%2Fsteady"


def _edit_tenth(rows: StoredRows) -> int:
    """Edit acme/steady's tenth record (its hash left as it was); its version."""
    victim = rows.rows("acme/steady")[9]
    rows.edit(victim, lambda state: state["interaction"].update(actor="supplier"))
    return victim.version


def test_an_intact_replay_says_it_was_verified(store_url: str) -> None:
    loaded(store_url)
    replayed = cli(store_url, "replay", "acme/steady", "--json")
    assert replayed.exit_code == 0, replayed.output
    answer = json.loads(replayed.stdout)
    assert answer["verified"] is True and answer["events"] == EXPECTED["acme/steady"]["events"]
    text = cli(store_url, "replay", "acme/steady")
    assert text.exit_code == 0 and "unverified" not in text.output


def test_a_broken_chain_refuses_the_replay_in_one_line(store_url: str) -> None:
    version = _edit_tenth(loaded(store_url))
    refused = cli(store_url, "replay", "acme/steady")
    assert refused.exit_code == 1
    assert refused.stdout == ""
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(
        f"error: acme/steady #{version}: content does not match its hash (this record was "
        "edited, or the one before it rewritten): the history of 'acme/steady' fails "
        "verification, so it is not replayed"
    )
    assert cli(store_url, "replay", "acme/steady", "--json").exit_code == 1
    # The records before the break still verify: replaying only those is allowed.
    early = cli(store_url, "replay", "acme/steady", "--version", str(version - 1), "--json")
    assert early.exit_code == 0 and json.loads(early.stdout)["verified"] is True


def test_an_unverified_replay_is_labelled_so(store_url: str) -> None:
    _edit_tenth(loaded(store_url))
    looked = cli(store_url, "replay", "acme/steady", "--no-verify")
    assert looked.exit_code == 0
    assert looked.stderr.startswith("unverified: replayed from the stored events of acme/steady")
    answer = json.loads(cli(store_url, "replay", "acme/steady", "--no-verify", "--json").stdout)
    assert answer["verified"] is False
    assert answer["events"] == EXPECTED["acme/steady"]["events"]


def test_a_log_reordered_behind_the_chain_refuses_the_replay(store_url: str) -> None:
    """Every hash still checks in version order; the log the read models fold does not."""
    rows = loaded(store_url)
    decline = rows.rows("acme/decline")
    rows.swap(decline[4], decline[5])
    refused = cli(store_url, "replay", "acme/decline")
    assert refused.exit_code == 1
    assert "acme/decline #6: out of order in the log" in refused.stderr
    assert cli(store_url, "replay", "acme/steady").exit_code == 0


def test_the_api_replay_follows_the_same_rule(store_url: str, tmp_path: Path) -> None:
    rows = loaded(store_url)
    for api in serving_api(store_url, tmp_path):
        verified = api.get(f"{STEADY}/replay", Role.AUDITOR)
        assert verified.status_code == 200 and verified.json()["verified"] is True
        version = _edit_tenth(rows)
        refused = api.get(f"{STEADY}/replay", Role.AUDITOR)
        assert refused.status_code == 409
        body = refused.json()
        assert body["error"] == "Unverified"
        assert body["detail"].startswith(f"acme/steady #{version}: content does not match")
        unverified = api.get(f"{STEADY}/replay", Role.AUDITOR, params={"verify": "false"})
        assert unverified.status_code == 200
        assert unverified.json()["verified"] is False
        assert unverified.json()["events"] == verified.json()["events"]
        early = api.get(f"{STEADY}/replay", Role.AUDITOR, params={"version": version - 1})
        assert early.status_code == 200 and early.json()["verified"] is True
