"""What an attacker (or a careless operator) with write access to the database can do.

Each operation edits the library's stored-event table directly, on either backend,
bypassing relledger entirely: the audit tests then check that `verify`, checkpoints
and proofs catch it. Positions are the notification log's (SQLite's rowid,
PostgreSQL's `notification_id`), so "the log's last event" means what it says.
`loaded` fills a store with the conformance stories to tamper with, and `cli` runs
relledger's CLI on it, as those tests do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import psycopg
from conformance import ingest_file
from typer.testing import CliRunner, Result

from domain.chain import GENESIS, link
from domain.relationship import relationship_uuid
from relledger.cli import app
from service.store import open_ledger, parse_store_url

runner = CliRunner()


@dataclass(frozen=True)
class Row:
    position: int
    originator_id: UUID
    version: int
    topic: str
    state: dict[str, Any]

    @property
    def relationship_id(self) -> str:
        return str(self.state["interaction"]["relationship_id"])


class StoredRows:
    """The stored events of one store, read and rewritten behind relledger's back."""

    def __init__(self, url: str) -> None:
        store = parse_store_url(url)
        self.sqlite_path = store.sqlite_path
        self.url = url.split("?")[0]
        self.schema = store.settings.get("POSTGRES_SCHEMA", "")
        if self.sqlite_path is not None:
            self.table, self.position = "stored_events", "rowid"
        else:
            self.table, self.position = f'"{self.schema}".relledger_events', "notification_id"

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.sqlite_path is not None:
            conn = sqlite3.connect(self.sqlite_path)
            try:
                with conn:
                    yield conn
            finally:
                conn.close()
            return
        with psycopg.connect(self.url, autocommit=False) as pg:
            yield pg
            pg.commit()

    def _sql(self, statement: str) -> str:
        statement = statement.replace("{table}", self.table).replace("{pos}", self.position)
        return statement if self.sqlite_path is not None else statement.replace("?", "%s")

    def _id(self, value: UUID) -> Any:
        return value.hex if self.sqlite_path is not None else value

    def rows(self, relationship_id: str | None = None) -> list[Row]:
        """Every stored event in log order (or one relationship's, by its aggregate id)."""
        query = "SELECT {pos}, originator_id, originator_version, topic, state FROM {table}"
        params: tuple[Any, ...] = ()
        if relationship_id is not None:
            query += " WHERE originator_id = ?"
            params = (self._id(relationship_uuid(relationship_id)),)
        with self._cursor() as conn:
            found = conn.execute(self._sql(query + " ORDER BY {pos}"), params).fetchall()
        return [
            Row(position, UUID(str(oid)), version, topic, orjson.loads(bytes(state)))
            for position, oid, version, topic, state in found
        ]

    def states(self) -> list[bytes]:
        """Every stored event's state as the bytes in the table, in log order."""
        with self._cursor() as conn:
            found = conn.execute(self._sql("SELECT state FROM {table} ORDER BY {pos}")).fetchall()
        return [bytes(state) for (state,) in found]

    def edit(self, row: Row, change: Callable[[dict[str, Any]], None]) -> None:
        """Change a stored event's state in place (its hash left as it was)."""
        state = orjson.loads(orjson.dumps(row.state))
        change(state)
        self.put_state(row.position, state)

    def put_state(self, position: int, state: dict[str, Any]) -> None:
        with self._cursor() as conn:
            conn.execute(
                self._sql("UPDATE {table} SET state = ? WHERE {pos} = ?"),
                (orjson.dumps(state), position),
            )

    def set_topic(self, position: int, topic: str) -> None:
        with self._cursor() as conn:
            conn.execute(
                self._sql("UPDATE {table} SET topic = ? WHERE {pos} = ?"), (topic, position)
            )

    def delete(self, position: int) -> None:
        with self._cursor() as conn:
            conn.execute(self._sql("DELETE FROM {table} WHERE {pos} = ?"), (position,))

    def swap(self, first: Row, second: Row) -> None:
        """Exchange two events' places in the log (each keeps its aggregate and version)."""
        with self._cursor() as conn:
            for row, other in ((first, second), (second, first)):
                conn.execute(
                    self._sql(
                        "UPDATE {table} SET originator_id = ?, originator_version = ?, "
                        "topic = ?, state = ? WHERE {pos} = ?"
                    ),
                    (
                        self._id(other.originator_id),
                        -other.version,  # out of the way of the primary key for now
                        other.topic,
                        orjson.dumps(other.state),
                        row.position,
                    ),
                )
            conn.execute(
                self._sql(
                    "UPDATE {table} SET originator_version = -originator_version "
                    "WHERE originator_version < 0"
                )
            )

    def move(self, row: Row, relationship_id: str, version: int) -> None:
        """Put an event under another relationship's aggregate, at `version`."""
        with self._cursor() as conn:
            conn.execute(
                self._sql(
                    "UPDATE {table} SET originator_id = ?, originator_version = ? WHERE {pos} = ?"
                ),
                (self._id(relationship_uuid(relationship_id)), version, row.position),
            )

    def append(self, relationship_id: str, version: int, topic: str, state: dict[str, Any]) -> None:
        """A forged event at the end of the log."""
        with self._cursor() as conn:
            conn.execute(
                self._sql(
                    "INSERT INTO {table} (originator_id, originator_version, topic, state) "
                    "VALUES (?, ?, ?, ?)"
                ),
                (self._id(relationship_uuid(relationship_id)), version, topic, orjson.dumps(state)),
            )

    def rewrite_chain(self, relationship_id: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Edit one relationship's records with `change` and recompute every chain hash, as
        someone who knows the hashing would: the relationship's own chain then checks."""
        previous = GENESIS
        for row in self.rows(relationship_id):
            state = orjson.loads(orjson.dumps(row.state))
            change(state["interaction"])
            state["chain_hash"] = previous = link(previous, state["interaction"])
            self.put_state(row.position, state)

    def drop_events(self) -> None:
        with self._cursor() as conn:
            conn.execute(self._sql("DROP TABLE {table}"))


def loaded(store_url: str) -> StoredRows:
    """The store at `store_url`, with the conformance stories ingested, ready to tamper with."""
    ledger = open_ledger(store_url)
    ingest_file(ledger)
    ledger.close()
    return StoredRows(store_url)


def cli(store_url: str, *args: str) -> Result:
    """relledger's CLI, run on the store at `store_url`."""
    return runner.invoke(app, ["--db", store_url, *args])
