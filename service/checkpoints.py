"""Signed checkpoints of the whole ledger: taken, kept in the store, and the ledger
checked against them.

`verify` recomputes each relationship's hash chain, which catches an edit but not a
rewrite: whoever can write the database can delete a relationship's last records, or
rewrite a chain and recompute its hashes, and every chain still checks. A checkpoint
closes that gap the way Certificate Transparency does: the root of a Merkle tree over
every stored event in log order (`domain.merkle`), with the log's size and the time,
signed with an Ed25519 key kept away from the store (`service.audit_files`). Whoever
holds the checkpoint and the public key can later check, without trusting the store:

- that the ledger *extends* it: today's log has at least its records, and its first
  records still hash to the signed root (an RFC 9162 consistency proof);
- that one event is *in* it: an inclusion proof, made here (`prove`) and checked
  offline by `service.audit_files.verify_proof`.

Checkpoints are also kept in the store (table `relledger_checkpoints`, created by
`relledger migrate`), so plain `verify` compares the ledger with the latest one even
without its file: a truncated log is then noticed by anyone who runs `verify`. Only
the file and the public key are evidence, though: whoever can rewrite the log can
rewrite that table too, and the store's copy is compared by root, not signature.

Chains are always checked by `projections.audit.verify_ledger`, then the leaves
hashed in a second pass over the same first records of the log (the log only grows,
so those are the records the chain check saw).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Protocol, cast

import orjson

from domain.chain import canonical_json
from domain.errors import Damaged, Invalid, NotFound, Unverified
from domain.ledger import RelationshipLedger, UnknownRelationship
from domain.merkle import (
    EMPTY_ROOT,
    LeafHashes,
    RootAccumulator,
    entry_of,
    stored_leaf,
    verify_consistency,
)
from domain.relationship import relationship_uuid
from domain.stored import StoredInteraction
from projections.audit import VerifyReport, verify_ledger
from service.audit_files import FORMAT, Checkpoint, InclusionProof, MalformedFile
from service.signing_keys import SigningKey
from service.store_table import StoreTable

TABLE = "relledger_checkpoints"


class NotExtended(Unverified):
    """The ledger does not extend a checkpoint: records deleted, edited, moved, inserted."""


class BrokenLedger(Unverified):
    """A ledger whose hash chains are broken: no checkpoint vouches for it."""


class NoCheckpoint(NotFound):
    """The store keeps no checkpoint yet."""


class UnknownRecord(NotFound):
    """The relationship has no record with this version."""


class NotCovered(Invalid):
    """The record was stored after the checkpoint: a newer checkpoint can prove it."""


@dataclass(frozen=True)
class Extension:
    """The ledger extends a checkpoint: it has at least its records, the same first ones."""

    checkpoint: Checkpoint
    records: int
    root: bytes

    def view(self) -> dict[str, Any]:
        return {
            "extends": True,
            "records": self.records,
            "root": self.root.hex(),
            "checkpoint": self.checkpoint.view(),
        }

    def __str__(self) -> str:
        return f"the ledger ({self.records} records) extends {self.checkpoint}"


@dataclass(frozen=True)
class StoredComparison:
    """The ledger compared with the latest checkpoint kept in the store, by root only."""

    checkpoint: Checkpoint
    problem: str | None

    @property
    def extends(self) -> bool:
        return self.problem is None

    def view(self) -> dict[str, Any]:
        return {
            "extends": self.extends,
            "problem": self.problem,
            "signature_checked": False,
            "checkpoint": self.checkpoint.view(),
        }

    def __str__(self) -> str:
        if self.problem is not None:
            return f"against the latest checkpoint kept in the store: {self.problem}"
        kept = self.checkpoint
        return (
            f"the ledger extends the latest checkpoint kept in the store ({kept.size} records "
            f"signed by {kept.key_id} at {kept.time}), compared by root only"
        )


class LeafSink(Protocol):
    def append(self, leaf: bytes) -> None: ...


class Checkpoints(StoreTable):
    """The checkpoints of one store: taken, kept, listed, and the ledger checked against
    them. Stateless apart from the ledger's datastore, as `service.keys.KeyRing` is."""

    def __init__(self, ledger: RelationshipLedger) -> None:
        super().__init__(ledger, TABLE)

    def create_table(self) -> None:
        """Create the checkpoints' table if it does not exist (`migrate` calls this)."""
        statement = (
            f"CREATE TABLE IF NOT EXISTS {self._table} (signature TEXT PRIMARY KEY, "
            f"format TEXT NOT NULL, size {self._dialect.bigint} NOT NULL, "
            "root TEXT NOT NULL, time TEXT NOT NULL, key_id TEXT NOT NULL)"
        )
        with self._transaction(commit=True) as cursor:
            cursor.execute(statement)

    def take(self, key: SigningKey) -> Checkpoint:
        """Sign the ledger as it is now, keep the checkpoint in the store and return it.

        Refuses (`BrokenLedger`) a ledger whose chains are broken, and (`NotExtended`)
        one that no longer extends the latest checkpoint kept: a new checkpoint must
        not paper over a truncation the last one would reveal.
        """
        chains = verify_ledger(self._ledger)
        if not chains.intact:
            raise BrokenLedger(
                f"refusing to sign a ledger whose hash chains are broken: "
                f"{len(chains.breaks)} break(s), first: {chains.breaks[0]}"
            )
        latest = self.latest()
        tree = _RootWithPrefix(0 if latest is None else latest.size)
        self._hash_leaves(chains.records, tree)
        if latest is not None:
            problem = _prefix_problem(latest, tree.size, tree.prefix_root)
            if problem is not None:
                raise NotExtended(f"refusing to sign: {problem} (the latest kept in the store)")
        checkpoint = Checkpoint.signed(key, tree.size, tree.root(), datetime.now(UTC))
        with self._transaction(commit=True) as cursor:
            self._execute(
                cursor,
                f"INSERT INTO {self._table} (signature, format, size, root, time, key_id) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (signature) DO NOTHING",
                (
                    checkpoint.view()["signature"],
                    FORMAT,
                    checkpoint.size,
                    checkpoint.root.hex(),
                    checkpoint.time,
                    checkpoint.key_id,
                ),
            )
        return checkpoint

    def list(self) -> builtins.list[Checkpoint]:
        """Every checkpoint kept, oldest first."""
        return self._select("ORDER BY time, size")

    def latest(self) -> Checkpoint | None:
        found = self._select("ORDER BY time DESC, size DESC LIMIT 1")
        return found[0] if found else None

    def extends(self, checkpoint: Checkpoint) -> Extension:
        """Check that the ledger extends `checkpoint` (whose signature the caller checked):
        the RFC 9162 consistency proof from its size to today's, verified against its
        root and today's root, and every hash chain intact. `NotExtended` says in one
        line what broke, naming the first chain break if there is one."""
        chains = verify_ledger(self._ledger)
        leaves = LeafHashes()
        self._hash_leaves(chains.records, leaves)
        size, root = len(leaves), leaves.root()
        if size < checkpoint.size:
            raise NotExtended(_fewer(checkpoint, size) + _first_break(chains, ""))
        proof = leaves.consistency_proof(checkpoint.size, size)
        if not verify_consistency(checkpoint.size, size, checkpoint.root, root, proof):
            rewritten = (
                "; every hash chain still checks, so the history was rewritten with "
                "recomputed hashes (or the log reordered)"
            )
            raise NotExtended(_changed(checkpoint) + _first_break(chains, rewritten))
        if not chains.intact:
            raise NotExtended(
                f"the ledger extends {checkpoint}, but its hash chains are broken: "
                f"{len(chains.breaks)} break(s), first: {chains.breaks[0]}"
            )
        return Extension(checkpoint, size, root)

    def against_latest(self) -> StoredComparison | None:
        """The ledger's first records compared with the latest checkpoint kept (None if
        none is): the root is recomputed, the signature cannot be checked here."""
        latest = self.latest()
        if latest is None:
            return None
        tree = _RootWithPrefix(latest.size)
        self._hash_leaves(latest.size, tree)
        return StoredComparison(latest, _prefix_problem(latest, tree.size, tree.prefix_root))

    def prove(
        self, relationship_id: str, version: int, checkpoint: Checkpoint | None = None
    ) -> InclusionProof:
        """The inclusion proof of one stored event in `checkpoint` (default: the latest
        kept). The ledger must still extend the checkpoint, or no proof could verify."""
        if checkpoint is None:
            checkpoint = self.latest()
            if checkpoint is None:
                raise NoCheckpoint(
                    "no checkpoint is kept in this store: take one with relledger checkpoint"
                )
        wanted = relationship_uuid(relationship_id)
        leaves = LeafHashes()
        known = False
        found: tuple[int, StoredInteraction] | None = None
        for stored in self._ledger.scan():
            if stored.aggregate_id == wanted:
                known = True
                is_wanted = isinstance(stored, StoredInteraction) and stored.version == version
                if found is None and is_wanted:
                    found = (len(leaves), cast(StoredInteraction, stored))
            leaves.append(stored_leaf(stored))
            if found is not None and len(leaves) >= checkpoint.size:
                break
        if len(leaves) < checkpoint.size:
            raise NotExtended(_fewer(checkpoint, len(leaves)))
        if leaves.root(checkpoint.size) != checkpoint.root:
            raise NotExtended(f"{_changed(checkpoint)}: no proof against it can verify")
        if not known:
            raise UnknownRelationship(relationship_id)
        if found is None:
            raise UnknownRecord(f"{relationship_id} has no record #{version}")
        index, stored = found
        if index >= checkpoint.size:
            raise NotCovered(
                f"{relationship_id} #{version} is record {index + 1} of the log, stored "
                f"after {checkpoint}: a later checkpoint can prove it"
            )
        return InclusionProof(
            size=checkpoint.size,
            root=checkpoint.root,
            leaf_index=index,
            entry=orjson.loads(canonical_json(entry_of(stored))),
            audit_path=leaves.inclusion_proof(index, checkpoint.size),
        )

    def _hash_leaves(self, count: int, into: LeafSink) -> None:
        """The leaves of the log's first `count` records (fewer if it has fewer)."""
        for stored in islice(self._ledger.scan(), count):
            into.append(stored_leaf(stored))

    def _select(self, order: str) -> builtins.list[Checkpoint]:
        with self._transaction(commit=False) as cursor:
            self._execute(
                cursor, f"SELECT size, root, time, key_id, signature FROM {self._table} {order}"
            )
            rows = cursor.fetchall()
        source = f"the store's table {TABLE}"
        try:
            return [Checkpoint.parse({"format": FORMAT, **dict(row)}, source) for row in rows]
        except MalformedFile as error:
            raise Damaged(str(error)) from None


