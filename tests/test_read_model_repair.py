"""Read models damaged by hand are named in one line and repaired by a rebuild, on both
backends: a stable view redefined under the queries, a tracking record moved back or
past the log's head."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from api_server import running
from conformance import EXPECTED, FAR_SKEW, ingest_file
from read_models import assert_answers_as_folded
from typer.testing import CliRunner, Result

from projections.read_models import SUMMARY
from projections.replay import replay_all
from projections.view import RelationshipView, open_view
from relledger.cli import app
from service.store import open_ledger

runner = CliRunner()
REPAIR = "run relledger projections rebuild --from-zero"


def _cli(store_url: str, *args: str) -> Result:
    return runner.invoke(app, ["--db", store_url, *args])


def _projected(store_url: str) -> None:
    ledger = open_ledger(store_url)
    ingest_file(ledger)
    ledger.close()
    assert _cli(store_url, "project").exit_code == 0


def _trust(store_url: str, relationship_id: str = "acme/steady") -> float:
    shown = _cli(store_url, "show", relationship_id, "--json")
    assert shown.exit_code == 0, shown.output
    return float(json.loads(shown.stdout)["trust"])


def _edit(store_url: str, *statements: str) -> None:
    """Run statements on the store behind relledger's back (`{table}`: the live
    generation's summary table, `{view}`: the stable summary view, `{tracking}`: the
    tracking table, `{real}`: the backend's floating point type)."""
    ledger = open_ledger(store_url)
    try:
        view = open_view(ledger)
        names = {
            "table": view.generation(view.require_live().generation).table("summary"),
            "view": view.dialect.name("relationship_summary"),
            "tracking": view.tracking_table(),
            "real": view.dialect.real,
        }
        with view.transaction() as cursor:
            for statement in statements:
                cursor.execute(view.dialect.sql(statement.format(**names)))
    finally:
        ledger.close()


def _redefine_trust_as_100(store_url: str) -> None:
    columns = ", ".join(
        "CAST(100.0 AS {real}) AS trust" if column == "trust" else column
        for column in SUMMARY.names
    )
    _edit(store_url, "DROP VIEW {view}", f"CREATE VIEW {{view}} AS SELECT {columns} FROM {{table}}")


def _assert_answers_as_a_fresh_fold(store_url: str) -> None:
    ledger = open_ledger(store_url)
    try:
        view: RelationshipView = open_view(ledger)
        for found in replay_all(ledger, view.require_live().policy()):
            assert_answers_as_folded(view, found)
    finally:
        ledger.close()


