"""Transparency-log Merkle tree: appends per second, build time, proof times at 1M and 10M leaves.

The same-run reference is the raw SHA-256 rate (PyNaCl, 65-byte inputs, the size of a
node hash input): throughput figures are quoted as a fraction of it, and times as a
multiple of one SHA-256 call. The store is the in-memory one (one bytearray per level).
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from functools import partial

from bench import Result
from sealpost.crypto._sodium import sha256
from sealpost.crypto.logentry import LogAction, LogEvent, encode_event
from sealpost.crypto.merkle import (
    MemoryNodeStore,
    MerkleTree,
    verify_consistency,
    verify_inclusion,
)

NAME = "merkle"
BUILD_BATCH = 1 << 16
APPEND_BATCH = 1000
PROOF_SAMPLES = 2000


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def sha256_rate(seconds: float = 1.0, windows: int = 5) -> float:
    """Raw SHA-256 calls per second on 65-byte inputs (0x01 || left || right), best window."""
    data = b"\x01" + bytes(64)
    best = 0.0
    for _ in range(windows):
        calls = 0
        started = time.perf_counter()
        deadline = started + seconds / windows
        while time.perf_counter() < deadline:
            for _ in range(5_000):
                sha256(data)
            calls += 5_000
        best = max(best, calls / (time.perf_counter() - started))
    return best


def _acceptance_leaves(count: int) -> list[bytes]:
    """Realistic leaves: encoded "message accepted" events (about 150 bytes each)."""
    digest = sha256(b"envelope").hex()
    return [
        encode_event(
            LogEvent(
                action=LogAction.MESSAGE_ACCEPTED,
                actor=f"relative:acc-{i % 5000:06d}",
                time_ms=1_767_225_600_000 + i,
                subjects=[("message", i.to_bytes(16, "big").hex()), ("detainee", f"d-{i % 12000}")],
                extra={"envelope_digest": digest},
            )
        )
        for i in range(count)
    ]


def _append_rates(quick: bool, reference: float) -> list[Result]:
    leaves = _acceptance_leaves(50_000 if quick else 200_000)
    target = ">= 20,000 appends/s"

    tree = MerkleTree(MemoryNodeStore())
    started = time.perf_counter()
    for start in range(0, len(leaves), APPEND_BATCH):
        tree.append_many(leaves[start : start + APPEND_BATCH])
    batched = len(leaves) / (time.perf_counter() - started)

    single = leaves[: len(leaves) // 5]
    tree = MerkleTree(MemoryNodeStore())
    started = time.perf_counter()
    for leaf in single:
        tree.append(leaf)
    one_by_one = len(single) / (time.perf_counter() - started)

    event = LogEvent(
        action=LogAction.REVIEW_GRANTED,
        actor="staff:screener-17",
        time_ms=1_767_225_600_000,
        subjects=[("grant", "g-42"), ("message", "00" * 16), ("detainee", "d-900")],
        extra={"legal_basis": "screening_order"},
    )
    count = 20_000
    started = time.perf_counter()
    for _ in range(count):
        encode_event(event)
    encodes = count / (time.perf_counter() - started)

    ref = (reference, "SHA-256 calls/s")
    return [
        Result(NAME, f"append, batches of {APPEND_BATCH}", batched, "appends/s", *ref, target),
        Result(NAME, "append, one leaf per call", one_by_one, "appends/s", *ref, target),
        Result(NAME, "encode_event (leaf encoding)", encodes, "events/s", *ref),
    ]


def _build(size: int, reference: float) -> tuple[MerkleTree, list[Result]]:
    _progress(f"merkle: building a {size:,}-leaf tree in memory ...")
    tree = MerkleTree(MemoryNodeStore())
    started = time.perf_counter()
    for start in range(0, size, BUILD_BATCH):
        end = min(start + BUILD_BATCH, size)
        tree.append_many([i.to_bytes(8, "big") for i in range(start, end)])
        if start and start % (BUILD_BATCH * 32) == 0:
            _progress(f"merkle:   {start:,} leaves")
    elapsed = time.perf_counter() - started
    return tree, [
        Result(NAME, f"build {size:,} leaves (time)", elapsed, "s"),
        Result(
            NAME,
            f"build {size:,} leaves (rate)",
            size / elapsed,
            "leaves/s",
            reference,
            "SHA-256 calls/s",
        ),
    ]


def _timed(samples: list[Callable[[], object]]) -> tuple[float, float]:
    """Mean and 99th percentile in microseconds."""
    times = []
    for call in samples:
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    times.sort()
    return 1e6 * sum(times) / len(times), 1e6 * times[int(0.99 * (len(times) - 1))]


def _proof_times(tree: MerkleTree, size: int, hash_us: float) -> list[Result]:
    _progress(f"merkle: proofs in a tree of {size:,} leaves ...")
    rng = random.Random(size)
    root = tree.root(size)
    indices = [rng.randrange(size) for _ in range(PROOF_SAMPLES)]
    firsts = [rng.randrange(1, size) for _ in range(PROOF_SAMPLES)]
    first_roots = {m: tree.root(m) for m in firsts}
    leaf_hashes = {i: tree.leaf_hash_at(i) for i in indices}

    inclusion = {i: tree.inclusion_proof(i, size) for i in indices}
    consistency = {m: tree.consistency_proof(m, size) for m in firsts}

    def check_inclusion(i: int) -> None:
        verify_inclusion(
            leaf_hash=leaf_hashes[i], index=i, size=size, proof=inclusion[i], root=root
        )

    def check_consistency(m: int) -> None:
        verify_consistency(
            first_size=m,
            second_size=size,
            first_root=first_roots[m],
            second_root=root,
            proof=consistency[m],
        )

    gen_inclusion = _timed([partial(tree.inclusion_proof, i, size) for i in indices])
    gen_consistency = _timed([partial(tree.consistency_proof, m, size) for m in firsts])
    gen_root = _timed([partial(tree.root, m) for m in firsts[:500]])
    ver_inclusion = _timed([partial(check_inclusion, i) for i in indices])
    ver_consistency = _timed([partial(check_consistency, m) for m in firsts])
    label = "one SHA-256 call, us"
    target = "< 1000 us"
    rows = []
    for what, (mean, p99) in (
        ("inclusion proof, generate", gen_inclusion),
        ("inclusion proof, verify", ver_inclusion),
        ("consistency proof, generate", gen_consistency),
        ("consistency proof, verify", ver_consistency),
    ):
        rows.append(Result(NAME, f"{what} @ {size:,} (mean)", mean, "us", hash_us, label, target))
        rows.append(Result(NAME, f"{what} @ {size:,} (p99)", p99, "us", hash_us, label, target))
    rows.append(
        Result(NAME, f"root of a prefix @ {size:,} (mean)", gen_root[0], "us", hash_us, label)
    )
    return rows


def run(quick: bool) -> list[Result]:
    """Append rates, the build of the largest tree, then proof times at each size."""
    reference = sha256_rate(0.5 if quick else 1.0)
    hash_us = 1e6 / reference
    results = [Result(NAME, "SHA-256, 65-byte input (reference)", reference, "calls/s")]
    results += _append_rates(quick, reference)
    sizes = [100_000] if quick else [1_000_000, 10_000_000]
    tree, build = _build(max(sizes), reference)
    results += build
    for size in sizes:  # every smaller size is a prefix of the same log
        results += _proof_times(tree, size, hash_us)
    return results
