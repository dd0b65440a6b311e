"""RFC 9162 Merkle tree: published values, a recursive reference, broken proofs, storage shape."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Sequence
from functools import cache
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealpost.crypto import merkle
from sealpost.crypto.errors import FormatError, ProofError
from sealpost.crypto.merkle import (
    EMPTY_ROOT,
    LEAF_PREFIX,
    NODE_PREFIX,
    MemoryNodeStore,
    MerkleTree,
    NodeKey,
    NodeRun,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.conftest import REPO_ROOT

VECTOR_DIR = REPO_ROOT / "tests" / "vectors"

# --------------------------------------------------------------------------- reference
# A deliberately simple transcription of the RFC 9162 section 2.1 definitions, on
# hashlib rather than libsodium, recursive and O(n) per call. It is the yardstick.


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """Section 2.1.1: MTH(D[n])."""
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + d[0])
    k = _k(n)
    return _h(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """Section 2.1.3.1: PATH(m, D[n])."""
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """Section 2.1.4.1: SUBPROOF(m, D[n], b)."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """Section 2.1.4.1: PROOF(m, D[n]); empty for m = 0 as well."""
    return [] if m == 0 else ref_subproof(m, d, True)


# --------------------------------------------------------------------------- published data
# Certificate Transparency's reference test data for RFC 6962 (the same hashing as RFC
# 9162): eight leaves and their tree heads, as published with the CT reference code and
# reused by transparency-dev/merkle. Every value is recomputed by the reference above.

CT_LEAVES = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
_H01 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
_H23 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
_H47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
_H4 = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
_H67 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
_H45 = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
CT_INCLUSION = {
    (0, 1): [],
    (0, 8): [_H01, _H23, _H47],
    (5, 8): [_H4, _H67, CT_ROOTS[4]],
    (2, 3): [CT_ROOTS[2]],
    (1, 5): [CT_ROOTS[1], _H23, _H4],
}
CT_CONSISTENCY = {
    (1, 1): [],
    (1, 8): [_H01, _H23, _H47],
    (6, 8): [_H45, _H67, CT_ROOTS[4]],
    (2, 5): [_H23, _H4],
}


def test_prefixes_are_the_rfc_ones() -> None:
    assert LEAF_PREFIX == b"\x00"
    assert NODE_PREFIX == b"\x01"
    assert merkle.leaf_hash(b"abc") == _h(b"\x00abc")
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == _h(b"\x01" + b"L" * 32 + b"R" * 32)
    assert bytes.fromhex(CT_ROOTS[0]) == EMPTY_ROOT == _h(b"")


@pytest.mark.parametrize("size", sorted(CT_ROOTS))
def test_published_roots(size: int) -> None:
    expected = bytes.fromhex(CT_ROOTS[size])
    assert ref_mth(CT_LEAVES[:size]) == expected  # the published value is the RFC's
    assert merkle.tree_hash(CT_LEAVES[:size]) == expected


@pytest.mark.parametrize(("index", "size"), sorted(CT_INCLUSION))
def test_published_inclusion_proofs(index: int, size: int) -> None:
    expected = [bytes.fromhex(x) for x in CT_INCLUSION[index, size]]
    assert ref_path(index, CT_LEAVES[:size]) == expected
    assert merkle.inclusion_path(CT_LEAVES[:size], index) == expected
    verify_inclusion(
        leaf_hash=leaf_hash(CT_LEAVES[index]),
        index=index,
        size=size,
        proof=expected,
        root=bytes.fromhex(CT_ROOTS[size]),
    )


@pytest.mark.parametrize(("first", "second"), sorted(CT_CONSISTENCY))
def test_published_consistency_proofs(first: int, second: int) -> None:
    expected = [bytes.fromhex(x) for x in CT_CONSISTENCY[first, second]]
    assert ref_proof(first, CT_LEAVES[:second]) == expected
    assert merkle.consistency_path(CT_LEAVES[:second], first) == expected
    verify_consistency(
        first_size=first,
        second_size=second,
        first_root=bytes.fromhex(CT_ROOTS[first]),
        second_root=bytes.fromhex(CT_ROOTS[second]),
        proof=expected,
    )


# --------------------------------------------------------------------------- reference agreement


def _spread(count: int, bound: int, label: str) -> list[int]:
    """``count`` reproducible, evenly spread numbers in [0, bound), derived by hashing."""
    return [int.from_bytes(_h(f"{label}/{i}".encode())[:8], "big") % bound for i in range(count)]


def _leaves(count: int, salt: int = 0) -> list[bytes]:
    return [f"leaf {salt}/{i}".encode() for i in range(count)]


def _tree(leaves: Sequence[bytes], batches: Sequence[int] = ()) -> MerkleTree:
    """A tree over ``leaves``, appended in batches of the given sizes, then the rest."""
    tree = MerkleTree(MemoryNodeStore())
    position = 0
    for size in batches:
        tree.append_many(leaves[position : position + size])
        position += size
    tree.append_many(leaves[position:])
    return tree


def test_every_small_tree_matches_the_reference() -> None:
    leaves = _leaves(33)
    tree = _tree(leaves, batches=[1, 2, 3, 5, 8])
    for n in range(0, 34):
        assert tree.root(n) == ref_mth(leaves[:n])
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            assert proof == ref_path(m, leaves[:n]), (m, n)
            assert len(proof) == merkle.inclusion_proof_size(m, n)
            verify_inclusion(
                leaf_hash=leaf_hash(leaves[m]), index=m, size=n, proof=proof, root=tree.root(n)
            )
        for m in range(n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == ref_proof(m, leaves[:n]), (m, n)
            if 0 < m < n:
                assert len(proof) == merkle.consistency_proof_size(m, n)
            verify_consistency(
                first_size=m,
                second_size=n,
                first_root=tree.root(m),
                second_root=tree.root(n),
                proof=proof,
            )


@cache
def _ref_roots(count: int) -> tuple[bytes, ...]:
    leaves = _leaves(count, salt=1)
    return tuple(ref_mth(leaves[:n]) for n in range(count + 1))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), count=st.integers(min_value=1, max_value=300))
def test_random_trees_match_the_reference(data: st.DataObject, count: int) -> None:
    leaves = _leaves(count, salt=1)
    batches = data.draw(st.lists(st.integers(min_value=1, max_value=40), max_size=8))
    tree = _tree(leaves, batches)
    roots = _ref_roots(count)
    size = data.draw(st.integers(min_value=1, max_value=count))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    first = data.draw(st.integers(min_value=0, max_value=size))
    assert tree.root(size) == roots[size]
    assert tree.inclusion_proof(index, size) == ref_path(index, leaves[:size])
    assert tree.consistency_proof(first, size) == ref_proof(first, leaves[:size])
    verify_inclusion(
        leaf_hash=leaf_hash(leaves[index]),
        index=index,
        size=size,
        proof=tree.inclusion_proof(index, size),
        root=roots[size],
    )
    verify_consistency(
        first_size=first,
        second_size=size,
        first_root=roots[first],
        second_root=roots[size],
        proof=tree.consistency_proof(first, size),
    )


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=10))
def test_batching_does_not_change_the_store(batches: list[int]) -> None:
    leaves = _leaves(sum(batches))
    one_by_one = MemoryNodeStore()
    tree = MerkleTree(one_by_one)
    for leaf in leaves:
        tree.append(leaf)
    batched = MemoryNodeStore()
    _tree_over(batched, leaves, batches)
    every = [(level, i) for level in range(12) for i in range(len(leaves) >> level)]
    assert batched.get_many(every) == one_by_one.get_many(every)
    # Exactly the perfect subtrees exist: 2n - popcount(n) of them.
    assert (
        sum(len(leaves) >> level for level in range(12))
        == 2 * len(leaves) - len(leaves).bit_count()
    )
    with pytest.raises(KeyError):
        batched.get_many([(0, len(leaves))])


def _tree_over(store: MemoryNodeStore, leaves: Sequence[bytes], batches: Sequence[int]) -> None:
    tree = MerkleTree(store)
    position = 0
    for size in batches:
        tree.append_many(leaves[position : position + size])
        position += size


# --------------------------------------------------------------------------- broken proofs


def _inclusion_mutations(proof: list[bytes], root: bytes) -> list[tuple[str, list[bytes]]]:
    out: list[tuple[str, list[bytes]]] = []
    for j in range(len(proof)):
        for byte in (0, 17, 31):
            changed = bytearray(proof[j])
            changed[byte] ^= 0x80
            out.append((f"flip path[{j}][{byte}]", [*proof[:j], bytes(changed), *proof[j + 1 :]]))
    if proof:
        out.append(("truncated", proof[:-1]))
        out.append(("first dropped", proof[1:]))
    out.append(("extended", [*proof, root]))
    out.append(("prefixed", [root, *proof]))
    for j in range(len(proof) - 1):
        swapped = list(proof)
        swapped[j], swapped[j + 1] = swapped[j + 1], swapped[j]
        out.append((f"swap {j}", swapped))
    if len(proof) >= 2:
        out.append(("reversed", proof[::-1]))
    return out


def test_broken_inclusion_proofs_are_rejected() -> None:
    leaves = _leaves(37, salt=2)
    tree = _tree(leaves)
    pairs = [(0, 1), (0, 2), (1, 2), (36, 37), (0, 37), (31, 32), (32, 37)]
    sizes = [n + 2 for n in _spread(20, 36, "n")]
    pairs += [(i % n, n) for i, n in zip(_spread(20, 1 << 40, "i"), sizes, strict=True)]
    for index, size in pairs:
        proof = tree.inclusion_proof(index, size)
        root = tree.root(size)
        good = leaf_hash(leaves[index])
        for name, bad in _inclusion_mutations(proof, root):
            if bad == proof:
                continue
            with pytest.raises(ProofError):
                verify_inclusion(leaf_hash=good, index=index, size=size, proof=bad, root=root)
            assert name
        for other in range(size):  # wrong index: every other position
            if other != index:
                with pytest.raises(ProofError):
                    verify_inclusion(leaf_hash=good, index=other, size=size, proof=proof, root=root)
        for other in range(index + 1, 38):  # the proof against any other head
            if other != size:
                with pytest.raises(ProofError):
                    verify_inclusion(
                        leaf_hash=good, index=index, size=other, proof=proof, root=tree.root(other)
                    )
        with pytest.raises(ProofError, match="does not lead to the expected root"):
            verify_inclusion(
                leaf_hash=leaf_hash(b"other"), index=index, size=size, proof=proof, root=root
            )
        with pytest.raises(ProofError, match="does not lead to the expected root"):
            verify_inclusion(
                leaf_hash=good, index=index, size=size, proof=proof, root=_h(b"wrong root")
            )


def test_broken_consistency_proofs_are_rejected() -> None:
    leaves = _leaves(37, salt=3)
    tree = _tree(leaves)
    pairs = [(1, 2), (1, 37), (4, 8), (31, 32), (32, 37), (36, 37), (5, 37)]
    sizes = [n + 2 for n in _spread(20, 36, "c")]
    pairs += [(1 + m % (n - 1), n) for m, n in zip(_spread(20, 1 << 40, "m"), sizes, strict=True)]
    for first, second in pairs:
        proof = tree.consistency_proof(first, second)
        r1, r2 = tree.root(first), tree.root(second)
        for name, bad in _inclusion_mutations(proof, r2):
            if bad == proof:
                continue
            with pytest.raises(ProofError):
                verify_consistency(
                    first_size=first, second_size=second, first_root=r1, second_root=r2, proof=bad
                )
            assert name
        for other_first in range(1, 38):  # any other pair of heads
            for other_second in range(other_first, 38):
                if (other_first, other_second) == (first, second):
                    continue
                with pytest.raises(ProofError):
                    verify_consistency(
                        first_size=other_first,
                        second_size=other_second,
                        first_root=tree.root(other_first),
                        second_root=tree.root(other_second),
                        proof=proof,
                    )
        # A first size that is a power of two seeds the path with the first root (section
        # 2.1.4.2 step 2), so a wrong first root surfaces as a wrong second root.
        which = "second root" if first & (first - 1) == 0 else "first root"
        with pytest.raises(ProofError, match=which):
            verify_consistency(
                first_size=first,
                second_size=second,
                first_root=_h(b"x"),
                second_root=r2,
                proof=proof,
            )
        with pytest.raises(ProofError, match="second root"):
            verify_consistency(
                first_size=first,
                second_size=second,
                first_root=r1,
                second_root=_h(b"x"),
                proof=proof,
            )


def test_a_forked_log_is_detected() -> None:
    honest = _leaves(20, salt=4)
    forked = [*honest[:12], b"rewritten", *honest[13:]]
    a, b = _tree(honest), _tree(forked)
    assert a.root(12) == b.root(12)
    with pytest.raises(ProofError):
        verify_consistency(
            first_size=15,
            second_size=20,
            first_root=a.root(15),
            second_root=b.root(20),
            proof=b.consistency_proof(15, 20),
        )
    # The forked log cannot prove the honest history either way.
    with pytest.raises(ProofError):
        verify_inclusion(
            leaf_hash=leaf_hash(honest[12]),
            index=12,
            size=20,
            proof=b.inclusion_proof(12, 20),
            root=b.root(20),
        )


def test_precise_error_messages() -> None:
    tree = _tree(_leaves(8))
    proof = tree.inclusion_proof(3, 8)
    good = tree.leaf_hash_at(3)
    root = tree.root()
    with pytest.raises(ProofError, match="out of range"):
        verify_inclusion(leaf_hash=good, index=8, size=8, proof=proof, root=root)
    with pytest.raises(ProofError, match="too long"):
        verify_inclusion(leaf_hash=good, index=3, size=8, proof=[*proof, root], root=root)
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(leaf_hash=good, index=3, size=8, proof=proof[:-1], root=root)
    with pytest.raises(ProofError, match="proof hash 1 is 31 bytes"):
        verify_inclusion(
            leaf_hash=good, index=3, size=8, proof=[proof[0], proof[1][:31], proof[2]], root=root
        )
    with pytest.raises(ProofError, match="leaf hash is 33 bytes"):
        verify_inclusion(leaf_hash=good + b"x", index=3, size=8, proof=proof, root=root)
    with pytest.raises(ProofError, match="root hash is 0 bytes"):
        verify_inclusion(leaf_hash=good, index=3, size=8, proof=proof, root=b"")
    with pytest.raises(ProofError, match="out of range"):
        verify_inclusion(leaf_hash=good, index=-1, size=8, proof=proof, root=root)
    with pytest.raises(ProofError, match="outside"):
        verify_inclusion(leaf_hash=good, index=0, size=2**64, proof=proof, root=root)
    with pytest.raises(ProofError, match="out of range"):
        verify_inclusion(leaf_hash=good, index=0, size=0, proof=[], root=EMPTY_ROOT)

    c = tree.consistency_proof(3, 8)
    r3 = tree.root(3)
    with pytest.raises(ProofError, match="exceeds"):
        verify_consistency(first_size=8, second_size=3, first_root=root, second_root=r3, proof=c)
    with pytest.raises(ProofError, match="too long"):
        verify_consistency(
            first_size=3, second_size=8, first_root=r3, second_root=root, proof=[*c, root]
        )
    with pytest.raises(ProofError, match="too short"):
        verify_consistency(first_size=3, second_size=8, first_root=r3, second_root=root, proof=[])
    with pytest.raises(ProofError, match="too long"):
        verify_consistency(first_size=8, second_size=8, first_root=root, second_root=root, proof=c)
    with pytest.raises(ProofError, match="two different roots"):
        verify_consistency(first_size=8, second_size=8, first_root=r3, second_root=root, proof=[])
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(first_size=0, second_size=8, first_root=r3, second_root=root, proof=[])
    with pytest.raises(ProofError, match="too long"):
        verify_consistency(
            first_size=0, second_size=8, first_root=EMPTY_ROOT, second_root=root, proof=c
        )
    # Size 0 to anything, and equal heads, are consistent with an empty proof.
    verify_consistency(
        first_size=0, second_size=8, first_root=EMPTY_ROOT, second_root=root, proof=[]
    )
    verify_consistency(first_size=8, second_size=8, first_root=root, second_root=root, proof=[])


# --------------------------------------------------------------------------- storage shape


class CountingStore:
    """A MemoryNodeStore that records how it is called."""

    def __init__(self, inner: MemoryNodeStore) -> None:
        self.inner = inner
        self.gets: list[int] = []
        self.puts: list[int] = []

    def get_many(self, keys: Sequence[NodeKey]) -> list[bytes]:
        self.gets.append(len(keys))
        return self.inner.get_many(keys)

    def put_many(self, runs: Sequence[NodeRun]) -> None:
        self.puts.append(sum(run.count for run in runs))
        self.inner.put_many(runs)


def test_proofs_read_a_logarithmic_number_of_nodes_in_one_call() -> None:
    inner = MemoryNodeStore()
    size = (1 << 14) + 1234
    MerkleTree(inner).append_leaf_hashes([_h(i.to_bytes(4, "big")) for i in range(size)])
    store = CountingStore(inner)
    tree = MerkleTree(store, size=size)
    bound = 2 * size.bit_length()
    sizes = [1 + n for n in _spread(200, size, "n")]
    for n, a, b in zip(sizes, _spread(200, 1 << 40, "a"), _spread(200, 1 << 40, "b"), strict=True):
        store.gets.clear()
        tree.root(n)
        tree.inclusion_proof(a % n, n)
        tree.consistency_proof(b % (n + 1), n)
        assert len(store.gets) <= 3  # one batched read each (none for trivial proofs)
        assert all(count <= bound for count in store.gets), store.gets


def test_appends_read_little_and_write_about_two_rows_per_leaf() -> None:
    store = CountingStore(MemoryNodeStore())
    tree = MerkleTree(store)
    batches = iter(_spread(1000, 199, "batch"))
    while tree.size < 5000:
        before = tree.size
        batch = 1 + next(batches)
        runs = tree.append_many(_leaves(batch, salt=before))
        assert len(store.gets) <= 1
        assert all(count <= before.bit_length() for count in store.gets)
        store.gets.clear()
        rows = [row for run in runs for row in run.rows()]
        assert len(rows) == store.puts[-1]
        assert len(rows) <= 2 * batch + before.bit_length()
        assert {level for level, _, _ in rows} == set(range(len(runs)))
    total = tree.size
    assert sum(store.puts) == 2 * total - total.bit_count()


def test_node_runs_give_rows_for_a_batched_insert() -> None:
    tree = MerkleTree(MemoryNodeStore())
    tree.append_many(_leaves(3))
    runs = tree.append_many(_leaves(1, salt=9))  # leaf 3 completes (1, 1) and (2, 0)
    rows = [(level, index) for run in runs for level, index, _ in run.rows()]
    assert rows == [(0, 3), (1, 1), (2, 0)]
    assert runs[2].hash_at(0) == tree.root(4)


def test_memory_store_is_append_only() -> None:
    store = MemoryNodeStore()
    tree = MerkleTree(store)
    tree.append_many(_leaves(4))
    stored = store.get_many([(0, 0)])[0]
    with pytest.raises(ValueError, match="append-only"):
        store.put_many([NodeRun(0, 0, _h(b"replacement"))])
    with pytest.raises(ValueError, match="gap"):
        store.put_many([NodeRun(0, 9, _h(b"far away"))])
    store.put_many([NodeRun(0, 0, stored)])  # rewriting the same value is harmless
    assert store.leaf_count == 4
    with pytest.raises(KeyError):
        store.get_many([(3, 0)])
    with pytest.raises(KeyError):
        store.get_many([(0, -1)])


def test_tree_refuses_requests_outside_it() -> None:
    tree = _tree(_leaves(10))
    with pytest.raises(ProofError, match="outside"):
        tree.root(11)
    with pytest.raises(ProofError, match="out of range"):
        tree.inclusion_proof(10)
    with pytest.raises(ProofError, match="out of range"):
        tree.inclusion_proof(3, 3)
    with pytest.raises(ProofError, match="outside"):
        tree.consistency_proof(4, 11)
    with pytest.raises(ProofError, match="outside"):
        tree.consistency_proof(5, 4)
    with pytest.raises(ProofError, match="out of range"):
        tree.leaf_hash_at(10)
    with pytest.raises(ProofError, match="outside"):
        MerkleTree(MemoryNodeStore(), size=-1)
    with pytest.raises(FormatError):
        tree.append_leaf_hashes([b"short"])
    assert tree.size == 10  # a refused append changes nothing
    assert tree.root(0) == EMPTY_ROOT
    assert tree.consistency_proof(0, 10) == []
    assert tree.consistency_proof(10) == []
    assert tree.append_many([]) == []


def test_a_tree_reopened_over_its_store_continues() -> None:
    store = MemoryNodeStore()
    leaves = _leaves(50, salt=5)
    MerkleTree(store).append_many(leaves[:29])
    reopened = MerkleTree(store, size=store.leaf_count)
    reopened.append_many(leaves[29:])
    assert reopened.root() == ref_mth(leaves)


# --------------------------------------------------------------------------- vectors


def _generator() -> ModuleType:
    path = VECTOR_DIR / "generate_merkle_vectors.py"
    spec = importlib.util.spec_from_file_location("generate_merkle_vectors", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_vectors_are_what_the_generator_writes() -> None:
    fresh: dict[str, str] = _generator().build()
    for name, text in fresh.items():
        committed = (VECTOR_DIR / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} is stale: run tests/vectors/generate_merkle_vectors.py"


def _tree_vectors() -> list[dict[str, Any]]:
    trees: list[dict[str, Any]] = json.loads(
        (VECTOR_DIR / "merkle-trees.json").read_text(encoding="utf-8")
    )["trees"]
    return trees


def test_tree_vectors_agree_with_the_reference() -> None:
    trees = _tree_vectors()
    assert [t["name"] for t in trees] == ["ct-8", "sealpost-70"]
    for tree in trees:
        leaves = [bytes.fromhex(x) for x in tree["leaves"]]
        for entry in tree["roots"]:
            assert bytes.fromhex(entry["root"]) == ref_mth(leaves[: entry["tree_size"]])
        for case in tree["inclusion"]:
            if case["valid"]:
                size, index = case["tree_size"], case["leaf_index"]
                assert bytes.fromhex(case["leaf_hash"]) == _h(b"\x00" + leaves[index])
                assert [bytes.fromhex(p) for p in case["path"]] == ref_path(index, leaves[:size])
        for case in tree["consistency"]:
            if case["valid"]:
                first, second = case["first_size"], case["second_size"]
                expected = ref_proof(first, leaves[:second])
                assert [bytes.fromhex(p) for p in case["path"]] == expected
    ct_roots = {e["tree_size"]: e["root"] for e in trees[0]["roots"]}
    assert ct_roots == CT_ROOTS


def test_tree_vectors_verify_or_are_rejected() -> None:
    broken = 0
    for tree in _tree_vectors():
        for case in tree["inclusion"]:

            def check_inclusion(case: dict[str, Any] = case) -> None:
                verify_inclusion(
                    leaf_hash=bytes.fromhex(case["leaf_hash"]),
                    index=case["leaf_index"],
                    size=case["tree_size"],
                    proof=[bytes.fromhex(p) for p in case["path"]],
                    root=bytes.fromhex(case["root"]),
                )

            if case["valid"]:
                check_inclusion()
            else:
                broken += 1
                with pytest.raises(ProofError):
                    check_inclusion()
        for case in tree["consistency"]:

            def check_consistency(case: dict[str, Any] = case) -> None:
                verify_consistency(
                    first_size=case["first_size"],
                    second_size=case["second_size"],
                    first_root=bytes.fromhex(case["first_root"]),
                    second_root=bytes.fromhex(case["second_root"]),
                    proof=[bytes.fromhex(p) for p in case["path"]],
                )

            if case["valid"]:
                check_consistency()
            else:
                broken += 1
                with pytest.raises(ProofError):
                    check_consistency()
    assert broken > 150
