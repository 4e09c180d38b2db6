"""API keys on SQLite and PostgreSQL: creation, hashing, revocation across replicas,
roles, and the `relledger keys` commands."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import relledger.cli_keys  # noqa: F401  (registers `relledger keys` on the app)
from domain.ledger import RelationshipLedger
from relledger.cli import app
from service.keys import (
    KEY_PREFIX,
    TABLE,
    ApiKey,
    DuplicateKeyName,
    InvalidKeyName,
    KeyRing,
    Role,
    UnknownKeyName,
    key_hash,
)
from service.store import open_ledger

runner = CliRunner()
Invoke = Callable[..., Result]


@pytest.fixture
def ring(ledger: RelationshipLedger) -> KeyRing:
    made = KeyRing(ledger)
    made.create_table()
    return made


@pytest.fixture
def replica(store_url: str, ring: KeyRing) -> Iterator[KeyRing]:
    """A second process's view of the same store: its own ledger, pool and key ring."""
    other = open_ledger(store_url)
    yield KeyRing(other)
    other.close()


def stored_rows(ring: KeyRing) -> list[dict[str, Any]]:
    """The keys' table as the database holds it, every column."""
    with ring._transaction(commit=False) as cursor:
        cursor.execute(f"SELECT * FROM {ring._dialect.name(TABLE)}")
        return [dict(row) for row in cursor.fetchall()]


def test_a_created_key_authenticates_with_its_name_and_role(ring: KeyRing) -> None:
    key = ring.create(Role.PRODUCER, "ingest-bot")
    assert key.startswith(KEY_PREFIX)
    assert len(key) >= len(KEY_PREFIX) + 43  # 32 random bytes, URL-safe base64

    found = ring.authenticate(key)
    assert found is not None
    assert (found.name, found.role, found.active) == ("ingest-bot", Role.PRODUCER, True)
    assert key.startswith(found.key_id)
    assert found.revoked_at is None


def test_unknown_and_malformed_keys_do_not_authenticate(ring: KeyRing) -> None:
    key = ring.create(Role.READER, "dashboard")
    assert ring.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert ring.authenticate(key + "x") is None
    assert ring.authenticate(key[len(KEY_PREFIX) :]) is None
    assert ring.authenticate("") is None
    assert ring.authenticate(KEY_PREFIX + "é" * 10) is None
    assert ring.authenticate(key_hash(key)) is None  # the stored hash is not a key
    assert ring.authenticate(key) is not None


def test_keys_are_random_and_each_create_makes_a_new_one(ring: KeyRing) -> None:
    keys = {ring.create(Role.READER, f"r{n}") for n in range(5)}
    assert len(keys) == 5
    found = [ring.authenticate(key) for key in keys]
    assert len({key.name for key in found if key is not None}) == 5


def test_the_key_is_stored_only_as_its_hash(ring: KeyRing) -> None:
    key = ring.create(Role.AUDITOR, "auditor-1")
    rows = stored_rows(ring)
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == {"name", "role", "key_id", "key_hash", "created_at", "revoked_at"}
    secret = key[len(KEY_PREFIX) :]
    for column, value in row.items():
        # Only the short public id may hold a piece of the key.
        if column != "key_id" and value is not None:
            assert secret[8:] not in str(value), column
            assert key not in str(value), column
    assert len(row["key_id"]) < len(key) // 3
    assert row["key_hash"] == key_hash(key)


def test_list_shows_every_key_and_never_a_secret(ring: KeyRing) -> None:
    first = ring.create(Role.PRODUCER, "a-producer")
    second = ring.create(Role.READER, "b-reader")
    listed = ring.list()
    assert [(k.name, k.role) for k in listed] == [
        ("a-producer", Role.PRODUCER),
        ("b-reader", Role.READER),
    ]
    assert all(isinstance(k, ApiKey) for k in listed)
    shown = json.dumps([k.view() for k in listed])
    for key in (first, second):
        assert key not in shown
        assert key_hash(key) not in shown
    assert not hasattr(listed[0], "key_hash")


def test_a_revoked_key_stops_at_once_on_another_replica(ring: KeyRing, replica: KeyRing) -> None:
    key = ring.create(Role.READER, "partner")
    assert replica.authenticate(key) is not None  # the replica has seen it work

    revoked = ring.revoke("partner")
    assert revoked.revoked_at is not None and not revoked.active

    assert replica.authenticate(key) is None
    assert ring.authenticate(key) is None
    [listed] = replica.list()
    assert listed.revoked_at == revoked.revoked_at


def test_revoking_twice_keeps_the_first_revocation(ring: KeyRing) -> None:
    ring.create(Role.READER, "twice")
    first = ring.revoke("twice")
    again = ring.revoke("twice")
    assert again.revoked_at == first.revoked_at


def test_revoking_an_unknown_name_is_an_error(ring: KeyRing) -> None:
    with pytest.raises(UnknownKeyName, match="no key named 'ghost'"):
        ring.revoke("ghost")


def test_a_duplicate_name_is_refused_even_after_revocation(ring: KeyRing) -> None:
    key = ring.create(Role.READER, "same")
    with pytest.raises(DuplicateKeyName, match="a key named 'same' exists already"):
        ring.create(Role.AUDITOR, "same")
    ring.revoke("same")
    with pytest.raises(DuplicateKeyName):
        ring.create(Role.READER, "same")
    assert len(stored_rows(ring)) == 1
    assert ring.authenticate(key) is None


