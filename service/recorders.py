"""The ledger's recorders: the library's process recorders, plus the key index and a
plain reader of the log.

Every recorded key `(source, event_id)` is a row of `relledger_keys` (by its
`key_hash`), written by `_insert_events` in the transaction that inserts its event, as
the library's own process recorders write a tracking record beside the events (and as
its ftsprojection example writes a table of its own beside the tracking one). The
primary key makes a key unique across the whole ledger: two writers recording the same
key at once cannot both commit; the loser's batch is decided again and finds the key
recorded.

`recorded_keys` answers the ledger's question for a whole batch in one query.
`log_rows` reads a page of the log as plain rows, for the projector's hot loop.
`relledger migrate` creates the table (the recorders' `create_table`) and fills it from
the log for a store recorded before it existed (`backfill_keys`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteProcessRecorder
from psycopg.sql import SQL, Identifier

from domain.key_index import Key, RecordedKey, key_hash
from domain.stored import LogRow
from projections.tables import SQLITE, Dialect, postgres

T = TypeVar("T")

KEYS_TABLE = "relledger_keys"
_COLUMNS = "key_hash, relationship_id, version, digest, retraction, retracted_by"
_CHUNK = 400
"""Keys per lookup statement (SQLite allows 32,766 parameters; two per key)."""


def _rows(keys: Iterable[RecordedKey]) -> list[tuple[Any, ...]]:
    return [
        (
            key_hash(k.key),
            shown(k.relationship_id),
            k.version,
            k.digest,
            k.retraction,
            k.retracted_by,
        )
        for k in keys
    ]


def shown(relationship_id: str) -> str:
    """A relationship id as the index keeps it for messages: PostgreSQL text holds no NUL
    (which an older contract let into ids), so one is kept as the four characters `\\x00`."""
    return relationship_id.replace("\x00", "\\x00")


def _retractions(retracted: Mapping[Key, int]) -> list[tuple[int, bytes]]:
    return [(by, key_hash(key)) for key, by in retracted.items()]


def _found(rows: Iterable[Any], offered: Mapping[bytes, Key]) -> dict[Key, RecordedKey]:
    found: dict[Key, RecordedKey] = {}
    for row in rows:
        key = offered[bytes(row["key_hash"])]
        found[key] = RecordedKey(
            *key,
            row["relationship_id"],
            row["version"],
            bytes(row["digest"]),
            bool(row["retraction"]),
            row["retracted_by"],
        )
    return found


def _chunks(offered: Iterable[T]) -> Iterator[list[T]]:
    """SQLite takes at most so many parameters per statement: ask in chunks."""
    values = iter(offered)
    while chunk := list(islice(values, _CHUNK)):
        yield chunk


class _KeyIndexWrites:
    """How both backends write the key index: one set of statements, in the project's
    `?` style, which `Dialect.sql` turns into what the driver wants."""

    datastore: Any
    dialect: Dialect
    keys_table: str

    def _write_keys(
        self, cursor: Any, recorded: Sequence[RecordedKey], retracted: Mapping[Key, int]
    ) -> None:
        if recorded:
            cursor.executemany(
                self.dialect.sql(
                    f"INSERT INTO {self.keys_table} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                ),
                _rows(recorded),
            )
        if retracted:
            cursor.executemany(
                self.dialect.sql(
                    f"UPDATE {self.keys_table} SET retracted_by = ? WHERE key_hash = ?"
                ),
                _retractions(retracted),
            )

    def mark_retracted(self, retracted: Mapping[Key, int]) -> None:
        """Mark keys taken back (by the retraction at the given version)."""
        with self.datastore.transaction(commit=True) as cursor:
            self._write_keys(cursor, (), retracted)

    def backfill_keys(self, recorded: Sequence[RecordedKey]) -> None:
        """Keys of events recorded before the index existed (the first of a key wins)."""
        if not recorded:
            return
        with self.datastore.transaction(commit=True) as cursor:
            cursor.executemany(
                self.dialect.sql(
                    f"INSERT INTO {self.keys_table} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (key_hash) DO NOTHING"
                ),
                _rows(recorded),
            )


class SQLiteLedgerRecorder(_KeyIndexWrites, SQLiteProcessRecorder):
    dialect = SQLITE
    keys_table = SQLITE.name(KEYS_TABLE)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.keys_table} (key_hash BLOB PRIMARY KEY, "
            "relationship_id TEXT NOT NULL, version INTEGER NOT NULL, digest BLOB NOT NULL, "
            "retraction INTEGER NOT NULL, retracted_by INTEGER) WITHOUT ROWID",
        ]

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The events in one `executemany` (the application recorder inserts them one by
        one to hand back each notification id, which the ledger never reads; SQLite
        numbers the rows in the same order either way), the consumer position, the keys."""
        SQLiteAggregateRecorder._insert_events(self, c, stored_events)
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is not None:
            self._insert_tracking(c, tracking)
        self._write_keys(c, kwargs.get("recorded_keys", ()), kwargs.get("retracted_keys", {}))
        return None

    def recorded_keys(self, keys: Iterable[Key]) -> Mapping[Key, RecordedKey]:
        offered = {key_hash(key): key for key in keys}
        found: dict[Key, RecordedKey] = {}
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(offered):
                marks = ", ".join(["?"] * len(chunk))
                c.execute(
                    f"SELECT {_COLUMNS} FROM {self.keys_table} WHERE key_hash IN ({marks})",
                    chunk,
                )
                found.update(_found(c.fetchall(), offered))
        return found

    def heads(self, aggregate_ids: Collection[UUID]) -> Mapping[UUID, int]:
        found: dict[UUID, int] = {}
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(aggregate_id.hex for aggregate_id in aggregate_ids):
                marks = ", ".join(["?"] * len(chunk))
                c.execute(
                    f"SELECT originator_id, MAX(originator_version) FROM {self.events_table_name} "
                    f"WHERE originator_id IN ({marks}) GROUP BY originator_id",
                    chunk,
                )
                found.update((UUID(row[0]), row[1]) for row in c.fetchall())
        return found

    def stored_events(self, aggregate_ids: Collection[UUID]) -> list[StoredEvent]:
        found: list[StoredEvent] = []
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(aggregate_id.hex for aggregate_id in aggregate_ids):
                marks = ", ".join(["?"] * len(chunk))
                c.execute(
                    "SELECT originator_id, originator_version, topic, state "
                    f"FROM {self.events_table_name} WHERE originator_id IN ({marks}) "
                    "ORDER BY originator_id, originator_version",
                    chunk,
                )
                found += (
                    StoredEvent(UUID(row[0]), row[1], row[2], bytes(row[3])) for row in c.fetchall()
                )
        return found

    def log_rows(self, after: int, limit: int, until: int | None) -> list[LogRow]:
        upto = "" if until is None else " AND rowid <= ?"
        params = [after] if until is None else [after, until]
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT rowid, originator_id, originator_version, state "
                f"FROM {self.events_table_name} WHERE rowid > ?{upto} ORDER BY rowid LIMIT ?",
                [*params, limit],
            )
            return [tuple(row) for row in c.fetchall()]


