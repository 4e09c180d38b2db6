"""From a store URL (`--db`, `RELLEDGER_DB`) to a configured ledger application.

Only this module knows how URLs map onto the `eventsourcing` library's
persistence settings; everything else receives a ready `RelationshipLedger`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    PersistenceError,
)
from eventsourcing.utils import get_topic

from domain.errors import Unavailable
from domain.ledger import STORE_OUTAGES, RelationshipLedger
from domain.retry import RetryNotice, retry_call
from domain.text import one_line
from service.recorders import PostgresLedgerRecorder, SQLiteLedgerRecorder

DEFAULT_URL = "sqlite:///relledger.db"
ENV_VAR = "RELLEDGER_DB"
POOL_WAIT_S = 1
"""PostgreSQL: the longest one attempt of the library waits for a pooled connection."""


class StoreUnavailable(Unavailable):
    """The store cannot be opened or read; the message says which and why."""


class StoreUnreachable(StoreUnavailable):
    """The store did not answer (down, restarting, locked): worth waiting for."""


OUTAGES: tuple[type[BaseException], ...] = (*STORE_OUTAGES, StoreUnreachable)
"""Errors that a later attempt may not meet: writers wait them out (`wait_for_store`)."""
_UNREACHABLE: tuple[type[Exception], ...] = (*STORE_OUTAGES, psycopg.OperationalError)
"""What opening a store raises when the server does not answer (`StoreUnreachable`)."""


@dataclass(frozen=True)
class StoreURL:
    url: str
    settings: dict[str, str]
    sqlite_path: Path | None = None

    @property
    def display(self) -> str:
        """The URL without a password, for messages and logs."""
        parts = urlsplit(self.url)
        if parts.password:
            return self.url.replace(f":{parts.password}@", ":***@")
        return self.url


def parse_store_url(url: str) -> StoreURL:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        raw = unquote(parts.path)
        # sqlite:///relative.db -> "relative.db"; sqlite:////abs/path.db -> "/abs/path.db"
        path = Path(raw[1:] if raw.startswith("/") else raw)
        if not path.name:
            raise StoreUnavailable(f"{url}: no file name (e.g. sqlite:///relledger.db)")
        return StoreURL(
            url,
            {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "PROCESS_RECORDER_TOPIC": get_topic(SQLiteLedgerRecorder),
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "30",
            },
            sqlite_path=path,
        )
    if parts.scheme in ("postgresql", "postgres"):
        dbname = parts.path.lstrip("/")
        if not dbname:
            raise StoreUnavailable(f"{url}: no database name (postgresql://user@host:5432/db)")
        query = parse_qs(parts.query)
        settings = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "PROCESS_RECORDER_TOPIC": get_topic(PostgresLedgerRecorder),
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            # The library's name for how long one call waits for a pooled connection
            # (whole seconds; 0 cannot open a pool). It retries such a call 10 times,
            # so during an outage each store call fails within about 12 s and the
            # caller's own retry, which logs, counts and honours a stop, takes over.
            "POSTGRES_CONNECT_TIMEOUT": str(POOL_WAIT_S),
            # The projector folds a page inside the transaction that writes it (so no
            # other projector interleaves); a page whose relationships hold many
            # retractions of long histories can fold for longer than the library's
            # default 5 s without a statement. A hung client still loses its locks.
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
            "POSTGRES_SCHEMA": query.get("schema", [""])[0],
        }
        return StoreURL(url, settings)
    raise StoreUnavailable(
        f"{url}: unsupported store URL; use sqlite:///path/file.db or "
        "postgresql://user@host:port/dbname"
    )


def store_url_from(option: str | None) -> str:
    return option or os.environ.get(ENV_VAR) or DEFAULT_URL


def open_ledger(url: str, *, create: bool = False) -> RelationshipLedger:
    """Open the ledger at `url`; only `create` (what `relledger migrate` does) creates the
    database file and the tables, every other open leaves the store as it found it.
    """
    store = parse_store_url(url)
    if store.sqlite_path is not None:
        _check_sqlite_file(store, create)
    else:
        _probe_postgres(store)
    settings = {**store.settings, "CREATE_TABLE": "y" if create else "n"}
    try:
        return retry_creation_race(lambda: RelationshipLedger(env=settings))
    except _UNREACHABLE as error:
        raise StoreUnreachable(f"cannot reach the store {store.display}: {error}") from None
    except (PersistenceError, psycopg.Error, sqlite3.Error) as error:
        raise StoreUnavailable(f"cannot open the store {store.display}: {error}") from None


def wait_for_store(
    action: Callable[[], T], *, what: str, patience_s: float, say: Callable[[str], None]
) -> T:
    """Run `action`, waiting out store outages for up to `patience_s` seconds.

    The first failure is reported at once, then one line every few seconds with
    the time waited and the reason, so an operator sees why nothing moves.
    """
    last_said = [-STORE_WAIT_NOTICE_S]

    def tell(notice: RetryNotice) -> None:
        if notice.elapsed_s - last_said[0] >= STORE_WAIT_NOTICE_S:
            last_said[0] = notice.elapsed_s
            say(
                f"waiting for the store ({what}): {notice.elapsed_s:.0f}s of "
                f"{patience_s:.0f}s; {one_line(notice.error)[:200]}"
            )

    return retry_call(
        action,
        what=what,
        retry_on=OUTAGES,
        give_up_after=patience_s,
        initial_wait=0.2,
        max_wait=5.0,
        on_retry=tell,
    )


STORE_WAIT_NOTICE_S = 5.0


T = TypeVar("T")
_RACE_MESSAGES = (
    "tuple concurrently updated",
    "concurrently deleted",
    "already exists",
    "database is locked",
)


def retry_creation_race(create: Callable[[], T]) -> T:
    """Run `create` (which may create tables), again if it lost a creation race.

    Several processes opening a new store at once (two consumer replicas starting
    together) race on creating its tables, types, functions and the library's
    tracking migration row: PostgreSQL reports "tuple concurrently updated" or a
    duplicate, SQLite "database is locked", either an integrity error. A moment later
    everything exists and the same call succeeds. Other errors (a refused
    connection, a wrong password) are reported at once.
    """
    return retry_call(
        create,
        what="create the tables",
        retry_on=_lost_creation_race,
        give_up_after=10.0,
        initial_wait=0.1,
        max_wait=1.0,
    )


def _lost_creation_race(error: BaseException) -> bool:
    if not isinstance(error, (PersistenceError, psycopg.Error, sqlite3.Error)):
        return False
    conflict = (IntegrityError, psycopg.IntegrityError, sqlite3.IntegrityError)
    return isinstance(error, conflict) or any(m in str(error) for m in _RACE_MESSAGES)


def _check_sqlite_file(store: StoreURL, create: bool) -> None:
    path = store.sqlite_path
    assert path is not None
    if path.is_dir():
        raise StoreUnavailable(f"{store.display}: {path} is a directory, not a database file")
    if not path.exists():
        if not create:
            raise StoreUnavailable(
                f"no relledger store at {path}: create one with relledger migrate "
                "(or try relledger demo)"
            )
        if not path.parent.exists():
            raise StoreUnavailable(f"{store.display}: directory {path.parent} does not exist")
        _create_private(path)
        return
    with path.open("rb") as handle:
        header = handle.read(16)
    if header and header != b"SQLite format 3\x00":
        raise StoreUnavailable(f"{store.display}: {path} is not an SQLite database")
    if not create and MARKER_TABLE not in sqlite_tables(path):
        raise StoreUnavailable(not_a_store(store))


MARKER_TABLE = "relledger_schema"
"""The table `relledger migrate` marks a store with (`service.schema` writes it)."""


def not_a_store(store: StoreURL) -> str:
    return (
        f"{store.display} is not a relledger store (or was never migrated): "
        "run relledger migrate first"
    )


def sqlite_tables(path: Path) -> list[str]:
    """The tables and views of the SQLite file at `path`, read before the library opens
    it: the library would switch a foreign database to WAL mode (and an empty file into
    a database), writing to a file that is not ours."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = connection.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"
            ).fetchall()
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise StoreUnavailable(f"cannot read the store {path}: {error}") from None
    return [row[0] for row in rows]


