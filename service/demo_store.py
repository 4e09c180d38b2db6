"""Where `relledger demo` may write: a store that is new, or holds only a demo's data.

The demo is a newcomer's first command, and it writes thousands of made-up
interactions. Pointed at a real ledger by mistake (a `--db` left in the environment,
the default file of a real installation) it would mix them into real history, which
an append-only ledger can never take back. So it refuses any store that holds
anything but a previous demo's data, before it creates or writes anything:

- a database that is not a relledger store but holds tables (something else's data);
- a relledger store with a relationship whose id is not the demo's (`demo/...`: every
  simulated relationship has it), with API keys, or with signed checkpoints (both are
  things an operator made, never the demo).

A store of the demo's own is recognised by that prefix alone; a producer that named
real relationships `demo/...` would be taken for a demo, which the docs say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.errors import Invalid
from domain.ledger import RelationshipLedger
from domain.stored import UnreadableRecord
from service.checkpoints import Checkpoints
from service.keys import KeyRing
from service.schema import NotMigrated, require_migrated
from service.store import (
    MARKER_TABLE,
    StoreUnavailable,
    StoreURL,
    open_ledger,
    parse_store_url,
    sqlite_tables,
)

DEMO_PREFIX = "demo/"
DEMO_FILE = "relledger-demo.db"
DEMO_URL = f"sqlite:///{DEMO_FILE}"
"""The demo's own store when no store is named: never the default `relledger.db`."""
PAGE = 2000


class NotADemoStore(Invalid):
    """The store holds something other than a demo's data: the demo will not write there."""


@dataclass(frozen=True)
class DemoStore:
    """What the demo found at its store."""

    relationships: int
    """Demo relationships already there (0: a new or empty store)."""


def check_demo_store(url: str) -> DemoStore:
    """Refuse (`NotADemoStore`) a store holding anything but a demo's data; otherwise say
    how many demo relationships it already holds. Creates nothing."""
    store = parse_store_url(url)
    if store.sqlite_path is not None:
        tables = _sqlite_tables(store, store.sqlite_path)
        if not tables:
            return DemoStore(0)
        if MARKER_TABLE not in tables:
            raise _foreign(store, tables)
    ledger = open_ledger(url)
    try:
        try:
            require_migrated(ledger, store)
        except NotMigrated:
            tables = _postgres_tables(ledger)
            if tables:
                raise _foreign(store, tables) from None
            return DemoStore(0)
        return DemoStore(_demo_relationships(ledger, store))
    finally:
        ledger.close()


def _refuse(store: StoreURL, why: str) -> NotADemoStore:
    return NotADemoStore(
        f"{store.display} {why}: the demo writes only to a new store or a demo's own; "
        f"run it with no --db (it uses ./{DEMO_FILE}) or --db a new store"
    )


def _foreign(store: StoreURL, tables: list[str]) -> NotADemoStore:
    return _refuse(store, f"is not a relledger store and holds tables ({tables[0]}, ...)")


def _sqlite_tables(store: StoreURL, path: Path) -> list[str]:
    """The tables of an SQLite file, read only; none for a file that does not exist or
    is empty."""
    if not path.exists() or path.stat().st_size == 0:
        return []
    try:
        return sqlite_tables(path)
    except StoreUnavailable as error:
        raise _refuse(store, f"cannot be read as an SQLite database ({error})") from None


def _postgres_tables(ledger: RelationshipLedger) -> list[str]:
    datastore: Any = ledger.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(
            "SELECT table_name AS name FROM information_schema.tables "
            "WHERE table_schema = %s ORDER BY table_name",
            (datastore.schema or "public",),
        )
        return [row["name"] for row in cursor.fetchall()]


def _demo_relationships(ledger: RelationshipLedger, store: StoreURL) -> int:
    """The demo relationships in a relledger store, refusing it at the first thing that
    is not a demo's (reading the log stops there, so a real ledger costs one page)."""
    if KeyRing(ledger).list():
        raise _refuse(store, "holds API keys")
    if Checkpoints(ledger).latest() is not None:
        raise _refuse(store, "holds signed checkpoints")
    relationships: set[str] = set()
    after = 0
    while entries := ledger.read_log(after, PAGE):
        for entry in entries:
            if isinstance(entry, UnreadableRecord):
                raise _refuse(store, "holds a record that cannot be read")
            if not entry.relationship_id.startswith(DEMO_PREFIX):
                raise _refuse(store, f"holds other data (relationship {entry.relationship_id!r})")
            relationships.add(entry.relationship_id)
            after = entry.position
    return len(relationships)
