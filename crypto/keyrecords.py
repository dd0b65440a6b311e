"""Key records: directory-signed public keys, their ids, validity and revocation.

docs/protocol.md, "Key records" and "Revocations". A client pins the directory's Ed25519
key and trusts every other key only through a record the directory signed; nothing is
trusted by name. Verification is pure: bytes, a pin or a verified directory, and a time.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from sealpost.crypto import _sodium, domains
from sealpost.crypto._framing import framed_sha256
from sealpost.crypto._wire import (
    CURRENT_VERSION,
    canonical_bytes,
    check_version,
    parse,
    parse_canonical,
    reject_unknown_fields,
)
from sealpost.crypto.errors import FormatError, KeyRecordError, LimitError
from sealpost.crypto.keys import Signer
from sealpost.crypto.text import has_control_character
from sealpost.v1 import keys_pb2

KeyPurpose: TypeAlias = keys_pb2.KeyPurpose.ValueType

KEY_RECORD_VERSION: Final = CURRENT_VERSION
KEY_REVOCATION_VERSION: Final = CURRENT_VERSION
DIRECTORY_SUCCESSION_VERSION: Final = CURRENT_VERSION
#: Hand-overs a client follows in one chain; a directory key rotates yearly at most.
MAX_SUCCESSIONS: Final = 64
#: Bytes of a serialised DirectorySuccession: two records and two signatures.
MAX_SUCCESSION_BYTES: Final = 5120
#: A key id is a SHA-256 digest.
KEY_ID_BYTES: Final = 32
#: UTF-8 bytes of a record's subject (an opaque account, detainee or institution id).
MAX_SUBJECT_BYTES: Final = 128
#: UTF-8 bytes of a revocation's reason.
MAX_REASON_BYTES: Final = 512
#: Bytes of a serialised KeyRecord or KeyRevocation, checked before parsing.
MAX_RECORD_BYTES: Final = 2048

DIRECTORY: Final = keys_pb2.KEY_PURPOSE_DIRECTORY
RELATIVE_DEVICE: Final = keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE
MAILBOX: Final = keys_pb2.KEY_PURPOSE_MAILBOX
INSTITUTION: Final = keys_pb2.KEY_PURPOSE_INSTITUTION
LOG: Final = keys_pb2.KEY_PURPOSE_LOG

#: Purposes whose records carry an X25519 encryption key; the others carry none.
PURPOSES_WITH_ENCRYPTION: Final = frozenset({RELATIVE_DEVICE, MAILBOX, INSTITUTION})
_KNOWN_PURPOSES: Final = frozenset({DIRECTORY, RELATIVE_DEVICE, MAILBOX, INSTITUTION, LOG})


@dataclass(frozen=True)
class DirectoryPin:
    """The directory's Ed25519 public key as a client pins it (shipped with the SDK)."""

    signing_key: bytes


@dataclass(frozen=True)
class VerifiedKey:
    """A key record that verified: signed by the directory, in its window, not revoked."""

    id: bytes
    purpose: KeyPurpose
    subject: str
    #: X25519 public key; empty for directory and log keys.
    encryption_key: bytes
    #: Ed25519 public key.
    signing_key: bytes
    #: Validity window in seconds since the Unix epoch: not_before <= t < not_after.
    not_before: int
    not_after: int
    #: Id of the directory record that signed this one; empty for the directory itself.
    issuer_key_id: bytes
    #: For a directory: the directories it succeeded, by successions both keys signed
    #: (oldest first). Records and revocations they signed verify under this one.
    predecessors: tuple[VerifiedKey, ...] = ()

    def valid_at(self, time_ms: int) -> bool:
        """True when ``time_ms`` (milliseconds since the epoch) lies in the validity window."""
        return self.not_before * 1000 <= time_ms < self.not_after * 1000


@dataclass(frozen=True)
class VerifiedRevocation:
    """A revocation the directory signed."""

    key_id: bytes
    #: Seconds since the Unix epoch from which the key is no longer valid.
    revoked_at: int
    reason: str
    issuer_key_id: bytes


def key_record_id(body: bytes) -> bytes:
    """A record's id: SHA-256 of the domain and the exact body bytes."""
    return framed_sha256(domains.KEY_RECORD_ID, [body])


def key_record_signed_digest(body: bytes) -> bytes:
    """What the directory key signs for a record."""
    return framed_sha256(domains.KEY_RECORD_SIGNATURE, [body])


