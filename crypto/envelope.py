"""Sealed envelope v1: seal, verify, open, and the escrow review path.

docs/protocol.md specifies every byte. Parts are encrypted with XChaCha20-Poly1305 under a
fresh data key (DEK), each with its file name inside the ciphertext so the gateway never sees
it; the DEK is sealed to each recipient key and to the sender's own key; the sender's Ed25519
key signs the header bytes as carried, every ciphertext and every sealed key. Pure: bytes in,
bytes out, with the clock and randomness injected.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from sealpost.crypto import _sodium, domains
from sealpost.crypto._framing import U64_BYTES, Item, framed, framed_sha256, lp
from sealpost.crypto._sodium import Random
from sealpost.crypto._wire import (
    CURRENT_VERSION,
    canonical_bytes,
    check_version,
    parse,
    parse_canonical,
    reject_unknown_fields,
)
from sealpost.crypto.errors import (
    EnvelopeError,
    FormatError,
    KeyRecordError,
    LimitError,
)
from sealpost.crypto.keyrecords import KEY_ID_BYTES, MAILBOX, RELATIVE_DEVICE, VerifiedKey
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.limits import DEFAULT_LIMITS, Limits
from sealpost.crypto.text import has_control_character
from sealpost.v1 import envelope_pb2

ENVELOPE_VERSION: Final = CURRENT_VERSION
MESSAGE_ID_BYTES: Final = 16
DEK_BYTES: Final = _sodium.AEAD_KEY_BYTES
NONCE_BYTES: Final = _sodium.AEAD_NONCE_BYTES
TAG_BYTES: Final = _sodium.AEAD_TAG_BYTES
KEY_COMMITMENT_BYTES: Final = 32
SEALED_DEK_BYTES: Final = _sodium.SEALED_BOX_OVERHEAD + DEK_BYTES  # 80
SIGNATURE_BYTES: Final = _sodium.ED25519_SIGNATURE_BYTES
ENVELOPE_DIGEST_BYTES: Final = 32
#: The U64 length in front of the file name in each part's plaintext (docs/protocol.md, 7.5).
FILENAME_LENGTH_BYTES: Final = U64_BYTES

#: Key purposes that may send and receive envelopes.
MESSAGE_PURPOSES: Final = frozenset({RELATIVE_DEVICE, MAILBOX})

# Code points refused in file names (docs/protocol.md, "Part encryption"): path separators and
# the bidirectional embeddings, overrides and isolates that can disguise an extension.
_FILENAME_FORBIDDEN: Final = frozenset("/\\\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Part:
    """One plaintext part: the text body or an attachment. repr never shows the content."""

    content_type: str
    data: bytes = field(repr=False)
    filename: str = field(default="", repr=False)

    def __repr__(self) -> str:
        """Content type and size only: plaintext and file names stay out of logs."""
        return f"Part(content_type={self.content_type!r}, size={len(self.data)})"


@dataclass(frozen=True)
class PartInfo:
    """A part as the signed header describes it, before decryption: never its file name.

    ``size`` counts the encrypted plaintext: file name length, file name and content.
    """

    content_type: str
    size: int
    nonce: bytes


@dataclass(frozen=True)
class Header:
    """The parsed signed header; ``raw`` holds the exact bytes that were signed."""

    version: int
    message_id: bytes
    sender_key_id: bytes
    recipient_key_ids: tuple[bytes, ...]
    created_at_ms: int
    parts: tuple[PartInfo, ...]
    key_commitment: bytes
    raw: bytes = field(repr=False)


@dataclass(frozen=True)
class VerifiedEnvelope:
    """An envelope whose version, limits, structure, sender, signature and time checked out."""

    header: Header
    #: envelope_digest(envelope), for receipts and the transparency log.
    digest: bytes


@dataclass(frozen=True)
class OpenedMessage:
    """A fully decrypted message: every part opened, or none is returned."""

    header: Header
    parts: tuple[Part, ...]
    digest: bytes


# --- Building blocks (docs/protocol.md, "Key commitment", "Part encryption", "Signature") ---


def encode_part_plaintext(part: Part, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """A part's AEAD plaintext, ``LP(UTF8(filename)) || data``, after the file name rules.

    The name rides inside the ciphertext: authenticated, confidential, split unambiguously.
    """
    return lp(_filename_bytes(part.filename, limits)) + part.data


def decode_part_plaintext(
    content_type: str, plaintext: bytes, limits: Limits = DEFAULT_LIMITS
) -> Part:
    """Split a decrypted part into file name and content; raise on any broken name rule.

    Checks in the order of docs/protocol.md, 7.5: the length fits, the limit, UTF-8, the
    characters. Only an authenticated sender can produce such plaintext, so the errors are
    specific (FormatError, LimitError) rather than the opaque DecryptionError.
    """
    if len(plaintext) < FILENAME_LENGTH_BYTES:
        raise FormatError("a part is shorter than its 8-byte file name length")
    size = int.from_bytes(plaintext[:FILENAME_LENGTH_BYTES], "big")
    if size > len(plaintext) - FILENAME_LENGTH_BYTES:
        raise FormatError("a part's file name length runs past the end of the part")
    _check_filename_length(size, limits)
    end = FILENAME_LENGTH_BYTES + size
    try:
        filename = plaintext[FILENAME_LENGTH_BYTES:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError("file name is not valid UTF-8") from exc
    _check_filename_characters(filename)
    return Part(content_type=content_type, data=plaintext[end:], filename=filename)


def key_commitment(dek: bytes, message_id: bytes) -> bytes:
    """BLAKE2b-256 keyed with the DEK over LP(domain) || LP(message_id)."""
    if len(dek) != DEK_BYTES:
        raise EnvelopeError("a data key is 32 bytes")
    data = framed(domains.ENVELOPE_KEY_COMMITMENT, message_id)
    return _sodium.blake2b(data, size=KEY_COMMITMENT_BYTES, key=dek)


def verify_dek_commitment(header: Header, dek: bytes) -> None:
    """Raise EnvelopeError unless ``dek`` is the key the sender committed to in ``header``.

    The review tool calls this (through decrypt_with_dek) on a DEK the key server returned,
    so an escrowed key that differs from what the sender used is detected (SPEC P3).
    """
    if len(dek) != DEK_BYTES:
        raise EnvelopeError("data key does not match the key commitment")
    expected = key_commitment(dek, header.message_id)
    if not hmac.compare_digest(expected, header.key_commitment):
        raise EnvelopeError("data key does not match the key commitment")


def part_associated_data(header_bytes: bytes, index: int) -> bytes:
    """AEAD associated data of part ``index``: binds it to this header and this position."""
    return framed(domains.ENVELOPE_PART_AD, header_bytes, index)


def _signed_items(
    header_bytes: bytes,
    part_ciphertexts: Sequence[bytes],
    sealed_keys: Sequence[envelope_pb2.SealedKey],
) -> Iterator[Item]:
    yield header_bytes
    yield len(part_ciphertexts)
    yield from part_ciphertexts
    yield len(sealed_keys)
    for sealed in sealed_keys:
        yield sealed.key_id
        yield sealed.sealed_dek


def content_digest(
    header_bytes: bytes,
    part_ciphertexts: Sequence[bytes],
    sealed_keys: Sequence[envelope_pb2.SealedKey],
) -> bytes:
    """The 32-byte digest the sender signs: header, counted ciphertexts, counted sealed keys."""
    items = _signed_items(header_bytes, part_ciphertexts, sealed_keys)
    return framed_sha256(domains.ENVELOPE_SIGNATURE, items)


def _envelope_digest(signed: bytes, signature: bytes) -> bytes:
    return framed_sha256(domains.ENVELOPE_DIGEST, [signed, signature])


def envelope_digest(envelope: envelope_pb2.Envelope) -> bytes:
    """SHA-256 naming the envelope in receipts and the log (docs/protocol.md, "Envelope digest").

    Computed from the signed content and the signature, never from a re-serialisation;
    call it on envelopes that verified (verify_envelope also returns it).
    """
    signed = content_digest(envelope.header, envelope.part_ciphertexts, envelope.sealed_keys)
    return _envelope_digest(signed, envelope.signature)


def sign_envelope(
    header_bytes: bytes,
    part_ciphertexts: Sequence[bytes],
    sealed_keys: Sequence[envelope_pb2.SealedKey],
    sender_keys: PrivateKeys,
) -> envelope_pb2.Envelope:
    """Assemble and sign an envelope from its parts as they will travel."""
    signed = content_digest(header_bytes, part_ciphertexts, sealed_keys)
    return envelope_pb2.Envelope(
        version=ENVELOPE_VERSION,
        header=header_bytes,
        part_ciphertexts=part_ciphertexts,
        sealed_keys=sealed_keys,
        signature=sender_keys.sign(signed),
    )


# --- Header and file name rules (docs/protocol.md, "Header", "Part encryption") ---


def _check_content_type(value: str, limits: Limits) -> None:
    if not value:
        raise FormatError("a part has no content type")
    if len(value.encode("utf-8")) > limits.max_content_type_bytes:
        raise LimitError(f"content type is longer than {limits.max_content_type_bytes} bytes")
    if not all(" " <= ch <= "~" for ch in value):
        raise FormatError("content type is not printable ASCII")


def _check_filename_length(size: int, limits: Limits) -> None:
    if size > limits.max_filename_bytes:
        raise LimitError(f"file name is longer than {limits.max_filename_bytes} bytes")


def _check_filename_characters(value: str) -> None:
    if value in (".", ".."):
        raise FormatError("file name is a directory reference")
    if has_control_character(value) or any(ch in _FILENAME_FORBIDDEN for ch in value):
        raise FormatError("file name contains a forbidden character")


def _filename_bytes(value: str, limits: Limits) -> bytes:
    """The sender's side of the file name rules: UTF8(value), checked (docs/protocol.md, 7.5)."""
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates have no UTF-8 form
        raise FormatError("file name is not valid Unicode text") from exc
    _check_filename_length(len(encoded), limits)
    _check_filename_characters(value)
    return encoded