PG_CONNECT_TIMEOUT_S = 2
"""PostgreSQL: how long opening a store waits for the server before saying why not
(libpq's shortest)."""


def _probe_postgres(store: StoreURL) -> None:
    """Connect once, directly, before the library's pool does: a server that is down,
    a wrong port, a database or role that does not exist is then said at once, with
    the host, port, database and the server's own reason (the pool says only that it
    got no connection, after retrying)."""
    settings = store.settings
    where = (
        f"host {settings['POSTGRES_HOST']}, port {settings['POSTGRES_PORT']}, "
        f"database {settings['POSTGRES_DBNAME']}"
    )
    try:
        psycopg.connect(
            host=settings["POSTGRES_HOST"],
            port=settings["POSTGRES_PORT"],
            dbname=settings["POSTGRES_DBNAME"],
            user=settings["POSTGRES_USER"],
            password=settings["POSTGRES_PASSWORD"] or None,
            connect_timeout=PG_CONNECT_TIMEOUT_S,
        ).close()
    except psycopg.OperationalError as error:
        raise StoreUnreachable(
            f"cannot reach the store at {where} ({store.display}): {server_reason(error)}"
        ) from None


def server_reason(error: BaseException) -> str:
    """libpq's message without its preamble, on one line: `connection failed: connection
    to server at "h", port p failed: FATAL:  database "x" does not exist` -> `database
    "x" does not exist`."""
    text = str(error)
    reason = text.rsplit(" failed: ", 1)[-1] if " failed: " in text else text
    reason = " ".join(reason.removeprefix("FATAL:").split())
    return reason or " ".join(text.split())


def _create_private(path: Path) -> None:
    """Create the new database file readable and writable by its owner only: it holds
    every interaction. SQLite gives its journal files the same permissions."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
