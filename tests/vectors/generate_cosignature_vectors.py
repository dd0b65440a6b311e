"""Regenerate the witness cosignature test vectors: tests/vectors/cosignature-v1.json.

Run ``.venv/bin/python tests/vectors/generate_cosignature_vectors.py``. The file is data
for any client (valid and deliberately broken cosignatures); tests/unit/test_cosignature.py
fails when the committed file differs from what this script writes, and checks every case
against the verifier.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sealpost.crypto import cosignature, logentry, merkle
from sealpost.crypto._framing import framed_sha256
from sealpost.crypto._sodium import ed25519_public_from_seed, ed25519_sign, sha256
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.keys import SigningSeed
from sealpost.v1 import log_pb2

VECTOR_DIR = Path(__file__).resolve().parent
FILE_NAME = "cosignature-v1.json"

#: Test keys only; never use them for anything else.
LOG_SEED = sha256(b"sealpost test vector log key")
LOG_KEY_ID = sha256(b"sealpost test vector log key record")
WITNESS_SEED = sha256(b"sealpost test vector witness key")
OTHER_SEED = sha256(b"sealpost test vector other witness key")
#: An institution witness is named by its key record's id; this stands for one.
INSTITUTION_KEY_ID = sha256(b"sealpost test vector institution key record")
HEAD_TIMESTAMP_MS = 1_767_225_600_000
COSIGNED_AT_MS = HEAD_TIMESTAMP_MS + 1_500

Case = dict[str, Any]


def _leaves(count: int) -> list[bytes]:
    return [f"sealpost leaf {i}".encode() for i in range(count)]


def _tree_head(size: int) -> bytes:
    root = merkle.tree_hash(_leaves(size))
    return logentry.sign_tree_head(
        size, root, HEAD_TIMESTAMP_MS, LOG_KEY_ID, SigningSeed(LOG_SEED)
    ).tree_head


def _flip(value: bytes, position: int = 0) -> bytes:
    changed = bytearray(value)
    changed[position] ^= 0x01
    return bytes(changed)


def _case(
    description: str,
    tree_head: bytes,
    cosig: log_pb2.Cosignature,
    expected_key_id: bytes,
    public_key: bytes,
    error: str | None = None,
) -> Case:
    case: Case = {
        "description": description,
        "tree_head": tree_head.hex(),
        "version": cosig.version,
        "witness_key_id": cosig.witness_key_id.hex(),
        "cosigned_at_ms": cosig.cosigned_at_ms,
        "signature": cosig.signature.hex(),
        "expected_witness_key_id": expected_key_id.hex(),
        "public_key": public_key.hex(),
    }
    if error is not None:
        case["error"] = error
    return case


def _error_of(call: Callable[[], object]) -> str | None:
    try:
        call()
    except CryptoError as exc:
        return type(exc).__name__
    return None


def _raw(version: int, key_id: bytes, at_ms: int, tree_head: bytes, seed: bytes) -> bytes:
    """A signature over the digest of any version (to build refused versions)."""
    return ed25519_sign(seed, cosignature.cosignature_digest(tree_head, key_id, at_ms, version))


def _check(case: Case) -> str | None:
    cosig = log_pb2.Cosignature(
        version=case["version"],
        witness_key_id=bytes.fromhex(case["witness_key_id"]),
        cosigned_at_ms=case["cosigned_at_ms"],
        signature=bytes.fromhex(case["signature"]),
    )
    return _error_of(
        lambda: cosignature.verify_cosignature(
            cosig,
            bytes.fromhex(case["tree_head"]),
            witness_key_id=bytes.fromhex(case["expected_witness_key_id"]),
            public_key=bytes.fromhex(case["public_key"]),
        )
    )


def vectors() -> dict[str, Any]:
    """Valid cosignatures by an auditor-style and an institution-style witness, and refusals."""
    public = ed25519_public_from_seed(WITNESS_SEED)
    other_public = ed25519_public_from_seed(OTHER_SEED)
    auditor_id = cosignature.witness_key_id(public)
    valid: list[Case] = []
    for size, key_id, who in (
        (8, auditor_id, "an auditor's own key (witness key id)"),
        (0, INSTITUTION_KEY_ID, "an institution key (key record id)"),
        (70, INSTITUTION_KEY_ID, "an institution key (key record id)"),
    ):
        head = _tree_head(size)
        cosig = cosignature.cosign(
            head, witness_key_id=key_id, cosigned_at_ms=COSIGNED_AT_MS, seed=WITNESS_SEED
        )
        case = _case(f"head of size {size}, cosigned with {who}", head, cosig, key_id, public)
        case["digest"] = cosignature.cosignature_digest(head, key_id, COSIGNED_AT_MS).hex()
        valid.append(case)

    head = _tree_head(8)
    good = cosignature.cosign(
        head, witness_key_id=auditor_id, cosigned_at_ms=COSIGNED_AT_MS, seed=WITNESS_SEED
    )

    def variant(**changes: Any) -> log_pb2.Cosignature:
        changed = log_pb2.Cosignature()
        changed.CopyFrom(good)
        for name, value in changes.items():
            setattr(changed, name, value)
        return changed

    bare = ed25519_sign(WITNESS_SEED, head)
    as_tree_head = ed25519_sign(WITNESS_SEED, logentry.tree_head_signing_digest(head))
    no_key_id = ed25519_sign(
        WITNESS_SEED,
        framed_sha256(cosignature.COSIGNATURE_DOMAIN, [1, COSIGNED_AT_MS, head]),
    )
    invalid = [
        _case(
            "signature with one bit flipped",
            head,
            variant(signature=_flip(good.signature)),
            auditor_id,
            public,
            "SignatureError",
        ),
        _case(
            "cosigning time changed after signing",
            head,
            variant(cosigned_at_ms=COSIGNED_AT_MS + 1),
            auditor_id,
            public,
            "SignatureError",
        ),
        _case(
            "another tree head (size 9) under the same cosignature",
            _tree_head(9),
            good,
            auditor_id,
            public,
            "SignatureError",
        ),
        _case(
            "tree head bytes with one bit flipped",
            _flip(head, len(head) - 1),
            good,
            auditor_id,
            public,
            "SignatureError",
        ),
        _case(
            "signed by another witness key",
            head,
            variant(signature=_raw(1, auditor_id, COSIGNED_AT_MS, head, OTHER_SEED)),
            auditor_id,
            public,
            "SignatureError",
        ),
        _case(
            "a valid cosignature by another witness, checked against this one",
            head,
            cosignature.cosign(
                head,
                witness_key_id=cosignature.witness_key_id(other_public),
                cosigned_at_ms=COSIGNED_AT_MS,
                seed=OTHER_SEED,
            ),
            auditor_id,
            public,
            "SignatureError",
        ),
        _case(
            "witness key id relabelled (signature made for another key id)",
            head,
            variant(
                witness_key_id=INSTITUTION_KEY_ID,
                signature=_raw(1, auditor_id, COSIGNED_AT_MS, head, WITNESS_SEED),
            ),
            INSTITUTION_KEY_ID,
            public,
            "SignatureError",
        ),
        _case(
            "signature over the bare TreeHead bytes",
            head,
            variant(signature=bare),
            auditor_id,
            public,
            "SignatureError",
        ),
        _case(
            "signature over the tree-head digest (another domain)",
            head,
            variant(signature=as_tree_head),
            auditor_id,
            public,
            "SignatureError",
        ),
        _case(
            "digest without the witness key id",
            head,
            variant(signature=no_key_id),
            auditor_id,
            public,
            "SignatureError",
        ),
        _case(
            "signature of 63 bytes",
            head,
            variant(signature=good.signature[:63]),
            auditor_id,
            public,
            "SignatureError",
        ),
        _case(
            "witness key id of 31 bytes",
            head,
            variant(witness_key_id=auditor_id[:31]),
            auditor_id[:31],
            public,
            "FormatError",
        ),
        _case(
            "negative cosigning time",
            head,
            variant(cosigned_at_ms=-1),
            auditor_id,
            public,
            "FormatError",
        ),
        _case(
            "version 0, then signed",
            head,
            variant(version=0, signature=_raw(0, auditor_id, COSIGNED_AT_MS, head, WITNESS_SEED)),
            auditor_id,
            public,
            "VersionTooOldError",
        ),
        _case(
            "version 2, then signed",
            head,
            variant(version=2, signature=_raw(2, auditor_id, COSIGNED_AT_MS, head, WITNESS_SEED)),
            auditor_id,
            public,
            "VersionTooNewError",
        ),
    ]
    for case in valid:
        if _check(case) is not None:
            raise AssertionError(f"{case['description']}: refused")
    for case in invalid:
        raised = _check(case)
        if raised != case["error"]:
            raise AssertionError(f"{case['description']}: {raised} instead of {case['error']}")
    return {
        "description": (
            "Witness cosignatures (docs/transparency-log.md, 'Cosignatures'): signature is "
            "Ed25519 over SHA-256(U64(len(domain)) || domain || U64(version) || "
            "U64(len(witness_key_id)) || witness_key_id || U64(cosigned_at_ms) || "
            "U64(len(tree_head)) || tree_head), U64 big-endian; tree_head is the exact "
            "TreeHead bytes of a signed tree head. An auditor's witness key id is "
            "SHA-256(U64(len(id_domain)) || id_domain || U64(32) || public_key). Test keys "
            "only; never use them for anything else."
        ),
        "cosignature_domain": cosignature.COSIGNATURE_DOMAIN.decode("ascii"),
        "witness_key_id_domain": cosignature.WITNESS_KEY_ID_DOMAIN.decode("ascii"),
        "witness_seed": WITNESS_SEED.hex(),
        "witness_public_key": public.hex(),
        "witness_key_id": auditor_id.hex(),
        "log_public_key": ed25519_public_from_seed(LOG_SEED).hex(),
        "log_key_id": LOG_KEY_ID.hex(),
        "valid": valid,
        "invalid": invalid,
    }


def build() -> dict[str, str]:
    """File name -> exact JSON text."""
    return {FILE_NAME: json.dumps(vectors(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"}


def main() -> None:
    """Write the vector file next to this script."""
    for name, text in build().items():
        (VECTOR_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {VECTOR_DIR / name}")


if __name__ == "__main__":
    main()
