"""The read models' store on PostgreSQL (see `projections.view`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresTrackingRecorder

from projections.read_models import READ_MODELS, SUMMARY, Row
from projections.tables import Dialect, Generation, postgres
from projections.view import RelationshipView


class PostgresRelationshipView(RelationshipView, PostgresTrackingRecorder):
    driver_error = psycopg.Error
    driver_data_error = psycopg.DataError

    def _select_fresh(self, cursor: Any, statement: str, params: Sequence[Any]) -> None:
        # psycopg prepares a statement after a few runs, and PostgreSQL may then keep a
        # generic plan made while the table was nearly empty: a sequential scan, which
        # made catching up 1,000,000 events crawl. Planning each time finds the index.
        cursor.execute(statement, params, prepare=False)

    def write_rows(
        self,
        cursor: Any,
        generation: Generation,
        summaries: Sequence[Row],
        trust: Sequence[Row],
        phases: Sequence[Row],
    ) -> None:
        """As on SQLite, but by `COPY`, a page's thousands of rows in one stream rather
        than one statement each: the history rows (only ever inserted) straight into
        their tables, the summary rows into a temporary table they are upserted from."""
        if summaries:
            summary = generation.table("summary")
            stage = f"pg_temp.relledger_summary_stage_g{generation.number}"
            # Made in this connection's first page (and undone with it if that page
            # fails): it has every column the upsert names, as the table had then.
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage.removeprefix('pg_temp.')} "
                f"(LIKE {summary}) ON COMMIT DELETE ROWS"
            )
            self._copy(cursor, stage, SUMMARY.names, summaries)
            columns = ", ".join(SUMMARY.names)
            cursor.execute(
                generation.upsert_summary().replace(
                    f" VALUES ({', '.join('%s' for _ in SUMMARY.names)})",
                    f" SELECT {columns} FROM {stage}",
                    1,
                )
            )
            # Emptied at once: a salvage writes again in the same transaction.
            cursor.execute(f"DELETE FROM {stage}")
        for kind, rows in (("trust", trust), ("phase", phases)):
            if rows:
                self._copy(cursor, generation.table(kind), READ_MODELS[kind].names, rows)

    def _copy(self, cursor: Any, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    @property
    def dialect(self) -> Dialect:  # type: ignore[override]
        return postgres(self.datastore.schema)
