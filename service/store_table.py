"""A table of relledger's own beside the ledger, read and written through its datastore.

API keys, checkpoints and the policies a store has scored with live in the store
itself, so every replica of a deployment sees the same ones at once. Each is a
`StoreTable`: it uses the library's datastore the ledger's recorder uses (its pool, its
schema, its transactions, as `projections.view.open_view` does), in SQL both backends
accept through a `Dialect`. Stateless apart from the datastore: any number of instances
may work on the same store. `relledger migrate` creates the tables (`create_table`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from eventsourcing.sqlite import SQLiteDatastore

from domain.ledger import RelationshipLedger
from projections.tables import SQLITE, Dialect, postgres


class StoreTable:
    def __init__(self, ledger: RelationshipLedger, table: str) -> None:
        # Held, not only its datastore: a ledger that is garbage-collected closes it.
        self._ledger = ledger
        self._datastore: Any = cast(Any, ledger.factory).datastore
        self._dialect: Dialect = (
            SQLITE
            if isinstance(self._datastore, SQLiteDatastore)
            else postgres(self._datastore.schema)
        )
        self._table = self._dialect.name(table)

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Any]:
        with self._datastore.transaction(commit=commit) as cursor:
            yield cursor

    def _execute(self, cursor: Any, statement: str, params: Sequence[Any] = ()) -> None:
        cursor.execute(self._dialect.sql(statement), params)
