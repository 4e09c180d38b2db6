"""The ledger's Merkle tree is RFC 6962's: the reference vectors, a naive recursive
implementation written from the RFC's definitions, and proofs that verify exactly when
they should."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from uuid import uuid4

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.chain import canonical_json
from domain.merkle import (
    EMPTY_ROOT,
    LeafHashes,
    RootAccumulator,
    entry_leaf,
    entry_of,
    leaf_hash,
    stored_leaf,
    verify_consistency,
    verify_inclusion,
)
from domain.stored import StoredInteraction

# The Certificate Transparency reference data (RFC 6962 test vectors, as used by the
# reference log verifiers): eight leaf inputs, the root of each prefix of them, and
# some audit paths and consistency proofs between those trees.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


def _ct_tree() -> LeafHashes:
    tree = LeafHashes()
    for data in CT_LEAVES:
        tree.append(leaf_hash(data))
    return tree


def _hex(hashes: list[bytes]) -> list[str]:
    return [one.hex() for one in hashes]


def _unhex(hashes: list[str]) -> list[bytes]:
    return [bytes.fromhex(one) for one in hashes]


# -- a reference written straight from RFC 9162 §2.1, recursion and all ---------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(data: list[bytes]) -> bytes:
    if not data:
        return _sha(b"")
    if len(data) == 1:
        return _sha(b"\x00" + data[0])
    k = _split(len(data))
    return _sha(b"\x01" + _mth(data[:k]) + _mth(data[k:]))


def _path(m: int, data: list[bytes]) -> list[bytes]:
    if len(data) == 1:
        return []
    k = _split(len(data))
    if m < k:
        return [*_path(m, data[:k]), _mth(data[k:])]
    return [*_path(m - k, data[k:]), _mth(data[:k])]


def _subproof(m: int, data: list[bytes], whole: bool) -> list[bytes]:
    if m == len(data):
        return [] if whole else [_mth(data)]
    k = _split(len(data))
    if m <= k:
        return [*_subproof(m, data[:k], whole), _mth(data[k:])]
    return [*_subproof(m - k, data[k:], False), _mth(data[:k])]


def _sides(m: int, n: int) -> list[str]:
    """Which side each sibling of leaf m's audit path is on, in a tree of n leaves."""
    if n == 1:
        return []
    k = _split(n)
    return [*_sides(m, k), "right"] if m < k else [*_sides(m - k, n - k), "left"]


def _steps(m: int, n: int, whole: bool) -> list[str]:
    """How SUBPROOF(m, D[n]) descends: which half it keeps at each level, and how it ends."""
    if m == n:
        return ["end" if whole else "subtree"]
    k = _split(n)
    return [*_steps(m, k, whole), "left"] if m <= k else [*_steps(m - k, n - k, False), "right"]


def _tree(data: list[bytes]) -> LeafHashes:
    tree = LeafHashes()
    for one in data:
        tree.append(leaf_hash(one))
    return tree


# -- the reference vectors --------------------------------------------------------------


def test_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert LeafHashes().root() == EMPTY_ROOT
    assert RootAccumulator().root() == EMPTY_ROOT


def test_the_roots_of_every_prefix_match_the_reference() -> None:
    tree = _ct_tree()
    streamed = RootAccumulator()
    assert [tree.root(size).hex() for size in range(9)] == CT_ROOTS
    for size, data in enumerate(CT_LEAVES, start=1):
        streamed.append(leaf_hash(data))
        assert streamed.root().hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_audit_paths_match_the_reference(index: int, size: int, path: list[str]) -> None:
    tree = _ct_tree()
    assert _hex(tree.inclusion_proof(index, size)) == path
    root = bytes.fromhex(CT_ROOTS[size])
    assert verify_inclusion(leaf_hash(CT_LEAVES[index]), index, size, _unhex(path), root)


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_consistency_proofs_match_the_reference(old: int, new: int, proof: list[str]) -> None:
    tree = _ct_tree()
    assert _hex(tree.consistency_proof(old, new)) == proof
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert verify_consistency(old, new, old_root, new_root, _unhex(proof))
    if proof:
        assert not verify_consistency(old, new, new_root, old_root, _unhex(proof))