def key_revocation_signed_digest(body: bytes) -> bytes:
    """What the directory key signs for a revocation."""
    return framed_sha256(domains.KEY_REVOCATION_SIGNATURE, [body])


def _check_text(value: str, what: str, max_bytes: int, *, allow_empty: bool) -> None:
    size = len(value.encode("utf-8"))
    if size == 0 and not allow_empty:
        raise FormatError(f"{what} is empty")
    if size > max_bytes:
        raise FormatError(f"{what} is longer than {max_bytes} bytes")
    if has_control_character(value):
        raise FormatError(f"{what} contains control characters")


def _check_body(body: keys_pb2.KeyRecordBody) -> None:
    """Shape rules of docs/protocol.md, "Key records"; FormatError on the first broken one."""
    check_version(body.version, "key record body")
    if body.purpose not in _KNOWN_PURPOSES:
        raise FormatError(f"key record purpose {body.purpose} is not known")
    _check_text(body.subject, "key record subject", MAX_SUBJECT_BYTES, allow_empty=False)
    if not _sodium.ed25519_public_is_valid(body.signing_key):
        raise FormatError("key record signing key is not a valid Ed25519 public key")
    if body.purpose in PURPOSES_WITH_ENCRYPTION:
        if len(body.encryption_key) != _sodium.X25519_PUBLIC_BYTES:
            raise FormatError("key record encryption key is not 32 bytes")
        if _sodium.x25519_is_low_order(body.encryption_key):
            raise FormatError("key record encryption key has small order")
    elif body.encryption_key:
        raise FormatError("directory and log records carry no encryption key")
    if not 0 <= body.not_before < body.not_after:
        raise FormatError("key record validity window is empty or negative")
    if body.purpose == DIRECTORY:
        if body.issuer_key_id:
            raise FormatError("a directory record is self-signed and names no issuer")
    elif len(body.issuer_key_id) != KEY_ID_BYTES:
        raise FormatError("key record issuer id is not 32 bytes")


def _check_size(data_size: int, what: str) -> None:
    if data_size > MAX_RECORD_BYTES:
        raise LimitError(f"{what} is larger than {MAX_RECORD_BYTES} bytes")


def _sign_record(body: keys_pb2.KeyRecordBody, signer: Signer) -> keys_pb2.KeyRecord:
    _check_body(body)
    body_bytes = canonical_bytes(body)
    _check_size(len(body_bytes), "key record body")
    return keys_pb2.KeyRecord(
        version=KEY_RECORD_VERSION,
        body=body_bytes,
        signature=signer.sign(key_record_signed_digest(body_bytes)),
    )


def issue_directory_record(
    directory_keys: Signer, *, subject: str, not_before: int, not_after: int
) -> keys_pb2.KeyRecord:
    """A self-signed directory record (times in seconds since the epoch)."""
    body = keys_pb2.KeyRecordBody(
        version=KEY_RECORD_VERSION,
        purpose=DIRECTORY,
        subject=subject,
        signing_key=directory_keys.signing_key,
        not_before=not_before,
        not_after=not_after,
    )
    return _sign_record(body, directory_keys)


def issue_key_record(
    *,
    purpose: KeyPurpose,
    subject: str,
    encryption_key: bytes,
    signing_key: bytes,
    not_before: int,
    not_after: int,
    directory_keys: Signer,
    directory_key_id: bytes,
) -> keys_pb2.KeyRecord:
    """A record for a device, mailbox, institution or log key, signed by the directory."""
    if purpose == DIRECTORY:
        raise FormatError("directory records are self-signed: use issue_directory_record")
    body = keys_pb2.KeyRecordBody(
        version=KEY_RECORD_VERSION,
        purpose=purpose,
        subject=subject,
        encryption_key=encryption_key,
        signing_key=signing_key,
        not_before=not_before,
        not_after=not_after,
        issuer_key_id=directory_key_id,
    )
    return _sign_record(body, directory_keys)


def issue_revocation(
    *,
    key_id: bytes,
    revoked_at: int,
    reason: str,
    directory_keys: Signer,
    directory_key_id: bytes,
) -> keys_pb2.KeyRevocation:
    """A directory-signed statement that ``key_id`` is invalid from ``revoked_at`` (seconds)."""
    body = keys_pb2.KeyRevocationBody(
        version=KEY_REVOCATION_VERSION,
        key_id=key_id,
        revoked_at=revoked_at,
        reason=reason,
        issuer_key_id=directory_key_id,
    )
    _check_revocation_body(body)
    body_bytes = canonical_bytes(body)
    return keys_pb2.KeyRevocation(
        version=KEY_REVOCATION_VERSION,
        body=body_bytes,
        signature=directory_keys.sign(key_revocation_signed_digest(body_bytes)),
    )