class PostgresLedgerRecorder(_KeyIndexWrites, PostgresProcessRecorder):
    def __init__(self, datastore: PostgresDatastore, **options: Any) -> None:
        super().__init__(datastore, **options)
        self.dialect = postgres(datastore.schema)
        self.keys_table = self.dialect.name(KEYS_TABLE)
        self.events_table = self.dialect.name(self.events_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} (key_hash BYTEA PRIMARY KEY, "
                "relationship_id TEXT NOT NULL, version BIGINT NOT NULL, digest BYTEA NOT NULL, "
                "retraction BOOLEAN NOT NULL, retracted_by BIGINT)"
            ).format(schema=Identifier(datastore.schema), table=Identifier(KEYS_TABLE))
        )

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        self._write_keys(curs, kwargs.get("recorded_keys", ()), kwargs.get("retracted_keys", {}))

    def recorded_keys(self, keys: Iterable[Key]) -> Mapping[Key, RecordedKey]:
        offered = {key_hash(key): key for key in keys}
        if not offered:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                f"SELECT {_COLUMNS} FROM {self.keys_table} WHERE key_hash = ANY(%s)",
                (list(offered),),
            )
            return _found(curs.fetchall(), offered)

    def heads(self, aggregate_ids: Collection[UUID]) -> Mapping[UUID, int]:
        if not aggregate_ids:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                f"SELECT originator_id, MAX(originator_version) AS head FROM {self.events_table} "
                "WHERE originator_id = ANY(%s) GROUP BY originator_id",
                (list(aggregate_ids),),
            )
            return {row["originator_id"]: row["head"] for row in curs.fetchall()}

    def stored_events(self, aggregate_ids: Collection[UUID]) -> list[StoredEvent]:
        if not aggregate_ids:
            return []
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT originator_id, originator_version, topic, state "
                f"FROM {self.events_table} WHERE originator_id = ANY(%s) "
                "ORDER BY originator_id, originator_version",
                (list(aggregate_ids),),
            )
            return [
                StoredEvent(
                    row["originator_id"],
                    row["originator_version"],
                    row["topic"],
                    bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    def log_rows(self, after: int, limit: int, until: int | None) -> list[LogRow]:
        upto = "" if until is None else " AND notification_id <= %s"
        params = [after] if until is None else [after, until]
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT notification_id, originator_id::text AS originator_id, "
                f"originator_version, state FROM {self.events_table} "
                f"WHERE notification_id > %s{upto} ORDER BY notification_id LIMIT %s",
                [*params, limit],
                prepare=False,
            )
            return [
                (r["notification_id"], r["originator_id"], r["originator_version"], r["state"])
                for r in curs.fetchall()
            ]
