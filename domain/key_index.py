"""The idempotency keys already recorded, as the write side asks the store about them.

Deciding whether an offered interaction is new, a redelivery or a conflict must not
need a relationship's history: that made every decision cost more as a relationship
grew, and kept every key it ever saw in memory. Instead each recorded key
`(source, event_id)` is a row of its own, with a digest of the canonical content it
recorded, written in the same transaction as the event (so the two never disagree),
and unique across the whole ledger (so the same key offered for another relationship
is a conflict too). `KeyIndex` is what the ledger needs from its recorder for that;
the store's recorders provide it (`service.recorders`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Key = tuple[str, str]
"""`(source, event_id)`: what a producer promises never to reuse."""


def key_hash(key: Key) -> bytes:
    """The index's row id for a key: 16 bytes of BLAKE2b over its length-prefixed parts.
    Fixed-size and free of any character a database could refuse in text (a NUL that an
    older contract let in), while `(source, event_id)` pairs stay told apart."""
    source, event_id = key
    joined = f"{len(source)}:{source}{event_id}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(joined, digest_size=16).digest()


def content_digest(canonical: bytes) -> bytes:
    """A short digest of an interaction's canonical bytes, to tell a redelivery (same
    digest) from a conflicting reuse of its key (another digest)."""
    return hashlib.blake2b(canonical, digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class RecordedKey:
    """One key as the ledger recorded it: where, with which content, and whether it is a
    retraction or was taken back by one (at which version of its relationship)."""

    source: str
    event_id: str
    relationship_id: str
    version: int
    digest: bytes
    retraction: bool = False
    retracted_by: int | None = None

    @property
    def key(self) -> Key:
        return (self.source, self.event_id)


@runtime_checkable
class KeyIndex(Protocol):
    """The store's table of recorded keys (read here; written with the events)."""

    def recorded_keys(self, keys: Iterable[Key]) -> Mapping[Key, RecordedKey]:
        """Those of `keys` already recorded (a missing key is not recorded)."""
        ...
