"""`relledger migrate`: the one step that creates (or upgrades) a store's tables.

Every other command opens a store without creating anything in it, and refuses one
that was never migrated, or that is not a relledger store at all: pointing a query at
the wrong database must not litter it with tables. A store is a relledger store once
its marker row says so (`relledger_schema`, name `relledger`, with the schema version
migrate left it at); stores written before the marker existed are upgraded by
running `migrate` once.

Several `migrate` runs at once (replicas of a deployment starting together) are safe:
each creation step retries a lost race (`store.retry_creation_race`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.chain import canonical_json
from domain.errors import Unavailable
from domain.key_index import Key, RecordedKey, content_digest
from domain.kinds import KINDS
from domain.ledger import RelationshipLedger
from domain.stored import UnreadableRecord
from projections.rebuild import RebuildRaced, rebuild
from projections.tables import Dialect
from projections.view import RelationshipView, open_view
from service.checkpoints import Checkpoints
from service.keys import KeyRing
from service.policies import KnownPolicies, load_policy
from service.recorders import PostgresLedgerRecorder, SQLiteLedgerRecorder
from service.store import (
    MARKER_TABLE,
    StoreURL,
    not_a_store,
    open_ledger,
    parse_store_url,
    retry_creation_race,
)

SCHEMA_VERSION = 5
"""Bumped whenever `migrate` learns a new step; stores at an older version are refused
until migrated. 2: the summary keeps each relationship's parties (a rebuild fills them
in for relationships projected before). 3: signed checkpoints are kept in the store;
the summary counts retracted interactions; the store keeps every policy its read models
were built under. 4: recorded keys are kept in their own table, unique across the
ledger (migrate fills it from the log), and relationships are snapshotted. 5: the
summary keeps each relationship's currency and first event time (migrate rebuilds the
read models from the log to fill them in)."""
KEYS_INDEXED = 4
"""The schema version from which every recorded key is in the key index."""
FIGURES_WIDENED = 5
"""The schema version from which the summary keeps currency and first event time."""


class NotMigrated(Unavailable):
    """The store is empty, belongs to something else, or predates this version."""


@dataclass(frozen=True)
class Migration:
    store: str
    before: int | None
    after: int
    rebuilt: int | None = None
    """How many relationships the read models were rebuilt for, if they were."""

    def view(self) -> dict[str, Any]:
        """`migrate --json`: the store, the schema versions before and after, and how many
        relationships the read models were rebuilt for (null if they were not)."""
        return {
            "store": self.store,
            "before": self.before,
            "after": self.after,
            "rebuilt": self.rebuilt,
        }

    def summary(self) -> str:
        if self.before == self.after:
            return f"{self.store}: already at schema version {self.after}"
        was = "a new store" if self.before is None else f"schema version {self.before}"
        done = f"{self.store}: migrated from {was} to schema version {self.after}"
        if self.rebuilt is None:
            return done
        return f"{done}; read models rebuilt from the log ({self.rebuilt} relationships)"


def migrate(url: str) -> Migration:
    """Create every table relledger needs (the library's, the read models', the keys',
    the checkpoints', the known policies'), then record the schema version. Idempotent."""
    store = parse_store_url(url)
    ledger = open_ledger(url, create=True)
    try:
        view = retry_creation_race(lambda: open_view(ledger))
        live = view.ensure_live(load_policy())
        retry_creation_race(view.upgrade_live)
        retry_creation_race(lambda: KeyRing(ledger).create_table())
        retry_creation_race(lambda: Checkpoints(ledger).create_table())
        known = KnownPolicies(ledger)
        retry_creation_race(known.create_table)
        known.remember(live.policy())
        before = _version(view)
        if before is not None and before < KEYS_INDEXED:
            index_recorded_keys(ledger)
        rebuilt = None
        if before is not None and before < FIGURES_WIDENED:
            rebuilt = _rebuild_read_models(ledger, view)
        retry_creation_race(lambda: _mark(view))
    finally:
        ledger.close()
    return Migration(store.display, before, SCHEMA_VERSION, rebuilt)


def _rebuild_read_models(ledger: RelationshipLedger, view: RelationshipView) -> int | None:
    """Read models an older version built lack what this one keeps: build them again from
    the log and switch to them. If another `migrate` switched first, its are kept."""
    try:
        return rebuild(ledger, view, from_zero=True).relationships
    except RebuildRaced:
        return None


def index_recorded_keys(ledger: RelationshipLedger, batch: int = 5000) -> int:
    """Fill the key index from the log, for a store recorded before it existed: each
    event's key with the digest of its content, then the retractions marked. Where two
    relationships hold the same key (older versions allowed it), the first recorded
    keeps it. Streams the log in batches: memory holds one batch and the retractions.
    Returns how many events were indexed."""
    recorder = ledger.recorder
    assert isinstance(recorder, SQLiteLedgerRecorder | PostgresLedgerRecorder)
    rows: list[RecordedKey] = []
    retracted: dict[Key, int] = {}
    indexed = 0
    for stored in ledger.scan():
        if isinstance(stored, UnreadableRecord):
            continue  # verify names it; its key cannot be read either
        record = stored.record
        retraction = KINDS[record["kind"]].retracts
        rows.append(
            RecordedKey(
                record["source"],
                record["event_id"],
                stored.relationship_id,
                stored.version,
                content_digest(canonical_json(record)),
                retraction,
            )
        )
        if retraction:
            retracted.setdefault((record["source"], record["ref"]), stored.version)
        if len(rows) == batch:
            recorder.backfill_keys(rows)
            indexed, rows = indexed + len(rows), []
    recorder.backfill_keys(rows)
    recorder.mark_retracted(retracted)
    return indexed + len(rows)


def require_migrated(ledger: RelationshipLedger, store: StoreURL) -> None:
    """Refuse a store `migrate` did not prepare, before anything reads or writes it."""
    view = open_view(ledger)
    found = _version(view)
    if found == SCHEMA_VERSION:
        return
    if found is None:
        raise NotMigrated(not_a_store(store))
    raise NotMigrated(
        f"{store.display} is at schema version {found}, this relledger needs "
        f"{SCHEMA_VERSION}: run relledger migrate"
    )


def _version(view: RelationshipView) -> int | None:
    dialect = view.dialect
    with view.datastore.transaction(commit=False) as cursor:
        if not _marker_exists(cursor, dialect):
            return None
        cursor.execute(
            dialect.sql(f"SELECT version FROM {dialect.name(MARKER_TABLE)} WHERE name = ?"),
            ("relledger",),
        )
        row: Any = cursor.fetchone()
    return None if row is None else int(row["version"])


def _marker_exists(cursor: Any, dialect: Dialect) -> bool:
    if dialect.is_postgres:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (dialect.name(MARKER_TABLE),))
        return bool(cursor.fetchone()["found"])
    cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MARKER_TABLE,))
    return cursor.fetchone() is not None


def _mark(view: RelationshipView) -> None:
    dialect = view.dialect
    table = dialect.name(MARKER_TABLE)
    with view.transaction() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        cursor.execute(
            dialect.sql(
                f"INSERT INTO {table} (name, version) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version"
            ),
            ("relledger", SCHEMA_VERSION),
        )
