"""`relledger migrate` on stores older versions wrote: refused until migrated, then
answering as a store this version wrote, with nothing recorded lost or changed.

Each older store is made from a real one, taken back to what that version left: its
columns dropped, its schema marker set back.
"""

from __future__ import annotations

import json
import sqlite3

import psycopg
import pytest
from conformance import DATA, EXPECTED, FAR_SKEW
from typer.testing import CliRunner

from relledger.cli import app
from service.schema import SCHEMA_VERSION

runner = CliRunner()


@pytest.fixture
def cli(store_url: str):
    def invoke(*args: str):
        if args[0] == "ingest":
            args = ("ingest", *FAR_SKEW, *args[1:])
        return runner.invoke(app, ["--db", store_url, *args])

    return invoke


def _as_version_left_it(url: str, version: int, dropped: list[str]) -> None:
    """Take a store back to what schema `version` wrote: the summary without `dropped`."""
    is_pg = url.startswith("postgresql")
    schema = url.split("schema=")[1] if is_pg else None
    name = (lambda table: f'"{schema}"."{table}"') if is_pg else (lambda table: table)
    statements = [
        f"DROP VIEW {name('relationship_summary')}",
        *(
            f"DROP INDEX {name(f'summary_g1_{column}')}"
            for column in dropped
            if column in ("supplier", "customer")
        ),
        *(
            f"ALTER TABLE {name('relationship_summary_g1')} DROP COLUMN {column}"
            for column in dropped
        ),
        f"CREATE VIEW {name('relationship_summary')} AS "
        f"SELECT * FROM {name('relationship_summary_g1')}",
        f"UPDATE {name('relledger_schema')} SET version = {version}",
    ]
    if is_pg:
        with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
    else:
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for statement in statements:
                conn.execute(statement)


def _refused_then_migrated(cli, version: int) -> None:
    refused = cli("show", "acme/steady")
    assert refused.exit_code == 3
    assert f"is at schema version {version}, this relledger needs {SCHEMA_VERSION}" in (
        refused.stderr
    )
    migrated = cli("migrate")
    assert migrated.exit_code == 0, migrated.output
    assert (
        f"migrated from schema version {version} to schema version {SCHEMA_VERSION}; "
        "read models rebuilt from the log (" in migrated.stdout
    )


def test_a_store_of_schema_version_1_is_refused_then_migrated(cli, store_url: str) -> None:
    assert cli("ingest", str(DATA / "events.jsonl")).exit_code == 0
    _as_version_left_it(store_url, 1, ["supplier", "customer", "currency", "first_event_at"])
    _refused_then_migrated(cli, 1)
    after = json.loads(cli("show", "acme/steady", "--json").stdout)
    assert after["parties"] == {"supplier": "acme", "customer": "steady"}
    assert after["trust"] == pytest.approx(EXPECTED["acme/steady"]["trust"], abs=1e-4)
    listed = json.loads(cli("list", "--party", "steady", "--json").stdout)["items"]
    assert [item["relationship_id"] for item in listed] == ["acme/steady"]


def test_a_store_of_schema_version_4_gains_currency_and_first_event_time(
    cli, store_url: str
) -> None:
    """What the previous release wrote: a summary without currency and first event time."""
    assert cli("ingest", str(DATA / "events.jsonl")).exit_code == 0
    heads = json.loads(cli("verify", "--json").stdout)
    shown = json.loads(cli("show", "acme/steady", "--json").stdout)
    _as_version_left_it(store_url, 4, ["currency", "first_event_at"])
    _refused_then_migrated(cli, 4)
    assert json.loads(cli("show", "acme/steady", "--json").stdout) == shown
    assert shown["currency"] == "EUR" and shown["first_event_at"] is not None
    assert json.loads(cli("verify", "--json").stdout) == heads
    assert cli("projections", "rebuild", "--check").exit_code == 0
    again = cli("migrate")
    assert f"already at schema version {SCHEMA_VERSION}" in again.stdout
