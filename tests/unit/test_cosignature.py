"""Witness cosignatures and the witness rule (crypto/cosignature.py), with the JSON vectors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sealpost.crypto import cosignature, errors, logentry, merkle
from sealpost.crypto._sodium import ed25519_public_from_seed, sha256
from sealpost.crypto.cosignature import Successor, check_successor, cosign, verify_cosignature
from sealpost.crypto.errors import (
    ForkError,
    FormatError,
    ProofError,
    SignatureError,
    VersionTooNewError,
)
from sealpost.crypto.keys import SigningSeed
from sealpost.crypto.logentry import VerifiedTreeHead
from sealpost.v1 import log_pb2

VECTOR_DIR = Path(__file__).resolve().parent.parent / "vectors"
SEED = sha256(b"unit test witness")
PUBLIC = ed25519_public_from_seed(SEED)
KEY_ID = cosignature.witness_key_id(PUBLIC)
LOG_SEED = sha256(b"unit test log")
LOG_KEY_ID = sha256(b"unit test log key id")
LEAVES = [f"leaf {i}".encode() for i in range(40)]
TREE = merkle.MerkleTree(merkle.MemoryNodeStore())
TREE.append_many(LEAVES)


def _generator() -> ModuleType:
    path = VECTOR_DIR / "generate_cosignature_vectors.py"
    spec = importlib.util.spec_from_file_location("generate_cosignature_vectors", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _document() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTOR_DIR / "cosignature-v1.json").read_text())
    return data


def _cosig(case: dict[str, Any]) -> log_pb2.Cosignature:
    return log_pb2.Cosignature(
        version=case["version"],
        witness_key_id=bytes.fromhex(case["witness_key_id"]),
        cosigned_at_ms=case["cosigned_at_ms"],
        signature=bytes.fromhex(case["signature"]),
    )


def _verify(case: dict[str, Any]) -> None:
    verify_cosignature(
        _cosig(case),
        bytes.fromhex(case["tree_head"]),
        witness_key_id=bytes.fromhex(case["expected_witness_key_id"]),
        public_key=bytes.fromhex(case["public_key"]),
    )


def test_committed_vectors_are_what_the_generator_writes() -> None:
    fresh: dict[str, str] = _generator().build()
    for name, text in fresh.items():
        committed = (VECTOR_DIR / name).read_text(encoding="utf-8")
        assert committed == text, (
            f"{name} is stale: run {VECTOR_DIR}/generate_cosignature_vectors.py"
        )


def test_vectors_valid_and_broken() -> None:
    document = _document()
    assert document["cosignature_domain"].encode() == cosignature.COSIGNATURE_DOMAIN
    assert document["witness_key_id_domain"].encode() == cosignature.WITNESS_KEY_ID_DOMAIN
    public = bytes.fromhex(document["witness_public_key"])
    assert ed25519_public_from_seed(bytes.fromhex(document["witness_seed"])) == public
    assert cosignature.witness_key_id(public).hex() == document["witness_key_id"]
    for case in document["valid"]:
        _verify(case)
        digest = cosignature.cosignature_digest(
            bytes.fromhex(case["tree_head"]),
            bytes.fromhex(case["witness_key_id"]),
            case["cosigned_at_ms"],
        )
        assert digest.hex() == case["digest"]
    assert len(document["invalid"]) >= 15
    for case in document["invalid"]:
        with pytest.raises(getattr(errors, case["error"])):
            _verify(case)


def _head(
    size: int, timestamp_ms: int = 1_000_000
) -> tuple[log_pb2.SignedTreeHead, VerifiedTreeHead]:
    sth = logentry.sign_tree_head(
        size, TREE.root(size), timestamp_ms, LOG_KEY_ID, SigningSeed(LOG_SEED)
    )
    public = ed25519_public_from_seed(LOG_SEED)
    return sth, logentry.verify_tree_head(sth, public, LOG_KEY_ID)


def test_round_trip_and_refusals() -> None:
    sth, _ = _head(12)
    cosig = cosign(sth.tree_head, witness_key_id=KEY_ID, cosigned_at_ms=5, seed=SEED)
    verified = verify_cosignature(cosig, sth.tree_head, witness_key_id=KEY_ID, public_key=PUBLIC)
    assert (verified.version, verified.witness_key_id, verified.cosigned_at_ms) == (1, KEY_ID, 5)
    with pytest.raises(SignatureError):
        verify_cosignature(cosig, sth.tree_head, witness_key_id=KEY_ID, public_key=bytes(32))
    with pytest.raises(SignatureError):
        verify_cosignature(cosig, sth.tree_head, witness_key_id=bytes(32), public_key=PUBLIC)
    too_new = log_pb2.Cosignature()
    too_new.CopyFrom(cosig)
    too_new.version = 7
    with pytest.raises(VersionTooNewError):
        verify_cosignature(too_new, sth.tree_head, witness_key_id=KEY_ID, public_key=PUBLIC)
    with pytest.raises(FormatError):
        cosign(sth.tree_head, witness_key_id=KEY_ID[:16], cosigned_at_ms=5, seed=SEED)
    with pytest.raises(FormatError):
        cosign(sth.tree_head, witness_key_id=KEY_ID, cosigned_at_ms=-5, seed=SEED)
    with pytest.raises(FormatError):
        cosign(sth.tree_head, witness_key_id=KEY_ID, cosigned_at_ms=5, seed=SEED[:31])
    with pytest.raises(FormatError):
        cosignature.witness_key_id(PUBLIC[:31])


def test_a_cosignature_is_not_a_tree_head_signature() -> None:
    """The two domains differ: neither signature verifies as the other."""
    sth, _ = _head(12)
    cosig = cosign(sth.tree_head, witness_key_id=KEY_ID, cosigned_at_ms=5, seed=SEED)
    as_head = log_pb2.SignedTreeHead(tree_head=sth.tree_head, signature=cosig.signature)
    with pytest.raises(SignatureError):
        logentry.verify_tree_head(as_head, PUBLIC, LOG_KEY_ID)


def _proof(first: int, second: int) -> log_pb2.ConsistencyProof:
    return log_pb2.ConsistencyProof(
        first_size=first, second_size=second, path=TREE.consistency_proof(first, second)
    )


def test_successor_newer_same_and_older() -> None:
    _, small = _head(10, 1_000)
    _, large = _head(30, 2_000)
    _, large_again = _head(30, 3_000)
    assert check_successor(small, large, _proof(10, 30)) is Successor.NEWER
    assert check_successor(large, large_again, None) is Successor.SAME
    assert check_successor(large, small, _proof(10, 30)) is Successor.OLDER
    _, empty = _head(0, 500)
    assert check_successor(empty, small, _proof(0, 10)) is Successor.NEWER


def test_successor_refuses_a_fork_of_the_same_size() -> None:
    _, head = _head(20)
    other = VerifiedTreeHead(1, 20, bytes(32), head.timestamp_ms + 1, LOG_KEY_ID)
    with pytest.raises(ForkError, match="two histories"):
        check_successor(head, other, None)


def test_successor_refuses_a_head_that_does_not_extend_the_newest() -> None:
    _, small = _head(10)
    forged = VerifiedTreeHead(1, 30, sha256(b"another history"), small.timestamp_ms + 1, LOG_KEY_ID)
    with pytest.raises(ForkError, match="does not extend"):
        check_successor(small, forged, _proof(10, 30))
    # An older head that the newest does not extend is a fork too.
    _, newest = _head(30)
    rewritten = VerifiedTreeHead(1, 10, sha256(b"old history"), 1, LOG_KEY_ID)
    with pytest.raises(ForkError):
        check_successor(newest, rewritten, _proof(10, 30))


def test_successor_needs_a_proof_for_the_right_sizes() -> None:
    _, small = _head(10)
    _, large = _head(30)
    with pytest.raises(ProofError):
        check_successor(small, large, None)
    with pytest.raises(ForkError):
        check_successor(small, large, _proof(11, 30))


def test_successor_refuses_time_going_backwards_beyond_the_leeway() -> None:
    _, small = _head(10, 100_000)
    _, slightly_earlier = _head(30, 100_000 - 59_000)
    assert check_successor(small, slightly_earlier, _proof(10, 30)) is Successor.NEWER
    _, much_earlier = _head(30, 100_000 - 61_000)
    with pytest.raises(ForkError, match="before the smaller head"):
        check_successor(small, much_earlier, _proof(10, 30))
    assert check_successor(small, much_earlier, _proof(10, 30), clock_leeway_ms=70_000) is (
        Successor.NEWER
    )
