"""Transparency-log leaves and signed tree heads: canonical encodings and their verifiers.

A leaf is one ``LogEvent`` in a versioned binary encoding with exactly one byte
string per event (docs/transparency-log.md, "Leaf encoding"). A tree head is a
``sealpost.v1.TreeHead`` serialised deterministically and signed with the log's
Ed25519 key over a domain-separated digest. Pure code: no I/O, no clock.
"""

from __future__ import annotations

import enum
import hmac
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NamedTuple

from google.protobuf.message import DecodeError

from sealpost.crypto import domains, merkle
from sealpost.crypto._framing import framed_sha256
from sealpost.crypto._sodium import ed25519_verify
from sealpost.crypto.errors import (
    FormatError,
    LimitError,
    ProofError,
    SignatureError,
    VersionTooNewError,
    VersionTooOldError,
)
from sealpost.crypto.keys import Signer
from sealpost.crypto.text import has_control_character
from sealpost.v1 import log_pb2

# --------------------------------------------------------------------------- leaves

#: The leaf encoding this code writes; the first byte of every leaf.
LOG_EVENT_VERSION: Final = 1
#: The oldest leaf encoding still accepted (0 is never valid).
MIN_LOG_EVENT_VERSION: Final = 1

#: Hard limits (docs/transparency-log.md, "Leaf encoding"). Lengths are UTF-8 bytes.
MAX_ACTOR_BYTES: Final = 128
MAX_SUBJECTS: Final = 16
MAX_SUBJECT_KIND_BYTES: Final = 32
MAX_SUBJECT_ID_BYTES: Final = 128
MAX_EXTRA_FIELDS: Final = 16
MAX_EXTRA_KEY_BYTES: Final = 32
MAX_EXTRA_VALUE_BYTES: Final = 256
#: Time is milliseconds since the Unix epoch and must fit the proto's int64.
MAX_TIME_MS: Final = 2**63 - 1
#: The largest leaf the limits allow; longer input is refused before parsing.
MAX_LEAF_BYTES: Final = (
    1  # version
    + 2  # action
    + 8  # time_ms
    + 2
    + MAX_ACTOR_BYTES
    + 1
    + MAX_SUBJECTS * (2 + MAX_SUBJECT_KIND_BYTES + 2 + MAX_SUBJECT_ID_BYTES)
    + 1
    + MAX_EXTRA_FIELDS * (2 + MAX_EXTRA_KEY_BYTES + 2 + MAX_EXTRA_VALUE_BYTES)
)

#: Subject kinds and extra-field keys: lower-case ASCII names.
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})+\Z")
#: The extra field a "message accepted" event must carry: SHA-256 of the envelope, hex.
ENVELOPE_DIGEST_FIELD: Final = "envelope_digest"
#: Extra field of a MESSAGE_RELEASED entry for a withheld message: the complaint decision
#: that ordered the release (no content; docs/review.md, "After a complaint").
COMPLAINT_REFERENCE_FIELD: Final = "complaint_reference"
#: Extra field of a REGIME_POLICY_CHANGED entry: whether relatives are told the reason
#: category of a withholding in that regime, ``true`` or ``false`` (absent: ``false``).
TELL_RELATIVES_REASON_FIELD: Final = "tell_relatives_reason"
MESSAGE_SUBJECT: Final = "message"
#: ADMIN_ACTION ``operation`` of a change to a triage watch list; its extra fields are
#: ``version`` and ``sealed_digest`` (watch_list_digest(), hex), never the list's entries.
WATCH_LIST_OPERATION: Final = "watch_list"
#: ADMIN_ACTION ``operation`` of the gateway's deletion of settled messages' rows; extra
#: fields ``before_ms`` (messages accepted before it) and ``messages`` (how many).
ROW_RETENTION_OPERATION: Final = "row_retention"
#: The extra field of a "message escrowed" event: escrow_digest() of the stored blob, hex.
ESCROW_DIGEST_FIELD: Final = "escrow_digest"

_U16 = struct.Struct(">H")
_HEAD = struct.Struct(">BHQ")  # version, action, time_ms