def _check_recipients(message: envelope_pb2.EnvelopeHeader, limits: Limits) -> tuple[bytes, ...]:
    recipients = tuple(message.recipient_key_ids)
    if not recipients:
        raise FormatError("envelope has no recipients")
    if len(recipients) > limits.max_recipients:
        raise LimitError(f"envelope has more than {limits.max_recipients} recipients")
    for key_id in recipients:
        if len(key_id) != KEY_ID_BYTES:
            raise FormatError("recipient key id is not 32 bytes")
    if len(set(recipients)) != len(recipients) or message.sender_key_id in recipients:
        raise FormatError("recipient key ids repeat or include the sender")
    return recipients


def _check_part_size(size: int, limits: Limits) -> None:
    if size < FILENAME_LENGTH_BYTES:
        raise FormatError("a part is shorter than its 8-byte file name length")
    if size > limits.max_part_bytes:
        raise LimitError(f"a part is larger than {limits.max_part_bytes} bytes")


def _check_total_size(total: int, limits: Limits) -> None:
    if total > limits.max_total_bytes:
        raise LimitError(f"parts together are larger than {limits.max_total_bytes} bytes")


def _check_parts(message: envelope_pb2.EnvelopeHeader, limits: Limits) -> tuple[PartInfo, ...]:
    if not message.parts:
        raise FormatError("envelope has no parts")
    if len(message.parts) > limits.max_parts:
        raise LimitError(f"envelope has more than {limits.max_parts} parts")
    total = 0
    parts: list[PartInfo] = []
    for meta in message.parts:
        _check_content_type(meta.content_type, limits)
        if len(meta.nonce) != NONCE_BYTES:
            raise FormatError("part nonce is not 24 bytes")
        _check_part_size(meta.size, limits)
        total += meta.size
        _check_total_size(total, limits)
        parts.append(PartInfo(meta.content_type, meta.size, meta.nonce))
    return tuple(parts)


