"""Tamper evidence: `verify` recomputes every chain from the stored rows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conformance import EXPECTED, ingest_file
from typer.testing import CliRunner

from projections.audit import verify_ledger
from relledger.cli import app
from service.schema import migrate
from service.store import open_ledger

runner = CliRunner()


def _ingested(store_url: str):
    migrate(store_url)
    ledger = open_ledger(store_url)
    ingest_file(ledger)
    return ledger


def _verify(db: Path, *args: str):
    return runner.invoke(app, ["--db", f"sqlite:///{db}", "verify", *args])


def _rows(db: Path, relationship: str) -> list[tuple[int, bytes]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT rowid, state FROM stored_events ORDER BY rowid").fetchall()
    return [(rowid, state) for rowid, state in rows if relationship.encode() in state]


def test_an_untouched_ledger_verifies_on_both_backends(store_url: str) -> None:
    report = verify_ledger(_ingested(store_url))
    assert report.intact
    assert report.relationships == 41
    assert len(report.heads["acme/steady"]) == 64


def test_an_edited_amount_is_caught(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ingested(f"sqlite:///{db}").close()
    assert _verify(db).exit_code == 0
    rowid, state = next(
        (rowid, state) for rowid, state in _rows(db, "acme/steady") if b'"amount"' in state
    )
    edited = state.replace(b'"amount":"100.00"', b'"amount":"10.00"', 1)
    assert edited != state
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (edited, rowid))
    result = _verify(db)
    assert result.exit_code == 1
    assert "acme/steady #" in result.stderr and "does not match its hash" in result.stderr
    assert _verify(db, "acme/fraud").exit_code == 0  # the others are intact


def test_a_removed_record_is_caught(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ingested(f"sqlite:///{db}").close()
    rowid, _ = _rows(db, "acme/quarrels")[3]
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM stored_events WHERE rowid = ?", (rowid,))
    result = _verify(db, "acme/quarrels")
    assert result.exit_code == 1
    assert "missing" in result.stderr


def test_reordered_records_are_caught(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ingested(f"sqlite:///{db}").close()
    (first, state_a), (second, state_b) = _rows(db, "acme/decline")[4:6]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (state_b, first))
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (state_a, second))
    result = _verify(db, "--json")
    assert result.exit_code == 1
    assert '"intact": false' in result.stdout


def test_an_unreadable_record_is_reported_not_a_traceback(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _ingested(f"sqlite:///{db}").close()
    rowid, _ = _rows(db, "acme/generous")[1]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (b"{garbage", rowid))
    result = _verify(db)
    assert result.exit_code == 1
    assert "unreadable" in result.stderr
    assert "Traceback" not in result.output


def test_an_unreadable_record_quarantines_its_relationship_not_the_projection(
    tmp_path: Path,
) -> None:
    """Recorded but never projected, then one row is corrupted: `project` must still reach
    the head, set that one relationship aside saying why, and keep the others current."""
    db = tmp_path / "ledger.db"
    _ingested(f"sqlite:///{db}").close()
    rowid, _ = _rows(db, "acme/generous")[1]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (b"{garbage", rowid))
    url = f"sqlite:///{db}"
    projected = runner.invoke(app, ["--db", url, "project"])
    assert projected.exit_code == 0, projected.output
    status = json.loads(runner.invoke(app, ["--db", url, "projections", "status", "--json"]).stdout)
    assert status["lag"] == 0 and status["quarantined"] == 1
    [entry] = status["quarantine"]
    assert entry["position"] == rowid and entry["event_id"] == "(record 2)"
    assert entry["reason"].startswith("CorruptRecord: ")
    generous = json.loads(
        runner.invoke(app, ["--db", url, "show", "acme/generous", "--json"]).stdout
    )
    assert generous["events"] == 1 and generous["quarantined"]["position"] == rowid
    steady = json.loads(runner.invoke(app, ["--db", url, "show", "acme/steady", "--json"]).stdout)
    assert "quarantined" not in steady and steady["trust"] == EXPECTED["acme/steady"]["trust"]