@dataclass(frozen=True)
class LedgerCheck:
    """`verify` of the whole ledger: every chain (`chains`), and the ledger against the
    latest checkpoint kept in the store (`kept`, None when none is). Intact only if both
    hold: a truncated log has intact chains."""

    chains: VerifyReport
    kept: StoredComparison | None

    @property
    def intact(self) -> bool:
        return self.chains.intact and (self.kept is None or self.kept.extends)

    def view(self) -> dict[str, Any]:
        """The JSON of `verify --json` and `GET /v1/verify`: `intact` is the verdict,
        `chains_intact` the chains' alone."""
        return {
            **self.chains.view(),
            "intact": self.intact,
            "chains_intact": self.chains.intact,
            "checkpoint": None if self.kept is None else self.kept.view(),
        }


class _RootWithPrefix:
    """A streamed root that also notes the root of its first `prefix` leaves."""

    def __init__(self, prefix: int) -> None:
        self._tree = RootAccumulator()
        self._prefix = prefix
        self.prefix_root: bytes | None = EMPTY_ROOT if prefix == 0 else None

    @property
    def size(self) -> int:
        return self._tree.size

    def append(self, leaf: bytes) -> None:
        self._tree.append(leaf)
        if self._tree.size == self._prefix:
            self.prefix_root = self._tree.root()

    def root(self) -> bytes:
        return self._tree.root()


def _prefix_problem(checkpoint: Checkpoint, size: int, prefix_root: bytes | None) -> str | None:
    if size < checkpoint.size:
        return _fewer(checkpoint, size)
    if prefix_root != checkpoint.root:
        return _changed(checkpoint)
    return None


def _fewer(checkpoint: Checkpoint, size: int) -> str:
    return (
        f"the ledger has {size} records, {checkpoint.size - size} fewer than "
        f"{checkpoint}: records were deleted or the log truncated"
    )


def _changed(checkpoint: Checkpoint) -> str:
    return (
        f"the first {checkpoint.size} records no longer hash to the root of {checkpoint} "
        "(records edited, removed, inserted or reordered)"
    )


def _first_break(chains: VerifyReport, if_intact: str) -> str:
    return f"; first break: {chains.breaks[0]}" if chains.breaks else if_intact
