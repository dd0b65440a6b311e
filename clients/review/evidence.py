"""Evidence bundles: one reviewed message, its content and the proof the review is on record.

A bundle lets someone outside Sealpost check, offline and with only the directory's
pinned key, that (SPEC P3, P6, P8):

1. the key records are the directory's (the sender's valid when the message was accepted);
2. the sender signed the envelope;
3. the data key in the bundle is the one the sender committed to, and decrypting the
   envelope with it gives exactly the parts in the bundle;
4. the review grant is a leaf of the gateway's transparency log, included in a tree head
   the log key signed, and it grants access to this message on the stated legal basis.

The data key opens this one message only. Verification is pure: bytes and a pin in, a
report out; the reference times are the ones recorded in the bundle (the message's
acceptance and the signed tree head), so a bundle stays checkable after keys expire.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sealpost.clients.review.errors import (
    EvidenceCheckError,
    EvidenceFormatError,
    EvidenceVersionTooNewError,
    EvidenceVersionTooOldError,
)
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto import keyrecords, logentry
from sealpost.crypto.envelope import Part
from sealpost.crypto.errors import CryptoError, EnvelopeError, ProofError
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.v1 import common_pb2, envelope_pb2, keys_pb2, log_pb2

if TYPE_CHECKING:  # the verifier stays importable without the gateway client
    from sealpost.clients.review.client import Review

T = TypeVar("T")

#: The value of the bundle's "format" field.
EVIDENCE_FORMAT: Final = "sealpost-evidence"
#: The bundle version this code writes; the oldest one it still reads.
EVIDENCE_VERSION: Final = 1
MIN_EVIDENCE_VERSION: Final = 1
#: Largest bundle read: a maximal envelope, its parts again, both in base64, and the rest.
MAX_EVIDENCE_BYTES: Final = 256 * 1024 * 1024

INBOUND: Final = "inbound"
OUTBOUND: Final = "outbound"
_DIRECTIONS: Final = {
    INBOUND: common_pb2.DIRECTION_INBOUND,
    OUTBOUND: common_pb2.DIRECTION_OUTBOUND,
}
#: Whose key signs a message: a relative's device inbound, the detainee's mailbox outbound.
_SENDER_PURPOSE: Final = {
    INBOUND: keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE,
    OUTBOUND: keys_pb2.KEY_PURPOSE_MAILBOX,
}
#: Subject kind of the grant id in a REVIEW_GRANTED leaf (gateway/services/review.py).
GRANT_SUBJECT: Final = "grant"
DETAINEE_SUBJECT: Final = "detainee"
LEGAL_BASIS_FIELD: Final = "legal_basis"
KEY_SERVER_ENTITY_FIELD: Final = "key_server_entity"

# The checks, in the order they run; each later one relies on the earlier ones.
CHECK_DIRECTORY: Final = "directory"
CHECK_LOG_KEY: Final = "log-key"
CHECK_SENDER_KEY: Final = "sender-key"
CHECK_ENVELOPE: Final = "envelope"
CHECK_DATA_KEY: Final = "data-key"
CHECK_CONTENT: Final = "content"
CHECK_TREE_HEAD: Final = "tree-head"
CHECK_INCLUSION: Final = "inclusion"
CHECK_GRANT: Final = "grant"
CHECKS: Final = (
    CHECK_DIRECTORY,
    CHECK_LOG_KEY,
    CHECK_SENDER_KEY,
    CHECK_ENVELOPE,
    CHECK_DATA_KEY,
    CHECK_CONTENT,
    CHECK_TREE_HEAD,
    CHECK_INCLUSION,
    CHECK_GRANT,
)


@dataclass(frozen=True)
class EvidenceBundle:
    """A bundle's fields, decoded from JSON but not yet verified."""

    message_id: bytes
    accepted_at_ms: int
    direction: str
    detainee_id: str
    envelope: bytes = field(repr=False)
    data_key: bytes = field(repr=False)
    parts: tuple[Part, ...]
    directory_record: bytes = field(repr=False)
    log_record: bytes = field(repr=False)
    sender_record: bytes = field(repr=False)
    revocations: tuple[bytes, ...] = field(repr=False)
    grant_id: str
    legal_basis: str
    entry_index: int
    entry_leaf: bytes = field(repr=False)
    tree_head: bytes = field(repr=False)
    tree_head_signature: bytes = field(repr=False)
    proof_leaf_index: int
    proof_tree_size: int
    proof_path: tuple[bytes, ...] = field(repr=False)
    exported_at_ms: int = 0
    version: int = EVIDENCE_VERSION
    #: The directory key's hand-overs, oldest first (empty before any rotation).
    successions: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class CheckResult:
    """One check of a bundle: its name, whether it passed, and what it established."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class EvidenceReport:
    """What a bundle proves, and the checks that ran (all of CHECKS when it verified)."""

    message_id: bytes
    detainee_id: str
    direction: str
    accepted_at_ms: int
    grant_id: str
    legal_basis: str
    checks: tuple[CheckResult, ...]
    parts: tuple[Part, ...] = ()
    sender_subject: str = ""
    #: From the verified grant leaf: who was granted access, when, and as which
    #: key-server identity (to find the decrypt in the key server's audit log).
    actor: str = ""
    granted_at_ms: int = 0
    key_server_entity: str = ""
    tree_size: int = 0
    leaf_index: int = 0

    @property
    def verified(self) -> bool:
        """Every check ran and passed."""
        return [c.name for c in self.checks] == list(CHECKS) and all(c.passed for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """The report for scripts; content stays out (it is in the bundle)."""
        return {
            "verified": self.verified,
            "messageId": self.message_id.hex(),
            "detaineeId": self.detainee_id,
            "direction": self.direction,
            "acceptedAtMs": self.accepted_at_ms,
            "grantId": self.grant_id,
            "legalBasis": self.legal_basis,
            "senderSubject": self.sender_subject,
            "actor": self.actor,
            "grantedAtMs": self.granted_at_ms,
            "keyServerEntity": self.key_server_entity,
            "treeSize": self.tree_size,
            "leafIndex": self.leaf_index,
            "checks": [
                {"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks
            ],
        }


# --------------------------------------------------------------------------- encoding


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_evidence(bundle: EvidenceBundle) -> bytes:
    """The bundle as UTF-8 JSON (binary fields in standard base64)."""
    document = {
        "format": EVIDENCE_FORMAT,
        "version": bundle.version,
        "exported_at_ms": bundle.exported_at_ms,
        "message": {
            "message_id": bundle.message_id.hex(),
            "accepted_at_ms": bundle.accepted_at_ms,
            "direction": bundle.direction,
            "detainee_id": bundle.detainee_id,
            "envelope": _b64(bundle.envelope),
            "data_key": _b64(bundle.data_key),
            "parts": [
                {"content_type": p.content_type, "filename": p.filename, "data": _b64(p.data)}
                for p in bundle.parts
            ],
        },
        "keys": {
            "directory": _b64(bundle.directory_record),
            "log": _b64(bundle.log_record),
            "sender": _b64(bundle.sender_record),
            "revocations": [_b64(r) for r in bundle.revocations],
            "successions": [_b64(r) for r in bundle.successions],
        },
        "grant": {
            "grant_id": bundle.grant_id,
            "legal_basis": bundle.legal_basis,
            "entry": {"index": bundle.entry_index, "leaf": _b64(bundle.entry_leaf)},
            "tree_head": {
                "tree_head": _b64(bundle.tree_head),
                "signature": _b64(bundle.tree_head_signature),
            },
            "inclusion_proof": {
                "leaf_index": bundle.proof_leaf_index,
                "tree_size": bundle.proof_tree_size,
                "path": [_b64(p) for p in bundle.proof_path],
            },
        },
    }
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def bundle_from_review(review: Review, *, exported_at_ms: int) -> EvidenceBundle:
    """Collect what an outsider needs from an opened message (client.Review)."""
    grant = review.grant
    direction = next(k for k, v in _DIRECTIONS.items() if v == grant.direction)
    return EvidenceBundle(
        message_id=review.message.header.message_id,
        accepted_at_ms=grant.accepted_at_ms,
        direction=direction,
        detainee_id=grant.detainee_id,
        envelope=grant.envelope.SerializeToString(),
        data_key=review.dek,
        parts=review.message.parts,
        directory_record=review.directory.directory_key.SerializeToString(),
        log_record=review.directory.log_key.SerializeToString(),
        sender_record=grant.sender_key.SerializeToString(),
        revocations=tuple(r.SerializeToString() for r in review.directory.revocations),
        successions=tuple(r.SerializeToString() for r in review.directory.successions),
        grant_id=grant.grant_id,
        legal_basis=common_pb2.LegalBasis.Name(grant.legal_basis),
        entry_index=grant.grant_entry.index,
        entry_leaf=grant.grant_entry.leaf,
        tree_head=grant.tree_head.tree_head,
        tree_head_signature=grant.tree_head.signature,
        proof_leaf_index=grant.inclusion_proof.leaf_index,
        proof_tree_size=grant.inclusion_proof.tree_size,
        proof_path=tuple(grant.inclusion_proof.path),
        exported_at_ms=exported_at_ms,
    )


def export_evidence(review: Review, *, exported_at_ms: int) -> bytes:
    """The evidence bundle of an opened message, as bytes to write to a file."""
    return encode_evidence(bundle_from_review(review, exported_at_ms=exported_at_ms))


# --------------------------------------------------------------------------- decoding


def _get(obj: dict[str, Any], key: str, kind: type[T], where: str) -> T:
    value = obj.get(key)
    # bool is an int in Python; a JSON true is never a count or a time.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise EvidenceFormatError(f"{where}.{key} is missing or not a {kind.__name__}")
    return value


def _bytes(obj: dict[str, Any], key: str, where: str) -> bytes:
    return _unb64(_get(obj, key, str, where), f"{where}.{key}")


def _unb64(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise EvidenceFormatError(f"{where} is not a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise EvidenceFormatError(f"{where} is not valid base64") from None


def _object(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    return _get(obj, key, dict, where)


def _list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    return _get(obj, key, list, where)


def _count(obj: dict[str, Any], key: str, where: str) -> int:
    value = _get(obj, key, int, where)
    if not 0 <= value < 2**64:
        raise EvidenceFormatError(f"{where}.{key} is out of range")
    return value


def _check_version(document: dict[str, Any]) -> int:
    if document.get("format") != EVIDENCE_FORMAT:
        raise EvidenceFormatError(f"not a Sealpost evidence bundle (format {EVIDENCE_FORMAT!r})")
    version = _get(document, "version", int, "bundle")
    if version < MIN_EVIDENCE_VERSION:
        raise EvidenceVersionTooOldError(f"evidence bundle version {version} is not accepted")
    if version > EVIDENCE_VERSION:
        raise EvidenceVersionTooNewError(
            f"evidence bundle version {version} is newer than this program knows "
            f"(up to {EVIDENCE_VERSION}); upgrade Sealpost to verify it"
        )
    return version


def _part(item: object, where: str) -> Part:
    if not isinstance(item, dict):
        raise EvidenceFormatError(f"{where} is not an object")
    return Part(
        _get(item, "content_type", str, where),
        _bytes(item, "data", where),
        _get(item, "filename", str, where),
    )


def parse_evidence(data: bytes) -> EvidenceBundle:
    """Decode a bundle's JSON and check its format and version; nothing is verified yet."""
    if len(data) > MAX_EVIDENCE_BYTES:
        raise EvidenceFormatError(f"an evidence bundle is at most {MAX_EVIDENCE_BYTES} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise EvidenceFormatError("not a Sealpost evidence bundle (not UTF-8 JSON)") from None
    if not isinstance(document, dict):
        raise EvidenceFormatError("not a Sealpost evidence bundle (not a JSON object)")
    version = _check_version(document)
    message = _object(document, "message", "bundle")
    keys = _object(document, "keys", "bundle")
    grant = _object(document, "grant", "bundle")
    entry = _object(grant, "entry", "grant")
    head = _object(grant, "tree_head", "grant")
    proof = _object(grant, "inclusion_proof", "grant")
    try:
        message_id = bytes.fromhex(_get(message, "message_id", str, "message"))
    except ValueError:
        raise EvidenceFormatError("message.message_id is not hex") from None
    direction = _get(message, "direction", str, "message")
    if direction not in _DIRECTIONS:
        raise EvidenceFormatError(f"message.direction is {INBOUND!r} or {OUTBOUND!r}")
    parts = _list(message, "parts", "message")
    return EvidenceBundle(
        version=version,
        exported_at_ms=_count(document, "exported_at_ms", "bundle"),
        message_id=message_id,
        accepted_at_ms=_count(message, "accepted_at_ms", "message"),
        direction=direction,
        detainee_id=_get(message, "detainee_id", str, "message"),
        envelope=_bytes(message, "envelope", "message"),
        data_key=_bytes(message, "data_key", "message"),
        parts=tuple(_part(p, f"message.parts[{i}]") for i, p in enumerate(parts)),
        directory_record=_bytes(keys, "directory", "keys"),
        log_record=_bytes(keys, "log", "keys"),
        sender_record=_bytes(keys, "sender", "keys"),
        revocations=tuple(
            _unb64(r, f"keys.revocations[{i}]")
            for i, r in enumerate(_list(keys, "revocations", "keys"))
        ),
        successions=tuple(
            _unb64(r, f"keys.successions[{i}]") for i, r in enumerate(keys.get("successions") or [])
        ),
        grant_id=_get(grant, "grant_id", str, "grant"),
        legal_basis=_get(grant, "legal_basis", str, "grant"),
        entry_index=_count(entry, "index", "grant.entry"),
        entry_leaf=_bytes(entry, "leaf", "grant.entry"),
        tree_head=_bytes(head, "tree_head", "grant.tree_head"),
        tree_head_signature=_bytes(head, "signature", "grant.tree_head"),
        proof_leaf_index=_count(proof, "leaf_index", "grant.inclusion_proof"),
        proof_tree_size=_count(proof, "tree_size", "grant.inclusion_proof"),
        proof_path=tuple(
            _unb64(p, f"grant.inclusion_proof.path[{i}]")
            for i, p in enumerate(_list(proof, "path", "grant.inclusion_proof"))
        ),
    )


# --------------------------------------------------------------------------- verification


@dataclass
class _Verifier:
    """Runs the checks in order, recording each; the first failure raises with the record."""

    bundle: EvidenceBundle
    pin: DirectoryPin
    done: list[CheckResult] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def report(self) -> EvidenceReport:
        b = self.bundle
        return EvidenceReport(
            message_id=b.message_id,
            detainee_id=b.detainee_id,
            direction=b.direction,
            accepted_at_ms=b.accepted_at_ms,
            grant_id=b.grant_id,
            legal_basis=b.legal_basis,
            checks=tuple(self.done),
            **self.facts,
        )

    def run(self, name: str, detail: str, action: Callable[[], T]) -> T:
        try:
            result = action()
        except CryptoError as exc:
            reason = exc.explain()
            self.done.append(CheckResult(name, False, reason))
            raise EvidenceCheckError(name, reason, self.report()) from exc
        self.done.append(CheckResult(name, True, detail))
        return result

    def revocations(self) -> list[keys_pb2.KeyRevocation]:
        return [keyrecords.parse_key_revocation(r) for r in self.bundle.revocations]

    def directory(self, when_ms: int) -> VerifiedKey:
        record = keyrecords.parse_key_record(self.bundle.directory_record)
        successions = [keys_pb2.DirectorySuccession.FromString(r) for r in self.bundle.successions]
        return keyrecords.verify_directory_record(
            record,
            self.pin,
            now_ms=when_ms,
            revocations=self.revocations(),
            successions=successions,
        )

    def record(
        self, data: bytes, directory: VerifiedKey, when_ms: int, purpose: keyrecords.KeyPurpose
    ) -> VerifiedKey:
        return keyrecords.verify_key_record(
            keyrecords.parse_key_record(data),
            directory,
            now_ms=when_ms,
            revocations=self.revocations(),
            purpose=purpose,
        )


def _compare_parts(expected: Sequence[Part], opened: Sequence[Part]) -> None:
    if len(expected) != len(opened):
        raise EnvelopeError(
            f"the bundle lists {len(expected)} parts, the envelope decrypts to {len(opened)}"
        )
    for index, (mine, real) in enumerate(zip(expected, opened, strict=True)):
        same = (
            mine.content_type == real.content_type
            and mine.filename == real.filename
            and hmac.compare_digest(mine.data, real.data)
        )
        if not same:
            raise EnvelopeError(f"part {index} differs from what the envelope decrypts to")


def _check_grant(bundle: EvidenceBundle, head: logentry.VerifiedTreeHead) -> logentry.LogEvent:
    event = logentry.decode_event(bundle.entry_leaf)
    if event.action is not logentry.LogAction.REVIEW_GRANTED:
        raise ProofError(f"the logged entry records {event.action.name}, not REVIEW_GRANTED")
    if event.message_id() != bundle.message_id.hex():
        raise ProofError("the logged grant is for another message")
    subjects = set(event.subjects)
    if (GRANT_SUBJECT, bundle.grant_id) not in subjects:
        raise ProofError("the logged grant has another grant id")
    if (DETAINEE_SUBJECT, bundle.detainee_id) not in subjects:
        raise ProofError("the logged grant is about another detainee")
    if event.extra.get(LEGAL_BASIS_FIELD) != bundle.legal_basis:
        raise ProofError("the logged grant states another legal basis")
    if not bundle.accepted_at_ms <= event.time_ms <= head.timestamp_ms:
        raise ProofError("the grant's time lies outside acceptance and the signed head")
    return event


def verify_evidence(data: bytes, directory_pin: DirectoryPin) -> EvidenceReport:
    """Check a bundle offline against the pinned directory key; raise on the first failure.

    EvidenceFormatError (or a version error) when the bytes are not a bundle this code
    reads; EvidenceCheckError naming the check that failed otherwise. No I/O, no clock.
    """
    bundle = parse_evidence(data)
    v = _Verifier(bundle, directory_pin)
    accepted = bundle.accepted_at_ms
    directory = v.run(
        CHECK_DIRECTORY,
        "the directory record carries the pinned key and was valid at acceptance",
        lambda: v.directory(accepted),
    )
    log = v.run(
        CHECK_LOG_KEY,
        "the log key record is the directory's",
        lambda: v.record(bundle.log_record, directory, accepted, keys_pb2.KEY_PURPOSE_LOG),
    )
    sender = v.run(
        CHECK_SENDER_KEY,
        "the sender's key record is the directory's and was valid at acceptance",
        lambda: v.record(
            bundle.sender_record, directory, accepted, _SENDER_PURPOSE[bundle.direction]
        ),
    )
    v.facts["sender_subject"] = sender.subject

    def envelope() -> tuple[envelope_pb2.Envelope, crypto_envelope.VerifiedEnvelope]:
        parsed = crypto_envelope.parse_envelope(bundle.envelope)
        verified = crypto_envelope.verify_envelope(parsed, sender, now_ms=accepted)
        if not hmac.compare_digest(verified.header.message_id, bundle.message_id):
            raise EnvelopeError("the envelope carries another message id")
        return parsed, verified

    parsed, verified = v.run(
        CHECK_ENVELOPE, "the sender's signature over the envelope verifies", envelope
    )
    v.run(
        CHECK_DATA_KEY,
        "the data key matches the key commitment in the signed header",
        lambda: crypto_envelope.verify_dek_commitment(verified.header, bundle.data_key),
    )

    def content() -> None:
        opened = crypto_envelope.decrypt_with_dek(parsed, bundle.data_key, sender, now_ms=accepted)
        _compare_parts(bundle.parts, opened.parts)

    v.run(CHECK_CONTENT, "the envelope decrypts to exactly the bundle's parts", content)
    v.facts["parts"] = bundle.parts

    def tree_head() -> logentry.VerifiedTreeHead:
        signed = log_pb2.SignedTreeHead(
            tree_head=bundle.tree_head, signature=bundle.tree_head_signature
        )
        head = logentry.verify_tree_head(signed, log.signing_key, log.id)
        # The keys must also have been valid when the head was signed.
        at_head = v.directory(head.timestamp_ms)
        v.record(bundle.log_record, at_head, head.timestamp_ms, keys_pb2.KEY_PURPOSE_LOG)
        return head

    head = v.run(CHECK_TREE_HEAD, "the log key signed the tree head", tree_head)
    v.facts["tree_size"] = head.tree_size

    def inclusion() -> None:
        proof = log_pb2.InclusionProof(
            leaf_index=bundle.proof_leaf_index,
            tree_size=bundle.proof_tree_size,
            path=bundle.proof_path,
        )
        logentry.verify_entry_inclusion(bundle.entry_leaf, bundle.entry_index, proof, head)

    v.run(CHECK_INCLUSION, "the grant's leaf is in the signed tree", inclusion)
    v.facts["leaf_index"] = bundle.entry_index
    event = v.run(
        CHECK_GRANT,
        "the leaf grants review of this message on the stated legal basis",
        lambda: _check_grant(bundle, head),
    )
    v.facts.update(
        actor=event.actor,
        granted_at_ms=event.time_ms,
        key_server_entity=event.extra.get(KEY_SERVER_ENTITY_FIELD, ""),
    )
    return v.report()


__all__ = [
    "CHECKS",
    "EVIDENCE_FORMAT",
    "EVIDENCE_VERSION",
    "CheckResult",
    "EvidenceBundle",
    "EvidenceReport",
    "bundle_from_review",
    "encode_evidence",
    "export_evidence",
    "parse_evidence",
    "verify_evidence",
]