class LogAction(enum.IntEnum):
    """What a log event records. The codes are part of leaf version 1 and never change."""

    # Messages (0x01xx). A message event names the message, never its content.
    MESSAGE_ACCEPTED = 0x0101
    MESSAGE_ESCROWED = 0x0102
    MESSAGE_QUEUED = 0x0103
    MESSAGE_RELEASED = 0x0104
    MESSAGE_WITHHELD = 0x0105
    MESSAGE_DELIVERED = 0x0106
    MESSAGE_REJECTED = 0x0107
    # Review (0x02xx).
    REVIEW_GRANTED = 0x0201
    VERDICT_RECORDED = 0x0202
    RETROSPECTIVE_REQUESTED = 0x0203
    RETROSPECTIVE_APPROVED = 0x0204
    RETROSPECTIVE_REJECTED = 0x0205
    # Detainees (0x03xx).
    DETAINEE_INTAKE = 0x0301
    DETAINEE_TRANSFERRED = 0x0302
    DETAINEE_RELEASED = 0x0303
    DETAINEE_REGIME_CHANGED = 0x0304
    SCREENING_ORDER_CREATED = 0x0305
    SCREENING_ORDER_ENDED = 0x0306
    # Contacts and privileged correspondents (0x04xx).
    CONTACT_APPROVED = 0x0401
    CONTACT_REJECTED = 0x0402
    CONTACT_REVOKED = 0x0403
    CORRESPONDENT_VERIFIED = 0x0404
    CORRESPONDENT_REVOKED = 0x0405
    # Keys and certificates (0x05xx).
    ESCROW_KEY_ROTATED = 0x0501
    RETENTION_APPLIED = 0x0502
    KEY_RECORD_PUBLISHED = 0x0503
    KEY_REVOKED = 0x0504
    TERMINAL_CERTIFICATE_ISSUED = 0x0505
    TERMINAL_CERTIFICATE_REVOKED = 0x0506
    # Administration (0x06xx).
    INSTITUTION_CREATED = 0x0601
    REGIME_POLICY_CHANGED = 0x0602
    ADMIN_ACTION = 0x0603


class Subject(NamedTuple):
    """One thing an event is about, e.g. ("message", "<hex id>") or ("detainee", "<id>")."""

    kind: str
    id: str


def _check_text(what: str, value: object, limit: int, *, empty: bool = False) -> bytes:
    """UTF-8 bytes of ``value`` after the checks every leaf string gets."""
    if not isinstance(value, str):
        raise FormatError(f"{what} must be a string")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError(f"{what} is not valid Unicode text") from exc
    if len(raw) > limit:
        raise LimitError(f"{what} is {len(raw)} bytes, at most {limit} allowed")
    if not raw and not empty:
        raise FormatError(f"{what} is empty")
    if has_control_character(value):
        raise FormatError(f"{what} contains a control character")
    return raw


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string_pair(what: str, pair: object) -> tuple[str, str]:
    """A (str, str) pair, or FormatError: nothing is coerced into a leaf."""
    if (
        not isinstance(pair, tuple)
        or len(pair) != 2
        or not all(isinstance(part, str) for part in pair)
    ):
        raise FormatError(f"each {what} must be a pair of strings")
    return pair[0], pair[1]


def _check_name(what: str, value: str, limit: int) -> bytes:
    raw = _check_text(what, value, limit)
    if not _NAME.match(value):
        raise FormatError(f"{what} {value!r} is not a lower-case name ([a-z][a-z0-9_]*)")
    return raw