def _header_from_proto(message: envelope_pb2.EnvelopeHeader, raw: bytes, limits: Limits) -> Header:
    """Apply the header rules in the documented order; raise on the first broken one."""
    check_version(message.version, "envelope header")
    if len(message.message_id) != MESSAGE_ID_BYTES:
        raise FormatError("message id is not 16 bytes")
    if len(message.sender_key_id) != KEY_ID_BYTES:
        raise FormatError("sender key id is not 32 bytes")
    if len(message.key_commitment) != KEY_COMMITMENT_BYTES:
        raise FormatError("key commitment is not 32 bytes")
    if message.created_at_ms <= 0:
        raise FormatError("created_at_ms is not a positive time")
    recipients = _check_recipients(message, limits)
    parts = _check_parts(message, limits)
    return Header(
        version=message.version,
        message_id=message.message_id,
        sender_key_id=message.sender_key_id,
        recipient_key_ids=recipients,
        created_at_ms=message.created_at_ms,
        parts=parts,
        key_commitment=message.key_commitment,
        raw=raw,
    )


def parse_header(header_bytes: bytes, limits: Limits = DEFAULT_LIMITS) -> Header:
    """Parse and check signed header bytes (canonical encoding, version, shapes, limits)."""
    if not header_bytes:
        raise FormatError("envelope has no header")
    if len(header_bytes) > limits.max_header_bytes:
        raise LimitError(f"header is larger than {limits.max_header_bytes} bytes")
    message = parse_canonical(envelope_pb2.EnvelopeHeader, header_bytes, "envelope header")
    return _header_from_proto(message, header_bytes, limits)