def parse_key_record(data: bytes) -> keys_pb2.KeyRecord:
    """Parse a serialised KeyRecord (not verified); FormatError or LimitError for bad bytes."""
    _check_size(len(data), "key record")
    record = parse(keys_pb2.KeyRecord, data, "key record")
    check_version(record.version, "key record")
    reject_unknown_fields(record, "key record")
    return record


def parse_key_revocation(data: bytes) -> keys_pb2.KeyRevocation:
    """Parse a serialised KeyRevocation (not verified)."""
    _check_size(len(data), "key revocation")
    revocation = parse(keys_pb2.KeyRevocation, data, "key revocation")
    check_version(revocation.version, "key revocation")
    reject_unknown_fields(revocation, "key revocation")
    return revocation


def _read_record(record: keys_pb2.KeyRecord) -> tuple[bytes, keys_pb2.KeyRecordBody]:
    """Version, size and shape checks; returns the body bytes and the parsed body."""
    check_version(record.version, "key record")
    reject_unknown_fields(record, "key record")
    _check_size(len(record.body), "key record body")
    body = parse_canonical(keys_pb2.KeyRecordBody, record.body, "key record body")
    _check_body(body)
    if body.version != record.version:
        raise FormatError("key record body version differs from the record version")
    if len(record.signature) != _sodium.ED25519_SIGNATURE_BYTES:
        raise FormatError("key record signature is not 64 bytes")
    return record.body, body


def _check_revocation_body(body: keys_pb2.KeyRevocationBody) -> None:
    check_version(body.version, "key revocation body")
    if len(body.key_id) != KEY_ID_BYTES:
        raise FormatError("revoked key id is not 32 bytes")
    if body.revoked_at < 0:
        raise FormatError("revocation time is negative")
    _check_text(body.reason, "revocation reason", MAX_REASON_BYTES, allow_empty=True)
    if len(body.issuer_key_id) != KEY_ID_BYTES:
        raise FormatError("revocation issuer id is not 32 bytes")


def _read_revocation(revocation: keys_pb2.KeyRevocation) -> keys_pb2.KeyRevocationBody:
    check_version(revocation.version, "key revocation")
    reject_unknown_fields(revocation, "key revocation")
    _check_size(len(revocation.body), "key revocation body")
    body = parse_canonical(keys_pb2.KeyRevocationBody, revocation.body, "key revocation body")
    _check_revocation_body(body)
    if body.version != revocation.version:
        raise FormatError("key revocation body version differs from the revocation version")
    if len(revocation.signature) != _sodium.ED25519_SIGNATURE_BYTES:
        raise FormatError("key revocation signature is not 64 bytes")
    return body


def _issuers(directory: VerifiedKey) -> dict[bytes, bytes]:
    """Directory record id -> signing key, for a directory and the ones it succeeded."""
    return {d.id: d.signing_key for d in (*directory.predecessors, directory)}


def _issuer(issuers: dict[bytes, bytes], issuer_id: bytes) -> bytes | None:
    """The signing key of the directory ``issuer_id`` names, compared in constant time."""
    found = None
    for known_id, key in issuers.items():
        if hmac.compare_digest(known_id, issuer_id):
            found = key
    return found


def _verify_revocation(
    revocation: keys_pb2.KeyRevocation, issuers: dict[bytes, bytes]
) -> VerifiedRevocation:
    body = _read_revocation(revocation)
    issuer_signing_key = _issuer(issuers, body.issuer_key_id)
    if issuer_signing_key is None:
        raise KeyRecordError("revocation is not issued by this directory")
    _sodium.ed25519_verify(
        issuer_signing_key, key_revocation_signed_digest(revocation.body), revocation.signature
    )
    return VerifiedRevocation(
        key_id=body.key_id,
        revoked_at=body.revoked_at,
        reason=body.reason,
        issuer_key_id=body.issuer_key_id,
    )


