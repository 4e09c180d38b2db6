"""Signed checkpoints of the whole ledger, and the proofs an auditor checks against them.

`verify` recomputes each relationship's hash chain, which catches an edit but not a
rewrite: whoever can write the database can delete a relationship's last records, or
rewrite a chain and recompute its hashes, and every chain still checks. A checkpoint
closes that gap the way Certificate Transparency does: the root of a Merkle tree over
every stored event in log order (`domain.merkle`), with the log's size and the time,
signed with an Ed25519 key (`service.signing`) kept away from the store. Whoever
holds the checkpoint and the public key can later check, without trusting the store:

- that the ledger *extends* it: today's log has at least its records, and its first
  records still hash to the signed root (an RFC 9162 consistency proof);
- that one event is *in* it: an inclusion proof (the event's entry and audit path)
  that needs nothing but the checkpoint and the public key to check, no store at all.

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

import base64
import binascii
import builtins
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, cast

import orjson
from eventsourcing.sqlite import SQLiteDatastore

from domain.chain import canonical_json
from domain.errors import Damaged, Invalid, NotFound, Unverified
from domain.ledger import RelationshipLedger, StoredInteraction, UnknownRelationship
from domain.merkle import (
    EMPTY_ROOT,
    LeafHashes,
    RootAccumulator,
    entry_leaf,
    entry_of,
    stored_leaf,
    verify_consistency,
    verify_inclusion,
)
from domain.relationship import relationship_uuid
from projections.audit import VerifyReport, verify_ledger
from projections.tables import SQLITE, Dialect, postgres
from service.signing import PublicKey, SigningKey, load_public_key

FORMAT = "relledger-checkpoint/v1"
PROOF_FORMAT = "relledger-proof/v1"
TABLE = "relledger_checkpoints"
SIGNATURE_BYTES = 64
_HASH_HEX = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{32}")


class MalformedFile(Invalid):
    """A checkpoint or proof file that is not JSON, or lacks a field, or has a bad one."""


class BadSignature(Unverified):
    """A checkpoint signed by another key than the one presented, or edited since."""


class NotExtended(Unverified):
    """The ledger does not extend a checkpoint: records deleted, edited, moved, inserted."""


class BrokenLedger(Unverified):
    """A ledger whose hash chains are broken: no checkpoint vouches for it."""


class ProofRefused(Unverified):
    """An inclusion proof that does not check out against its checkpoint."""


class NoCheckpoint(NotFound):
    """The store keeps no checkpoint yet."""


class UnknownRecord(NotFound):
    """The relationship has no record with this version."""


class NotCovered(Invalid):
    """The record was stored after the checkpoint: a newer checkpoint can prove it."""


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the log's size and Merkle root at a time, and who signed them."""

    size: int
    root: bytes
    time: str
    """ISO 8601 UTC, exactly as signed."""
    key_id: str
    signature: bytes

    def signed_fields(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "size": self.size,
            "root": self.root.hex(),
            "time": self.time,
            "key_id": self.key_id,
        }

    def message(self) -> bytes:
        """The bytes the signature is over: the canonical JSON of every other field."""
        return canonical_json(self.signed_fields())

    def view(self) -> dict[str, Any]:
        """The checkpoint as its file holds it, and as every `--json` shows it."""
        encoded = base64.b64encode(self.signature).decode()
        return {**self.signed_fields(), "signature": encoded}

    def __str__(self) -> str:
        return f"the checkpoint of {self.size} records signed by {self.key_id} at {self.time}"

    @classmethod
    def signed(cls, key: SigningKey, size: int, root: bytes, time: datetime) -> Checkpoint:
        moment = time.astimezone(UTC).isoformat(timespec="seconds")
        unsigned = cls(size, root, moment, key.key_id, b"")
        return cls(size, root, moment, key.key_id, key.sign(unsigned.message()))

    @classmethod
    def parse(cls, document: Any, source: str) -> Checkpoint:
        fields = _Fields(document, source, "checkpoint")
        fields.format(FORMAT)
        return cls(
            size=fields.count("size"),
            root=fields.hash("root"),
            time=fields.utc_time("time"),
            key_id=fields.text("key_id", _KEY_ID, "32 lowercase hex digits"),
            signature=fields.base64("signature", SIGNATURE_BYTES),
        )

    def check_signature(self, key: PublicKey, source: str, key_source: str) -> None:
        """Refuse (`BadSignature`) a checkpoint this key did not sign as it reads now."""
        if self.key_id != key.key_id:
            raise BadSignature(
                f"{source} is signed by key {self.key_id}, not by key {key.key_id} ({key_source})"
            )
        if not key.signed(self.signature, self.message()):
            raise BadSignature(
                f"{source}: the signature of key {self.key_id} does not match the "
                "checkpoint's content: it was changed after signing"
            )


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
            return f"{self.problem} (the latest checkpoint kept in the store)"
        kept = self.checkpoint
        return (
            f"the ledger extends the latest checkpoint kept in the store ({kept.size} records "
            f"signed by {kept.key_id} at {kept.time}), compared by root only"
        )


