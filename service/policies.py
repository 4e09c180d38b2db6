"""Where policies come from: the shipped `v1`, a file an auditor names, or the store,
which keeps every policy its read models were built under."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from pathlib import Path

from domain.errors import Invalid, PolicyError
from domain.ledger import RelationshipLedger
from domain.policy import Policy
from service.store_table import StoreTable

DEFAULT_POLICY = "v1"
TABLE = "relledger_policies"


@cache
def default_policy() -> Policy:
    text = files("domain").joinpath(f"policies/{DEFAULT_POLICY}.toml").read_text("utf-8")
    return Policy.from_toml(text, origin=f"policy {DEFAULT_POLICY}")


def load_policy(path: Path | None = None) -> Policy:
    if path is None:
        return default_policy()
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise PolicyError(f"cannot read policy file {path}: {error.strerror}") from None
    return Policy.from_toml(text, origin=str(path))


class PolicyConflict(Invalid):
    """A policy file reusing a version name the store knows, with other rules: every
    figure names the version that made it, so one name must never mean two policies."""


class KnownPolicies(StoreTable):
    """Every policy this store's read models were built under (table `relledger_policies`),
    so an auditor can replay under any of them by name, and a file that reuses one of
    their names with other rules is refused wherever it is offered."""

    def __init__(self, ledger: RelationshipLedger) -> None:
        super().__init__(ledger, TABLE)

    def create_table(self) -> None:
        statement = (
            f"CREATE TABLE IF NOT EXISTS {self._table} (version TEXT PRIMARY KEY, "
            "rules TEXT NOT NULL, first_used TEXT NOT NULL)"
        )
        with self._transaction(commit=True) as cursor:
            cursor.execute(statement)

    def remember(self, policy: Policy) -> None:
        """Keep `policy` (it is about to score, or scores, the read models); raises
        `PolicyConflict` if its version is known with other rules."""
        self.check(policy)
        with self._transaction(commit=True) as cursor:
            self._execute(
                cursor,
                f"INSERT INTO {self._table} (version, rules, first_used) VALUES (?, ?, ?) "
                "ON CONFLICT (version) DO NOTHING",
                (policy.version, policy.model_dump_json(), datetime.now(UTC).isoformat()),
            )

    def check(self, policy: Policy) -> None:
        """Refuse `policy` if the store knows its version with other rules."""
        known = self.get(policy.version)
        if known is not None and known != policy:
            raise PolicyConflict(
                f"policy version {policy.version!r} is known in this store with other rules: "
                "give the file a new version name"
            )

    def get(self, version: str) -> Policy | None:
        with self._transaction(commit=False) as cursor:
            self._execute(cursor, f"SELECT rules FROM {self._table} WHERE version = ?", (version,))
            row = cursor.fetchone()
        return None if row is None else Policy.model_validate_json(row["rules"])

    def all(self) -> list[Policy]:
        """Oldest first."""
        with self._transaction(commit=False) as cursor:
            self._execute(cursor, f"SELECT rules FROM {self._table} ORDER BY first_used, version")
            rows = cursor.fetchall()
        return [Policy.model_validate_json(row["rules"]) for row in rows]
