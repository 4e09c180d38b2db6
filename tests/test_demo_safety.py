"""`relledger demo` writes only to a store of its own, and its hints work as printed.

Real processes in a fresh working folder: with no store named it uses
`relledger-demo.db` (never `relledger.db`); each "Next:" line is run exactly as
printed; run again it records nothing; a store holding anything else is refused with
exit 2 and left as it was, on both backends.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

from conformance import DATA, FAR_SKEW

from service.store import ENV_VAR, open_ledger

DEMO = ["demo", "--relationships", "8", "--events", "12"]


def relledger(
    *arguments: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    return subprocess.run(
        [sys.executable, "-m", "relledger", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**clean, **(env or {})},
    )


def _hints(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.split("\nNext:\n", 1)[1].splitlines() if line.strip()]


def test_demo_uses_its_own_file_and_every_hint_runs_as_printed(tmp_path: Path) -> None:
    made = relledger(*DEMO, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "relledger-demo.db").exists()
    assert not (tmp_path / "relledger.db").exists()
    hints = _hints(made.stdout)
    assert len(hints) == 5
    for hint in hints:
        words = shlex.split(hint)
        assert words[:3] == ["relledger", "--db", "sqlite:///relledger-demo.db"]
        ran = relledger(*words[1:], cwd=tmp_path)
        assert ran.returncode == 0, (hint, ran.stderr)
        assert ran.stdout.strip(), hint
    assert not (tmp_path / "relledger.db").exists()  # no hint touched the default store


def test_demo_again_on_its_own_store_records_nothing_and_shows_it(tmp_path: Path) -> None:
    first = relledger(*DEMO, "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["recorded"]["rejected"] == 0 and summary["recorded"]["recorded"] > 0
    assert summary["relationships"] == 8 and summary["store"] == "sqlite:///relledger-demo.db"
    assert len(summary["next"]) == 5 and set(summary["phases"]) >= {"awareness", "commitment"}

    again = relledger(*DEMO, "--seed", "8", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    shown = json.loads(again.stdout)
    assert shown["recorded"] is None and shown["relationships"] == 8
    assert "holds a demo data set already (8 relationships)" in again.stderr
    assert shown["phases"] == summary["phases"]


def test_demo_refuses_a_store_with_other_data_and_leaves_it_as_it_was(
    store_url: str, tmp_path: Path
) -> None:
    recorded = relledger(
        "--db", store_url, "ingest", *FAR_SKEW, str(DATA / "events.jsonl"), cwd=tmp_path
    )
    assert recorded.returncode == 0, recorded.stderr
    refused = relledger("--db", store_url, *DEMO, cwd=tmp_path)
    assert refused.returncode == 2
    assert "holds other data (relationship '" in refused.stderr
    assert "the demo writes only to a new store or a demo's own" in refused.stderr
    assert refused.stdout == ""
    ledger = open_ledger(store_url)
    try:
        assert ledger.head() == 1270
    finally:
        ledger.close()
    through_env = relledger(*DEMO, cwd=tmp_path, env={ENV_VAR: store_url})
    assert through_env.returncode == 2, through_env.stderr
    assert "holds other data" in through_env.stderr


def test_demo_refuses_a_database_that_is_not_a_relledger_store(tmp_path: Path) -> None:
    other = tmp_path / "accounts.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    refused = relledger("--db", f"sqlite:///{other}", *DEMO, cwd=tmp_path)
    assert refused.returncode == 2
    assert "is not a relledger store and holds tables (invoices" in refused.stderr
    with sqlite3.connect(other) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
    assert tables == ["invoices"]  # nothing created in it


def test_demo_into_a_new_store_it_is_named_prints_hints_naming_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/mine.db"
    made = relledger("--db", url, *DEMO, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert all(hint.startswith(f"relledger --db {url} ") for hint in _hints(made.stdout))
    through_env = relledger(*DEMO, cwd=tmp_path, env={ENV_VAR: url})
    assert through_env.returncode == 0  # the demo's own data: shown again
    for hint in _hints(through_env.stdout):  # RELLEDGER_DB names it for the next command too
        assert not hint.startswith("relledger --db")
        ran = relledger(*shlex.split(hint)[1:], cwd=tmp_path, env={ENV_VAR: url})
        assert ran.returncode == 0, (hint, ran.stderr)


def test_hints_name_the_program_as_it_was_run(tmp_path: Path) -> None:
    """Run as `.venv/bin/relledger` with the venv not on PATH (the README's first command),
    the hints say `.venv/bin/relledger ...`, and run as printed from the same directory."""
    script = Path(sys.executable).parent / "relledger"
    path = os.pathsep.join(
        folder for folder in os.environ["PATH"].split(os.pathsep) if Path(folder) != script.parent
    )
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR} | {"PATH": path}
    made = subprocess.run(
        [str(script), *DEMO], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert made.returncode == 0, made.stderr
    hints = _hints(made.stdout)
    assert hints and all(shlex.split(hint)[0] == str(script) for hint in hints)
    for hint in hints:
        ran = subprocess.run(
            shlex.split(hint), capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
        )
        assert ran.returncode == 0 and ran.stdout.strip(), (hint, ran.stderr)