@dataclass(frozen=True)
class InclusionProof:
    """That one entry is leaf `leaf_index` of the tree a checkpoint signed."""

    size: int
    root: bytes
    leaf_index: int
    entry: dict[str, Any]
    """The JSON object whose canonical bytes are the leaf: what the auditor sees proven."""
    audit_path: list[bytes]

    def view(self) -> dict[str, Any]:
        """The proof as its file holds it."""
        return {
            "format": PROOF_FORMAT,
            "size": self.size,
            "root": self.root.hex(),
            "leaf_index": self.leaf_index,
            "entry": self.entry,
            "audit_path": [node.hex() for node in self.audit_path],
        }

    def describe(self) -> str:
        interaction = self.entry.get("interaction")
        details = interaction if isinstance(interaction, dict) else {}
        return (
            f"{self.entry['relationship_id']} #{self.entry['version']} "
            f"({details.get('kind', '?')}, occurred {details.get('occurred_at', '?')})"
        )

    @classmethod
    def parse(cls, document: Any, source: str) -> InclusionProof:
        fields = _Fields(document, source, "proof")
        fields.format(PROOF_FORMAT)
        entry = fields.object("entry")
        entry_fields = _Fields(entry, source, "proof entry", prefix="entry.")
        entry_fields.text("relationship_id")
        entry_fields.count("version")
        entry_fields.object("interaction")
        return cls(
            size=fields.count("size"),
            root=fields.hash("root"),
            leaf_index=fields.count("leaf_index"),
            entry=entry,
            audit_path=fields.hashes("audit_path"),
        )


@dataclass(frozen=True)
class ProvenEntry:
    """An inclusion proof checked against a signed checkpoint."""

    proof: InclusionProof
    checkpoint: Checkpoint

    def view(self) -> dict[str, Any]:
        entry = self.proof.entry
        details = entry["interaction"]
        return {
            "verified": True,
            "relationship_id": entry["relationship_id"],
            "version": entry["version"],
            "kind": details.get("kind"),
            "occurred_at": details.get("occurred_at"),
            "leaf_index": self.proof.leaf_index,
            "entry": entry,
            "checkpoint": self.checkpoint.view(),
        }

    def __str__(self) -> str:
        return f"{self.proof.describe()} is record {self.proof.leaf_index + 1} of {self.checkpoint}"


class LeafSink(Protocol):
    def append(self, leaf: bytes) -> None: ...


class Checkpoints:
    """The checkpoints of one store: taken, kept, listed, and the ledger checked against
    them. Stateless apart from the ledger's datastore, as `service.keys.KeyRing` is."""

    def __init__(self, ledger: RelationshipLedger) -> None:
        self._ledger = ledger
        self._datastore: Any = cast(Any, ledger.factory).datastore
        self._dialect: Dialect = (
            SQLITE
            if isinstance(self._datastore, SQLiteDatastore)
            else postgres(self._datastore.schema)
        )
        self._table = self._dialect.name(TABLE)

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

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Any]:
        with self._datastore.transaction(commit=commit) as cursor:
            yield cursor

    def _execute(self, cursor: Any, statement: str, params: Sequence[Any] = ()) -> None:
        cursor.execute(self._dialect.sql(statement), params)


def read_checkpoint(path: Path) -> Checkpoint:
    """A checkpoint file, read and checked for form (not for its signature)."""
    return Checkpoint.parse(read_document(path, "checkpoint"), str(path))


def signed_checkpoint(path: Path, public_key: Path) -> Checkpoint:
    """A checkpoint file whose signature the public key in `public_key` checks."""
    checkpoint = read_checkpoint(path)
    checkpoint.check_signature(load_public_key(public_key), str(path), str(public_key))
    return checkpoint


