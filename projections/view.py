"""The read models' store: tables written with their tracking record, per backend.

As in `eventsourcing`'s examples/ftsprojection, the view is the library's own
tracking recorder extended with the view's tables, so every write of rows and
the log position it reached share one transaction: a crash leaves either both
or neither, and a restart resumes exactly after the last committed page.

Writers (a follower, `ingest`, a rebuild's switch) first lock the one row of
`relledger_projection`; that serialises them on PostgreSQL (row lock) and takes
SQLite's write lock up front, so two of them never interleave a page.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import DataError, PersistenceError, Tracking, TrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder

from domain.errors import Unavailable
from domain.ledger import RelationshipLedger
from domain.policy import Policy
from projections.read_models import Row
from projections.tables import (
    META_TABLE,
    SQLITE,
    STABLE_NAMES,
    Dialect,
    Generation,
    meta_create,
)

PROJECTION = "relationships"
_CHUNK = 500


class ReadModelsMissing(Unavailable):
    """No read models yet: nothing was ever projected into this store."""


@dataclass(frozen=True)
class Live:
    """Which generation of tables answers queries, and the policy that made it."""

    generation: int
    policy_json: str

    def policy(self) -> Policy:
        return Policy.model_validate_json(self.policy_json)


class RelationshipView(TrackingRecorder):
    """Backend-neutral operations; a subclass supplies the dialect and the recorder."""

    dialect: Dialect
    datastore: Any
    driver_error: type[Exception]
    """The database driver's base error: anything else it raises is not the store's."""
    driver_data_error: type[Exception]
    """What the driver raises for a value the database refuses (a NUL in text)."""

    def create_table(self) -> None:
        """The library's tracking table, then the projection's metadata table; and the
        live generation's tables a store made by an older version lacks (quarantine)."""
        super().create_table()  # type: ignore[misc]
        with self.transaction() as cursor:
            cursor.execute(meta_create(self.dialect))
            self._execute(
                cursor,
                f"SELECT generation FROM {self.dialect.name(META_TABLE)} WHERE name = ?",
                (PROJECTION,),
            )
            row = cursor.fetchone()
            if row is not None and not self._has_relation(cursor, STABLE_NAMES["quarantine"]):
                live = self.generation(row["generation"])
                self.execute_all(cursor, [*live.create(), *live.point_views()])

    def has_relation(self, name: str) -> bool:
        """Whether a table or view `name` exists in this store (its schema, on PostgreSQL)."""
        with self.datastore.transaction(commit=False) as cursor:
            return self._has_relation(cursor, name)

    def _has_relation(self, cursor: Any, name: str) -> bool:
        if self.dialect.is_postgres:
            cursor.execute("SELECT to_regclass(%s) AS found", (self.dialect.name(name),))
        else:
            cursor.execute("SELECT name AS found FROM sqlite_master WHERE name = ?", (name,))
        row = cursor.fetchone()
        return row is not None and row["found"] is not None

    def redefined_views(self, generation: Generation) -> list[str]:
        """The stable views that are not exactly the definition relledger gives them for
        `generation` (`Generation.view_definition`): dropped, replaced by a table, or
        redefined by hand, so that the queries would read something else than its rows."""
        with self.datastore.transaction(commit=False) as cursor:
            return [
                stable
                for kind, stable in STABLE_NAMES.items()
                if not self._defined_as(cursor, stable, generation.view_definition(kind))
            ]

    def _defined_as(self, cursor: Any, stable: str, definition: str) -> bool:
        """SQLite keeps a view's statement as it was given; PostgreSQL keeps a normalised
        form, compared with that of the same definition made as a temporary view in this
        (rolled back) transaction."""
        if not self.dialect.is_postgres:
            self._execute(
                cursor, "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?", (stable,)
            )
            row = cursor.fetchone()
            return row is not None and row["sql"] == definition
        expected = "pg_temp.relledger_expected_view"
        cursor.execute(f"DROP VIEW IF EXISTS {expected}")
        cursor.execute(
            definition.replace(f"VIEW {self.dialect.name(stable)} ", f"TEMP VIEW {expected} ", 1)
        )
        cursor.execute(
            "SELECT pg_get_viewdef(to_regclass(%s)) = pg_get_viewdef(to_regclass(%s)) AS same",
            (self.dialect.name(stable), expected),
        )
        return bool(cursor.fetchone()["same"])

    def generation(self, number: int) -> Generation:
        return Generation(number, self.dialect)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as cursor:
            yield cursor

    def _execute(self, cursor: Any, statement: str, params: Sequence[Any] = ()) -> None:
        cursor.execute(self.dialect.sql(statement), params)

    def live(self) -> Live | None:
        with self.datastore.transaction(commit=False) as cursor:
            self._execute(
                cursor,
                f"SELECT generation, policy FROM {self.dialect.name(META_TABLE)} WHERE name = ?",
                (PROJECTION,),
            )
            row = cursor.fetchone()
        return None if row is None else Live(row["generation"], row["policy"])

    def require_live(self) -> Live:
        live = self.live()
        if live is None:
            raise ReadModelsMissing(
                "no read models in this store yet: run relledger project (or ingest something)"
            )
        return live

    def ensure_live(self, policy: Policy) -> Live:
        """Create generation 1 under `policy` on first use; otherwise leave things be."""
        live = self.live()
        if live is not None:
            return live
        with self.transaction() as cursor:
            self._execute(
                cursor,
                f"INSERT INTO {self.dialect.name(META_TABLE)} (name, generation, policy) "
                "VALUES (?, 1, ?) ON CONFLICT (name) DO NOTHING",
                (PROJECTION, policy.model_dump_json()),
            )
            # Whoever inserted (this process or a racing one), the live tables exist after.
            live = self.claim(cursor)
            current = self.generation(live.generation)
            self.execute_all(cursor, [*current.create(), *current.point_views()])
        return live

    def upgrade_live(self) -> None:
        """Give the live generation whatever tables, columns and indexes this version
        declares that an older one did not: `relledger migrate`. Safe to run again."""
        with self.transaction() as cursor:
            current = self.generation(self.claim(cursor).generation)
            added = current.add_columns(self._summary_columns(cursor, current))
            self.execute_all(cursor, [*added, *current.create(), *current.point_views()])

    def _summary_columns(self, cursor: Any, generation: Generation) -> set[str]:
        """The columns a generation's summary table has, from the database's catalogue."""
        table = f"{STABLE_NAMES['summary']}_g{generation.number}"
        if self.dialect.is_postgres:
            cursor.execute(
                "SELECT column_name AS name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (self.dialect.schema, table),
            )
        else:
            cursor.execute(f"PRAGMA table_info({table})")
        return {row["name"] for row in cursor.fetchall()}

    def claim(self, cursor: Any) -> Live:
        """Lock the projection for this transaction and say what is live."""
        meta = self.dialect.name(META_TABLE)
        if self.dialect.is_postgres:
            self._execute(
                cursor,
                f"SELECT generation, policy FROM {meta} WHERE name = ? FOR UPDATE",
                (PROJECTION,),
            )
        else:
            # A write first: SQLite then holds its write lock for the whole transaction.
            self._execute(
                cursor, f"UPDATE {meta} SET generation = generation WHERE name = ?", (PROJECTION,)
            )
            self._execute(
                cursor, f"SELECT generation, policy FROM {meta} WHERE name = ?", (PROJECTION,)
            )
        row = cursor.fetchone()
        if row is None:
            raise ReadModelsMissing("the read models' metadata row has gone")
        return Live(row["generation"], row["policy"])

    def position(self, cursor: Any, generation: Generation) -> int:
        found: int | None = self._max_tracking_id(generation.tracking_name, cursor)  # type: ignore[attr-defined]
        return found or 0

    def load_states(
        self, cursor: Any, generation: Generation, relationship_ids: Sequence[str]
    ) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(relationship_ids), _CHUNK):
            chunk = relationship_ids[start : start + _CHUNK]
            self._select_fresh(cursor, generation.select_states(len(chunk)), chunk)
            found.update((row["relationship_id"], row["state"]) for row in cursor.fetchall())
        return found

    def _select_fresh(self, cursor: Any, statement: str, params: Sequence[Any]) -> None:
        """Run a query planned for the table as it is now (see the PostgreSQL override)."""
        cursor.execute(statement, params)

    def write_rows(
        self,
        cursor: Any,
        generation: Generation,
        summaries: Sequence[Row],
        trust: Sequence[Row],
        phases: Sequence[Row],
    ) -> None:
        """Summary rows (upserted) and new history rows."""
        if summaries:
            cursor.executemany(generation.upsert_summary(), summaries)
        if trust:
            cursor.executemany(generation.insert("trust"), trust)
        if phases:
            cursor.executemany(generation.insert("phase"), phases)

    def write_quarantine(self, cursor: Any, generation: Generation, rows: Sequence[Row]) -> None:
        if rows:
            cursor.executemany(generation.insert("quarantine"), rows)

    def write_position(self, cursor: Any, generation: Generation, position: int) -> None:
        """The position a page reached, in the transaction of its rows: exactly once."""
        self._insert_tracking(cursor, Tracking(generation.tracking_name, position))  # type: ignore[attr-defined]

    def quarantined(self, cursor: Any, generation: Generation) -> set[UUID]:
        """The aggregate ids of the relationships quarantined in `generation`."""
        cursor.execute(f"SELECT aggregate_id FROM {generation.table('quarantine')}")
        return {UUID(row["aggregate_id"]) for row in cursor.fetchall()}

    @contextmanager
    def savepoint(self, cursor: Any, name: str) -> Iterator[None]:
        """Undo only what the block wrote if it fails; the transaction stays usable (on
        PostgreSQL a failed statement otherwise aborts it, and on both backends an
        `executemany` that fails half-way has already written its first rows)."""
        cursor.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            cursor.execute(f"ROLLBACK TO SAVEPOINT {name}")
            cursor.execute(f"RELEASE SAVEPOINT {name}")
            raise
        cursor.execute(f"RELEASE SAVEPOINT {name}")

    def is_row_problem(self, error: Exception) -> bool:
        """Whether `error` is about the values written (the relationship's own rows), not
        about the store or the transaction: a lost connection, a lock, a dropped table or
        a conflicting row must still stop the page, and so must running out of memory."""
        if isinstance(error, MemoryError):
            return False
        if isinstance(error, self.driver_error):
            return isinstance(error, self.driver_data_error)
        if isinstance(error, PersistenceError):
            return isinstance(error, DataError)
        return True

    def execute_all(self, cursor: Any, statements: Iterable[str]) -> None:
        for statement in statements:
            cursor.execute(statement)

    def discard(self, cursor: Any, generation: Generation) -> None:
        """Drop a generation's tables and forget its position in the log."""
        self.execute_all(cursor, generation.drop())
        self._execute(
            cursor,
            f"DELETE FROM {self.tracking_table()} WHERE application_name = ?",
            (generation.tracking_name,),
        )

    def tracking_table(self) -> str:
        """The library's tracking table (`tracking` on SQLite; named per app on PostgreSQL)."""
        return self.dialect.name(getattr(self, "tracking_table_name", "tracking"))

    def allocate(self) -> Generation:
        """A generation number nobody has used, for a rebuild (numbers are never reused)."""
        meta = self.dialect.name(META_TABLE)
        with self.transaction() as cursor:
            live = self.claim(cursor)
            self._execute(cursor, f"SELECT allocated FROM {meta} WHERE name = ?", (PROJECTION,))
            number = max(cursor.fetchone()["allocated"], live.generation) + 1
            self._execute(
                cursor, f"UPDATE {meta} SET allocated = ? WHERE name = ?", (number, PROJECTION)
            )
            new = self.generation(number)
            self.execute_all(cursor, [*new.drop(), *new.create()])
        return new

    def switch(self, cursor: Any, new: Generation, policy: Policy) -> None:
        """Make `new` the live generation, in the caller's transaction, and drop every
        other one: the old live one, leftovers of interrupted rebuilds, and a rebuild
        still running (it then fails at its next page, see `rebuild`)."""
        meta = self.dialect.name(META_TABLE)
        self._execute(
            cursor,
            f"UPDATE {meta} SET generation = ?, policy = ? WHERE name = ?",
            (new.number, policy.model_dump_json(), PROJECTION),
        )
        self.execute_all(cursor, new.point_views())
        self._execute(cursor, f"SELECT allocated FROM {meta} WHERE name = ?", (PROJECTION,))
        for number in range(1, cursor.fetchone()["allocated"] + 1):
            if number != new.number:
                self.discard(cursor, self.generation(number))

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts, for the plain query functions (read-only transaction)."""
        with self.datastore.transaction(commit=False) as cursor:
            self._execute(cursor, statement, params)
            return [dict(row) for row in cursor.fetchall()]


class SQLiteRelationshipView(RelationshipView, SQLiteTrackingRecorder):
    dialect = SQLITE
    driver_error = sqlite3.Error
    driver_data_error = sqlite3.DataError


def open_view(ledger: RelationshipLedger) -> RelationshipView:
    """The read models of `ledger`, in the same database (through the same datastore)."""
    view_class: type[RelationshipView] = SQLiteRelationshipView
    if not isinstance(ledger.recorder, SQLiteTrackingRecorder):
        # Imported only when used: the PostgreSQL modules are slow to import.
        from projections.view_postgres import PostgresRelationshipView

        view_class = PostgresRelationshipView
    view = ledger.factory.tracking_recorder(view_class)
    assert isinstance(view, RelationshipView)
    return view
