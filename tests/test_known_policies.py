"""The store keeps every policy its read models were built under: an auditor replays under
any of them by name, and one version name never means two sets of rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conformance import ingest_file
from typer.testing import CliRunner

from relledger.cli import app
from service.ledger_service import LedgerService
from service.policies import PolicyConflict

LIVE = Path(__file__).parents[1] / "domain" / "policies" / "v1.toml"
runner = CliRunner()


def _policy(folder: Path, version: str, gain_rate: str) -> Path:
    path = folder / f"{version}-{gain_rate}.toml"
    path.write_text(
        LIVE.read_text()
        .replace('version = "v1"', f'version = "{version}"')
        .replace("gain_rate = 5.0", f"gain_rate = {gain_rate}")
    )
    return path


@pytest.fixture
def service(store_url: str) -> Iterator[LedgerService]:
    opened = LedgerService.open(store_url)
    ingest_file(opened.ledger)
    opened.catch_up()
    yield opened
    opened.close()


def test_a_policy_the_read_models_were_built_under_stays_known(
    service: LedgerService, tmp_path: Path
) -> None:
    assert [(p["version"], p["live"]) for p in service.policies()] == [("v1", True)]
    service.rebuild(_policy(tmp_path, "cautious", "3.0"), check=False)
    assert [(p["version"], p["live"]) for p in service.policies()] == [
        ("v1", False),
        ("cautious", True),
    ]
    live_now = service.replay("acme/steady")
    under_v1 = service.replay("acme/steady", policy_name="v1")
    assert under_v1 == service.replay("acme/steady", policy_file=LIVE)
    assert (live_now["policy"], under_v1["policy"]) == ("cautious", "v1")
    assert under_v1["trust"] > live_now["trust"]  # v1 gains faster


def test_a_file_reusing_a_known_version_with_other_rules_is_refused_everywhere(
    service: LedgerService, store_url: str, tmp_path: Path
) -> None:
    impostor = _policy(tmp_path, "v1", "9.0")
    before = service.standing("acme/steady")
    with pytest.raises(PolicyConflict, match="'v1' is known in this store with other rules"):
        service.rebuild(impostor, check=False)
    assert service.standing("acme/steady") == before
    for command in (
        ["replay", "acme/steady", "--policy", str(impostor)],
        ["projections", "rebuild", "--policy", str(impostor)],
    ):
        refused = runner.invoke(app, ["--db", store_url, *command])
        assert refused.exit_code == 2, command
        assert "give the file a new version name" in refused.stderr
    same = runner.invoke(app, ["--db", store_url, "replay", "acme/steady", "--policy", str(LIVE)])
    assert same.exit_code == 0  # the same rules under the same name are the same policy


def test_each_known_policy_is_listed_with_its_rules(service: LedgerService, tmp_path: Path) -> None:
    service.rebuild(_policy(tmp_path, "cautious", "3.0"), check=False)
    listed = json.loads(json.dumps(service.policies()))  # JSON-ready, as the API answers it
    assert [p["rules"]["trust"]["gain_rate"] for p in listed] == [5.0, 3.0]
