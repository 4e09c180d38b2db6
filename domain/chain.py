"""Tamper evidence: each recorded interaction is hashed together with its predecessor.

`hash_n = SHA-256(hash_{n-1} + "\\n" + canonical_json(interaction_n))`, starting from
`GENESIS`. Editing or removing a stored interaction breaks the link at it, and
`ChainCursor` says where. Anchoring the latest hash somewhere else (a report,
another system) also makes a rewrite of the whole chain detectable.

The chain is defined in version order (the order the aggregate was recorded in). The
store also keeps every event at a position in a ledger-wide log, which the read models
fold in; moving events around in that log leaves every hash intact, so `misplaced`
finds the fewest events whose log positions disagree with their versions.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64


def canonical_json(record: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace: the same interaction always hashes the same."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


class CanonicalRecord(dict[str, Any]):
    """An interaction's canonical form that keeps its canonical bytes (`canonical`).

    The ledger hashes those bytes into the chain and the key index's digest, and the
    transcoder (`domain.transcoder`) writes these same bytes into the stored event
    rather than serialising the record a second time: what is stored is exactly what
    was hashed. Read back, a record is a plain dict again.
    """

    __slots__ = ("canonical",)

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record)
        self.canonical = canonical_json(record)


def link(previous: str, record: dict[str, Any]) -> str:
    return link_bytes(previous, canonical_json(record))


def link_bytes(previous: str, canonical: bytes) -> str:
    """`link`, for an interaction whose canonical bytes are already at hand."""
    return hashlib.sha256(previous.encode() + b"\n" + canonical).hexdigest()


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


def _records(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first}..{last} are"


class ChainCursor:
    """Checks one relationship's chain entry by entry, in version order, holding only the
    last link; each entry gets at most one problem.

    After a break, checking continues from the stored hash, so one edited record is
    reported once rather than as a cascade. A gap (records removed, or moved into
    another relationship) is reported once, at the record after it, whose hash cannot
    be checked without its missing predecessor; so is the record after one that could
    not be read (`skip`).
    """

    __slots__ = ("expected_version", "previous")

    def __init__(self) -> None:
        self.previous: str | None = GENESIS
        """The stored hash of the record before the next one; None when it is unknown."""
        self.expected_version = 1

    def check(self, entry: ChainEntry) -> str | None:
        """The problem with `entry`, the next of the chain in version order, if any."""
        previous, expected = self.previous, self.expected_version
        self.previous = entry.chain_hash
        self.expected_version = entry.version + 1
        if entry.version > expected:
            gap = _records(expected, entry.version - 1)
            return f"{gap} missing before it (removed, or moved into another relationship)"
        if entry.version < expected:
            return "checked out of version order"
        if previous is not None and link(previous, entry.record) != entry.chain_hash:
            return (
                "content does not match its hash (this record was edited, or the one before it "
                "rewritten)"
            )
        return None

    def skip(self, version: int) -> None:
        """Step over a record whose content is unknown (it could not be read)."""
        self.previous = None
        self.expected_version = version + 1


def misplaced(versions: Sequence[int]) -> set[int]:
    """The indexes of the fewest entries of `versions` (one relationship's versions, in log
    order) that must move for the rest to be in increasing order.

    Everything outside one longest increasing subsequence (O(n log n), patience sorting):
    an event moved alone is the one named, and two neighbours swapped are one break.
    """
    tails: list[int] = []  # tails[k]: the smallest last version of an increasing run of k+1
    tail_index: list[int] = []
    before: list[int] = [-1] * len(versions)
    for index, version in enumerate(versions):
        k = bisect_left(tails, version)
        if k == len(tails):
            tails.append(version)
            tail_index.append(index)
        else:
            tails[k] = version
            tail_index[k] = index
        before[index] = tail_index[k - 1] if k else -1
    kept: set[int] = set()
    index = tail_index[-1] if tail_index else -1
    while index >= 0:
        kept.add(index)
        index = before[index]
    return set(range(len(versions))) - kept