def verify_revocation(
    revocation: keys_pb2.KeyRevocation, directory: VerifiedKey
) -> VerifiedRevocation:
    """Check a revocation's version, shape and the directory's signature; raise otherwise."""
    if directory.purpose != DIRECTORY:
        raise KeyRecordError("revocations are verified against the directory record")
    return _verify_revocation(revocation, _issuers(directory))


def _check_revocations(
    record_id: bytes,
    revocations: Iterable[keys_pb2.KeyRevocation],
    issuers: dict[bytes, bytes],
    now_ms: int,
) -> None:
    for revocation in revocations:
        body = _read_revocation(revocation)
        if not hmac.compare_digest(body.key_id, record_id):
            continue  # about another key: not this record's business
        verified = _verify_revocation(revocation, issuers)
        if verified.revoked_at * 1000 <= now_ms:
            raise KeyRecordError("key record is revoked")


def verify_key_record(
    record: keys_pb2.KeyRecord,
    directory: VerifiedKey | DirectoryPin,
    *,
    now_ms: int,
    revocations: Iterable[keys_pb2.KeyRevocation] = (),
    purpose: KeyPurpose,
) -> VerifiedKey:
    """Verify a record in the order of docs/protocol.md, "Verifying a key record".

    A directory record is checked against the pinned key (``DirectoryPin``); any other
    record against the verified directory record. Raises on the first failing check.
    """
    body_bytes, body = _read_record(record)
    if body.purpose != purpose:
        raise KeyRecordError("key record has the wrong purpose for this use")
    record_id = key_record_id(body_bytes)
    if body.purpose == DIRECTORY:
        if not isinstance(directory, DirectoryPin):
            raise KeyRecordError("a directory record is verified against the pinned key")
        if not hmac.compare_digest(body.signing_key, directory.signing_key):
            raise KeyRecordError("directory record does not carry the pinned key")
        issuers = {record_id: body.signing_key}
        issuer_signing_key = body.signing_key
    else:
        if not isinstance(directory, VerifiedKey) or directory.purpose != DIRECTORY:
            raise KeyRecordError("a key record is verified against the verified directory record")
        issuers = _issuers(directory)
        found = _issuer(issuers, body.issuer_key_id)
        if found is None:
            raise KeyRecordError("key record is not issued by this directory")
        issuer_signing_key = found
    signed = key_record_signed_digest(body_bytes)
    _sodium.ed25519_verify(issuer_signing_key, signed, record.signature)
    if now_ms < body.not_before * 1000:
        raise KeyRecordError("key record is not yet valid")
    if now_ms >= body.not_after * 1000:
        raise KeyRecordError("key record has expired")
    _check_revocations(record_id, revocations, issuers, now_ms)
    return VerifiedKey(
        id=record_id,
        purpose=body.purpose,
        subject=body.subject,
        encryption_key=body.encryption_key,
        signing_key=body.signing_key,
        not_before=body.not_before,
        not_after=body.not_after,
        issuer_key_id=body.issuer_key_id,
    )


def parse_succession(data: bytes) -> keys_pb2.DirectorySuccession:
    """Parse a serialised DirectorySuccession (not verified); FormatError for bad bytes."""
    if len(data) > MAX_SUCCESSION_BYTES:
        raise LimitError(f"directory succession is larger than {MAX_SUCCESSION_BYTES} bytes")
    succession = parse(keys_pb2.DirectorySuccession, data, "directory succession")
    check_version(succession.version, "directory succession")
    reject_unknown_fields(succession, "directory succession")
    return succession


def succession_id(succession: bytes) -> bytes:
    """A succession's id: SHA-256 of the domain and the serialised DirectorySuccession."""
    return framed_sha256(domains.DIRECTORY_SUCCESSION_ID, [succession])


def directory_succession_digests(body: bytes) -> tuple[bytes, bytes]:
    """What the previous and the next directory key sign for a succession (in that order)."""
    return (
        framed_sha256(domains.DIRECTORY_SUCCESSION_PREVIOUS, [body]),
        framed_sha256(domains.DIRECTORY_SUCCESSION_NEXT, [body]),
    )


