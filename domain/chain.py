"""Tamper evidence: each recorded interaction is hashed together with its predecessor.

`hash_n = SHA-256(hash_{n-1} + "\\n" + canonical_json(interaction_n))`, starting from
`GENESIS`. Editing, removing or reordering a stored interaction breaks every link
after it, and `verify_chain` says where. Anchoring the latest hash somewhere else
(a report, another system) also makes a rewrite of the whole chain detectable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64


def canonical_json(record: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace: the same interaction always hashes the same."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def link(previous: str, record: dict[str, Any]) -> str:
    return hashlib.sha256(previous.encode() + b"\n" + canonical_json(record)).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """A stored interaction as read back: its position, content and the hash stored with it."""

    version: int
    record: dict[str, Any]
    chain_hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    relationship_id: str
    version: int
    problem: str

    def __str__(self) -> str:
        return f"{self.relationship_id} #{self.version}: {self.problem}"


def verify_chain(relationship_id: str, entries: Iterable[ChainEntry]) -> list[ChainBreak]:
    """Recompute a relationship's chain from its stored entries and report each break.

    After a break, checking continues from the stored hash, so one edited record is
    reported once rather than as a cascade.
    """
    breaks: list[ChainBreak] = []
    previous = GENESIS
    expected_version = 1
    for entry in entries:
        if entry.version != expected_version:
            breaks.append(
                ChainBreak(
                    relationship_id,
                    entry.version,
                    f"records {expected_version}..{entry.version - 1} are missing",
                )
            )
        if entry.record.get("relationship_id") != relationship_id:
            breaks.append(
                ChainBreak(relationship_id, entry.version, "record names another relationship")
            )
        recomputed = link(previous, entry.record)
        if recomputed != entry.chain_hash:
            breaks.append(
                ChainBreak(
                    relationship_id,
                    entry.version,
                    "content or order does not match its hash (edited, removed or reordered)",
                )
            )
        previous = entry.chain_hash
        expected_version = entry.version + 1
    return breaks
