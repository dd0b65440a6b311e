"""Regenerate tests/vectors/envelope-v1.json: sealed envelope v1 vectors from fixed seeds.

Every key, message id, data key, nonce and ephemeral secret comes from ``SeededRandom``,
so the output is a pure function of this file and sealpost.crypto. Each negative vector
states by hand the error that docs/protocol.md's check order predicts; generation refuses
to write a vector whose actual outcome differs. tests/unit/test_envelope_vectors.py
regenerates in memory and fails when the committed file differs.

    .venv/bin/python tests/vectors/generate_envelope_vectors.py          # rewrite the file
    .venv/bin/python tests/vectors/generate_envelope_vectors.py --check  # exit 1 if stale
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sealpost.crypto import _sodium, domains, errors
from sealpost.crypto._framing import framed, lp, u64
from sealpost.crypto.envelope import (
    Part,
    content_digest,
    decrypt_with_dek,
    encode_part_plaintext,
    envelope_digest,
    key_commitment,
    open_envelope,
    parse_envelope,
    part_associated_data,
    seal_envelope,
    sign_envelope,
)
from sealpost.crypto.keyrecords import (
    DIRECTORY,
    INSTITUTION,
    MAILBOX,
    RELATIVE_DEVICE,
    DirectoryPin,
    KeyPurpose,
    VerifiedKey,
    issue_directory_record,
    issue_key_record,
    issue_revocation,
    key_record_id,
    key_record_signed_digest,
    verify_directory_record,
    verify_key_record,
)
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.limits import DEFAULT_LIMITS, Limits
from sealpost.v1 import envelope_pb2, keys_pb2

VECTORS_PATH: Final = Path(__file__).resolve().parent / "envelope-v1.json"
RNG_DOMAIN: Final = b"sealpost/test-vectors/rng"

#: The reference time of every vector: 2026-01-01T00:00:00Z.
NOW_MS: Final = 1_767_225_600_000
_2024: Final = 1_704_067_200  # 2024-01-01T00:00:00Z, seconds
_2025: Final = 1_735_689_600
_2025_03: Final = 1_740_787_200  # 2025-03-01
_2025_06: Final = 1_748_736_000  # 2025-06-01
_2027: Final = 1_798_761_600
_MINUTE_MS: Final = 60_000
_DAY_MS: Final = 86_400_000

_PURPOSE_NAMES: Final = {
    DIRECTORY: "KEY_PURPOSE_DIRECTORY",
    RELATIVE_DEVICE: "KEY_PURPOSE_RELATIVE_DEVICE",
    MAILBOX: "KEY_PURPOSE_MAILBOX",
    INSTITUTION: "KEY_PURPOSE_INSTITUTION",
}
PURPOSES_BY_NAME: Final = {name: value for value, name in _PURPOSE_NAMES.items()}
TEXT: Final = "text/plain; charset=utf-8"


class SeededRandom:
    """A deterministic byte stream for vectors only: SHA-256(LP(domain) || LP(seed) || U64(i)).

    Records every draw so that the vectors can list what each random value was.
    """

    def __init__(self, seed: bytes) -> None:
        """Start the stream of ``seed`` at block 0."""
        self._seed = seed
        self._counter = 0
        self._buffer = b""
        self.draws: list[bytes] = []

    def __call__(self, size: int) -> bytes:
        """The next ``size`` bytes of the stream."""
        while len(self._buffer) < size:
            block = lp(RNG_DOMAIN) + lp(self._seed) + u64(self._counter)
            self._buffer += hashlib.sha256(block).digest()
            self._counter += 1
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        self.draws.append(out)
        return out


@dataclass(frozen=True)
class Holder:
    """One key holder: secret keys, the directory-signed record and its verified form."""

    name: str
    keys: PrivateKeys
    record: keys_pb2.KeyRecord
    verified: VerifiedKey


@dataclass
class Keyring:
    """The directory, every key holder and the revocations the vectors use."""

    directory: Holder
    holders: dict[str, Holder]
    revocations: list[tuple[str, keys_pb2.KeyRevocation]]

    def __getitem__(self, name: str) -> Holder:
        """The holder called ``name``."""
        return self.holders[name]


def _keys(name: str) -> PrivateKeys:
    return PrivateKeys.generate(SeededRandom(f"keys/{name}".encode()))


def build_keyring() -> Keyring:
    """The fixed keys: a directory and the holders of every vector."""
    directory_keys = _keys("directory")
    directory_record = issue_directory_record(
        directory_keys, subject="sealpost-directory", not_before=_2024, not_after=_2027
    )
    pin = DirectoryPin(directory_keys.signing_key)
    directory = verify_directory_record(directory_record, pin, now_ms=NOW_MS)
    holders: dict[str, Holder] = {}
    spec: list[tuple[str, KeyPurpose, str, int, int]] = [
        ("alice", RELATIVE_DEVICE, "account-0001", _2025, _2027),
        ("bob", RELATIVE_DEVICE, "account-0002", _2025, _2027),
        ("mailbox", MAILBOX, "detainee-0001", _2025, _2027),
        ("mallory", RELATIVE_DEVICE, "account-0666", _2025, _2027),
        ("carol-expired", RELATIVE_DEVICE, "account-0003", _2024, _2025_06),
        ("dave-revoked", RELATIVE_DEVICE, "account-0004", _2025, _2027),
        ("erin-new", RELATIVE_DEVICE, "account-0005", NOW_MS // 1000 - 60, _2027),
        ("institution", INSTITUTION, "institution-01", _2025, _2027),
    ]
    for name, purpose, subject, not_before, not_after in spec:
        keys = _keys(name)
        record = issue_key_record(
            purpose=purpose,
            subject=subject,
            encryption_key=keys.encryption_key,
            signing_key=keys.signing_key,
            not_before=not_before,
            not_after=not_after,
            directory_keys=directory_keys,
            directory_key_id=directory.id,
        )
        body = keys_pb2.KeyRecordBody.FromString(record.body)
        verified = VerifiedKey(
            id=key_record_id(record.body),
            purpose=body.purpose,
            subject=body.subject,
            encryption_key=body.encryption_key,
            signing_key=body.signing_key,
            not_before=body.not_before,
            not_after=body.not_after,
            issuer_key_id=body.issuer_key_id,
        )
        holders[name] = Holder(name, keys, record, verified)
    revocation = issue_revocation(
        key_id=holders["dave-revoked"].verified.id,
        revoked_at=_2025_06,
        reason="device reported lost",
        directory_keys=directory_keys,
        directory_key_id=directory.id,
    )
    return Keyring(
        directory=Holder("directory", directory_keys, directory_record, directory),
        holders=holders,
        revocations=[("dave-revoked", revocation)],
    )


# --- Valid envelopes ---


@dataclass
class Built:
    """A sealed envelope with everything needed to describe or mutate it."""

    name: str
    envelope: envelope_pb2.Envelope
    parts: list[Part]
    sender: str
    recipients: list[str]
    dek: bytes
    draws: list[bytes]
    created_at_ms: int


def _seal(
    keyring: Keyring,
    name: str,
    parts: list[Part],
    sender: str,
    recipients: list[str],
    *,
    created_at_ms: int = NOW_MS,
) -> Built:
    rng = SeededRandom(f"envelope/{name}".encode())
    envelope = seal_envelope(
        parts,
        sender_keys=keyring[sender].keys,
        sender_key_id=keyring[sender].verified.id,
        recipients=[keyring[r].verified for r in recipients],
        now_ms=created_at_ms,
        rng=rng,
    )
    return Built(name, envelope, parts, sender, recipients, rng.draws[1], rng.draws, created_at_ms)


def _photo() -> bytes:
    body = SeededRandom(b"content/photo")(290)
    return b"\xff\xd8\xff\xe0" + body + b"\xff\xd9"  # JPEG start and end markers around noise


def _pdf() -> bytes:
    return (
        b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


def build_valid(keyring: Keyring) -> dict[str, Built]:
    """The valid envelopes, by name."""
    built = [
        _seal(
            keyring,
            "text-only",
            [Part(TEXT, b"Lieve mam, ik denk aan je. Tot zondag!\n")],
            "alice",
            ["mailbox"],
        ),
        _seal(
            keyring,
            "attachments",
            [
                Part(TEXT, "Hier is de foto 📷 — مرحبا، هذه الصورة\n".encode()),
                Part("image/jpeg", _photo(), "foto-👶.jpg"),
                Part("application/pdf", _pdf(), "وثيقة.pdf"),
            ],
            "alice",
            ["mailbox"],
        ),
        _seal(
            keyring,
            "reply-two-devices",
            [Part(TEXT, b"Dank je wel voor de foto.\n")],
            "mailbox",
            ["alice", "bob"],
        ),
        _seal(keyring, "empty-part", [Part(TEXT, b"")], "alice", ["mailbox"]),
    ]
    return {b.name: b for b in built}


# --- Negative envelopes ---


@dataclass
class Negative:
    """One way an envelope can be wrong, with the error the check order predicts."""

    name: str
    description: str
    envelope: bytes
    expected_error: type[errors.CryptoError]
    sender: str = "alice"
    opener: str = "mailbox"
    opener_key_of: str = ""
    now_ms: int = NOW_MS
    limits: dict[str, int] = field(default_factory=dict)
    dek: bytes = b""
    flip: dict[str, Any] = field(default_factory=dict)


def _flip(data: bytes, offset: int, bit: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


def _find_once(haystack: bytes, needle: bytes, start: int = 0) -> int:
    assert haystack.count(needle, start) == 1, "a flipped region must be unambiguous"
    return haystack.index(needle, start)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bit_flips(base: Built) -> list[Negative]:
    """One flipped bit in each region of the serialised text-only envelope."""
    env = base.envelope
    wire = env.SerializeToString()
    header = env.header
    h_at = _find_once(wire, header)
    meta = envelope_pb2.EnvelopeHeader.FromString(header)
    part = meta.parts[0]

    def in_header(needle: bytes, extra: int = 0) -> int:
        return h_at + _find_once(header, needle) + extra

    regions: list[tuple[str, int, int, type[errors.CryptoError], str]] = [
        ("envelope.version", 1, 0, errors.VersionTooOldError, "version 1 becomes 0"),
        ("envelope.version", 1, 1, errors.VersionTooNewError, "version 1 becomes 3"),
        ("envelope.header length", h_at - 1, 0, errors.FormatError, "header length changes"),
        ("header.version", in_header(b"\x08\x01", 1), 1, errors.VersionTooNewError, "1 -> 3"),
        (
            "header.message_id tag",
            in_header(b"\x12\x10" + meta.message_id),
            0,
            errors.FormatError,
            "wire type 2 becomes 3",
        ),
        ("header.message_id", in_header(meta.message_id, 15), 0, errors.SignatureError, ""),
        (
            "header.sender_key_id",
            in_header(meta.sender_key_id, 0),
            7,
            errors.FormatError,
            "no longer matches the last sealed key's id",
        ),
        (
            "header.recipient_key_ids[0]",
            in_header(meta.recipient_key_ids[0], 31),
            0,
            errors.FormatError,
            "no longer matches the first sealed key's id",
        ),
        (
            "header.created_at_ms",
            in_header(b"\x28" + _varint(meta.created_at_ms), 1),
            0,
            errors.SignatureError,
            "one millisecond off",
        ),
        (
            "header.parts[0].content_type",
            in_header(part.content_type.encode(), 0),
            0,
            errors.SignatureError,
            "'t' becomes 'u'",
        ),
        (
            "header.parts[0].size",
            in_header(b"\x18" + _varint(part.size), 1),
            0,
            errors.FormatError,
            "size no longer matches the ciphertext length",
        ),
        ("header.parts[0].nonce", in_header(part.nonce, 23), 0, errors.SignatureError, ""),
        ("header.key_commitment", in_header(meta.key_commitment, 0), 0, errors.SignatureError, ""),
    ]
    ciphertext = env.part_ciphertexts[0]
    c_at = _find_once(wire, ciphertext)
    regions += [
        ("part_ciphertexts[0] (body)", c_at, 0, errors.SignatureError, ""),
        ("part_ciphertexts[0] (tag)", c_at + len(ciphertext) - 1, 7, errors.SignatureError, ""),
    ]
    for index, sealed in enumerate(env.sealed_keys):
        k_at = _find_once(wire, sealed.key_id, h_at + len(header))
        s_at = _find_once(wire, sealed.sealed_dek)
        regions += [
            (
                f"sealed_keys[{index}].key_id",
                k_at,
                0,
                errors.FormatError,
                "no longer matches the header's key ids",
            ),
            (
                f"sealed_keys[{index}].sealed_dek (ephemeral key)",
                s_at,
                0,
                errors.SignatureError,
                "",
            ),
            (f"sealed_keys[{index}].sealed_dek (tag)", s_at + 40, 0, errors.SignatureError, ""),
            (
                f"sealed_keys[{index}].sealed_dek (encrypted DEK)",
                s_at + 79,
                0,
                errors.SignatureError,
                "",
            ),
        ]
    sig_at = _find_once(wire, env.signature)
    regions += [
        ("signature (R)", sig_at, 0, errors.SignatureError, ""),
        ("signature (S)", sig_at + 63, 0, errors.SignatureError, ""),
    ]
    negatives = []
    for region, offset, bit, error, note in regions:
        slug = re.sub(r"[^a-z0-9]+", "-", region.lower()).strip("-")
        description = f"one bit flipped in {region}" + (f": {note}" if note else "")
        negatives.append(
            Negative(
                name=f"flip-{slug}-bit{bit}",
                description=description,
                envelope=_flip(wire, offset, bit),
                expected_error=error,
                flip={"region": region, "offset": offset, "bit": bit},
            )
        )
    return negatives


def _reencrypt(
    header_bytes: bytes, plaintexts: Sequence[bytes], nonces: Sequence[bytes], dek: bytes
) -> list[bytes]:
    return [
        _sodium.aead_encrypt(dek, nonce, plaintext, part_associated_data(header_bytes, index))
        for index, (plaintext, nonce) in enumerate(zip(plaintexts, nonces, strict=True))
    ]


def _resign(
    keyring: Keyring,
    base: Built,
    *,
    header: Callable[[envelope_pb2.EnvelopeHeader], None] | None = None,
    header_bytes: Callable[[bytes], bytes] | None = None,
    plaintexts: list[bytes] | None = None,
    ciphertexts: Callable[[list[bytes]], list[bytes]] | None = None,
    sealed_keys: Callable[[list[envelope_pb2.SealedKey]], list[envelope_pb2.SealedKey]]
    | None = None,
    signer: str | None = None,
) -> bytes:
    """A sender's variant of ``base``: mutate, re-encrypt under the new header, sign again.

    ``plaintexts`` replaces the parts' encrypted plaintexts, and each header size with its
    length, as a sender crafting its own part encoding would.
    """
    meta = envelope_pb2.EnvelopeHeader.FromString(base.envelope.header)
    encoded = [encode_part_plaintext(part) for part in base.parts]
    if plaintexts is not None:
        encoded = plaintexts
        for info, plaintext in zip(meta.parts, plaintexts, strict=True):
            info.size = len(plaintext)
    if header is not None:
        header(meta)
    raw = meta.SerializeToString(deterministic=True)
    if header_bytes is not None:
        raw = header_bytes(raw)
    nonces = [p.nonce for p in meta.parts]
    cts = _reencrypt(raw, encoded[: len(nonces)], nonces[: len(encoded)], base.dek)
    if ciphertexts is not None:
        cts = ciphertexts(cts)
    keys = [
        envelope_pb2.SealedKey(key_id=s.key_id, sealed_dek=s.sealed_dek)
        for s in base.envelope.sealed_keys
    ]
    if sealed_keys is not None:
        keys = sealed_keys(keys)
    holder = keyring[signer or base.sender]
    return sign_envelope(raw, cts, keys, holder.keys).SerializeToString()


def _reserialise(base: Built, mutate: Callable[[envelope_pb2.Envelope], None]) -> bytes:
    envelope = envelope_pb2.Envelope()
    envelope.CopyFrom(base.envelope)
    mutate(envelope)
    return envelope.SerializeToString()


def _old_layout_header(filename: str) -> Callable[[bytes], bytes]:
    """Header bytes with the retired PartMetadata field 2 (a clear file name) put back."""

    def mutate(raw: bytes) -> bytes:
        meta = envelope_pb2.EnvelopeHeader.FromString(raw)
        (part,) = meta.parts
        name = filename.encode()
        part_bytes = (
            b"\x0a"
            + _varint(len(part.content_type))
            + part.content_type.encode()
            + b"\x12"
            + _varint(len(name))
            + name
            + b"\x18"
            + _varint(part.size)
            + b"\x22\x18"
            + part.nonce
        )
        commitment = b"\x3a\x20" + meta.key_commitment
        del meta.parts[:]
        meta.ClearField("key_commitment")
        head = meta.SerializeToString(deterministic=True)
        return head + b"\x32" + _varint(len(part_bytes)) + part_bytes + commitment

    return mutate


def _embedded_name_negatives(keyring: Keyring, text: Built) -> list[Negative]:
    """Correctly encrypted and signed parts whose embedded file name breaks a rule (7.5)."""
    content = text.parts[0].data

    def named(name: bytes) -> list[bytes]:
        return [lp(name) + content]

    cases: list[tuple[str, str, list[bytes], type[errors.CryptoError]]] = [
        (
            "part-shorter-than-name-length",
            "a 7-byte part (header size 7), too short for the 8-byte file name length",
            [b"\x00" * 7],
            errors.FormatError,
        ),
        (
            "embedded-name-length-past-end",
            "file name length one byte more than the rest of the part",
            [u64(len(content) + 1) + content],
            errors.FormatError,
        ),
        (
            "embedded-name-length-huge",
            "file name length 2^64 - 1",
            [u64(2**64 - 1) + content],
            errors.FormatError,
        ),
        (
            "embedded-name-too-long",
            "256-byte file name, default limit 255",
            named(b"a" * 252 + b".pdf"),
            errors.LimitError,
        ),
        (
            "embedded-name-invalid-utf8",
            "file name with a 0xff byte",
            named(b"foto\xff.jpg"),
            errors.FormatError,
        ),
        (
            "embedded-name-utf8-surrogate",
            "file name with an encoded surrogate U+D800 (ed a0 80), not UTF-8",
            named(b"\xed\xa0\x80.txt"),
            errors.FormatError,
        ),
        (
            "embedded-name-overlong-utf8",
            "file name with an overlong encoding of '/' (c0 af)",
            named(b"..\xc0\xafetc"),
            errors.FormatError,
        ),
        (
            "embedded-name-with-slash",
            "file name with a path separator",
            named(b"../../etc/passwd"),
            errors.FormatError,
        ),
        (
            "embedded-name-with-backslash",
            "file name with a backslash",
            named(b"..\\windows.ini"),
            errors.FormatError,
        ),
        (
            "embedded-name-dot-dot",
            "file name '..'",
            named(b".."),
            errors.FormatError,
        ),
        (
            "embedded-name-control-character",
            "file name with a line feed",
            named(b"brief\n.pdf"),
            errors.FormatError,
        ),
        (
            "embedded-name-bidi-override",
            "file name hiding its extension with U+202E",
            named("photo\u202egpj.exe".encode()),
            errors.FormatError,
        ),
    ]
    negatives = [
        Negative(
            name,
            f"{description}, inside the correctly encrypted part, signed",
            _resign(keyring, text, plaintexts=plaintexts),
            error,
        )
        for name, description, plaintexts, error in cases
    ]
    negatives.append(
        Negative(
            "escrow-embedded-name-with-slash",
            "decrypt_with_dek on a part whose encrypted file name has a path separator, signed",
            _resign(keyring, text, plaintexts=named(b"../../etc/passwd")),
            errors.FormatError,
            dek=text.dek,
        )
    )
    negatives.append(
        Negative(
            "header-filename-field",
            "the retired clear file name (PartMetadata field 2) in the header, signed",
            _resign(keyring, text, header_bytes=_old_layout_header("brief.pdf")),
            errors.FormatError,
        )
    )
    return negatives


def build_negative(keyring: Keyring, valid: dict[str, Built]) -> list[Negative]:
    """Every negative vector, in a stable order."""
    text = valid["text-only"]
    attachments = valid["attachments"]
    reply = valid["reply-two-devices"]
    wire = text.envelope.SerializeToString()
    rng = SeededRandom(b"negative")
    other_dek = rng(32)
    negatives = _bit_flips(text)

    def add(
        name: str, description: str, envelope: bytes, error: type[errors.CryptoError], **kw: Any
    ) -> None:
        negatives.append(Negative(name, description, envelope, error, **kw))

    # Truncated.
    add(
        "truncated-empty",
        "zero bytes: every field absent, so version 0",
        b"",
        errors.VersionTooOldError,
    )
    add(
        "truncated-last-byte",
        "serialised envelope without its last byte",
        wire[:-1],
        errors.FormatError,
    )
    add(
        "truncated-half",
        "first half of the serialised envelope",
        wire[: len(wire) // 2],
        errors.FormatError,
    )

    def cut_sig(e: envelope_pb2.Envelope) -> None:
        e.signature = e.signature[:63]

    def cut_ct(e: envelope_pb2.Envelope) -> None:
        e.part_ciphertexts[0] = e.part_ciphertexts[0][:-1]

    def cut_sealed(e: envelope_pb2.Envelope) -> None:
        e.sealed_keys[0].sealed_dek = e.sealed_keys[0].sealed_dek[:-1]

    def cut_header(e: envelope_pb2.Envelope) -> None:
        e.header = e.header[:-1]

    add(
        "truncated-signature",
        "signature of 63 bytes",
        _reserialise(text, cut_sig),
        errors.FormatError,
    )
    add(
        "truncated-ciphertext",
        "part ciphertext one byte short",
        _reserialise(text, cut_ct),
        errors.FormatError,
    )
    add(
        "truncated-sealed-dek",
        "sealed DEK of 79 bytes",
        _reserialise(text, cut_sealed),
        errors.FormatError,
    )
    add(
        "truncated-header",
        "header bytes one byte short",
        _reserialise(text, cut_header),
        errors.FormatError,
    )

    # Keys and parties.
    add(
        "wrong-key",
        "the mailbox's sealed key opened with another key pair",
        wire,
        errors.DecryptionError,
        opener="mallory",
        opener_key_of="mailbox",
    )
    add(
        "wrong-recipient",
        "opened by a valid key the envelope is not addressed to",
        wire,
        errors.EnvelopeError,
        opener="mallory",
    )
    add(
        "wrong-expected-sender",
        "checked against another sender's record",
        wire,
        errors.EnvelopeError,
        sender="bob",
    )
    add(
        "forged-signature",
        "names alice as sender but is signed by mallory's key",
        _resign(keyring, text, signer="mallory"),
        errors.SignatureError,
    )
    institution_sent = _seal(
        keyring, "from-institution", [Part(TEXT, b"hello")], "institution", ["alice"]
    )
    add(
        "sender-not-a-message-key",
        "signed by an institution key, which does not send envelopes",
        institution_sent.envelope.SerializeToString(),
        errors.KeyRecordError,
        sender="institution",
        opener="alice",
    )

    # Key records and time.
    expired = _seal(
        keyring,
        "from-expired",
        [Part(TEXT, b"old")],
        "carol-expired",
        ["mailbox"],
        created_at_ms=_2025_03 * 1000,
    )
    add(
        "expired-sender-record",
        "sender's key record expired before the reference time",
        expired.envelope.SerializeToString(),
        errors.KeyRecordError,
        sender="carol-expired",
    )
    revoked = _seal(
        keyring, "from-revoked", [Part(TEXT, b"lost phone")], "dave-revoked", ["mailbox"]
    )
    add(
        "revoked-sender-record",
        "sender's key record was revoked before the reference time",
        revoked.envelope.SerializeToString(),
        errors.KeyRecordError,
        sender="dave-revoked",
    )
    early = _seal(
        keyring,
        "before-valid",
        [Part(TEXT, b"early")],
        "erin-new",
        ["mailbox"],
        created_at_ms=NOW_MS - 2 * _MINUTE_MS,
    )
    add(
        "created-before-sender-valid",
        "created before the sender record's not_before",
        early.envelope.SerializeToString(),
        errors.KeyRecordError,
        sender="erin-new",
    )
    future = _seal(
        keyring,
        "future",
        [Part(TEXT, b"soon")],
        "alice",
        ["mailbox"],
        created_at_ms=NOW_MS + 6 * _MINUTE_MS,
    )
    add(
        "created-in-future",
        "created 6 minutes after the reference time (skew limit 5)",
        future.envelope.SerializeToString(),
        errors.LimitError,
    )
    old = _seal(
        keyring,
        "old",
        [Part(TEXT, b"late")],
        "alice",
        ["mailbox"],
        created_at_ms=NOW_MS - 8 * _DAY_MS,
    )
    add(
        "too-old",
        "created 8 days before the reference time (maximum age 7 days)",
        old.envelope.SerializeToString(),
        errors.LimitError,
    )

    # Versions.
    def version_2(e: envelope_pb2.Envelope) -> None:
        e.version = 2

    add(
        "envelope-version-2",
        "envelope version 2 (unsigned field, not re-signed)",
        _reserialise(text, version_2),
        errors.VersionTooNewError,
    )

    def header_version(value: int) -> Callable[[envelope_pb2.EnvelopeHeader], None]:
        def mutate(h: envelope_pb2.EnvelopeHeader) -> None:
            h.version = value

        return mutate

    add(
        "header-version-2",
        "header version 2 in a version 1 envelope, signed",
        _resign(keyring, text, header=header_version(2)),
        errors.VersionTooNewError,
    )
    add(
        "header-version-0",
        "header without a version, signed",
        _resign(keyring, text, header=header_version(0)),
        errors.VersionTooOldError,
    )

    # Limits (vector-specific limits, so the vectors stay small). A part's size counts its
    # encrypted plaintext: the 8-byte name length, the file name and the content.
    attach_wire = attachments.envelope.SerializeToString()
    sizes = [
        p.size for p in envelope_pb2.EnvelopeHeader.FromString(attachments.envelope.header).parts
    ]
    photo = attachments.parts[1]
    add(
        "oversized-parts",
        "3 parts, limit 2",
        attach_wire,
        errors.LimitError,
        limits={"max_parts": 2},
    )
    add(
        "oversized-part",
        f"a {sizes[1]}-byte part ({len(photo.data)} bytes of content, a "
        f"{len(photo.filename.encode())}-byte name), limit {sizes[1] - 1}",
        attach_wire,
        errors.LimitError,
        limits={"max_part_bytes": sizes[1] - 1},
    )
    add(
        "oversized-total",
        f"parts total {sum(sizes)} bytes, limit {sum(sizes) - 1}",
        attach_wire,
        errors.LimitError,
        limits={"max_part_bytes": max(sizes), "max_total_bytes": sum(sizes) - 1},
    )
    add(
        "oversized-recipients",
        "2 recipients, limit 1",
        reply.envelope.SerializeToString(),
        errors.LimitError,
        sender="mailbox",
        opener="alice",
        limits={"max_recipients": 1},
    )
    add(
        "oversized-content-type",
        "25-byte content type, limit 10",
        wire,
        errors.LimitError,
        limits={"max_content_type_bytes": 10},
    )
    add(
        "oversized-filename",
        "13-byte encrypted file name, reader's limit 8: refused after decryption",
        attach_wire,
        errors.LimitError,
        limits={"max_filename_bytes": 8},
    )
    add(
        "oversized-header",
        "header above a 64-byte limit",
        wire,
        errors.LimitError,
        limits={"max_header_bytes": 64},
    )
    add(
        "oversized-envelope",
        "serialised envelope above the derived envelope limit",
        wire,
        errors.LimitError,
        limits={
            "max_parts": 1,
            "max_part_bytes": 16,
            "max_total_bytes": 16,
            "max_recipients": 1,
            "max_header_bytes": 64,
        },
    )

    # Structure, signed by the legitimate sender.
    def no_parts(h: envelope_pb2.EnvelopeHeader) -> None:
        del h.parts[:]

    add(
        "no-parts",
        "header with no parts",
        _resign(keyring, text, header=no_parts),
        errors.FormatError,
    )

    def no_recipients(h: envelope_pb2.EnvelopeHeader) -> None:
        del h.recipient_key_ids[:]

    add(
        "no-recipients",
        "header with no recipients, only the sender's copy",
        _resign(keyring, text, header=no_recipients, sealed_keys=lambda k: k[1:]),
        errors.FormatError,
    )

    def duplicate_recipient(h: envelope_pb2.EnvelopeHeader) -> None:
        h.recipient_key_ids.append(h.recipient_key_ids[0])

    add(
        "duplicate-recipient",
        "the same recipient listed twice (sealed keys match)",
        _resign(
            keyring, text, header=duplicate_recipient, sealed_keys=lambda k: [k[0], k[0], k[1]]
        ),
        errors.FormatError,
    )

    def sender_as_recipient(h: envelope_pb2.EnvelopeHeader) -> None:
        h.recipient_key_ids.append(h.sender_key_id)

    add(
        "recipient-is-sender",
        "the sender listed as a recipient",
        _resign(
            keyring, text, header=sender_as_recipient, sealed_keys=lambda k: [k[0], k[1], k[1]]
        ),
        errors.FormatError,
    )
    add(
        "sealed-keys-reordered",
        "sender's copy first, signed",
        _resign(keyring, text, sealed_keys=lambda k: [k[1], k[0]]),
        errors.FormatError,
    )
    add(
        "sealed-key-missing",
        "no sender's copy, signed",
        _resign(keyring, text, sealed_keys=lambda k: k[:1]),
        errors.FormatError,
    )
    add(
        "unknown-header-field",
        "header with an extra field 15, signed",
        _resign(keyring, text, header_bytes=lambda raw: raw + b"\x78\x01"),
        errors.FormatError,
    )

    def commitment_first(raw: bytes) -> bytes:
        meta = envelope_pb2.EnvelopeHeader.FromString(raw)
        tail = b"\x3a\x20" + meta.key_commitment
        assert raw.endswith(tail)
        return tail + raw[: -len(tail)]

    add(
        "non-canonical-header",
        "header fields out of order (commitment first), signed",
        _resign(keyring, text, header_bytes=commitment_first),
        errors.FormatError,
    )

    def unknown_envelope_field(e: envelope_pb2.Envelope) -> None:
        pass

    add(
        "unknown-envelope-field",
        "an extra field 9 after the signature (not signed)",
        _reserialise(text, unknown_envelope_field) + b"\x48\x01",
        errors.FormatError,
    )

    def content_type(value: str) -> Callable[[envelope_pb2.EnvelopeHeader], None]:
        def mutate(h: envelope_pb2.EnvelopeHeader) -> None:
            h.parts[0].content_type = value

        return mutate

    add(
        "content-type-not-ascii",
        "content type with a non-ASCII hyphen, signed",
        _resign(keyring, text, header=content_type("text/plain; charset=utf\u20118")),
        errors.FormatError,
    )
    negatives.extend(_embedded_name_negatives(keyring, text))

    def short_message_id(h: envelope_pb2.EnvelopeHeader) -> None:
        h.message_id = h.message_id[:15]

    add(
        "message-id-short",
        "15-byte message id, signed",
        _resign(keyring, text, header=short_message_id),
        errors.FormatError,
    )

    def wrong_commitment(h: envelope_pb2.EnvelopeHeader) -> None:
        h.key_commitment = key_commitment(other_dek, h.message_id)

    add(
        "commitment-mismatch",
        "header commits to another DEK than the one sealed, signed",
        _resign(keyring, text, header=wrong_commitment),
        errors.EnvelopeError,
    )

    def reseal_other(keys: list[envelope_pb2.SealedKey]) -> list[envelope_pb2.SealedKey]:
        sealed = _sodium.seal_with_ephemeral(
            keyring["mailbox"].keys.encryption_key, other_dek, rng(32)
        )
        return [envelope_pb2.SealedKey(key_id=keys[0].key_id, sealed_dek=sealed), keys[1]]

    add(
        "recipient-dek-differs",
        "the mailbox gets a different DEK than the committed one, signed",
        _resign(keyring, text, sealed_keys=reseal_other),
        errors.EnvelopeError,
    )

    def twin_parts(h: envelope_pb2.EnvelopeHeader) -> None:
        h.parts.append(h.parts[0])  # same metadata and nonce: only the index tells them apart

    def twin_envelope() -> bytes:
        meta = envelope_pb2.EnvelopeHeader.FromString(text.envelope.header)
        twin_parts(meta)
        raw = meta.SerializeToString(deterministic=True)
        nonce = meta.parts[0].nonce
        first = text.parts[0]
        twin = Part(first.content_type, bytes(reversed(first.data)))
        plaintexts = [encode_part_plaintext(first), encode_part_plaintext(twin)]
        cts = _reencrypt(raw, plaintexts, [nonce, nonce], text.dek)
        keys = list(text.envelope.sealed_keys)
        return sign_envelope(raw, [cts[1], cts[0]], keys, keyring["alice"].keys).SerializeToString()

    add(
        "parts-swapped",
        "two parts of equal metadata and nonce, ciphertexts swapped, signed",
        twin_envelope(),
        errors.DecryptionError,
    )
    other = _seal(
        keyring, "other-message", [Part(TEXT, b"x" * len(text.parts[0].data))], "alice", ["mailbox"]
    )
    add(
        "ciphertext-from-other-message",
        "part ciphertext of another message, signed",
        _resign(keyring, text, ciphertexts=lambda _c: list(other.envelope.part_ciphertexts)),
        errors.DecryptionError,
    )

    # The escrow review path.
    add(
        "escrow-wrong-dek",
        "decrypt_with_dek with a DEK that is not the committed one",
        wire,
        errors.EnvelopeError,
        dek=other_dek,
    )
    return negatives


# --- Checking, exactly as a reader of docs/protocol.md would ---


def check(
    *,
    keyring: Keyring,
    envelope: bytes,
    sender: str,
    opener: str,
    opener_key_of: str,
    now_ms: int,
    limits: Limits,
    dek: bytes,
) -> list[Part]:
    """Run the documented procedure; returns the parts or raises the first error."""
    revocations = [revocation for _name, revocation in keyring.revocations]
    directory = verify_directory_record(
        keyring.directory.record,
        DirectoryPin(keyring.directory.keys.signing_key),
        now_ms=now_ms,
        revocations=revocations,
    )
    sender_holder = keyring[sender]
    sender_key = verify_key_record(
        sender_holder.record,
        directory,
        now_ms=now_ms,
        revocations=revocations,
        purpose=sender_holder.verified.purpose,
    )
    parsed = parse_envelope(envelope, limits)
    if dek:
        opened = decrypt_with_dek(parsed, dek, sender_key, now_ms=now_ms, limits=limits)
    else:
        key_id = keyring[opener_key_of or opener].verified.id
        opened = open_envelope(
            parsed, keyring[opener].keys, key_id, sender_key, now_ms=now_ms, limits=limits
        )
    return list(opened.parts)


def _limits(overrides: dict[str, int]) -> Limits:
    return dataclasses.replace(DEFAULT_LIMITS, **overrides)


def _confirm(keyring: Keyring, negative: Negative) -> None:
    """Refuse to write a vector whose outcome differs from the predicted error."""
    try:
        check(
            keyring=keyring,
            envelope=negative.envelope,
            sender=negative.sender,
            opener=negative.opener,
            opener_key_of=negative.opener_key_of,
            now_ms=negative.now_ms,
            limits=_limits(negative.limits),
            dek=negative.dek,
        )
    except errors.CryptoError as exc:
        if type(exc) is not negative.expected_error:
            raise AssertionError(
                f"{negative.name}: expected {negative.expected_error.__name__}, "
                f"got {type(exc).__name__}: {exc}"
            ) from exc
    else:
        raise AssertionError(
            f"{negative.name}: opened, expected {negative.expected_error.__name__}"
        )


# --- Rendering ---


def _hex(data: bytes) -> str:
    return data.hex()


def _holder_json(holder: Holder) -> dict[str, Any]:
    body = keys_pb2.KeyRecordBody.FromString(holder.record.body)
    return {
        "purpose": _PURPOSE_NAMES[body.purpose],
        "subject": body.subject,
        "not_before": body.not_before,
        "not_after": body.not_after,
        "x25519_secret": _hex(holder.keys.x25519_secret),
        "ed25519_seed": _hex(holder.keys.ed25519_seed),
        "encryption_key": _hex(holder.keys.encryption_key),
        "signing_key": _hex(holder.keys.signing_key),
        "record_body": _hex(holder.record.body),
        "record_id": _hex(key_record_id(holder.record.body)),
        "record_signed_digest": _hex(key_record_signed_digest(holder.record.body)),
        "record_signature": _hex(holder.record.signature),
        "record": _hex(holder.record.SerializeToString()),
    }


def _valid_json(keyring: Keyring, built: Built) -> dict[str, Any]:
    env = built.envelope
    meta = envelope_pb2.EnvelopeHeader.FromString(env.header)
    names_by_id = {h.verified.id: name for name, h in keyring.holders.items()}
    draws = built.draws
    n_parts = len(built.parts)
    ephemeral = draws[2 + n_parts :]
    sealed = []
    for sealed_key, secret in zip(env.sealed_keys, ephemeral, strict=True):
        holder = keyring[names_by_id[sealed_key.key_id]]
        epk = _sodium.x25519_public_from_secret(secret)
        sealed.append(
            {
                "key_id": _hex(sealed_key.key_id),
                "holder": holder.name,
                "recipient_public_key": _hex(holder.keys.encryption_key),
                "ephemeral_secret": _hex(secret),
                "ephemeral_public": _hex(epk),
                "box_nonce": _hex(_sodium.blake2b(epk + holder.keys.encryption_key, size=24)),
                "sealed_dek": _hex(sealed_key.sealed_dek),
            }
        )
    parts = []
    for index, (part, info, ciphertext) in enumerate(
        zip(built.parts, meta.parts, env.part_ciphertexts, strict=True)
    ):
        entry: dict[str, Any] = {
            "content_type": part.content_type,
            "filename": part.filename,
            "content": _hex(part.data),
            "size": info.size,
            "nonce": _hex(info.nonce),
            "plaintext": _hex(encode_part_plaintext(part)),
            "associated_data": _hex(part_associated_data(env.header, index)),
            "ciphertext": _hex(ciphertext),
        }
        if part.content_type.startswith("text/"):
            entry["text"] = part.data.decode("utf-8")
        parts.append(entry)
    signed = content_digest(env.header, env.part_ciphertexts, env.sealed_keys)
    return {
        "name": built.name,
        "sender": built.sender,
        "recipients": built.recipients,
        "openers": [*built.recipients, built.sender],
        "now_ms": NOW_MS,
        "message_id": _hex(meta.message_id),
        "created_at_ms": meta.created_at_ms,
        "dek": _hex(built.dek),
        "key_commitment_input": _hex(framed(domains.ENVELOPE_KEY_COMMITMENT, meta.message_id)),
        "key_commitment": _hex(meta.key_commitment),
        "header": _hex(env.header),
        "parts": parts,
        "sealed_keys": sealed,
        "content_digest": _hex(signed),
        "signature": _hex(env.signature),
        "envelope_digest": _hex(envelope_digest(env)),
        "envelope": _hex(env.SerializeToString()),
    }


def _negative_json(negative: Negative) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": negative.name,
        "description": negative.description,
        "expected_error": negative.expected_error.__name__,
        "sender": negative.sender,
        "opener": negative.opener,
        "opener_key_id_of": negative.opener_key_of or negative.opener,
        "now_ms": negative.now_ms,
        "limits": negative.limits,
        "operation": "decrypt_with_dek" if negative.dek else "open_envelope",
    }
    if negative.dek:
        out["dek"] = _hex(negative.dek)
    if negative.flip:
        out["flip"] = negative.flip
    out["envelope"] = _hex(negative.envelope)
    return out


def build_vectors() -> dict[str, Any]:
    """The whole vector file as a JSON-ready dict; checks every vector as it goes."""
    keyring = build_keyring()
    valid = build_valid(keyring)
    negatives = build_negative(keyring, valid)
    for negative in negatives:
        _confirm(keyring, negative)
    names = [n.name for n in negatives]
    assert len(set(names)) == len(names), "vector names must be unique"
    for built in valid.values():
        for opener in [*built.recipients, built.sender]:
            parts = check(
                keyring=keyring,
                envelope=built.envelope.SerializeToString(),
                sender=built.sender,
                opener=opener,
                opener_key_of="",
                now_ms=NOW_MS,
                limits=DEFAULT_LIMITS,
                dek=b"",
            )
            assert [(p.filename, p.data) for p in parts] == [
                (p.filename, p.data) for p in built.parts
            ]
    return {
        "description": (
            "Sealpost sealed envelope v1 test vectors (docs/protocol.md). All byte strings are "
            "lowercase hex. Procedure per vector: verify the directory record against "
            "directory.signing_key (the pin) at now_ms with all revocations; verify the sender's "
            "record against it with its purpose; parse the envelope with the default limits "
            "updated by `limits`; then open_envelope with the opener's secret keys and the "
            "record id of opener_key_id_of, or decrypt_with_dek with `dek`. A negative vector "
            "must fail with expected_error at the first failing check of docs/protocol.md."
        ),
        "version": 1,
        "generator": "tests/vectors/generate_envelope_vectors.py",
        "rng": (
            "block i of the stream for seed s is SHA-256(LP('sealpost/test-vectors/rng') || LP(s) "
            "|| U64(i)); keys use seed 'keys/<name>', envelopes 'envelope/<name>'"
        ),
        "domains": {d.decode(): d.hex() for d in domains.ALL},
        "default_limits": dataclasses.asdict(DEFAULT_LIMITS),
        "directory": _holder_json(keyring.directory),
        "keys": {name: _holder_json(holder) for name, holder in keyring.holders.items()},
        "revocations": [
            {"of": name, "revocation": _hex(revocation.SerializeToString())}
            for name, revocation in keyring.revocations
        ],
        "valid": [_valid_json(keyring, built) for built in valid.values()],
        "invalid": [_negative_json(n) for n in negatives],
    }


def render(vectors: dict[str, Any]) -> str:
    """The file's exact text."""
    return json.dumps(vectors, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """Write the vectors, or with --check exit 1 when the committed file is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = render(build_vectors())
    if args.check:
        current = VECTORS_PATH.read_text(encoding="utf-8") if VECTORS_PATH.exists() else ""
        if current != text:
            sys.exit(f"{VECTORS_PATH} is stale: run {Path(__file__).name}")
        return
    VECTORS_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {VECTORS_PATH}")


if __name__ == "__main__":
    main()
