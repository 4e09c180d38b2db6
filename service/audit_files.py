"""The files of an audit: checkpoints and inclusion proofs, made, read, written and
checked without any store.

A checkpoint is only worth something if whoever can rewrite the store cannot also sign,
and a proof only if checking it needs nothing the store's owner controls. So everything
an auditor holds lives here, and nothing here opens a store: `verify-proof` runs on
the checkpoint, the public key and the proof alone. Taking
checkpoints and checking the ledger against them is `service.checkpoints`.
The keys that sign them are `service.signing_keys`.

Files are JSON. A checkpoint (`relledger-checkpoint/v1`) is a signed tree head: the
log's size and Merkle root (`domain.merkle`), the time and the key id, and an Ed25519
signature over the canonical JSON of those fields. A proof (`relledger-proof/v1`) holds
the checkpoint's size and root, the leaf index, the entry (the JSON object whose
canonical bytes are the leaf) and the audit path. Anything missing or malformed is
refused naming the file and the field.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from domain.chain import canonical_json
from domain.errors import Conflict, Invalid, Unverified
from domain.merkle import entry_leaf, verify_inclusion
from service.signing_keys import PublicKey, SigningKey, load_public_key

FORMAT = "relledger-checkpoint/v1"
PROOF_FORMAT = "relledger-proof/v1"
SIGNATURE_BYTES = 64
_HASH_HEX = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{32}")


class MalformedFile(Invalid):
    """A checkpoint or proof file that is not JSON, or lacks a field, or has a bad one."""


class BadSignature(Unverified):
    """A checkpoint signed by another key than the one presented, or edited since."""


class ProofRefused(Unverified):
    """An inclusion proof that does not check out against its checkpoint."""


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


class DocumentExists(Conflict):
    """An output file that exists: a checkpoint, a proof or a key file is not overwritten
    unless asked (`--force`)."""


def refuse_existing(path: Path, *, replace: bool) -> None:
    """Refuse early (before any work) to write over `path` unless `replace`."""
    if not replace and (path.exists() or path.is_symlink()):
        raise DocumentExists(f"{path} exists already: give another --out, or --force to replace it")


@contextmanager
def output_file(path: Path, *, replace: bool = False) -> Iterator[IO[bytes]]:
    """A file to stream into, that appears at `path` only once whole: written beside it,
    then linked in (refusing an existing file, `DocumentExists`) or, with `replace`,
    renamed over it."""
    refuse_existing(path, replace=replace)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            handle = temporary.open("wb")
        except OSError as error:
            raise CannotWrite(f"cannot write {path}: {error.strerror}") from None
        with handle:
            yield handle
        try:
            if replace:
                os.replace(temporary, path)
            else:
                os.link(temporary, path)
        except FileExistsError:
            refuse_existing(path, replace=False)
            raise
        except OSError as error:
            raise CannotWrite(f"cannot write {path}: {error.strerror}") from None
    finally:
        with suppress(FileNotFoundError):
            temporary.unlink()


def write_document(path: Path, document: dict[str, Any], *, replace: bool = False) -> None:
    """Write `document` to `path` whole or not at all (`output_file`)."""
    with output_file(path, replace=replace) as handle:
        handle.write(document_text(document).encode("utf-8"))


class CannotWrite(Invalid):
    """An output file that cannot be written (no such directory, no permission)."""


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