@pytest.mark.parametrize("name", ["", " ", "has space", "-leading", "x" * 65, "a/b", "é"])
def test_invalid_names_are_refused(ring: KeyRing, name: str) -> None:
    with pytest.raises(InvalidKeyName):
        ring.create(Role.READER, name)
    assert stored_rows(ring) == []


def test_any_active_needs_one_unrevoked_key(ring: KeyRing, replica: KeyRing) -> None:
    assert not ring.any_active()
    assert ring.list() == []
    ring.create(Role.READER, "only")
    assert replica.any_active()
    ring.revoke("only")
    assert not replica.any_active()


def test_create_table_is_idempotent_and_keeps_the_keys(ring: KeyRing, replica: KeyRing) -> None:
    key = ring.create(Role.READER, "kept")
    ring.create_table()
    replica.create_table()
    assert replica.authenticate(key) is not None


def test_role_hierarchy() -> None:
    assert Role.AUDITOR.allows(Role.READER)
    assert Role.AUDITOR.allows(Role.AUDITOR)
    assert not Role.AUDITOR.allows(Role.PRODUCER)
    assert Role.READER.allows(Role.READER)
    assert not Role.READER.allows(Role.AUDITOR)
    assert not Role.READER.allows(Role.PRODUCER)
    assert Role.PRODUCER.allows(Role.PRODUCER)
    assert not Role.PRODUCER.allows(Role.READER)
    assert not Role.PRODUCER.allows(Role.AUDITOR)


def test_the_lookup_by_hash_is_indexed(ring: KeyRing) -> None:
    """authenticate finds a key with one index lookup, not a scan of the table."""
    for n in range(20):
        ring.create(Role.READER, f"k{n}")
    table = ring._dialect.name(TABLE)
    query = ring._dialect.sql(f"SELECT name FROM {table} WHERE key_hash = ?")
    with ring._transaction(commit=False) as cursor:
        if ring._dialect.is_postgres:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {query}", ("0" * 64,))
            plan = " ".join(str(row["QUERY PLAN"]) for row in cursor.fetchall())
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {query}", ("0" * 64,))
            plan = " ".join(str(row["detail"]) for row in cursor.fetchall())
    assert "Index" in plan or "INDEX" in plan, plan


@pytest.fixture
def cli(store_url: str) -> Invoke:
    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["--db", store_url, "keys", *args])

    return invoke


def test_cli_create_prints_the_key_last_and_once(cli: Invoke, store_url: str) -> None:
    result = cli("create", "--role", "producer", "--name", "loader")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    key = lines[-1]
    assert key.startswith(KEY_PREFIX)
    assert result.stdout.count(key) == 1
    assert key not in result.stderr
    assert "will not be shown again" in result.stderr

    ledger = open_ledger(store_url)
    try:
        found = KeyRing(ledger).authenticate(key)
    finally:
        ledger.close()
    assert found is not None and (found.name, found.role) == ("loader", Role.PRODUCER)


def test_cli_list_shows_names_and_roles_but_no_secret(
    cli: Invoke, ledger: RelationshipLedger
) -> None:
    empty = cli("list", "--json")  # the `ledger` fixture made the store
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.stdout) == []

    key = cli("create", "--role", "auditor", "--name", "audit").stdout.splitlines()[-1]
    cli("create", "--role", "reader", "--name", "board")

    table = cli("list")
    assert table.exit_code == 0, table.output
    assert "audit" in table.stdout and "board" in table.stdout and "auditor" in table.stdout
    assert key not in table.stdout and key_hash(key) not in table.stdout
    assert key[:11] in table.stdout  # the public key id

    listed = json.loads(cli("list", "--json").stdout)
    assert [(k["name"], k["role"], k["active"]) for k in listed] == [
        ("audit", "auditor", True),
        ("board", "reader", True),
    ]
    assert key not in json.dumps(listed) and key_hash(key) not in json.dumps(listed)


def test_cli_revoke(cli: Invoke, store_url: str) -> None:
    key = cli("create", "--role", "reader", "--name", "gone").stdout.splitlines()[-1]
    result = cli("revoke", "gone")
    assert result.exit_code == 0, result.output
    assert "'gone'" in result.stdout and "revoked at" in result.stdout
    assert cli("revoke", "gone").exit_code == 0  # idempotent

    listed = json.loads(cli("list", "--json").stdout)
    assert listed[0]["active"] is False and listed[0]["revoked_at"]
    ledger = open_ledger(store_url)
    try:
        assert KeyRing(ledger).authenticate(key) is None
    finally:
        ledger.close()


def test_cli_errors_are_one_line_with_exit_codes(
    cli: Invoke, ledger: RelationshipLedger, tmp_path: Path
) -> None:
    unknown = cli("revoke", "nobody")
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == "error: no key named 'nobody' (relledger keys list shows them)"

    cli("create", "--role", "reader", "--name", "twin")
    twin = cli("create", "--role", "reader", "--name", "twin")
    assert twin.exit_code == 2
    assert twin.stderr.strip() == "error: a key named 'twin' exists already"
    assert twin.stdout == ""

    bad_name = cli("create", "--role", "reader", "--name", "a b")
    assert bad_name.exit_code == 2 and len(bad_name.stderr.strip().splitlines()) == 1

    bad_role = cli("create", "--role", "admin", "--name", "x")
    assert bad_role.exit_code == 2

    missing = runner.invoke(app, ["--db", f"sqlite:///{tmp_path}/none.db", "keys", "list"])
    assert missing.exit_code == 3
    assert missing.stderr.startswith("error: no relledger store at")