def parse_envelope(data: bytes, limits: Limits = DEFAULT_LIMITS) -> envelope_pb2.Envelope:
    """Parse serialised envelope bytes (size, encoding, version, no unknown fields); no crypto."""
    if len(data) > limits.max_envelope_bytes:
        raise LimitError(f"envelope is larger than {limits.max_envelope_bytes} bytes")
    envelope = parse(envelope_pb2.Envelope, data, "envelope")
    check_version(envelope.version, "envelope")
    reject_unknown_fields(envelope, "envelope")
    return envelope


# --- Verification (docs/protocol.md, "Verifying an envelope") ---


def _check_structure(envelope: envelope_pb2.Envelope, header: Header) -> None:
    """The body must match the header exactly: one ciphertext per part, keys in order."""
    if len(envelope.part_ciphertexts) != len(header.parts):
        raise FormatError("number of ciphertexts differs from the header's parts")
    for info, ciphertext in zip(header.parts, envelope.part_ciphertexts, strict=True):
        if len(ciphertext) != info.size + TAG_BYTES:
            raise FormatError("a ciphertext's length differs from its part size")
    expected_ids = (*header.recipient_key_ids, header.sender_key_id)
    if len(envelope.sealed_keys) != len(expected_ids):
        raise FormatError("sealed keys do not match the recipients and the sender")
    for sealed, key_id in zip(envelope.sealed_keys, expected_ids, strict=True):
        if sealed.key_id != key_id:
            raise FormatError("sealed keys do not match the recipients and the sender")
        if len(sealed.sealed_dek) != SEALED_DEK_BYTES:
            raise FormatError("a sealed data key is not 80 bytes")
    if len(envelope.signature) != SIGNATURE_BYTES:
        raise FormatError("signature is not 64 bytes")


def _check_time(header: Header, sender: VerifiedKey, now_ms: int, limits: Limits) -> None:
    if header.created_at_ms > now_ms + limits.max_clock_skew_ms:
        raise LimitError("envelope is dated too far in the future (clock skew limit)")
    if header.created_at_ms < now_ms - limits.max_age_ms:
        raise LimitError("envelope is older than the maximum age")
    if not sender.valid_at(header.created_at_ms):
        raise KeyRecordError("sender key was not valid when the envelope was created")


