"""The read models' store on PostgreSQL (see `projections.view`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresTrackingRecorder

from projections.tables import Dialect, postgres
from projections.view import RelationshipView


class PostgresRelationshipView(RelationshipView, PostgresTrackingRecorder):
    driver_error = psycopg.Error
    driver_data_error = psycopg.DataError

    def _select_fresh(self, cursor: Any, statement: str, params: Sequence[Any]) -> None:
        # psycopg prepares a statement after a few runs, and PostgreSQL may then keep a
        # generic plan made while the table was nearly empty: a sequential scan, which
        # made catching up 1,000,000 events crawl. Planning each time finds the index.
        cursor.execute(statement, params, prepare=False)

    @property
    def dialect(self) -> Dialect:  # type: ignore[override]
        return postgres(self.datastore.schema)
