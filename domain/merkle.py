"""One Merkle tree over the whole ledger (RFC 6962 / RFC 9162), so history can be signed.

The hash chains (`domain.chain`) prove each relationship's records consistent with
each other, but not with anything outside the store: whoever can write the database
can delete a relationship's last records, or rewrite a chain and recompute its
hashes, and every chain still checks. A Merkle tree over every stored event, in log
order, gives one root hash for the whole ledger at a given size. Signed and kept
elsewhere (a checkpoint), that root lets anyone check later that the ledger still
*extends* it (a consistency proof), or that one event is in it (an inclusion proof),
exactly as Certificate Transparency logs do. Using the RFC's tree rather than an
ad-hoc one means the proofs are the RFC's too, checked by its algorithms.

Hashing (RFC 9162 §2.1.1): a leaf is `SHA-256(0x00 || entry)`, an interior node
`SHA-256(0x01 || left || right)`, the empty tree `SHA-256("")`. The prefixes keep a
leaf from ever passing for a node. A ledger leaf's entry is the canonical JSON of
what identifies and says a stored event (`entry_of`), so editing its content, its
topic, its flags, or moving it to another version or place in the log changes the
tree.

Pure: no I/O. Callers stream leaves in (`RootAccumulator`, `LeafHashes`) and keep
what they need.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from domain.chain import canonical_json
from domain.stored import StoredInteraction, UnreadableRecord

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of a tree with no leaves (RFC 9162 §2.1.1)."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def entry_of(stored: StoredInteraction) -> dict[str, Any]:
    """What a stored event's leaf commits to, as the JSON object a proof shows an auditor.

    `recorded_at` stays a datetime here; `canonical_json` writes it as ISO 8601, and
    the same object read back from JSON (with the time as that string) has the same
    canonical bytes.
    """
    return {
        "relationship_id": stored.relationship_id,
        "version": stored.version,
        "topic": stored.topic,
        "interaction": stored.record,
        "late": stored.late,
        "chain_hash": stored.chain_hash,
        "recorded_at": stored.recorded_at,
    }


def entry_leaf(entry: dict[str, Any]) -> bytes:
    """The leaf hash of an entry object (as `entry_of` makes, or as read from a proof)."""
    return leaf_hash(canonical_json(entry))


def stored_leaf(stored: StoredInteraction | UnreadableRecord) -> bytes:
    """The leaf of one row of the log.

    A row that no longer decodes still takes its place in the tree (or every later
    leaf would shift and hide where the damage is); it hashes a text naming it, which
    no entry (always a JSON object, starting with `{`) can equal, so a checkpoint
    taken before the damage never matches it.
    """
    if isinstance(stored, UnreadableRecord):
        return leaf_hash(f"unreadable {stored.aggregate_id} #{stored.version}".encode())
    return entry_leaf(entry_of(stored))


class RootAccumulator:
    """The root of a growing tree, from its leaves streamed in, in O(log n) memory.

    Holds the roots of the perfect subtrees that the leaves so far decompose into
    (one per set bit of the size, largest first), as a binary counter does: adding a
    leaf merges equal-sized subtrees. Folding them from the right gives the RFC's
    root, so `root()` may be asked at any size while streaming.
    """

    __slots__ = ("_subtrees", "size")

    def __init__(self) -> None:
        self._subtrees: list[bytes] = []
        self.size = 0

    def append(self, leaf: bytes) -> None:
        self._subtrees.append(leaf)
        self.size += 1
        merged = self.size
        while merged % 2 == 0:
            right = self._subtrees.pop()
            self._subtrees[-1] = node_hash(self._subtrees[-1], right)
            merged //= 2

    def root(self) -> bytes:
        if not self._subtrees:
            return EMPTY_ROOT
        found = self._subtrees[-1]
        for left in reversed(self._subtrees[:-1]):
            found = node_hash(left, found)
        return found


class LeafHashes:
    """Every leaf hash of a log, in order, to answer proofs about any of its prefixes.

    Kept in one `bytearray`, 32 bytes per event (a million events: 32 MB), not as a
    list of objects. Interior nodes are recomputed on demand: a root or a proof costs
    O(n) hashing and no memory beyond the leaves.
    """

    __slots__ = ("_hashes",)

    def __init__(self) -> None:
        self._hashes = bytearray()

    def append(self, leaf: bytes) -> None:
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash has {HASH_SIZE} bytes, not {len(leaf)}")
        self._hashes += leaf

    def __len__(self) -> int:
        return len(self._hashes) // HASH_SIZE

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < len(self):
            raise IndexError(f"no leaf {index} in a log of {len(self)}")
        start = index * HASH_SIZE
        return bytes(self._hashes[start : start + HASH_SIZE])

    def root(self, size: int | None = None) -> bytes:
        """The root of the first `size` leaves (default: all): MTH(D[0:size])."""
        size = len(self) if size is None else size
        self._check_size(size)
        return self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of leaf `index` in the tree of the first `size` leaves
        (RFC 9162 §2.1.3.1), nearest sibling first."""
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            split = start + _largest_power_of_two_below(end - start)
            if index < split:
                path.append(self._subtree(split, end))
                end = split
            else:
                path.append(self._subtree(start, split))
                start = split
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The proof that the tree of the first `old_size` leaves is a prefix of the tree
        of the first `new_size` (RFC 9162 §2.1.4.1). Empty when `old_size` is 0 or equal
        to `new_size`: there is nothing to prove beyond comparing roots."""
        self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"a tree of {old_size} cannot be a prefix of one of {new_size}")
        if old_size in (0, new_size):
            return []
        proof: list[bytes] = []
        start, end, whole = 0, new_size, True
        m = old_size
        while m != end - start:
            split = _largest_power_of_two_below(end - start)
            if m <= split:
                proof.append(self._subtree(start + split, end))
                end = start + split
            else:
                proof.append(self._subtree(start, start + split))
                start += split
                m -= split
                whole = False
        if not whole:
            proof.append(self._subtree(start, end))
        proof.reverse()
        return proof

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]), streaming the leaves through an accumulator."""
        accumulator = RootAccumulator()
        view = memoryview(self._hashes)
        for offset in range(start * HASH_SIZE, end * HASH_SIZE, HASH_SIZE):
            accumulator.append(bytes(view[offset : offset + HASH_SIZE]))
        return accumulator.root()

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= len(self):
            raise ValueError(f"no tree of {size} leaves in a log of {len(self)}")


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (n >= 2): where RFC 9162 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """Whether `path` proves `leaf` is leaf `index` of the tree of `size` with `root`
    (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    found = leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            found = node_hash(sibling, found)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            found = node_hash(found, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and found == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree of `old_size` with `old_root` is a prefix of the
    tree of `new_size` with `new_root` (RFC 9162 §2.1.4.2).

    The RFC defines proofs for 0 < old_size < new_size; at the edges the answer needs
    no proof: an empty tree is a prefix of every tree (its root must be the empty
    root), and a tree is a prefix of itself only if the roots are equal.
    """
    if not 0 <= old_size <= new_size:
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn % 2 == 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
