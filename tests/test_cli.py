"""The CLI contract, end to end on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from conformance import DATA, EXPECTED, FAR_SKEW, RECORDED_AT, ingest_file
from typer.testing import CliRunner

from consumers.jsonl import ingest_lines
from relledger.cli import app
from service.schema import SCHEMA_VERSION
from service.store import open_ledger

runner = CliRunner()


@pytest.fixture
def cli(store_url: str):
    def invoke(*args: str, stdin: str | None = None):
        if args[0] == "ingest":
            args = ("ingest", *FAR_SKEW, *args[1:])
        return runner.invoke(app, ["--db", store_url, *args], input=stdin)

    return invoke


@pytest.fixture
def loaded(cli):
    result = cli("ingest", str(DATA / "events.jsonl"), str(DATA / "invalid.jsonl"))
    assert result.exit_code == 1, result.output  # invalid.jsonl has rejected lines
    return cli


def test_ingest_reports_each_rejected_line_and_records_the_rest(cli, tmp_path: Path) -> None:
    good = cli("ingest", str(DATA / "events.jsonl"))
    assert good.exit_code == 0, good.output
    total = sum(story["events"] for story in EXPECTED.values())
    assert f"recorded {total} (late 42), duplicates 62, conflicts 0, rejected 0" in good.stdout

    result = cli("ingest", str(DATA / "invalid.jsonl"))
    assert result.exit_code == 1
    assert "line 1: occurred_at: must carry a timezone offset" in result.stderr
    assert "line 4: json: not valid JSON" in result.stderr
    assert "line 6: colour: unknown field" in result.stderr
    assert "line 8: currency: relationship 'acme/steady' is kept in EUR, not USD" in result.stderr
    assert "line 10: parties: relationship 'acme/steady' is between" in result.stderr
    assert "recorded 0 (late 0), duplicates 0, conflicts 0, rejected 11" in result.stdout

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        (DATA / "invalid.jsonl").read_text().splitlines()[3]
        + "\n"
        + (DATA / "events.jsonl").read_text().splitlines()[0]
        + "\n"
    )
    partial = cli("ingest", str(mixed))
    assert partial.exit_code == 1  # one bad line, yet the good one is not lost
    assert "duplicates 1, conflicts 0, rejected 1" in partial.stdout


def test_ingest_reads_stdin(cli) -> None:
    text = (DATA / "events.jsonl").read_text().splitlines()[:20]
    result = cli("ingest", "-", stdin="\n".join(text) + "\n")
    assert result.exit_code == 0, result.output
    assert "rejected 0" in result.stdout


def test_show_json_is_the_documented_object(loaded) -> None:
    result = loaded("show", "acme/steady", "--json")
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert list(view) == [
        "relationship_id",
        "phase",
        "stage",
        "connection",
        "trust",
        "credibility_lost",
        "cycle",
        "events",
        "late_events",
        "retracted",
        "fairness",
        "policy",
        "parties",
        "currency",
        "first_event_at",
        "last_event_at",
    ]
    expected = EXPECTED["acme/steady"]
    assert view["parties"] == {"supplier": "acme", "customer": "steady"}  # its first event's
    story = [
        event
        for event in map(json.loads, (DATA / "events.jsonl").read_text().splitlines())
        if event["relationship_id"] == "acme/steady"
    ]
    clocks = [max(event["occurred_at"] for event in story[: n + 1]) for n in range(len(story))]
    late = sum(1 for n in range(1, len(story)) if story[n]["occurred_at"] < clocks[n - 1])
    assert view["currency"] == "EUR" and view["late_events"] == late > 0
    assert view["first_event_at"] == min(event["occurred_at"] for event in story)
    assert view["last_event_at"] == max(event["occurred_at"] for event in story)
    assert view["phase"] == "commitment" and view["policy"] == "v1"
    assert view["trust"] == pytest.approx(expected["trust"], abs=1e-4)
    assert view["fairness"] == expected["fairness"]
    assert loaded("show", "acme/fraud", "--json").stdout.count('"credibility_lost": true') == 1


def test_human_show_and_histories(loaded) -> None:
    assert "commitment" in loaded("show", "acme/steady").stdout
    trust = json.loads(loaded("trust-history", "acme/fraud", "--json").stdout)
    assert len(trust) == EXPECTED["acme/fraud"]["trust_changes"]
    breach = next(change for change in trust if change["rule"] == "breach")
    assert breach["after"] == pytest.approx(breach["before"] * 0.2, abs=1e-3)
    assert set(breach) == {"event_id", "occurred_at", "rule", "before", "after", "delta", "policy"}
    phases = json.loads(loaded("phase-history", "acme/revival", "--json").stdout)
    assert [p["to"] for p in phases] == EXPECTED["acme/revival"]["phase_path"]
    assert phases[0]["from"] is None
    assert {p["rule"] for p in phases} >= {"termination", "revival"}
    assert "breach" in loaded("trust-history", "acme/fraud").stdout


def test_replay_as_of_version_and_policy(loaded, tmp_path: Path) -> None:
    now = json.loads(loaded("replay", "acme/steady", "--json").stdout)
    assert now.pop("verified") is True  # replay checked the chain of what it folded
    assert now == json.loads(loaded("show", "acme/steady", "--json").stdout)
    early = json.loads(
        loaded("replay", "acme/steady", "--as-of", "2025-01-20T00:00:00Z", "--json").stdout
    )
    assert early["events"] < now["events"] and early["phase"] != "commitment"
    first3 = json.loads(loaded("replay", "acme/steady", "--version", "3", "--json").stdout)
    assert first3["events"] == 3
    harsh = tmp_path / "harsh.toml"
    text = (Path(__file__).parents[1] / "domain/policies/v1.toml").read_text()
    harsh.write_text(
        text.replace('version = "v1"', 'version = "harsh"').replace(
            "gain_rate = 5.0", "gain_rate = 2.0"
        )
    )
    other = json.loads(loaded("replay", "acme/steady", "--policy", str(harsh), "--json").stdout)
    assert other["policy"] == "harsh" and other["trust"] < now["trust"]
    naive = loaded("replay", "acme/steady", "--as-of", "2025-01-20T00:00:00")
    assert naive.exit_code == 2 and "timezone" in naive.output


def test_list_filters_by_phase_and_stage(loaded) -> None:
    everything = json.loads(loaded("list", "--json").stdout)["items"]
    assert len(everything) == len(EXPECTED)
    committed = json.loads(loaded("list", "--phase", "commitment", "--json").stdout)["items"]
    assert [v["relationship_id"] for v in committed] == sorted(
        name for name, story in EXPECTED.items() if story["phase"] == "commitment"
    )
    declining = json.loads(loaded("list", "--stage", "decline", "--json").stdout)["items"]
    assert {v["relationship_id"] for v in declining} == {
        name for name, story in EXPECTED.items() if story["stage"] == "decline"
    }
    assert loaded("list", "--phase", "bliss").exit_code == 2


def test_unknown_relationship_exits_2(loaded) -> None:
    for command in ("show", "trust-history", "phase-history", "replay", "verify"):
        result = loaded(command, "acme/nobody")
        assert result.exit_code == 2, command
        assert "no relationship 'acme/nobody'" in result.stderr


def test_verify_passes_on_an_intact_ledger(loaded) -> None:
    result = loaded("verify")
    assert result.exit_code == 0
    assert "41 relationships: intact" in result.stdout


def test_unreadable_store_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("this is not a database at all, just some text")
    result = runner.invoke(app, ["--db", f"sqlite:///{junk}", "show", "x"])
    assert result.exit_code == 3
    assert "not an SQLite database" in result.stderr
    missing = runner.invoke(app, ["--db", f"sqlite:///{tmp_path}/none.db", "show", "x"])
    assert missing.exit_code == 3 and "no relledger store at" in missing.stderr
    refused = runner.invoke(app, ["--db", "postgresql://nobody@127.0.0.1:1/none", "show", "x"])
    assert refused.exit_code == 3 and "cannot reach the store" in refused.stderr
    assert not isinstance(refused.exception, Exception) or isinstance(refused.exception, SystemExit)


def test_store_from_environment_and_demo_in_a_real_process(tmp_path: Path) -> None:
    env = {**os.environ, "RELLEDGER_DB": f"sqlite:///{tmp_path}/env.db"}
    demo = subprocess.run(
        [sys.executable, "-m", "relledger", "demo", "--relationships", "12", "--events", "20"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert "demo data set" in demo.stdout and "largest trust drops" in demo.stdout
    assert "rejected 0" in demo.stdout
    assert (tmp_path / "env.db").exists()
    listed = subprocess.run(
        [sys.executable, "-m", "relledger", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert json.loads(listed.stdout)["total"] == 12


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    for command in (
        "ingest",
        "show",
        "trust-history",
        "phase-history",
        "replay",
        "list",
        "verify",
        "demo",
        "at-risk",
        "stats",
        "project",
        "projections",
        "consume",
        "publish",
    ):
        assert command in result.stdout


def test_read_model_commands(loaded) -> None:
    status = json.loads(loaded("projections", "status", "--json").stdout)
    assert status["lag"] == 0 and status["generation"] == 1 and status["policy"] == "v1"
    counts = json.loads(loaded("stats", "--json").stdout)["distribution"]
    assert counts["phase"]["commitment"] == sum(
        1 for story in EXPECTED.values() if story["phase"] == "commitment"
    )
    assert sum(counts["stage"].values()) == len(EXPECTED)
    page = json.loads(loaded("list", "--sort", "trust", "--desc", "--limit", "2", "--json").stdout)[
        "items"
    ]
    top = sorted(EXPECTED.items(), key=lambda pair: (-pair[1]["trust"], pair[0]))[:2]
    assert [v["relationship_id"] for v in page] == [name for name, _ in top]
    risky = json.loads(loaded("at-risk", "--since", "2020-01-01T00:00:00Z", "--json").stdout)
    assert risky and all(item["net_change"] < 0 for item in risky)
    assert all(cause["delta"] < 0 for item in risky for cause in item["causes"])
    check = loaded("projections", "rebuild", "--check")
    assert check.exit_code == 0 and "0 difference(s)" in check.stdout, check.output
    rebuilt = loaded("projections", "rebuild")
    assert "generation 3 is live" in rebuilt.stdout, rebuilt.output  # 2 went to --check
    assert json.loads(loaded("show", "acme/steady", "--json").stdout)["policy"] == "v1"


def test_show_says_when_read_models_lag_and_project_catches_up(cli, store_url: str) -> None:
    ingest_file(open_ledger(store_url))  # recorded without projecting
    missing = cli("show", "acme/steady")  # migrated, never projected: unknown, and why
    assert missing.exit_code == 2 and "1270 events behind the log" in missing.stderr
    assert "(run relledger project)" in missing.stderr
    assert cli("project").exit_code == 0
    more = (
        '{"event_id":"x1","source":"crm","relationship_id":"acme/steady","occurred_at":'
        '"2026-01-01T00:00:00Z","kind":"communication","actor":"customer"}\n'
    )
    ingest_lines(open_ledger(store_url), [more.encode()], clock=lambda: RECORDED_AT)
    lagging = cli("show", "acme/steady", "--json")
    assert "1 events behind" in lagging.stderr
    assert json.loads(lagging.stdout)["events"] == EXPECTED["acme/steady"]["events"]
    caught_up = cli("project")
    assert "(1 events applied)" in caught_up.stdout
    assert json.loads(cli("show", "acme/steady", "--json").stdout)["events"] == (
        EXPECTED["acme/steady"]["events"] + 1
    )


def test_rebuild_on_a_store_never_projected(cli, store_url: str) -> None:
    ingest_file(open_ledger(store_url))  # recorded without projecting
    result = cli("projections", "rebuild")
    assert result.exit_code == 0, result.output
    assert "0 difference(s) from generation 1 (policy v1); generation 2 is live" in (result.stdout)
    assert (
        json.loads(cli("show", "acme/steady", "--json").stdout)["trust"]
        == (EXPECTED["acme/steady"]["trust"])
    )


def _tables(url: str) -> list[str]:
    """The tables in a test store, read with the database's own catalogue."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return []
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return sorted(name for (name,) in rows)
    schema = url.split("schema=")[1]
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return sorted(name for (name,) in rows)