def test_the_edges_need_no_proof_and_accept_no_other_root() -> None:
    tree = _ct_tree()
    root = tree.root()
    assert verify_consistency(0, 8, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 8, root, root, [])
    assert verify_consistency(8, 8, root, root, [])
    assert not verify_consistency(8, 8, root, tree.root(7), [])
    assert not verify_consistency(8, 8, root, root, [root])
    assert not verify_consistency(8, 7, root, tree.root(7), [])
    assert not verify_consistency(3, 8, tree.root(3), root, [])
    assert not verify_inclusion(leaf_hash(b""), 0, 0, [], EMPTY_ROOT)


# -- properties over random trees -----------------------------------------------------

leaf_data = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


@settings(max_examples=150, deadline=None)
@given(data=leaf_data, pick=st.data())
def test_proofs_agree_with_the_recursive_definitions(
    data: list[bytes], pick: st.DataObject
) -> None:
    tree = _tree(data)
    size = pick.draw(st.integers(1, len(data)), label="size")
    index = pick.draw(st.integers(0, size - 1), label="index")
    old = pick.draw(st.integers(1, size), label="old size")
    assert tree.root(size) == _mth(data[:size])
    assert tree.inclusion_proof(index, size) == _path(index, data[:size])
    assert tree.consistency_proof(old, size) == (
        [] if old == size else _subproof(old, data[:size], True)
    )


@settings(max_examples=150, deadline=None)
@given(data=leaf_data, pick=st.data())
def test_an_inclusion_proof_verifies_and_nothing_altered_does(
    data: list[bytes], pick: st.DataObject
) -> None:
    tree = _tree(data)
    size = pick.draw(st.integers(1, len(data)), label="size")
    index = pick.draw(st.integers(0, size - 1), label="index")
    leaf, root = tree.leaf(index), tree.root(size)
    path = tree.inclusion_proof(index, size)
    assert verify_inclusion(leaf, index, size, path, root)

    assert not verify_inclusion(_flip(leaf, pick), index, size, path, root)
    assert not verify_inclusion(leaf, index, size, path, _flip(root, pick))
    if path:
        at = pick.draw(st.integers(0, len(path) - 1), label="path element")
        altered = [*path[:at], _flip(path[at], pick), *path[at + 1 :]]
        assert not verify_inclusion(leaf, index, size, altered, root)
        assert not verify_inclusion(leaf, index, size, path[:-1], root)
    assert not verify_inclusion(leaf, index, size, [*path, root], root)
    for other in range(size + 1):
        # Another index verifies only where that leaf and its path really are these.
        expected = other == index or (
            other < size and tree.leaf(other) == leaf and tree.inclusion_proof(other, size) == path
        )
        assert verify_inclusion(leaf, other, size, path, root) == expected, other
    for other_size in range(1, 2 * size + 2):
        # Another size verifies only if the path climbs the same way in its tree.
        expected = index < other_size and _sides(index, other_size) == _sides(index, size)
        assert verify_inclusion(leaf, index, other_size, path, root) == expected, other_size


@settings(max_examples=150, deadline=None)
@given(data=st.lists(st.binary(max_size=8), min_size=2, max_size=70), pick=st.data())
def test_a_consistency_proof_verifies_and_nothing_altered_does(
    data: list[bytes], pick: st.DataObject
) -> None:
    tree = _tree(data)
    new = pick.draw(st.integers(2, len(data)), label="new size")
    old = pick.draw(st.integers(1, new - 1), label="old size")
    old_root, new_root = tree.root(old), tree.root(new)
    proof = tree.consistency_proof(old, new)
    assert verify_consistency(old, new, old_root, new_root, proof)

    assert not verify_consistency(old, new, _flip(old_root, pick), new_root, proof)
    assert not verify_consistency(old, new, old_root, _flip(new_root, pick), proof)
    at = pick.draw(st.integers(0, len(proof) - 1), label="proof element")
    altered = [*proof[:at], _flip(proof[at], pick), *proof[at + 1 :]]
    assert not verify_consistency(old, new, old_root, new_root, altered)
    assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
    assert not verify_consistency(old, new, old_root, new_root, [*proof, new_root])
    assert not verify_consistency(new, old, new_root, old_root, proof)
    for other_new in range(old + 1, 2 * new + 2):
        # Another new size verifies only if its proof is built the same way.
        expected = _steps(old, other_new, True) == _steps(old, new, True)
        assert verify_consistency(old, other_new, old_root, new_root, proof) == expected


