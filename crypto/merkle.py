"""The transparency log's Merkle tree, ported from RFC 9162 section 2.1 (SHA-256).

Pure code: hashing, tree hashes, proof generation over a ``NodeStore`` of perfect
subtrees, and proof verification. The verifiers raise ``ProofError`` and return
None; they ship in the SDK and the auditor unchanged. docs/transparency-log.md
describes the formats.

A perfect subtree is addressed by ``(level, index)``: it covers leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Such a
subtree never changes once the log has grown past it, so the store is append-only,
and every tree hash or proof of RFC 9162 is a combination of O(log n) of them.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from sealpost.crypto._sodium import SHA256_BYTES, sha256
from sealpost.crypto.errors import FormatError, ProofError

#: RFC 9162 section 2.1.1: a leaf hash is HASH(0x00 || leaf data).
LEAF_PREFIX: Final = b"\x00"
#: RFC 9162 section 2.1.1: an interior node hash is HASH(0x01 || left || right).
NODE_PREFIX: Final = b"\x01"
#: Every hash in the tree is one SHA-256 output (RFC 9162 section 2.1).
HASH_SIZE: Final = SHA256_BYTES
#: RFC 9162 section 2.1.1: the hash of an empty list is the hash of an empty string.
EMPTY_ROOT: Final = sha256(b"")
#: Tree sizes and indices travel as uint64 (proto/sealpost/v1/log.proto).
MAX_TREE_SIZE: Final = 2**64 - 1

#: A perfect subtree's address: (level, index), covering 2**level leaves from index * 2**level.
NodeKey = tuple[int, int]


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 section 2.1.1: MTH({d(0)}) = HASH(0x00 || d(0))."""
    return sha256(LEAF_PREFIX + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 section 2.1.1: HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
    return sha256(NODE_PREFIX + left + right)


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True, slots=True)
class NodeRun:
    """Consecutive new perfect-subtree hashes of one level: ``count`` rows starting at ``start``."""

    level: int
    start: int
    hashes: bytes  # count * HASH_SIZE bytes, in index order

    @property
    def count(self) -> int:
        """Number of node hashes in the run."""
        return len(self.hashes) // HASH_SIZE

    def hash_at(self, offset: int) -> bytes:
        """The hash of node ``(level, start + offset)``."""
        return self.hashes[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]

    def rows(self) -> Iterator[tuple[int, int, bytes]]:
        """``(level, index, hash)`` rows, ready for a batched INSERT."""
        for offset in range(self.count):
            yield self.level, self.start + offset, self.hash_at(offset)


