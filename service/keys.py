"""API keys for the HTTP service: who may call it, in which role, until when.

Keys live in the store itself (table `relledger_api_keys`, beside the read models and
through the same `eventsourcing` datastore), not in a file next to one server: every
replica of the service reads the same keys, and a revocation reaches all of them with
the next request, because `authenticate` asks the store on every call (no cache).

A key is shown once, when it is created, and only its SHA-256 hash is stored. A plain
fast hash is enough here, unlike for passwords: a key is 32 random bytes from
`secrets`, so there is no dictionary to try and 2**256 candidates to search; a slow
hash (bcrypt, scrypt) would only make every request slower. A copy of the table
therefore lets nobody call the service. The hash is also what a presented key is
looked up by: one lookup in a unique index, whatever the number of keys.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from domain.errors import Conflict, Invalid, NotFound
from domain.ledger import RelationshipLedger
from service.store_table import StoreTable

TABLE = "relledger_api_keys"
KEY_PREFIX = "rl_"
KEY_ID_LENGTH = len(KEY_PREFIX) + 8
"""The public key id is the key's first characters: enough to tell keys apart in a
list and to match a key someone holds to its name, too few to help guess the rest."""
MAX_PRESENTED = 200
"""Longer than any key this module makes: such a value is refused without hashing."""
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class Role(StrEnum):
    """What a key may do. An auditor may do all a reader may; a producer only records."""

    PRODUCER = "producer"
    READER = "reader"
    AUDITOR = "auditor"

    def allows(self, needed: Role) -> bool:
        """Whether a key with this role may do what needs `needed`."""
        return self is needed or (self is Role.AUDITOR and needed is Role.READER)


class InvalidKeyName(Invalid):
    """A name that is empty, too long, or has characters other than letters, digits,
    `.`, `_`, `@` and `-` (names are printed in lists and logs)."""


class DuplicateKeyName(Conflict):
    """A key with this name exists already (revoked keys keep their names)."""


class UnknownKeyName(NotFound):
    """No key has this name."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as anyone may see it: never the key, nor its hash."""

    name: str
    role: Role
    key_id: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def view(self) -> dict[str, Any]:
        """JSON-ready, for `keys list --json` and the service."""
        return {
            "name": self.name,
            "role": self.role.value,
            "key_id": self.key_id,
            "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
            "active": self.active,
        }


def key_hash(key: str) -> str:
    """What the store keeps of a key: the hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(key.encode()).hexdigest()


_PUBLIC = "name, role, key_id, created_at, revoked_at"


class KeyRing(StoreTable):
    """The API keys of one store, read and written through the ledger's datastore.

    Stateless apart from the datastore: any number of instances (one per replica) may
    work on the same store at once. `relledger migrate` creates the table
    (`create_table`).
    """

    def __init__(self, ledger: RelationshipLedger) -> None:
        super().__init__(ledger, TABLE)

    def create_table(self) -> None:
        """Create the keys' table if it does not exist (safe to call again).

        Processes starting together may race to create it; as with the read models,
        `migrate` calls this through `service.store.retry_creation_race`, which tries again.
        """
        statement = (
            f"CREATE TABLE IF NOT EXISTS {self._table} (name TEXT PRIMARY KEY, "
            "role TEXT NOT NULL, key_id TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, "
            "created_at TEXT NOT NULL, revoked_at TEXT)"
        )
        with self._transaction(commit=True) as cursor:
            cursor.execute(statement)

    def create(self, role: Role, name: str) -> str:
        """A new key for `name` in `role`; the only time the key itself is seen.

        Raises `InvalidKeyName` or `DuplicateKeyName` (a revoked key's name too: names
        identify keys in logs, so one name never means two keys).
        """
        role = Role(role)
        check_name(name)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._transaction(commit=True) as cursor:
            self._execute(
                cursor,
                f"INSERT INTO {self._table} (name, role, key_id, key_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING name",
                (name, role.value, key[:KEY_ID_LENGTH], key_hash(key), _now()),
            )
            inserted = cursor.fetchone() is not None
        if not inserted:
            raise DuplicateKeyName(f"a key named {name!r} exists already")
        return key

    def list(self) -> builtins.list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._transaction(commit=False) as cursor:
            self._execute(cursor, f"SELECT {_PUBLIC} FROM {self._table} ORDER BY created_at, name")
            rows = cursor.fetchall()
        return [_api_key(row) for row in rows]

    def revoke(self, name: str) -> ApiKey:
        """Revoke the key `name` now: it stops authenticating at once, on every replica.

        Idempotent: revoking a revoked key changes nothing and keeps the first
        revocation time (`revoked_at` of the answer says when). A revoked key cannot be
        restored; create a new one. Raises `UnknownKeyName`.
        """
        with self._transaction(commit=True) as cursor:
            self._execute(
                cursor,
                f"UPDATE {self._table} SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (_now(), name),
            )
            self._execute(cursor, f"SELECT {_PUBLIC} FROM {self._table} WHERE name = ?", (name,))
            row = cursor.fetchone()
        if row is None:
            raise UnknownKeyName(f"no key named {name!r} (relledger keys list shows them)")
        return _api_key(row)

    def authenticate(self, presented: str) -> ApiKey | None:
        """The active key `presented` is, or None (unknown, revoked, or malformed).

        One lookup by hash in the store on every call, so a revocation applies to the
        very next request. The stored hash is compared again in constant time: the
        lookup alone would already decide, but the comparison does not depend on the
        database's string equality.
        """
        if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_PRESENTED:
            return None
        if not presented.isascii():
            return None
        digest = key_hash(presented)
        with self._transaction(commit=False) as cursor:
            self._execute(
                cursor,
                f"SELECT {_PUBLIC}, key_hash FROM {self._table} WHERE key_hash = ?",
                (digest,),
            )
            row = cursor.fetchone()
        if row is None or not hmac.compare_digest(row["key_hash"], digest):
            return None
        found = _api_key(row)
        return found if found.active else None

    def any_active(self) -> bool:
        """Whether at least one key can authenticate."""
        with self._transaction(commit=False) as cursor:
            self._execute(cursor, f"SELECT 1 AS found FROM {self._table} WHERE revoked_at IS NULL")
            return cursor.fetchone() is not None


def check_name(name: str) -> None:
    if NAME_PATTERN.fullmatch(name) is None:
        raise InvalidKeyName(
            f"invalid key name {name!r}: 1 to 64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )


def _now() -> str:
    """UTC, ISO 8601 with microseconds: text sorts in time order on both backends."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _api_key(row: Any) -> ApiKey:
    revoked = row["revoked_at"]
    return ApiKey(
        name=row["name"],
        role=Role(row["role"]),
        key_id=row["key_id"],
        created_at=datetime.fromisoformat(row["created_at"]),
        revoked_at=None if revoked is None else datetime.fromisoformat(revoked),
    )