def issue_succession(
    previous: Signer,
    previous_record: keys_pb2.KeyRecord,
    following: Signer,
    next_record: keys_pb2.KeyRecord,
    *,
    effective_at: int,
) -> keys_pb2.DirectorySuccession:
    """The hand-over from one directory key to the next, signed by both."""
    body = keys_pb2.DirectorySuccessionBody(
        version=DIRECTORY_SUCCESSION_VERSION,
        previous_record=previous_record.SerializeToString(deterministic=True),
        next_record=next_record.SerializeToString(deterministic=True),
        effective_at=effective_at,
    )
    body_bytes = canonical_bytes(body)
    previous_digest, next_digest = directory_succession_digests(body_bytes)
    return keys_pb2.DirectorySuccession(
        version=DIRECTORY_SUCCESSION_VERSION,
        body=body_bytes,
        previous_signature=previous.sign(previous_digest),
        next_signature=following.sign(next_digest),
    )


def _directory_key_of(record_bytes: bytes, what: str) -> tuple[keys_pb2.KeyRecord, VerifiedKey]:
    """A directory record inside a succession, checked against its own key (self-signed)."""
    record = parse_key_record(record_bytes)
    _, body = _read_record(record)
    if body.purpose != DIRECTORY:
        raise KeyRecordError(f"the {what} record of a succession is not a directory record")
    verified = verify_key_record(
        record, DirectoryPin(body.signing_key), now_ms=body.not_before * 1000, purpose=DIRECTORY
    )
    return record, verified


def verify_succession(
    succession: keys_pb2.DirectorySuccession,
) -> tuple[VerifiedKey, VerifiedKey, int]:
    """Check a succession: both records self-signed, both keys signed the hand-over.

    Returns the previous and next directory and when the next took over (seconds).
    """
    check_version(succession.version, "directory succession")
    reject_unknown_fields(succession, "directory succession")
    if len(succession.body) > MAX_SUCCESSION_BYTES:
        raise LimitError(f"directory succession body is larger than {MAX_SUCCESSION_BYTES} bytes")
    body = parse_canonical(
        keys_pb2.DirectorySuccessionBody, succession.body, "directory succession body"
    )
    check_version(body.version, "directory succession body")
    if body.version != succession.version:
        raise FormatError("directory succession body version differs from its version")
    _, previous = _directory_key_of(body.previous_record, "previous")
    _, following = _directory_key_of(body.next_record, "next")
    if hmac.compare_digest(previous.signing_key, following.signing_key):
        raise KeyRecordError("a directory succession hands over to the same key")
    previous_digest, next_digest = directory_succession_digests(succession.body)
    _sodium.ed25519_verify(previous.signing_key, previous_digest, succession.previous_signature)
    _sodium.ed25519_verify(following.signing_key, next_digest, succession.next_signature)
    return previous, following, body.effective_at


def verify_directory_record(
    record: keys_pb2.KeyRecord,
    pin: DirectoryPin,
    *,
    now_ms: int,
    revocations: Iterable[keys_pb2.KeyRevocation] = (),
    successions: Sequence[keys_pb2.DirectorySuccession] = (),
) -> VerifiedKey:
    """Verify the current directory record against the pinned key, through its successions.

    Without successions the record must carry the pinned key. With them (oldest first,
    each handing over to the next, the last to ``record``) the pinned key may be any
    key of the chain: both keys of every hand-over signed it, so a client that pinned an
    earlier key follows the rotation, and one that pinned the newest still trusts what
    the earlier keys signed (``VerifiedKey.predecessors``). A chain that does not carry
    the pinned key, or breaks anywhere, raises KeyRecordError.
    """
    if len(successions) > MAX_SUCCESSIONS:
        raise LimitError(f"more than {MAX_SUCCESSIONS} directory successions")
    chain: list[VerifiedKey] = []
    expected_next: bytes | None = None
    for succession in successions:
        previous, following, _effective_at = verify_succession(succession)
        if chain and not hmac.compare_digest(previous.id, chain[-1].id):
            raise KeyRecordError("the directory successions do not follow one another")
        if not chain:
            chain.append(previous)
        chain.append(following)
        expected_next = following.id
    _, body = _read_record(record)
    current = verify_key_record(
        record,
        DirectoryPin(body.signing_key),
        now_ms=now_ms,
        revocations=revocations,
        purpose=DIRECTORY,
    )
    if expected_next is not None and not hmac.compare_digest(expected_next, current.id):
        raise KeyRecordError("the directory successions do not end at the current directory")
    known = chain or [current]
    if not any(hmac.compare_digest(d.signing_key, pin.signing_key) for d in known):
        raise KeyRecordError("directory record does not carry the pinned key")
    return dataclasses.replace(current, predecessors=tuple(chain[:-1]))