@dataclass(frozen=True, kw_only=True)
class LogEvent:
    """One transparency-log event: who did what to which subjects, when, with a few fields.

    Validated on construction: an event that exists can be encoded. ``subjects`` keeps
    its order; ``extra`` is stored sorted by key.
    """

    action: LogAction
    actor: str
    time_ms: int
    subjects: Sequence[tuple[str, str]] = ()
    extra: Mapping[str, str] = field(default_factory=dict)
    version: int = LOG_EVENT_VERSION

    def __post_init__(self) -> None:
        """Normalise the containers (tuples, sorted read-only map) and enforce the limits."""
        _check_version(self.version)
        try:
            action = LogAction(self.action)
        except ValueError as exc:
            raise FormatError(f"unknown log action {self.action!r}") from exc
        subjects = tuple(Subject(*_string_pair("subject", pair)) for pair in self.subjects)
        items = [_string_pair("extra field", item) for item in self.extra.items()]
        extra = MappingProxyType(dict(sorted(items)))
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "subjects", subjects)
        object.__setattr__(self, "extra", extra)
        self._validate()

    def _validate(self) -> None:
        if not _is_int(self.time_ms):
            raise FormatError("time_ms must be an integer")
        if not 0 <= self.time_ms <= MAX_TIME_MS:
            raise LimitError(f"time_ms {self.time_ms} is outside [0, 2**63)")
        _check_text("actor", self.actor, MAX_ACTOR_BYTES)
        if len(self.subjects) > MAX_SUBJECTS:
            raise LimitError(f"{len(self.subjects)} subjects, at most {MAX_SUBJECTS} allowed")
        if len(set(self.subjects)) != len(self.subjects):
            raise FormatError("the same subject appears twice")
        for kind, id_ in self.subjects:
            _check_name("subject kind", kind, MAX_SUBJECT_KIND_BYTES)
            _check_text(f"{kind} id", id_, MAX_SUBJECT_ID_BYTES)
            if kind == MESSAGE_SUBJECT and not _LOWER_HEX.match(id_):
                raise FormatError("a message id must be lower-case hex")
        if len(self.extra) > MAX_EXTRA_FIELDS:
            raise LimitError(f"{len(self.extra)} extra fields, at most {MAX_EXTRA_FIELDS} allowed")
        for key, value in self.extra.items():
            _check_name("extra key", key, MAX_EXTRA_KEY_BYTES)
            _check_text(f"extra field {key}", value, MAX_EXTRA_VALUE_BYTES, empty=True)
        if self.action is LogAction.MESSAGE_ACCEPTED:
            # The acceptance event is what a receipt proves: it names the message and the
            # envelope's digest, and nothing of the content.
            if self.message_id() is None:
                raise FormatError("a message-accepted event needs a message subject")
            digest = self.extra.get(ENVELOPE_DIGEST_FIELD, "")
            if len(digest) != 2 * merkle.HASH_SIZE or not _LOWER_HEX.match(digest):
                raise FormatError("a message-accepted event needs a hex SHA-256 envelope_digest")

    def __hash__(self) -> int:
        """Hashable like its encoding: equal events hash equally."""
        items = tuple(self.extra.items())
        return hash((self.version, self.action, self.actor, self.time_ms, self.subjects, items))

    def message_id(self) -> str | None:
        """The hex id of the first ``message`` subject, if any."""
        for kind, id_ in self.subjects:
            if kind == MESSAGE_SUBJECT:
                return id_
        return None


def _check_version(version: int) -> None:
    if not _is_int(version):
        raise FormatError("the leaf version must be an integer")
    if version < MIN_LOG_EVENT_VERSION:
        raise VersionTooOldError(f"log leaf version {version} is not accepted")
    if version > LOG_EVENT_VERSION:
        raise VersionTooNewError(f"log leaf version {version} is newer than this code knows")


def _pack_text(out: bytearray, raw: bytes) -> None:
    out += _U16.pack(len(raw))
    out += raw


def encode_event(event: LogEvent) -> bytes:
    """The canonical leaf bytes of ``event`` (docs/transparency-log.md, "Leaf encoding")."""
    out = bytearray(_HEAD.pack(event.version, event.action, event.time_ms))
    _pack_text(out, event.actor.encode("utf-8"))
    out.append(len(event.subjects))
    for kind, id_ in event.subjects:
        _pack_text(out, kind.encode("utf-8"))
        _pack_text(out, id_.encode("utf-8"))
    out.append(len(event.extra))
    for key, value in event.extra.items():  # sorted by key since construction
        _pack_text(out, key.encode("utf-8"))
        _pack_text(out, value.encode("utf-8"))
    return bytes(out)


