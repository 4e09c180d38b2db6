"""Stores for the tests: every store test runs on SQLite and on PostgreSQL.

PostgreSQL tests use a fresh schema each, dropped afterwards. Without a server
they skip with the reason on a laptop, and fail in CI (CI=true): a missing
server must never pass silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from api_server import Api, serving_api
from servers import unavailable

from domain.ledger import RelationshipLedger
from service.schema import migrate
from service.store import open_ledger

PG_URL = os.environ.get("RELLEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
DATA = Path(__file__).parent / "data"


def _pg_connect() -> psycopg.Connection:
    return psycopg.connect(PG_URL, connect_timeout=3, autocommit=True)


def _require_postgres() -> None:
    try:
        _pg_connect().close()
    except psycopg.OperationalError as error:
        unavailable(
            f"PostgreSQL not reachable at {PG_URL}: {error}".strip(), "the PostgreSQL backend"
        )


@contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    _require_postgres()
    schema = f"relledger_test_{uuid.uuid4().hex[:12]}"
    with _pg_connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?schema={schema}"
    finally:
        with _pg_connect() as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend, never migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
        return
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture
def store_url(empty_store_url: str) -> str:
    """A fresh relledger store on each backend, as `relledger migrate` leaves it."""
    migrate(empty_store_url)
    return empty_store_url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL relledger store, for what only a server can show (outages)."""
    with fresh_postgres_schema() as url:
        migrate(url)
        yield url


@pytest.fixture
def ledger(store_url: str) -> Iterator[RelationshipLedger]:
    opened = open_ledger(store_url)
    yield opened
    opened.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A real `relledger serve` per backend, for a whole test module, with a key per role."""
    folder = tmp_path_factory.mktemp("api")
    if request.param == "sqlite":
        yield from serving_api(f"sqlite:///{folder}/ledger.db", folder)
        return
    with fresh_postgres_schema() as url:
        yield from serving_api(url, folder)