def verify_proof(proof_path: Path, checkpoint_path: Path, public_key: Path) -> ProvenEntry:
    """Check an inclusion proof offline, from its file, the checkpoint's and the public
    key's alone: the signature, that the proof is against this checkpoint, and that its
    entry hashes along its audit path to the signed root."""
    checkpoint = signed_checkpoint(checkpoint_path, public_key)
    proof = InclusionProof.parse(read_document(proof_path, "proof"), str(proof_path))
    if (proof.size, proof.root) != (checkpoint.size, checkpoint.root):
        raise ProofRefused(
            f"{proof_path} proves inclusion in a tree of {proof.size} records with root "
            f"{proof.root.hex()}, not in {checkpoint} (root {checkpoint.root.hex()})"
        )
    leaf = entry_leaf(proof.entry)
    if not verify_inclusion(leaf, proof.leaf_index, proof.size, proof.audit_path, proof.root):
        raise ProofRefused(
            f"{proof_path}: {proof.describe()} does not hash, along the audit path, to the "
            f"root of {checkpoint}: the entry, its index or the path was changed"
        )
    return ProvenEntry(proof, checkpoint)


def verify_view(report: VerifyReport, stored: StoredComparison | None) -> dict[str, Any]:
    """`verify --json` for the whole ledger: the chains' report, and how the ledger
    compares with the latest checkpoint kept in the store (null when none is kept)."""
    return {**report.view(), "checkpoint": None if stored is None else stored.view()}


def read_document(path: Path, what: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise MalformedFile(f"cannot read the {what} {path}: {error.strerror}") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise MalformedFile(f"{path}: not a {what}: not JSON ({error})") from None


def document_text(document: dict[str, Any]) -> str:
    """A checkpoint or proof as its file holds it: indented JSON, one trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_document(path: Path, document: dict[str, Any]) -> None:
    try:
        path.write_text(document_text(document), encoding="utf-8")
    except OSError as error:
        raise MalformedFile(f"cannot write {path}: {error.strerror}") from None


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


class _Fields:
    """A JSON object from a file, read field by field: `MalformedFile` names the file and
    the field for anything missing or malformed."""

    def __init__(self, document: Any, source: str, what: str, prefix: str = "") -> None:
        if not isinstance(document, dict):
            raise MalformedFile(f"{source}: not a {what} (a JSON object is expected)")
        self._document = document
        self._source = source
        self._prefix = prefix

    def _bad(self, name: str, expected: str) -> MalformedFile:
        if name not in self._document:
            return MalformedFile(f"{self._source}: field {self._prefix}{name} is missing")
        return MalformedFile(f"{self._source}: field {self._prefix}{name} must be {expected}")

    def format(self, expected: str) -> None:
        if self._document.get("format") != expected:
            raise self._bad("format", repr(expected))

    def count(self, name: str) -> int:
        value = self._document.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._bad(name, "a whole number, 0 or more")
        return value

    def text(self, name: str, pattern: re.Pattern[str] | None = None, shape: str = "") -> str:
        value = self._document.get(name)
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
            raise self._bad(name, shape or "a string")
        return value

    def hash(self, name: str) -> bytes:
        return bytes.fromhex(self.text(name, _HASH_HEX, "a SHA-256 hash: 64 lowercase hex digits"))

    def hashes(self, name: str) -> list[bytes]:
        value = self._document.get(name)
        if not isinstance(value, list) or not all(
            isinstance(one, str) and _HASH_HEX.fullmatch(one) for one in value
        ):
            raise self._bad(name, "a list of SHA-256 hashes (64 lowercase hex digits each)")
        return [bytes.fromhex(one) for one in value]

    def object(self, name: str) -> dict[str, Any]:
        value = self._document.get(name)
        if not isinstance(value, dict):
            raise self._bad(name, "a JSON object")
        return value

    def utc_time(self, name: str) -> str:
        value = self.text(name)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is None or moment.utcoffset() != timedelta(0):
            raise self._bad(name, "an ISO 8601 time in UTC")
        return value

    def base64(self, name: str, length: int) -> bytes:
        value = self.text(name)
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != length:
            raise self._bad(name, f"{length} bytes in base64")
        return decoded
