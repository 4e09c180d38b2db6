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


class ChainCursor:
    """Checks one relationship's chain entry by entry, holding only the last link.

    After a break, checking continues from the stored hash, so one edited record is
    reported once rather than as a cascade. A whole ledger is verified by streaming
    its log through one cursor per relationship: memory grows with relationships,
    not with events.
    """

    __slots__ = ("expected_version", "previous", "relationship_id")

    def __init__(self, relationship_id: str) -> None:
        self.relationship_id = relationship_id
        self.previous = GENESIS
        self.expected_version = 1

    def check(self, entry: ChainEntry) -> list[ChainBreak]:
        breaks: list[ChainBreak] = []
        rid = self.relationship_id
        if entry.version > self.expected_version:
            missing = f"records {self.expected_version}..{entry.version - 1} are missing"
            breaks.append(ChainBreak(rid, entry.version, missing))
        elif entry.version < self.expected_version:
            breaks.append(ChainBreak(rid, entry.version, "out of order in the log"))
        if entry.record.get("relationship_id") != rid:
            breaks.append(ChainBreak(rid, entry.version, "record names another relationship"))
        if link(self.previous, entry.record) != entry.chain_hash:
            breaks.append(
                ChainBreak(
                    rid,
                    entry.version,
                    "content or order does not match its hash (edited, removed or reordered)",
                )
            )
        self.previous = entry.chain_hash
        self.expected_version = entry.version + 1
        return breaks


def verify_chain(relationship_id: str, entries: Iterable[ChainEntry]) -> list[ChainBreak]:
    """Recompute a relationship's chain from its stored entries and report each break."""
    cursor = ChainCursor(relationship_id)
    return [found for entry in entries for found in cursor.check(entry)]