def verify_envelope(
    envelope: envelope_pb2.Envelope,
    sender: VerifiedKey,
    *,
    now_ms: int,
    limits: Limits = DEFAULT_LIMITS,
) -> VerifiedEnvelope:
    """Check everything but the plaintext: what the gateway does before accepting a message.

    ``sender`` is the verified key record the header must name; ``now_ms`` is the reference
    time (docs/protocol.md, "Reference time"). Raises on the first failing check.
    """
    check_version(envelope.version, "envelope")
    if envelope.ByteSize() > limits.max_envelope_bytes:
        raise LimitError(f"envelope is larger than {limits.max_envelope_bytes} bytes")
    reject_unknown_fields(envelope, "envelope")
    header = parse_header(envelope.header, limits)
    if header.version != envelope.version:
        raise FormatError("header version differs from the envelope version")
    _check_structure(envelope, header)
    if not hmac.compare_digest(header.sender_key_id, sender.id):
        raise EnvelopeError("envelope is not from the expected sender key")
    if sender.purpose not in MESSAGE_PURPOSES:
        raise KeyRecordError("sender key record is not a device or mailbox key")
    signed = content_digest(envelope.header, envelope.part_ciphertexts, envelope.sealed_keys)
    _sodium.ed25519_verify(sender.signing_key, signed, envelope.signature)
    _check_time(header, sender, now_ms, limits)
    return VerifiedEnvelope(header=header, digest=_envelope_digest(signed, envelope.signature))


# --- Opening ---


def _open_dek(
    envelope: envelope_pb2.Envelope, header: Header, keys: PrivateKeys, key_id: bytes
) -> bytes:
    if key_id != header.sender_key_id and key_id not in header.recipient_key_ids:
        raise EnvelopeError("envelope is not addressed to this key")
    sealed = next(s.sealed_dek for s in envelope.sealed_keys if s.key_id == key_id)
    dek = keys.open_sealed(sealed)
    verify_dek_commitment(header, dek)
    return dek


def _decrypt_parts(
    envelope: envelope_pb2.Envelope, header: Header, dek: bytes, limits: Limits
) -> tuple[Part, ...]:
    """Decrypt and split every part; the first failure raises, so no partial result escapes."""
    parts: list[Part] = []
    for index, (info, ciphertext) in enumerate(
        zip(header.parts, envelope.part_ciphertexts, strict=True)
    ):
        associated = part_associated_data(header.raw, index)
        plaintext = _sodium.aead_decrypt(dek, info.nonce, ciphertext, associated)
        parts.append(decode_part_plaintext(info.content_type, plaintext, limits))
    return tuple(parts)