def test_a_redefined_view_fails_the_check_and_rebuild_or_migrate_put_it_back(
    store_url: str,
) -> None:
    _projected(store_url)
    expected = EXPECTED["acme/steady"]["trust"]
    assert _trust(store_url) == pytest.approx(expected, abs=1e-4)
    _redefine_trust_as_100(store_url)
    assert _trust(store_url) == 100.0  # what a user would see
    checked = _cli(store_url, "projections", "rebuild", "--check")
    assert checked.exit_code == 1
    assert checked.stderr.splitlines()[0] == (
        "differs view relationship_summary: not the definition relledger gives it "
        "(redefined, replaced or dropped by hand), so the queries do not read generation 1 "
        "as it is; a rebuild puts it back"
    )
    assert "1 view(s) redefined" in checked.stdout
    as_json = json.loads(_cli(store_url, "projections", "rebuild", "--check", "--json").stdout)
    assert as_json["redefined_views"] == ["relationship_summary"]
    rebuilt = _cli(store_url, "projections", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert _trust(store_url) == pytest.approx(expected, abs=1e-4)
    assert _cli(store_url, "projections", "rebuild", "--check").exit_code == 0

    _redefine_trust_as_100(store_url)
    assert _cli(store_url, "migrate").exit_code == 0
    assert _trust(store_url) == pytest.approx(expected, abs=1e-4)
    assert _cli(store_url, "projections", "rebuild", "--check").exit_code == 0


def test_a_dropped_view_is_named_too(store_url: str) -> None:
    _projected(store_url)
    _edit(store_url, "DROP VIEW {view}")
    checked = _cli(store_url, "projections", "rebuild", "--check", "--json")
    assert checked.exit_code == 1
    assert json.loads(checked.stdout)["redefined_views"] == ["relationship_summary"]
    assert _cli(store_url, "projections", "rebuild").exit_code == 0
    assert _trust(store_url) == pytest.approx(EXPECTED["acme/steady"]["trust"], abs=1e-4)


def _one_more(tmp_path: Path) -> Path:
    line = {
        "event_id": "e-after-repair",
        "source": "crm",
        "relationship_id": "acme/steady",
        "occurred_at": "2029-04-30T12:00:00Z",
        "kind": "collaboration",
        "actor": "supplier",
    }
    path = tmp_path / "more.jsonl"
    path.write_text(json.dumps(line) + "\n")
    return path


@pytest.mark.parametrize(
    ("position", "problem"),
    [
        pytest.param(
            "50",
            "the read models hold rows up to position 1270 but their tracking record says "
            "50: it was moved back by hand, and projecting would fold those events a second "
            f"time; {REPAIR}",
            id="moved-back",
        ),
        pytest.param(
            "notification_id + 1000",
            "the read models' tracking record says position 2270, past the log's last event "
            "at 1270: it was moved by hand (or events were removed from the log), and new "
            f"events would be skipped; {REPAIR}",
            id="moved-past-the-head",
        ),
    ],
)
def test_a_moved_tracking_record_is_one_line_and_a_rebuild_from_zero_repairs_it(
    store_url: str, tmp_path: Path, position: str, problem: str
) -> None:
    _projected(store_url)
    _edit(
        store_url,
        f"UPDATE {{tracking}} SET notification_id = {position} "
        "WHERE application_name = 'relationships_g1'",
    )
    for command in (["project"], ["projections", "rebuild"]):
        refused = _cli(store_url, *command)
        assert refused.exit_code == 3, command
        assert refused.stderr.strip() == f"error: {problem}", command
    status = _cli(store_url, "projections", "status")
    assert status.exit_code == 3 and f"damaged: {problem}" in status.stderr
    assert json.loads(_cli(store_url, "projections", "status", "--json").stdout)["problem"] == (
        problem
    )
    assert f"note: {problem}" in _cli(store_url, "show", "acme/steady").stderr
    # A new event is recorded, and its projection refused rather than skipped.
    ingested = _cli(store_url, "ingest", *FAR_SKEW, str(_one_more(tmp_path)))
    assert ingested.exit_code == 3
    [line] = ingested.stderr.strip().splitlines()
    assert line.startswith("error: the read models") and line.endswith(REPAIR)
    assert ingested.stdout.startswith("recorded 1 (late 0)")  # stored, and said so

    assert _cli(store_url, "projections", "rebuild", "--from-zero", "--check").exit_code == 2
    repaired = _cli(store_url, "projections", "rebuild", "--from-zero")
    assert repaired.exit_code == 0, repaired.output
    assert "not compared with generation 1 (--from-zero); generation 2 is live" in (repaired.stdout)
    status_after = json.loads(_cli(store_url, "projections", "status", "--json").stdout)
    assert status_after["problem"] is None and status_after["lag"] == 0
    assert status_after["position"] == status_after["head"] == 1271
    steady = json.loads(_cli(store_url, "show", "acme/steady", "--json").stdout)
    assert steady["events"] == EXPECTED["acme/steady"]["events"] + 1
    assert _cli(store_url, "project").exit_code == 0
    assert _cli(store_url, "projections", "rebuild", "--check").exit_code == 0
    _assert_answers_as_a_fresh_fold(store_url)


def test_a_server_over_damaged_read_models_is_not_ready(store_url: str, tmp_path: Path) -> None:
    _projected(store_url)
    with running(store_url, tmp_path / "serve.log") as server:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        _edit(
            store_url,
            "UPDATE {tracking} SET notification_id = 50 "
            "WHERE application_name = 'relationships_g1'",
        )
        answer = httpx.get(f"{server.url}/readyz")
        assert answer.status_code == 503  # a load balancer stops sending it queries
        assert answer.json()["detail"].endswith(REPAIR)