class _Reader:
    """A cursor over leaf bytes that refuses to read past the end."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, count: int, what: str) -> bytes:
        end = self._pos + count
        if end > len(self._data):
            raise FormatError(f"log leaf is truncated in {what}")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def text(self, what: str, limit: int) -> str:
        (length,) = _U16.unpack(self.take(2, f"the length of {what}"))
        if length > limit:
            raise LimitError(f"{what} is {length} bytes, at most {limit} allowed")
        raw = self.take(length, what)
        try:
            return raw.decode("utf-8", "strict")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{what} is not valid UTF-8") from exc

    def at_end(self) -> bool:
        return self._pos == len(self._data)


def leaf_time_ms(data: bytes) -> int | None:
    """The ``time_ms`` a version-1 leaf claims, read without decoding the rest (None if not v1).

    For scanning many leaves cheaply (the auditor's unsigned-tail rule); the value is only
    what the bytes say: ``decode_event`` checks the whole leaf.
    """
    if len(data) < _HEAD.size or data[0] != LOG_EVENT_VERSION:
        return None
    _version, _action, time_ms = _HEAD.unpack_from(data)
    return int(time_ms) if time_ms <= MAX_TIME_MS else None


def decode_event(data: bytes) -> LogEvent:
    """Parse canonical leaf bytes; refuse anything ``encode_event`` would not produce."""
    if not data:
        raise FormatError("log leaf is empty")
    _check_version(data[0])
    if len(data) > MAX_LEAF_BYTES:
        raise LimitError(f"log leaf is {len(data)} bytes, at most {MAX_LEAF_BYTES} allowed")
    reader = _Reader(data)
    version, action_code, time_ms = _HEAD.unpack(reader.take(_HEAD.size, "the header"))
    try:
        action = LogAction(action_code)
    except ValueError as exc:
        raise FormatError(f"unknown log action code 0x{action_code:04x}") from exc
    actor = reader.text("actor", MAX_ACTOR_BYTES)
    subject_count = reader.byte("the subject count")
    if subject_count > MAX_SUBJECTS:
        raise LimitError(f"{subject_count} subjects, at most {MAX_SUBJECTS} allowed")
    subjects = [
        (
            reader.text("subject kind", MAX_SUBJECT_KIND_BYTES),
            reader.text("subject id", MAX_SUBJECT_ID_BYTES),
        )
        for _ in range(subject_count)
    ]
    extra_count = reader.byte("the extra field count")
    if extra_count > MAX_EXTRA_FIELDS:
        raise LimitError(f"{extra_count} extra fields, at most {MAX_EXTRA_FIELDS} allowed")
    extra: dict[str, str] = {}
    previous: bytes | None = None
    for _ in range(extra_count):
        key = reader.text("extra key", MAX_EXTRA_KEY_BYTES)
        raw_key = key.encode("utf-8")
        if previous is not None and raw_key <= previous:
            raise FormatError("extra keys are not in strictly increasing order")
        previous = raw_key
        extra[key] = reader.text(f"extra field {key}", MAX_EXTRA_VALUE_BYTES)
    if not reader.at_end():
        raise FormatError("log leaf has trailing bytes")
    event = LogEvent(
        version=version,
        action=action,
        actor=actor,
        time_ms=time_ms,
        subjects=subjects,
        extra=extra,
    )
    # One byte string per event: anything that would re-encode differently is refused.
    if encode_event(event) != data:
        raise FormatError("log leaf is not in canonical form")
    return event


def escrow_digest(blob: bytes) -> bytes:
    """The digest naming a stored escrow blob in the log: SHA-256(LP(domain) || LP(blob)).

    It binds the blob a terminal handed in to its MESSAGE_ESCROWED event, so that a blob
    changed in the database afterwards no longer matches the log.
    """
    return framed_sha256(domains.LOG_ESCROW_DIGEST, [blob])


def watch_list_digest(sealed: str) -> bytes:
    """The digest naming a sealed watch list in the log: SHA-256(LP(domain) || LP(sealed)).

    A list swapped in the database afterwards no longer matches its last log entry.
    """
    return framed_sha256(domains.LOG_WATCH_LIST_DIGEST, [sealed.encode("utf-8")])


# --------------------------------------------------------------------------- tree heads

#: The tree-head format this code writes (TreeHead.version).
TREE_HEAD_VERSION: Final = 1
MIN_TREE_HEAD_VERSION: Final = 1
#: Domain of the tree-head signature: Ed25519 signs SHA-256(LP(domain) || LP(TreeHead bytes)),
#: framed like every other Sealpost digest (crypto/_framing.py).
TREE_HEAD_SIGNATURE_DOMAIN: Final = domains.LOG_TREE_HEAD
#: Key ids are SHA-256 digests of a key record body (proto/sealpost/v1/keys.proto).
LOG_KEY_ID_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class VerifiedTreeHead:
    """A tree head whose signature, encoding and log key have been checked."""

    version: int
    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    log_key_id: bytes


def tree_head_signing_digest(tree_head: bytes) -> bytes:
    """The 32 bytes the log key signs: SHA-256(LP(TREE_HEAD_SIGNATURE_DOMAIN) || LP(tree_head))."""
    return framed_sha256(TREE_HEAD_SIGNATURE_DOMAIN, [tree_head])


def _canonical_tree_head(
    version: int, tree_size: int, root: bytes, timestamp_ms: int, log_key_id: bytes
) -> bytes:
    head = log_pb2.TreeHead(
        version=version,
        tree_size=tree_size,
        root_hash=root,
        timestamp_ms=timestamp_ms,
        log_key_id=log_key_id,
    )
    return head.SerializeToString(deterministic=True)


def _check_head_fields(tree_size: int, root: bytes, timestamp_ms: int, log_key_id: bytes) -> None:
    if not 0 <= tree_size <= merkle.MAX_TREE_SIZE:
        raise FormatError(f"tree size {tree_size} is outside [0, 2**64)")
    if len(root) != merkle.HASH_SIZE:
        raise FormatError(f"root hash is {len(root)} bytes, expected {merkle.HASH_SIZE}")
    if not 0 <= timestamp_ms <= MAX_TIME_MS:
        raise FormatError(f"tree head timestamp {timestamp_ms} is outside [0, 2**63)")
    if len(log_key_id) != LOG_KEY_ID_BYTES:
        raise FormatError(f"log key id is {len(log_key_id)} bytes, expected {LOG_KEY_ID_BYTES}")


def sign_tree_head(
    tree_size: int, root: bytes, timestamp_ms: int, log_key_id: bytes, log_key: Signer
) -> log_pb2.SignedTreeHead:
    """Sign a version-1 tree head with the log key (deterministic bytes)."""
    _check_head_fields(tree_size, root, timestamp_ms, log_key_id)
    body = _canonical_tree_head(TREE_HEAD_VERSION, tree_size, root, timestamp_ms, log_key_id)
    signature = log_key.sign(tree_head_signing_digest(body))
    return log_pb2.SignedTreeHead(tree_head=body, signature=signature)


def verify_tree_head(
    sth: log_pb2.SignedTreeHead, log_public_key: bytes, log_key_id: bytes
) -> VerifiedTreeHead:
    """Check a signed tree head against the pinned log key; return the head it commits to.

    Order: parse, canonical bytes, version, key id, fields, signature (docs/transparency-log.md).
    """
    body = sth.tree_head
    head = log_pb2.TreeHead()
    try:
        head.ParseFromString(body)
    except DecodeError as exc:
        raise FormatError("tree head does not parse") from exc
    canonical = _canonical_tree_head(
        head.version, head.tree_size, head.root_hash, head.timestamp_ms, head.log_key_id
    )
    if canonical != body:
        raise FormatError("tree head is not in canonical form (field order, unknown fields)")
    if head.version < MIN_TREE_HEAD_VERSION:
        raise VersionTooOldError(f"tree head version {head.version} is not accepted")
    if head.version > TREE_HEAD_VERSION:
        raise VersionTooNewError(f"tree head version {head.version} is newer than this code knows")
    if not hmac.compare_digest(head.log_key_id, log_key_id):
        raise SignatureError("tree head is signed by another log key than the one expected")
    _check_head_fields(head.tree_size, head.root_hash, head.timestamp_ms, head.log_key_id)
    ed25519_verify(log_public_key, tree_head_signing_digest(body), sth.signature)
    return VerifiedTreeHead(
        version=head.version,
        tree_size=head.tree_size,
        root_hash=head.root_hash,
        timestamp_ms=head.timestamp_ms,
        log_key_id=head.log_key_id,
    )


def verify_entry_inclusion(
    leaf: bytes, index: int, proof: log_pb2.InclusionProof, head: VerifiedTreeHead
) -> None:
    """Raise ProofError unless leaf ``index`` with bytes ``leaf`` is in the verified head's tree."""
    if proof.tree_size != head.tree_size:
        raise ProofError(
            f"inclusion proof is for tree size {proof.tree_size}, the head has {head.tree_size}"
        )
    if proof.leaf_index != index:
        raise ProofError(f"inclusion proof is for leaf {proof.leaf_index}, the entry is {index}")
    merkle.verify_inclusion(
        leaf_hash=merkle.leaf_hash(leaf),
        index=index,
        size=head.tree_size,
        proof=list(proof.path),
        root=head.root_hash,
    )


def verify_head_consistency(
    first: VerifiedTreeHead, second: VerifiedTreeHead, proof: log_pb2.ConsistencyProof
) -> None:
    """Raise ProofError unless ``second`` extends ``first`` (an append-only log)."""
    if proof.first_size != first.tree_size or proof.second_size != second.tree_size:
        raise ProofError(
            f"consistency proof is for sizes {proof.first_size} -> {proof.second_size}, "
            f"the heads have {first.tree_size} -> {second.tree_size}"
        )
    merkle.verify_consistency(
        first_size=first.tree_size,
        second_size=second.tree_size,
        first_root=first.root_hash,
        second_root=second.root_hash,
        proof=list(proof.path),
    )


def verify_release(
    entry: log_pb2.LogEntry,
    proof: log_pb2.InclusionProof,
    head: VerifiedTreeHead,
    message_id: bytes,
) -> LogEvent:
    """Check that ``entry`` is the release of ``message_id``, included in the verified head.

    What a terminal checks before it hands a message over (docs/terminal.md, "Proven
    releases"): the message is delivered on the log's word, never the database's alone.
    """
    verify_entry_inclusion(entry.leaf, entry.index, proof, head)
    event = decode_event(entry.leaf)
    if event.action is not LogAction.MESSAGE_RELEASED:
        raise ProofError(f"the release entry records {event.action.name}, not MESSAGE_RELEASED")
    if event.message_id() != message_id.hex():
        raise ProofError("the release entry is about another message")
    return event


def verify_receipt(
    receipt: log_pb2.Receipt,
    *,
    log_public_key: bytes,
    log_key_id: bytes,
    message_id: bytes,
    envelope_digest: bytes,
) -> tuple[LogEvent, VerifiedTreeHead]:
    """Check that a receipt proves acceptance of the sender's own message in a signed log.

    ``message_id`` and ``envelope_digest`` are what the sender computed, not what the
    receipt says. Returns the acceptance event and the head, for the caller to keep.
    """
    if not hmac.compare_digest(receipt.message_id, message_id):
        raise ProofError("receipt is for another message")
    if not hmac.compare_digest(receipt.envelope_digest, envelope_digest):
        raise ProofError("receipt names another envelope digest")
    if not receipt.HasField("entry"):
        raise ProofError("receipt carries no log entry")
    if not receipt.HasField("tree_head") or not receipt.HasField("inclusion_proof"):
        raise ProofError("receipt carries no signed tree head and inclusion proof")
    head = verify_tree_head(receipt.tree_head, log_public_key, log_key_id)
    verify_entry_inclusion(receipt.entry.leaf, receipt.entry.index, receipt.inclusion_proof, head)
    event = decode_event(receipt.entry.leaf)
    if event.action is not LogAction.MESSAGE_ACCEPTED:
        raise ProofError(f"receipt's log entry records {event.action.name}, not MESSAGE_ACCEPTED")
    if event.message_id() != message_id.hex():
        raise ProofError("receipt's log entry is about another message")
    if not hmac.compare_digest(event.extra[ENVELOPE_DIGEST_FIELD], envelope_digest.hex()):
        raise ProofError("receipt's log entry names another envelope digest")
    if event.time_ms != receipt.accepted_at_ms:
        raise ProofError("receipt's acceptance time differs from its log entry")
    return event, head