def open_dek(
    envelope: envelope_pb2.Envelope,
    keys: PrivateKeys,
    key_id: bytes,
    sender: VerifiedKey,
    *,
    now_ms: int,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """Verify the envelope, open the DEK sealed to ``key_id`` and check its commitment.

    What the terminal escrows. ``keys`` are the secret keys of the record ``key_id``.
    """
    verified = verify_envelope(envelope, sender, now_ms=now_ms, limits=limits)
    return _open_dek(envelope, verified.header, keys, key_id)


def decrypt_with_dek(
    envelope: envelope_pb2.Envelope,
    dek: bytes,
    sender: VerifiedKey,
    *,
    now_ms: int,
    limits: Limits = DEFAULT_LIMITS,
) -> OpenedMessage:
    """Verify the envelope, check ``dek`` against the commitment, then decrypt every part.

    The review path: ``dek`` comes from the key server's escrow, not from a sealed key.
    """
    verified = verify_envelope(envelope, sender, now_ms=now_ms, limits=limits)
    verify_dek_commitment(verified.header, dek)
    parts = _decrypt_parts(envelope, verified.header, dek, limits)
    return OpenedMessage(header=verified.header, parts=parts, digest=verified.digest)


def open_envelope(
    envelope: envelope_pb2.Envelope,
    keys: PrivateKeys,
    key_id: bytes,
    sender: VerifiedKey,
    *,
    now_ms: int,
    limits: Limits = DEFAULT_LIMITS,
) -> OpenedMessage:
    """Verify, open the DEK sealed to ``key_id``, check the commitment, decrypt every part.

    Any failure raises a CryptoError; no plaintext is returned unless every part opened.
    """
    verified = verify_envelope(envelope, sender, now_ms=now_ms, limits=limits)
    dek = _open_dek(envelope, verified.header, keys, key_id)
    parts = _decrypt_parts(envelope, verified.header, dek, limits)
    return OpenedMessage(header=verified.header, parts=parts, digest=verified.digest)


# --- Sealing ---


def _check_recipient(recipient: VerifiedKey, now_ms: int) -> None:
    if recipient.purpose not in MESSAGE_PURPOSES:
        raise KeyRecordError("a recipient key record is not a device or mailbox key")
    if not recipient.valid_at(now_ms):
        raise KeyRecordError("a recipient key record is not valid now")


def _check_parts_to_seal(parts: Sequence[Part], limits: Limits) -> list[bytes]:
    """Each part's content type, file name and encoded size, then the total; the UTF-8 names."""
    if len(parts) > limits.max_parts:
        raise LimitError(f"envelope has more than {limits.max_parts} parts")
    names: list[bytes] = []
    total = 0
    for part in parts:
        _check_content_type(part.content_type, limits)
        name = _filename_bytes(part.filename, limits)
        size = FILENAME_LENGTH_BYTES + len(name) + len(part.data)
        _check_part_size(size, limits)
        total += size
        _check_total_size(total, limits)
        names.append(name)
    return names


def seal_envelope(
    parts: Sequence[Part],
    *,
    sender_keys: PrivateKeys,
    sender_key_id: bytes,
    recipients: Sequence[VerifiedKey],
    now_ms: int,
    rng: Random = _sodium.random_bytes,
    limits: Limits = DEFAULT_LIMITS,
) -> envelope_pb2.Envelope:
    """Encrypt ``parts`` for ``recipients`` and the sender's own key, and sign.

    ``rng`` is drawn in the order of docs/protocol.md, "Sealing": message id, DEK, one
    nonce per part, one ephemeral secret per sealed key. Recipient records, part metadata
    and sizes are checked before any randomness is drawn; the header rules right after.
    """
    for recipient in recipients:
        _check_recipient(recipient, now_ms)
    names = _check_parts_to_seal(parts, limits)
    message_id = rng(MESSAGE_ID_BYTES)
    dek = rng(DEK_BYTES)
    header_message = envelope_pb2.EnvelopeHeader(
        version=ENVELOPE_VERSION,
        message_id=message_id,
        sender_key_id=sender_key_id,
        recipient_key_ids=[recipient.id for recipient in recipients],
        created_at_ms=now_ms,
        parts=[
            envelope_pb2.PartMetadata(
                content_type=part.content_type,
                size=FILENAME_LENGTH_BYTES + len(name) + len(part.data),
                nonce=rng(NONCE_BYTES),
            )
            for part, name in zip(parts, names, strict=True)
        ],
        key_commitment=key_commitment(dek, message_id),
    )
    header_bytes = canonical_bytes(header_message)
    header = parse_header(header_bytes, limits)  # the reader's rules, applied to what we send
    ciphertexts = [
        _sodium.aead_encrypt(
            dek, info.nonce, lp(name) + part.data, part_associated_data(header_bytes, i)
        )
        for i, (info, part, name) in enumerate(zip(header.parts, parts, names, strict=True))
    ]
    sealed_keys = [
        envelope_pb2.SealedKey(key_id=key_id, sealed_dek=_seal_dek(dek, public, rng))
        for key_id, public in _sealing_targets(recipients, sender_key_id, sender_keys)
    ]
    return sign_envelope(header_bytes, ciphertexts, sealed_keys, sender_keys)


def _sealing_targets(
    recipients: Sequence[VerifiedKey], sender_key_id: bytes, sender_keys: PrivateKeys
) -> Iterable[tuple[bytes, bytes]]:
    for recipient in recipients:
        yield recipient.id, recipient.encryption_key
    yield sender_key_id, sender_keys.encryption_key


def _seal_dek(dek: bytes, recipient_public: bytes, rng: Random) -> bytes:
    return _sodium.seal_with_ephemeral(recipient_public, dek, rng(_sodium.X25519_SECRET_BYTES))