class NodeStore(Protocol):
    """Append-only storage of perfect-subtree hashes, keyed by ``(level, index)``.

    The gateway implements it over a table ``(level, index) -> hash`` in the log's
    database; ``MemoryNodeStore`` is the in-memory implementation.
    """

    def get_many(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """The hashes of ``keys``, in order; raise LookupError if one is absent."""
        ...

    def put_many(self, runs: Sequence[NodeRun]) -> None:
        """Store new nodes. A node is written once and never changes (append-only)."""
        ...


class MemoryNodeStore:
    """A NodeStore keeping each level as one contiguous bytearray (32 bytes per node)."""

    def __init__(self) -> None:
        """An empty store."""
        self._levels: list[bytearray] = []

    @property
    def leaf_count(self) -> int:
        """Number of leaf hashes stored (the size of the tree the store holds)."""
        return len(self._levels[0]) // HASH_SIZE if self._levels else 0

    def get_many(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """The hashes of ``keys``; KeyError for a node that was never stored."""
        levels = self._levels
        out: list[bytes] = []
        for level, index in keys:
            offset = index * HASH_SIZE
            if level >= len(levels) or index < 0 or offset + HASH_SIZE > len(levels[level]):
                raise KeyError((level, index))
            out.append(bytes(levels[level][offset : offset + HASH_SIZE]))
        return out

    def put_many(self, runs: Sequence[NodeRun]) -> None:
        """Append runs; rewriting a node with another hash, or leaving a gap, is refused."""
        for run in runs:
            while len(self._levels) <= run.level:
                self._levels.append(bytearray())
            stored = self._levels[run.level]
            have = len(stored) // HASH_SIZE
            if run.start > have:
                raise ValueError(f"gap at level {run.level}: next index {have}, got {run.start}")
            overlap = min(have - run.start, run.count)
            begin = run.start * HASH_SIZE
            if stored[begin : begin + overlap * HASH_SIZE] != run.hashes[: overlap * HASH_SIZE]:
                raise ValueError(f"level {run.level}: a stored node would change (append-only)")
            stored += run.hashes[overlap * HASH_SIZE :]


# --------------------------------------------------------------------------- tree


def _largest_power_of_two_below(n: int) -> int:
    """RFC 9162 section 2.1.1: k, the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_keys(start: int, end: int) -> list[NodeKey]:
    """The perfect subtrees whose MTH combination gives MTH(D[start:end]), left to right.

    Valid for every range the RFC 9162 recursion visits: ``start`` is a multiple of the
    largest power of two not above ``end - start``, so the sizes are the binary digits
    of ``end - start`` from the highest down (section 2.1.1, k = largest power of two < n).
    """
    keys: list[NodeKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its perfect subtrees: h0 . (h1 . (h2 ...)), by section 2.1.1."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _resolve(store: NodeStore, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """MTH of each range, fetching every perfect subtree they need in one ``get_many``."""
    groups = [_range_keys(start, end) for start, end in ranges]
    flat = [key for group in groups for key in group]
    hashes = store.get_many(flat) if flat else []
    out: list[bytes] = []
    position = 0
    for group in groups:
        out.append(_fold(hashes[position : position + len(group)]))
        position += len(group)
    return out


def nodes_for_append(store: NodeStore, size: int, leaf_hashes: Sequence[bytes]) -> list[NodeRun]:
    """The new perfect subtrees when ``leaf_hashes`` are appended to a tree of ``size`` leaves.

    Reads at most one stored node per level (a left sibling completed earlier) in one
    ``get_many``; writes nothing. About two rows per leaf, whatever the batch size.
    """
    count = len(leaf_hashes)
    if count == 0:
        return []
    new_size = size + count
    if size < 0 or new_size > MAX_TREE_SIZE:
        raise ProofError(f"tree size {new_size} is outside [0, 2**64)")
    if any(len(h) != HASH_SIZE for h in leaf_hashes):
        raise FormatError(f"a leaf hash must be {HASH_SIZE} bytes")
    # A new parent at level l + 1 whose left child was completed before this append.
    stored_left: list[NodeKey] = []
    level = 0
    while (new_size >> (level + 1)) > (size >> (level + 1)):
        if (size >> level) & 1:
            stored_left.append((level, (size >> level) - 1))
        level += 1
    fetched = (
        dict(zip(stored_left, store.get_many(stored_left), strict=True)) if stored_left else {}
    )

    children = b"".join(leaf_hashes)
    runs = [NodeRun(0, size, children)]
    level = 0
    hash_ = sha256
    prefix = NODE_PREFIX
    pair = 2 * HASH_SIZE
    while True:
        first_parent = size >> (level + 1)
        parents = (new_size >> (level + 1)) - first_parent
        if parents == 0:
            break
        if (size >> level) & 1:
            children = fetched[(level, (size >> level) - 1)] + children
        view = memoryview(children)
        parent_hashes = b"".join(
            [hash_(prefix + view[i : i + pair]) for i in range(0, parents * pair, pair)]
        )
        runs.append(NodeRun(level + 1, first_parent, parent_hashes))
        children = parent_hashes
        level += 1
    return runs


class MerkleTree:
    """An RFC 9162 Merkle tree over a NodeStore: appends, roots and proofs for any past size.

    Not safe for concurrent appends: the log has one writer at a time (the gateway
    serialises appends in a database transaction).
    """

    def __init__(self, store: NodeStore, size: int = 0) -> None:
        """A tree whose first ``size`` leaves (and their perfect subtrees) are in ``store``."""
        if not 0 <= size <= MAX_TREE_SIZE:
            raise ProofError(f"tree size {size} is outside [0, 2**64)")
        self._store = store
        self._size = size

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes) -> list[NodeRun]:
        """Append one leaf (its canonical bytes); returns the node rows written."""
        return self.append_leaf_hashes([leaf_hash(leaf)])

    def append_many(self, leaves: Sequence[bytes]) -> list[NodeRun]:
        """Append leaves in order in one batch; returns the node rows written."""
        return self.append_leaf_hashes([leaf_hash(leaf) for leaf in leaves])

    def append_leaf_hashes(self, leaf_hashes: Sequence[bytes]) -> list[NodeRun]:
        """Append already hashed leaves; the store's ``put_many`` gets every new node at once."""
        runs = nodes_for_append(self._store, self._size, leaf_hashes)
        if runs:
            self._store.put_many(runs)
            self._size += len(leaf_hashes)
        return runs

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self._size:
            raise ProofError(f"tree size {size} is outside the log's [0, {self._size}]")

    def root(self, size: int | None = None) -> bytes:
        """RFC 9162 section 2.1.1: MTH of the first ``size`` leaves (default: all)."""
        size = self._size if size is None else size
        self._check_size(size)
        if size == 0:
            return EMPTY_ROOT
        return _resolve(self._store, [(0, size)])[0]

    def leaf_hash_at(self, index: int) -> bytes:
        """The stored leaf hash of leaf ``index``."""
        if not 0 <= index < self._size:
            raise ProofError(f"leaf index {index} is out of range for tree size {self._size}")
        return self._store.get_many([(0, index)])[0]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 section 2.1.3.1: PATH(index, D[size]), bottom-up."""
        size = self._size if size is None else size
        self._check_size(size)
        if not 0 <= index < size:
            raise ProofError(f"leaf index {index} is out of range for tree size {size}")
        # Walk the section 2.1.3.1 recursion from the top; each step adds the MTH of the
        # other half, which is perfect except for at most one right-hand remainder.
        siblings: list[tuple[int, int]] = []
        low, high = 0, size
        while high - low > 1:
            k = _largest_power_of_two_below(high - low)
            if index - low < k:  # m < k: PATH(m, D[0:k]) : MTH(D[k:n])
                siblings.append((low + k, high))
                high = low + k
            else:  # m >= k: PATH(m - k, D[k:n]) : MTH(D[0:k])
                siblings.append((low, low + k))
                low += k
        siblings.reverse()
        return _resolve(self._store, siblings)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 9162 section 2.1.4.1: PROOF(first, D[second]); empty when first is 0 or second."""
        second = self._size if second is None else second
        self._check_size(second)
        if not 0 <= first <= second:
            raise ProofError(f"first size {first} is outside [0, {second}]")
        if first in (0, second):
            return []
        # SUBPROOF(m, D[n], b), unrolled from the top.
        parts: list[tuple[int, int]] = []
        low, high, m, whole = 0, second, first, True
        while m != high - low:
            k = _largest_power_of_two_below(high - low)
            if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
                parts.append((low + k, high))
                high = low + k
            else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
                parts.append((low, low + k))
                low += k
                m -= k
                whole = False
        if not whole:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
            parts.append((low, high))
        parts.reverse()
        return _resolve(self._store, parts)


def _tree_of(leaves: Sequence[bytes]) -> MerkleTree:
    tree = MerkleTree(MemoryNodeStore())
    tree.append_many(leaves)
    return tree


def tree_hash(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.1: MTH(D[n]) of a list of leaf data."""
    return _tree_of(leaves).root()


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 section 2.1.3.1: the inclusion proof of leaf ``index`` in MTH(leaves)."""
    return _tree_of(leaves).inclusion_proof(index)


def consistency_path(leaves: Sequence[bytes], first: int) -> list[bytes]:
    """RFC 9162 section 2.1.4.1: the proof that the first ``first`` leaves are a prefix."""
    return _tree_of(leaves).consistency_proof(first)


# --------------------------------------------------------------------------- verification


def inclusion_proof_size(index: int, size: int) -> int:
    """Exact number of hashes in PATH(index, D[size]) (RFC 9162 section 2.1.3.1)."""
    # Below the level where index and size - 1 part, the path is the perfect-subtree
    # path; above it, one hash per left sibling (a 1 bit of index) on the way up.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_size(first: int, second: int) -> int:
    """Exact number of hashes in PROOF(first, D[second]) for 0 < first < second."""
    # The proof is the inclusion path of leaf first - 1, minus the levels inside the
    # largest perfect subtree ending at first, plus that subtree's hash unless it is
    # the whole first tree (first a power of two; section 2.1.4.2 step 2 prepends it).
    shift = (first & -first).bit_length() - 1
    seed = 0 if first == 1 << shift else 1
    return seed + inclusion_proof_size(first - 1, second) - shift


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} is {len(value)} bytes, expected {HASH_SIZE}")


def _check_path(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        _check_hash(f"proof hash {position}", value)


def _check_length(kind: str, got: int, want: int, what: str) -> None:
    if got > want:
        raise ProofError(f"{kind} proof too long: {got} hashes, {what} has {want}")
    if got < want:
        raise ProofError(f"{kind} proof too short: {got} hashes, {what} has {want}")


def _check_tree_size(name: str, size: int) -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise ProofError(f"{name} {size} is outside [0, 2**64)")


def root_from_inclusion_proof(
    *, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """RFC 9162 section 2.1.3.2 steps 1-4: the root an inclusion proof leads to."""
    _check_tree_size("tree size", size)
    if not 0 <= index < size:  # step 1
        raise ProofError(f"leaf index {index} is out of range for tree size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_path(proof)
    want = inclusion_proof_size(index, size)
    _check_length("inclusion", len(proof), want, f"leaf {index} in a tree of size {size}")
    fn, sn = index, size - 1  # step 2
    r = leaf_hash  # step 3
    for p in proof:  # step 4
        if sn == 0:  # 4a
            raise ProofError("inclusion proof too long")
        if fn & 1 or fn == sn:  # 4b
            r = node_hash(p, r)
            while fn and not fn & 1:  # 4b ii: shift until LSB(fn) is set or fn is 0
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # 4c
        sn >>= 1
    if sn != 0:  # step 5, first half
        raise ProofError("inclusion proof too short")
    return r


def verify_inclusion(
    *, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 section 2.1.3.2: raise ProofError unless ``proof`` puts the leaf in ``root``."""
    _check_hash("root hash", root)
    computed = root_from_inclusion_proof(leaf_hash=leaf_hash, index=index, size=size, proof=proof)
    if not hmac.compare_digest(computed, root):  # step 5
        raise ProofError(
            f"inclusion proof for leaf {index} in a tree of size {size} does not lead to the "
            "expected root (wrong leaf, index, size, path or root)"
        )


def roots_from_consistency_proof(
    *, first_size: int, second_size: int, first_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 section 2.1.4.2 steps 1-6 for 0 < first < second: the (fr, sr) a proof yields."""
    _check_tree_size("second size", second_size)
    if not 0 < first_size < second_size:
        raise ProofError(f"sizes {first_size} -> {second_size} need 0 < first < second")
    _check_hash("first root", first_root)
    _check_path(proof)
    want = consistency_proof_size(first_size, second_size)
    _check_length(
        "consistency", len(proof), want, f"a proof from size {first_size} to {second_size}"
    )
    path = list(proof)
    if not path:  # step 1
        raise ProofError("consistency proof is empty")
    if (first_size & (first_size - 1)) == 0:  # step 2: first is an exact power of 2
        path.insert(0, first_root)
    fn, sn = first_size - 1, second_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:  # 6a
            raise ProofError("consistency proof too long")
        if fn & 1 or fn == sn:  # 6b
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:  # 6b ii: shift until LSB(fn) is set or fn is 0
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # 6c
        sn >>= 1
    if sn != 0:  # step 7, last condition
        raise ProofError("consistency proof too short")
    return fr, sr


def verify_consistency(
    *,
    first_size: int,
    second_size: int,
    first_root: bytes,
    second_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """RFC 9162 section 2.1.4.2: raise ProofError unless the first tree is a prefix of the second.

    Sizes 0 and equal sizes, which the RFC's algorithm leaves out, need an empty proof.
    """
    _check_tree_size("first size", first_size)
    _check_tree_size("second size", second_size)
    _check_hash("first root", first_root)
    _check_hash("second root", second_root)
    _check_path(proof)
    if first_size > second_size:
        raise ProofError(f"first size {first_size} exceeds second size {second_size}")
    if first_size == second_size:
        # PROOF(n, D[n]) is empty (section 2.1.4.1); the heads must simply agree.
        _check_length("consistency", len(proof), 0, "a proof between equal sizes")
        if not hmac.compare_digest(first_root, second_root):
            raise ProofError(f"two different roots for the same tree size {first_size}")
        return
    if first_size == 0:
        # Every tree extends the empty one, whose root is HASH() (section 2.1.1).
        _check_length("consistency", len(proof), 0, "a proof from the empty tree")
        if not hmac.compare_digest(first_root, EMPTY_ROOT):
            raise ProofError("first root is not the empty tree's hash for tree size 0")
        return
    fr, sr = roots_from_consistency_proof(
        first_size=first_size, second_size=second_size, first_root=first_root, proof=proof
    )
    # Step 7: both computed roots must match the ones given.
    if not hmac.compare_digest(fr, first_root):
        raise ProofError(
            f"consistency proof does not lead to the first root (size {first_size}): "
            "wrong first root, sizes or path"
        )
    if not hmac.compare_digest(sr, second_root):
        raise ProofError(
            f"consistency proof does not lead to the second root (size {second_size}): "
            "wrong second root, sizes or path"
        )
