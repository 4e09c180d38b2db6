"""The signing key pair of an audit: made, read and named without any store.

A checkpoint is only worth something if whoever can rewrite the store cannot also sign,
so the private key lives in a file the store's owner need not see, and the public key
is handed to auditors.

Keys are Ed25519: small keys and signatures, deterministic signing (no random number to
get wrong), implemented by `cryptography`. The private key is PEM PKCS#8, unencrypted,
created with mode 0600 in the same system call that creates it (`O_CREAT | O_EXCL`), so
it is never readable by anyone else, not even for an instant, and an existing file is
never overwritten; the public key is PEM SubjectPublicKeyInfo beside it, at `PATH.pub`.
A key is named by its **key id**: the first 16 bytes of the SHA-256 of the raw 32-byte
public key, in hex (32 characters). A checkpoint names the key that signed it, so a
checkpoint signed by another key is refused naming both.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from domain.errors import Conflict, Invalid

KEY_ID_BYTES = 16
PUBLIC_SUFFIX = ".pub"


class KeyFileExists(Conflict):
    """A key file is already at the path: keys are never overwritten."""


class UnreadableKeyFile(Invalid):
    """A key file that cannot be read, or is not an Ed25519 key in the expected PEM form."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:KEY_ID_BYTES].hex()


def public_key_path(private_key_path: Path) -> Path:
    """Where `signing-key new PATH` puts the public key: `PATH.pub`."""
    return private_key_path.with_name(private_key_path.name + PUBLIC_SUFFIX)


@dataclass(frozen=True)
class SigningKey:
    """A private key, read from its file, that signs checkpoints."""

    private: Ed25519PrivateKey
    key_id: str

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


@dataclass(frozen=True)
class PublicKey:
    """A public key, read from its file, that checks checkpoint signatures."""

    public: Ed25519PublicKey
    key_id: str

    def signed(self, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is this key's signature of exactly `message`."""
        try:
            self.public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NewKeyPair:
    """What `signing-key new` made."""

    key_id: str
    private_key: Path
    public_key: Path

    def view(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "private_key": str(self.private_key),
            "public_key": str(self.public_key),
        }


def create_key_pair(path: Path) -> NewKeyPair:
    """A new Ed25519 key: the private key at `path` (mode 0600), the public at `PATH.pub`.

    Refuses (`KeyFileExists`) if either file exists, writing nothing; a failure
    between the two files removes the private key it had just written.
    """
    public_path = public_key_path(path)
    for existing in (path, public_path):
        if existing.exists() or existing.is_symlink():
            raise KeyFileExists(f"{existing} exists already: a key file is never overwritten")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(path, pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except BaseException:
        with suppress(OSError):
            path.unlink()
        raise
    return NewKeyPair(key_id(private.public_key()), path, public_path)


def load_signing_key(path: Path) -> SigningKey:
    """The private key in `path` (PEM PKCS#8, unencrypted)."""
    try:
        private = serialization.load_pem_private_key(_read(path, "signing key"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise UnreadableKeyFile(
            f"{path}: not an unencrypted Ed25519 private key in PEM PKCS#8 ({type(error).__name__})"
        ) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise UnreadableKeyFile(f"{path}: a private key, but not an Ed25519 one")
    return SigningKey(private, key_id(private.public_key()))


def load_public_key(path: Path) -> PublicKey:
    """The public key in `path` (PEM SubjectPublicKeyInfo)."""
    try:
        public = serialization.load_pem_public_key(_read(path, "public key"))
    except (ValueError, UnsupportedAlgorithm) as error:
        raise UnreadableKeyFile(
            f"{path}: not an Ed25519 public key in PEM SubjectPublicKeyInfo "
            f"({type(error).__name__})"
        ) from None
    if not isinstance(public, Ed25519PublicKey):
        raise UnreadableKeyFile(f"{path}: a public key, but not an Ed25519 one")
    return PublicKey(public, key_id(public))


def _write_new(path: Path, content: bytes, mode: int) -> None:
    """Create `path` with `mode` from the start, failing if anything is there (a symlink
    too: `O_EXCL` does not follow it)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyFileExists(f"{path} exists already: a key file is never overwritten") from None
    except OSError as error:
        raise UnreadableKeyFile(f"cannot create {path}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
    except BaseException:
        path.unlink()  # no half-written key file is ever left behind
        raise


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise UnreadableKeyFile(f"cannot read the {what} {path}: {error.strerror}") from None
