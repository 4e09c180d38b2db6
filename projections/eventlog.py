"""The event store's own table, read directly for what the library's recorder does not say.

`eventsourcing` reads one aggregate's events in version order, or the whole log in
position order, and takes its table's existence for granted. Verification needs more:
whether the ledger's table is there at all (a store whose events table was dropped must
not verify as intact, nor fail with a driver's message), and where each event of one
relationship sits in the log, since the read models fold the log in position order while
the hash chain is in version order. Positions are the notification log's: SQLite's rowid,
PostgreSQL's `notification_id`.
"""

from __future__ import annotations

from uuid import UUID

from domain.ledger import RelationshipLedger
from projections.tables import Dialect
from projections.view import RelationshipView


def events_table(ledger: RelationshipLedger) -> str:
    """The name of the library's events table (without its schema)."""
    return str(getattr(ledger.recorder, "events_table_name", "stored_events"))


def position_column(dialect: Dialect) -> str:
    """The column holding an event's position in the log."""
    return "notification_id" if dialect.is_postgres else "rowid"


def has_events_table(view: RelationshipView, ledger: RelationshipLedger) -> bool:
    return view.has_relation(events_table(ledger))


def log_order(
    view: RelationshipView, ledger: RelationshipLedger, aggregate_id: UUID
) -> list[tuple[int, int]]:
    """(position, version) of each stored event of one aggregate, in log order."""
    dialect = view.dialect
    position = position_column(dialect)
    key: UUID | str = aggregate_id if dialect.is_postgres else aggregate_id.hex
    rows = view.query(
        f"SELECT {position} AS position, originator_version AS version "
        f"FROM {dialect.name(events_table(ledger))} WHERE originator_id = ? ORDER BY {position}",
        [key],
    )
    return [(int(row["position"]), int(row["version"])) for row in rows]