def test_commands_refuse_a_store_never_migrated_and_create_nothing(empty_store_url: str) -> None:
    story = (DATA / "events.jsonl").read_text().splitlines()[0] + "\n"
    for args, stdin in ((["show", "acme/steady"], None), (["ingest", "-"], story)):
        result = runner.invoke(app, ["--db", empty_store_url, *args], input=stdin)
        assert result.exit_code == 3, result.output
        assert result.stderr.startswith("error: ")
        assert "relledger migrate" in result.stderr
        assert _tables(empty_store_url) == []

    first = runner.invoke(app, ["--db", empty_store_url, "migrate"])
    assert first.exit_code == 0
    assert f"migrated from a new store to schema version {SCHEMA_VERSION}" in first.stdout
    again = runner.invoke(app, ["--db", empty_store_url, "migrate"])
    assert again.exit_code == 0 and f"already at schema version {SCHEMA_VERSION}" in again.stdout
    assert "relledger_schema" in _tables(empty_store_url)
    recorded = runner.invoke(app, ["--db", empty_store_url, "ingest", *FAR_SKEW, "-"], input=story)
    assert recorded.exit_code == 0 and "recorded 1 " in recorded.stdout


def test_a_database_of_something_else_is_not_taken_for_a_store(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    result = runner.invoke(app, ["--db", f"sqlite:///{other}", "list"])
    assert result.exit_code == 3
    assert "is not a relledger store (or was never migrated): run relledger migrate" in (
        result.stderr
    )
    assert _tables(f"sqlite:///{other}") == ["invoices"]


def test_list_by_party_finds_the_relationships_of_either_side(loaded) -> None:
    """`acme` supplies every story; each customer has its own relationship."""
    stories = [json.loads(line) for line in (DATA / "events.jsonl").read_text().splitlines()]
    firsts = {item["relationship_id"]: item["parties"] for item in stories if "parties" in item}
    as_supplier = json.loads(loaded("list", "--party", "acme", "--limit", "500", "--json").stdout)[
        "items"
    ]
    assert {item["relationship_id"] for item in as_supplier} == {
        rid for rid, parties in firsts.items() if "acme" in parties.values()
    }
    steady = json.loads(loaded("list", "--party", "steady", "--json").stdout)["items"]
    assert [item["relationship_id"] for item in steady] == ["acme/steady"]
    assert json.loads(loaded("list", "--party", "nobody", "--json").stdout)["items"] == []
