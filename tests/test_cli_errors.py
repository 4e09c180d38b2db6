"""The CLI's errors, as a user meets them: `relledger` run in a real process.

A read command on something that is not a relledger store (a missing SQLite path, an
empty file, another program's database, a PostgreSQL schema without tables) creates
nothing and changes nothing, and exits 3 with one line naming `relledger migrate`.
A PostgreSQL server that cannot be used is named (host, port, database) with the
server's own reason, within about two seconds.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import PG_URL, fresh_postgres_schema
from servers import unavailable

READS = (
    ["show", "acme/steady"],
    ["list"],
    ["stats"],
    ["at-risk", "--since", "2025-01-01T00:00:00Z"],
    ["trust-history", "acme/steady"],
    ["phase-history", "acme/steady"],
    ["verify"],
    ["replay", "acme/steady"],
    ["checkpoints"],
    ["keys", "list"],
    ["projections", "status"],
)


def relledger(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relledger", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "RELLEDGER_DB": ""},
        timeout=120,
    )


def _refused_with_one_line(result: subprocess.CompletedProcess[str], command: list[str]) -> None:
    assert result.returncode == 3, (command, result.stderr)
    assert result.stdout == "", command
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), command
    assert "relledger migrate" in result.stderr, command


def _files(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir()}


def test_a_missing_sqlite_path_is_not_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nothing-here.db"
    for command in READS:
        _refused_with_one_line(relledger(*command, "--db", url), command)
        assert list(tmp_path.iterdir()) == [], command  # no file, no -wal, no -shm


@pytest.mark.parametrize("kind", ["empty file", "another program's database"])
def test_a_file_that_is_not_a_store_is_left_as_it_was(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "data.db"
    if kind == "empty file":
        path.touch()
    else:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total TEXT)")
            conn.execute("INSERT INTO invoices (total) VALUES ('12.50')")
        conn.close()
    before = _files(tmp_path)
    for command in READS:
        result = relledger("--db", f"sqlite:///{path}", *command)
        _refused_with_one_line(result, command)
        assert "is not a relledger store" in result.stderr, command
    assert _files(tmp_path) == before  # same files, same bytes (no WAL switch, no tables)


@pytest.fixture
def empty_schema() -> Iterator[str]:
    with fresh_postgres_schema() as url:
        yield url


def _pg_tables(url: str) -> list[str]:
    schema = url.split("schema=")[1]
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "UNION ALL SELECT routine_name FROM information_schema.routines "
            "WHERE routine_schema = %s",
            (schema, schema),
        ).fetchall()
    return sorted(name for (name,) in rows)


@pytest.mark.postgres
def test_a_postgresql_schema_without_tables_stays_empty(empty_schema: str) -> None:
    for command in READS:
        _refused_with_one_line(relledger(*command, "--db", empty_schema), command)
        assert _pg_tables(empty_schema) == [], command


# -- PostgreSQL that cannot be used --------------------------------------------------------


def _baseline_s() -> float:
    """How long `relledger` takes to start and do nothing, on this machine now."""
    started = time.monotonic()
    assert relledger("--version").returncode == 0
    return time.monotonic() - started


def _timed(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = relledger(*args)
    return result, time.monotonic() - started


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_closed_port_is_named_with_the_reason_at_once() -> None:
    port = _closed_port()
    baseline = _baseline_s()
    result, took = _timed("list", "--db", f"postgresql://postgres@127.0.0.1:{port}/test")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert f"host 127.0.0.1, port {port}, database test" in result.stderr
    assert "Connection refused" in result.stderr
    assert took < baseline + 1.5


def test_a_server_that_never_answers_is_given_up_on_after_two_seconds() -> None:
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        baseline = _baseline_s()
        result, took = _timed("show", "x", "--db", f"postgresql://postgres@127.0.0.1:{port}/db")
    assert result.returncode == 3
    assert f"host 127.0.0.1, port {port}, database db" in result.stderr
    assert "timeout" in result.stderr
    assert 1.8 < took - baseline < 3.0


@pytest.mark.postgres
def test_a_database_that_does_not_exist_is_named_with_the_servers_reason() -> None:
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        unavailable(f"PostgreSQL not reachable at {PG_URL}: {error}", "the PostgreSQL backend")
    server = PG_URL.rsplit("/", 1)[0]
    baseline = _baseline_s()
    result, took = _timed("stats", "--db", f"{server}/relledger_no_such_database")
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1
    assert "port 5432, database relledger_no_such_database" in result.stderr
    assert 'database "relledger_no_such_database" does not exist' in result.stderr
    assert took < baseline + 1.5