@settings(max_examples=60, deadline=None)
@given(data=st.lists(st.binary(max_size=8), min_size=2, max_size=40), pick=st.data())
def test_a_changed_prefix_is_not_consistent_with_the_signed_root(
    data: list[bytes], pick: st.DataObject
) -> None:
    """The property checkpoints rest on: alter any leaf of the old tree, and no proof
    the altered log produces ties its root to the old root."""
    new = pick.draw(st.integers(2, len(data)), label="new size")
    old = pick.draw(st.integers(1, new - 1), label="old size")
    signed = _tree(data).root(old)
    at = pick.draw(st.integers(0, old - 1), label="altered leaf")
    altered = [*data[:at], data[at] + b"!", *data[at + 1 :]]
    tree = _tree(altered)
    assert not verify_consistency(
        old, new, signed, tree.root(new), tree.consistency_proof(old, new)
    )


def _flip(value: bytes, pick: st.DataObject) -> bytes:
    at = pick.draw(st.integers(0, len(value) - 1), label="byte")
    bit = pick.draw(st.integers(0, 7), label="bit")
    return value[:at] + bytes([value[at] ^ (1 << bit)]) + value[at + 1 :]


# -- the ledger's leaves ----------------------------------------------------------------


def _stored(**changes: object) -> StoredInteraction:
    values: dict[str, object] = {
        "relationship_id": "acme/steady",
        "aggregate_id": uuid4(),
        "version": 4,
        "record": {"kind": "payment", "amount": "100.00", "relationship_id": "acme/steady"},
        "late": False,
        "chain_hash": "ab" * 32,
        "recorded_at": datetime(2029, 5, 2, 10, 30, tzinfo=UTC),
        "topic": "domain.relationship:Relationship.Recorded",
    }
    values.update(changes)
    return StoredInteraction(**values)  # type: ignore[arg-type]


def test_a_leaf_commits_to_every_field_of_the_entry() -> None:
    original = stored_leaf(_stored())
    for change in (
        {"relationship_id": "acme/other"},
        {"version": 5},
        {"topic": "domain.relationship:Relationship.Opened"},
        {"record": {"kind": "payment", "amount": "10.00", "relationship_id": "acme/steady"}},
        {"late": True},
        {"chain_hash": "cd" * 32},
        {"recorded_at": datetime(2029, 5, 2, 10, 31, tzinfo=UTC)},
    ):
        assert stored_leaf(_stored(**change)) != original, change
    # Which aggregate row holds it is not part of the entry: the chain check sees that.
    assert stored_leaf(_stored(aggregate_id=uuid4())) == original


def test_an_entry_read_back_from_json_hashes_to_the_same_leaf() -> None:
    stored = _stored()
    read_back = orjson.loads(canonical_json(entry_of(stored)))
    assert read_back["recorded_at"] == "2029-05-02T10:30:00+00:00"
    assert entry_leaf(read_back) == stored_leaf(stored)


def test_the_leaf_store_keeps_32_bytes_per_leaf_and_refuses_others() -> None:
    tree = _ct_tree()
    assert len(tree) == 8 and tree.leaf(3) == leaf_hash(CT_LEAVES[3])
    with pytest.raises(ValueError, match="32 bytes"):
        tree.append(b"short")
    with pytest.raises(IndexError):
        tree.leaf(8)
    with pytest.raises(ValueError):
        tree.root(9)
