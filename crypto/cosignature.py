"""Witness cosignatures of signed tree heads, and the rule a witness applies to each new head.

A Sealpost equivalent of C2SP tlog-cosignature (Ed25519): a witness that has checked a
tree head's signature and its consistency with every head it saw before countersigns
the exact ``TreeHead`` bytes, with the time it did so (docs/transparency-log.md,
"Cosignatures"). Unlike C2SP's Ed25519 form, the signed digest also commits to the
witness's key id and to the cosignature version, so one key can never be read as
another witness's, and a version-2 cosignature can never be replayed as version 1.

Pure code: bytes, keys and times go in; no I/O, no clock. Verifiers return or raise.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from typing import Final

from sealpost.crypto import domains
from sealpost.crypto._framing import framed_sha256
from sealpost.crypto._sodium import (
    ED25519_PUBLIC_BYTES,
    ED25519_SEED_BYTES,
    ED25519_SIGNATURE_BYTES,
    ed25519_public_is_valid,
    ed25519_sign,
    ed25519_verify,
)
from sealpost.crypto.errors import (
    ForkError,
    FormatError,
    ProofError,
    SignatureError,
    VersionTooNewError,
    VersionTooOldError,
)
from sealpost.crypto.logentry import MAX_TIME_MS, VerifiedTreeHead, verify_head_consistency
from sealpost.v1 import log_pb2

#: The cosignature format this code writes (Cosignature.version).
COSIGNATURE_VERSION: Final = 1
#: The oldest format still accepted (0 is never valid).
MIN_COSIGNATURE_VERSION: Final = 1
#: Domain of the cosignature digest (crypto/domains.py).
COSIGNATURE_DOMAIN: Final = domains.LOG_COSIGNATURE
#: Domain of the key id of a witness key without a key record (an auditor's own key).
WITNESS_KEY_ID_DOMAIN: Final = domains.LOG_WITNESS_KEY_ID
#: Witness key ids are 32 bytes, like key record ids.
WITNESS_KEY_ID_BYTES: Final = 32
#: How far a newer head's timestamp may lie before the newest one's (gateways on several
#: machines read several clocks) before the witness refuses it.
DEFAULT_CLOCK_LEEWAY_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class VerifiedCosignature:
    """A cosignature whose version, key id and signature have been checked."""

    version: int
    witness_key_id: bytes
    cosigned_at_ms: int


def witness_key_id(public_key: bytes) -> bytes:
    """The key id of a witness key without a key record: SHA-256(LP(domain) || LP(key))."""
    if len(public_key) != ED25519_PUBLIC_BYTES or not ed25519_public_is_valid(public_key):
        raise FormatError(f"a witness key is an Ed25519 public key of {ED25519_PUBLIC_BYTES} bytes")
    return framed_sha256(WITNESS_KEY_ID_DOMAIN, [public_key])


def cosignature_digest(
    tree_head: bytes, witness_key_id: bytes, cosigned_at_ms: int, version: int = COSIGNATURE_VERSION
) -> bytes:
    """The 32 bytes a witness signs.

    SHA-256(LP(COSIGNATURE_DOMAIN) || U64(version) || LP(witness_key_id) ||
    U64(cosigned_at_ms) || LP(tree_head)), framed like every Sealpost digest.
    """
    return framed_sha256(COSIGNATURE_DOMAIN, [version, witness_key_id, cosigned_at_ms, tree_head])


def _check_fields(witness_key_id: bytes, cosigned_at_ms: int) -> None:
    if len(witness_key_id) != WITNESS_KEY_ID_BYTES:
        raise FormatError(
            f"witness key id is {len(witness_key_id)} bytes, expected {WITNESS_KEY_ID_BYTES}"
        )
    if not 0 <= cosigned_at_ms <= MAX_TIME_MS:
        raise FormatError(f"cosignature time {cosigned_at_ms} is outside [0, 2**63)")


def cosign(
    tree_head: bytes, *, witness_key_id: bytes, cosigned_at_ms: int, seed: bytes
) -> log_pb2.Cosignature:
    """Countersign the exact ``TreeHead`` bytes with the witness's Ed25519 seed.

    The caller must have verified the head and its consistency with every head it saw
    before (``check_successor``): a cosignature says so.
    """
    _check_fields(witness_key_id, cosigned_at_ms)
    if len(seed) != ED25519_SEED_BYTES:
        raise FormatError(f"a witness key seed is {ED25519_SEED_BYTES} bytes")
    digest = cosignature_digest(tree_head, witness_key_id, cosigned_at_ms)
    return log_pb2.Cosignature(
        version=COSIGNATURE_VERSION,
        witness_key_id=witness_key_id,
        cosigned_at_ms=cosigned_at_ms,
        signature=ed25519_sign(seed, digest),
    )


def verify_cosignature(
    cosignature: log_pb2.Cosignature,
    tree_head: bytes,
    *,
    witness_key_id: bytes,
    public_key: bytes,
) -> VerifiedCosignature:
    """Check a cosignature of the exact ``TreeHead`` bytes by the witness key expected.

    Order: version, key id, fields, signature (docs/transparency-log.md, "Cosignatures").
    The head itself is checked separately (``logentry.verify_tree_head``).
    """
    if cosignature.version < MIN_COSIGNATURE_VERSION:
        raise VersionTooOldError(f"cosignature version {cosignature.version} is not accepted")
    if cosignature.version > COSIGNATURE_VERSION:
        raise VersionTooNewError(
            f"cosignature version {cosignature.version} is newer than this code knows"
        )
    if not hmac.compare_digest(cosignature.witness_key_id, witness_key_id):
        raise SignatureError("cosignature is by another witness key than the one expected")
    _check_fields(cosignature.witness_key_id, cosignature.cosigned_at_ms)
    if len(cosignature.signature) != ED25519_SIGNATURE_BYTES:
        raise SignatureError("cosignature is not an Ed25519 signature (64 bytes)")
    digest = cosignature_digest(
        tree_head, cosignature.witness_key_id, cosignature.cosigned_at_ms, cosignature.version
    )
    ed25519_verify(public_key, digest, cosignature.signature)
    return VerifiedCosignature(
        version=cosignature.version,
        witness_key_id=cosignature.witness_key_id,
        cosigned_at_ms=cosignature.cosigned_at_ms,
    )


# --------------------------------------------------------------------------- the witness rule


class Successor(enum.Enum):
    """How a verified head relates to the newest head a witness holds."""

    #: Larger, and consistent with it: the witness's new newest head, to cosign.
    NEWER = "newer"
    #: The same tree (size and root); a later timestamp makes it the head to cosign.
    SAME = "same"
    #: Smaller, and the newest head extends it: an older head of the same history.
    OLDER = "older"


def check_successor(
    newest: VerifiedTreeHead,
    head: VerifiedTreeHead,
    proof: log_pb2.ConsistencyProof | None,
    *,
    clock_leeway_ms: int = DEFAULT_CLOCK_LEEWAY_MS,
) -> Successor:
    """How ``head`` relates to ``newest``; ForkError when both cannot be of one history.

    ``proof`` is the RFC 9162 section 2.1.4 consistency proof from the smaller tree to
    the larger (unused when the sizes are equal). A newer head whose timestamp lies
    more than ``clock_leeway_ms`` before the newest one's is refused too: the log key
    signed a larger tree earlier than a smaller one.
    """
    if head.tree_size == newest.tree_size:
        if not hmac.compare_digest(head.root_hash, newest.root_hash):
            raise ForkError(
                f"two signed heads of size {head.tree_size} carry different roots: "
                "the log key signed two histories"
            )
        return Successor.SAME
    if proof is None:
        raise ProofError("a consistency proof is needed between heads of different sizes")
    small, large = (newest, head) if newest.tree_size < head.tree_size else (head, newest)
    try:
        verify_head_consistency(small, large, proof)
    except ProofError as exc:
        raise ForkError(
            f"the head of size {large.tree_size} does not extend the head of size "
            f"{small.tree_size}: {exc}"
        ) from exc
    if large is newest:
        return Successor.OLDER
    if head.timestamp_ms + clock_leeway_ms < newest.timestamp_ms:
        raise ForkError(
            f"the head of size {head.tree_size} was signed at {head.timestamp_ms}, before the "
            f"smaller head of size {newest.tree_size} ({newest.timestamp_ms})"
        )
    return Successor.NEWER
