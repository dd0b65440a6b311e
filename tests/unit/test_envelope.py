"""Sealing, verifying and opening envelopes: the happy paths and every refusal."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from sealpost.crypto import _sodium
from sealpost.crypto._framing import lp, u64
from sealpost.crypto.envelope import (
    FILENAME_LENGTH_BYTES,
    Part,
    PartInfo,
    decode_part_plaintext,
    decrypt_with_dek,
    encode_part_plaintext,
    envelope_digest,
    key_commitment,
    open_dek,
    open_envelope,
    parse_envelope,
    parse_header,
    part_associated_data,
    seal_envelope,
    sign_envelope,
    verify_dek_commitment,
    verify_envelope,
)
from sealpost.crypto.errors import (
    CryptoError,
    DecryptionError,
    EnvelopeError,
    FormatError,
    KeyRecordError,
    LimitError,
    SignatureError,
    VersionTooNewError,
    VersionTooOldError,
)
from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.crypto.limits import DEFAULT_LIMITS, MIB, Limits
from sealpost.v1 import envelope_pb2
from tests.generators import load_generator


def _load_generator() -> ModuleType:
    return load_generator("generate_envelope_vectors")


gen = _load_generator()
KEYRING: Any = gen.build_keyring()
NOW_MS: int = gen.NOW_MS
TEXT = "text/plain; charset=utf-8"


def _holder(name: str) -> Any:
    return KEYRING[name]


def _seal(
    parts: list[Part],
    *,
    sender: str = "alice",
    recipients: tuple[str, ...] = ("mailbox",),
    now_ms: int = NOW_MS,
    limits: Limits = DEFAULT_LIMITS,
    seed: bytes = b"test",
) -> envelope_pb2.Envelope:
    return seal_envelope(
        parts,
        sender_keys=_holder(sender).keys,
        sender_key_id=_holder(sender).verified.id,
        recipients=[_holder(r).verified for r in recipients],
        now_ms=now_ms,
        rng=gen.SeededRandom(seed),
        limits=limits,
    )


def _open(
    envelope: envelope_pb2.Envelope,
    *,
    opener: str = "mailbox",
    sender: str = "alice",
    now_ms: int = NOW_MS,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Part]:
    holder = _holder(opener)
    opened = open_envelope(
        envelope,
        holder.keys,
        holder.verified.id,
        _holder(sender).verified,
        now_ms=now_ms,
        limits=limits,
    )
    return list(opened.parts)


def _hello() -> list[Part]:
    return [Part(TEXT, "Hallo! مرحبا 👋".encode())]


# --- Round trips ---


def test_recipient_and_sender_open_the_same_parts() -> None:
    parts = [
        Part(TEXT, b"Lieve mam"),
        Part("image/jpeg", b"\xff\xd8" + b"\x00" * 5000, "foto.jpg"),
        Part("application/pdf", b"%PDF-1.7", "وثيقة.pdf"),
    ]
    envelope = _seal(parts)
    for opener in ("mailbox", "alice"):
        opened = _open(envelope, opener=opener)
        assert [(p.content_type, p.filename, p.data) for p in opened] == [
            (p.content_type, p.filename, p.data) for p in parts
        ]


def test_reply_to_several_devices() -> None:
    envelope = _seal(_hello(), sender="mailbox", recipients=("alice", "bob"))
    for opener in ("alice", "bob", "mailbox"):
        assert _open(envelope, opener=opener, sender="mailbox")[0].data == _hello()[0].data


def test_opened_message_reports_header_and_digest() -> None:
    envelope = _seal(_hello())
    holder = _holder("mailbox")
    opened = open_envelope(
        envelope, holder.keys, holder.verified.id, _holder("alice").verified, now_ms=NOW_MS
    )
    assert opened.header.sender_key_id == _holder("alice").verified.id
    assert opened.header.recipient_key_ids == (holder.verified.id,)
    assert opened.header.created_at_ms == NOW_MS
    assert opened.header.raw == envelope.header
    assert opened.digest == envelope_digest(envelope)
    assert len(opened.header.message_id) == 16


def test_verify_without_keys_is_what_the_gateway_sees() -> None:
    envelope = _seal(_hello())
    verified = verify_envelope(envelope, _holder("alice").verified, now_ms=NOW_MS)
    assert verified.digest == envelope_digest(envelope)
    assert verified.header.parts[0].content_type == TEXT
    assert verified.header.parts[0].size == 8 + len(_hello()[0].data)


def test_file_names_never_appear_in_the_clear() -> None:
    """SPEC P1: what the gateway stores and verifies holds no file name, only sizes."""
    name = "verdict-case-1234.pdf"
    parts = [Part(TEXT, b"zie bijlage"), Part("application/pdf", b"%PDF-1.7 uitspraak", name)]
    envelope = _seal(parts)
    wire = envelope.SerializeToString()
    assert name.encode() not in wire
    assert b"verdict" not in wire
    assert {f.name for f in dataclasses.fields(PartInfo)} == {"content_type", "size", "nonce"}
    header = envelope_pb2.EnvelopeHeader.FromString(envelope.header)
    assert [p.size for p in header.parts] == [8 + 11, 8 + len(name) + 18]
    assert [len(c) for c in envelope.part_ciphertexts] == [p.size + 16 for p in header.parts]
    verified = verify_envelope(envelope, _holder("alice").verified, now_ms=NOW_MS)
    assert name not in repr(verified.header)
    assert _open(envelope)[1].filename == name


def test_part_plaintext_is_the_length_prefixed_name_then_the_content() -> None:
    part = Part("image/jpeg", b"\xff\xd8\xff\xd9", "foto-👶.jpg")
    encoded = encode_part_plaintext(part)
    assert FILENAME_LENGTH_BYTES == 8
    assert encoded == u64(13) + "foto-👶.jpg".encode() + b"\xff\xd8\xff\xd9"
    assert encode_part_plaintext(Part(TEXT, b"hoi")) == b"\x00" * 8 + b"hoi"
    assert decode_part_plaintext("image/jpeg", encoded) == part
    envelope = _seal([part])
    holder = _holder("mailbox")
    dek = open_dek(
        envelope, holder.keys, holder.verified.id, _holder("alice").verified, now_ms=NOW_MS
    )
    nonce = envelope_pb2.EnvelopeHeader.FromString(envelope.header).parts[0].nonce
    associated = part_associated_data(envelope.header, 0)
    assert _sodium.aead_decrypt(dek, nonce, envelope.part_ciphertexts[0], associated) == encoded


def test_a_name_that_looks_like_content_is_split_by_its_length() -> None:
    tricky = Part(TEXT, u64(3) + b"abc", "x")
    assert decode_part_plaintext(TEXT, encode_part_plaintext(tricky)) == tricky
    assert decode_part_plaintext(TEXT, u64(0) + u64(1) + b"a") == Part(TEXT, u64(1) + b"a")


def test_escrow_path_gives_the_same_plaintext() -> None:
    envelope = _seal(_hello())
    holder, sender = _holder("mailbox"), _holder("alice").verified
    dek = open_dek(envelope, holder.keys, holder.verified.id, sender, now_ms=NOW_MS)
    opened = decrypt_with_dek(envelope, dek, sender, now_ms=NOW_MS)
    assert opened.parts[0].data == _hello()[0].data
    verify_dek_commitment(opened.header, dek)


def test_sealing_is_deterministic_under_an_injected_rng() -> None:
    assert _seal(_hello(), seed=b"same") == _seal(_hello(), seed=b"same")
    assert _seal(_hello(), seed=b"same") != _seal(_hello(), seed=b"other")


def test_rng_is_drawn_in_the_documented_order() -> None:
    rng = gen.SeededRandom(b"order")
    parts = [Part(TEXT, b"a"), Part(TEXT, b"b")]
    envelope = seal_envelope(
        parts,
        sender_keys=_holder("alice").keys,
        sender_key_id=_holder("alice").verified.id,
        recipients=[_holder("mailbox").verified],
        now_ms=NOW_MS,
        rng=rng,
    )
    header = envelope_pb2.EnvelopeHeader.FromString(envelope.header)
    assert [len(d) for d in rng.draws] == [16, 32, 24, 24, 32, 32]
    assert rng.draws[0] == header.message_id
    assert key_commitment(rng.draws[1], header.message_id) == header.key_commitment
    assert [p.nonce for p in header.parts] == rng.draws[2:4]
    for sealed, secret in zip(envelope.sealed_keys, rng.draws[4:], strict=True):
        assert sealed.sealed_dek[:32] == _sodium.x25519_public_from_secret(secret)


def test_empty_part_and_any_script_file_name() -> None:
    parts = [
        Part(TEXT, b""),
        Part("image/png", b"\x89PNG", "صورة العائلة \u200f\u0662\u0660\u0662\u0665.png"),
    ]
    assert [p.data for p in _open(_seal(parts))] == [b"", b"\x89PNG"]


def test_part_repr_hides_content_and_file_name() -> None:
    part = Part(TEXT, b"secret words", "private-name.txt")
    assert "secret" not in repr(part)
    assert "private-name" not in repr(part)
    assert "size=12" in repr(part)


# --- Documented constructions, recomputed independently ---


def test_commitment_associated_data_and_digests_match_the_document() -> None:
    envelope = _seal(_hello())
    header = envelope_pb2.EnvelopeHeader.FromString(envelope.header)
    holder = _holder("mailbox")
    dek = open_dek(
        envelope, holder.keys, holder.verified.id, _holder("alice").verified, now_ms=NOW_MS
    )
    commitment = hashlib.blake2b(
        lp(b"sealpost/v1/envelope/key-commitment") + lp(header.message_id),
        digest_size=32,
        key=dek,
    ).digest()
    assert commitment == header.key_commitment
    assert part_associated_data(envelope.header, 0) == (
        lp(b"sealpost/v1/envelope/part") + lp(envelope.header) + u64(0)
    )
    signed = hashlib.sha256(
        lp(b"sealpost/v1/envelope/signature")
        + lp(envelope.header)
        + u64(1)
        + lp(envelope.part_ciphertexts[0])
        + u64(2)
        + b"".join(lp(s.key_id) + lp(s.sealed_dek) for s in envelope.sealed_keys)
    ).digest()
    _sodium.ed25519_verify(_holder("alice").keys.signing_key, signed, envelope.signature)
    digest = hashlib.sha256(
        lp(b"sealpost/v1/envelope/digest") + lp(signed) + lp(envelope.signature)
    ).digest()
    assert envelope_digest(envelope) == digest


def test_envelope_digest_ignores_outer_serialisation_but_not_content() -> None:
    envelope = _seal(_hello())
    again = parse_envelope(envelope.SerializeToString())
    assert envelope_digest(again) == envelope_digest(envelope)
    other = _seal(_hello(), seed=b"other")
    assert envelope_digest(other) != envelope_digest(envelope)


# --- Sealing refusals ---


def _counting_rng() -> tuple[Callable[[int], bytes], list[int]]:
    sizes: list[int] = []

    def rng(size: int) -> bytes:
        sizes.append(size)
        return b"\x01" * size

    return rng, sizes


@pytest.mark.parametrize(
    ("parts", "limits"),
    [
        ([Part(TEXT, b"x")] * 3, Limits(max_parts=2)),
        ([Part(TEXT, b"x" * 11)], Limits(max_part_bytes=18, max_total_bytes=100)),
        ([Part(TEXT, b"x" * 3, "a.txt")], Limits(max_part_bytes=15, max_total_bytes=100)),
        ([Part(TEXT, b"x" * 8)] * 2, Limits(max_part_bytes=16, max_total_bytes=31)),
        ([Part(TEXT, b"x", "abcdefghi")], Limits(max_filename_bytes=8)),
        ([Part(TEXT, b"x", "é" * 128)], DEFAULT_LIMITS),
    ],
)
def test_seal_refuses_oversized_messages_before_drawing_randomness(
    parts: list[Part], limits: Limits
) -> None:
    rng, sizes = _counting_rng()
    with pytest.raises(LimitError):
        seal_envelope(
            parts,
            sender_keys=_holder("alice").keys,
            sender_key_id=_holder("alice").verified.id,
            recipients=[_holder("mailbox").verified],
            now_ms=NOW_MS,
            rng=rng,
            limits=limits,
        )
    assert sizes == []


@pytest.mark.parametrize(
    ("parts", "error"),
    [
        ([], FormatError),
        ([Part("", b"x")], FormatError),
        ([Part("text/plain\n", b"x")], FormatError),
        ([Part("téxt/plain", b"x")], FormatError),
        ([Part("t" * 256, b"x")], LimitError),
        ([Part(TEXT, b"x", "..")], FormatError),
        ([Part(TEXT, b"x", "a/b.txt")], FormatError),
        ([Part(TEXT, b"x", "a\\b.txt")], FormatError),
        ([Part(TEXT, b"x", "tab\there.txt")], FormatError),
        ([Part(TEXT, b"x", "photo\u202egpj.exe")], FormatError),
        ([Part(TEXT, b"x", "isolate\u2067.txt")], FormatError),
        ([Part(TEXT, b"x", "lone\ud800surrogate")], FormatError),
        ([Part(TEXT, b"x", "é" * 128)], LimitError),
    ],
)
def test_seal_refuses_bad_part_metadata(parts: list[Part], error: type[CryptoError]) -> None:
    with pytest.raises(error):
        _seal(parts)


@pytest.mark.parametrize(
    "part",
    [
        Part("text/plain\n", b"x"),
        Part(TEXT, b"x", ".."),
        Part(TEXT, b"x", "a/b.txt"),
        Part(TEXT, b"x", "photo\u202egpj.exe"),
        Part(TEXT, b"x", "lone\ud800surrogate"),
    ],
)
def test_seal_checks_part_metadata_before_drawing_randomness(part: Part) -> None:
    rng, sizes = _counting_rng()
    with pytest.raises(FormatError):
        seal_envelope(
            [part],
            sender_keys=_holder("alice").keys,
            sender_key_id=_holder("alice").verified.id,
            recipients=[_holder("mailbox").verified],
            now_ms=NOW_MS,
            rng=rng,
        )
    assert sizes == []


def test_file_name_limit_is_inclusive_and_counts_utf8_bytes() -> None:
    limits = Limits(max_filename_bytes=8)
    assert _open(_seal([Part(TEXT, b"x", "ab.jpg\u00e9")], limits=limits))[0].filename == (
        "ab.jpg\u00e9"
    )
    with pytest.raises(LimitError, match="file name"):
        _seal([Part(TEXT, b"x", "abc.jpg\u00e9")], limits=limits)


def test_seal_refuses_bad_recipient_sets() -> None:
    with pytest.raises(FormatError, match="no recipients"):
        _seal(_hello(), recipients=())
    with pytest.raises(FormatError, match="repeat"):
        _seal(_hello(), recipients=("mailbox", "mailbox"))
    with pytest.raises(FormatError, match="repeat"):
        _seal(_hello(), recipients=("mailbox", "alice"))
    with pytest.raises(LimitError):
        _seal(_hello(), recipients=("mailbox", "bob"), limits=Limits(max_recipients=1))
    with pytest.raises(KeyRecordError, match="device or mailbox"):
        _seal(_hello(), recipients=("institution",))
    with pytest.raises(KeyRecordError, match="not valid now"):
        _seal(_hello(), recipients=("carol-expired",))


# --- Verification refusals ---


def _resigned(
    envelope: envelope_pb2.Envelope,
    mutate: Callable[[envelope_pb2.Envelope], None],
    signer: str = "alice",
) -> envelope_pb2.Envelope:
    copy = envelope_pb2.Envelope()
    copy.CopyFrom(envelope)
    mutate(copy)
    return sign_envelope(
        copy.header, list(copy.part_ciphertexts), list(copy.sealed_keys), _holder(signer).keys
    )


def test_version_rules() -> None:
    envelope = _seal(_hello())
    for version, error in ((0, VersionTooOldError), (2, VersionTooNewError)):
        changed = envelope_pb2.Envelope()
        changed.CopyFrom(envelope)
        changed.version = version
        with pytest.raises(error):
            _open(changed)
        with pytest.raises(error):
            parse_envelope(changed.SerializeToString())


def test_clock_skew_and_age_boundaries() -> None:
    envelope = _seal(_hello())
    skew, age = DEFAULT_LIMITS.max_clock_skew_ms, DEFAULT_LIMITS.max_age_ms
    _open(envelope, now_ms=NOW_MS - skew)
    with pytest.raises(LimitError, match="future"):
        _open(envelope, now_ms=NOW_MS - skew - 1)
    _open(envelope, now_ms=NOW_MS + age)
    with pytest.raises(LimitError, match="older"):
        _open(envelope, now_ms=NOW_MS + age + 1)


def test_sender_must_be_valid_when_the_message_was_created() -> None:
    alice = _holder("alice").verified
    short_lived = dataclasses.replace(
        alice, not_before=NOW_MS // 1000 + 1, not_after=NOW_MS // 1000 + 100
    )
    envelope = _seal(_hello())
    with pytest.raises(KeyRecordError, match="not valid when"):
        verify_envelope(envelope, short_lived, now_ms=NOW_MS + 2000)


def test_sender_must_be_the_expected_one() -> None:
    envelope = _seal(_hello())
    with pytest.raises(EnvelopeError, match="expected sender"):
        _open(envelope, sender="bob")


def test_sender_purpose_must_allow_messages() -> None:
    envelope = _seal(_hello(), sender="institution", recipients=("alice",))
    with pytest.raises(KeyRecordError, match="device or mailbox"):
        _open(envelope, opener="alice", sender="institution")


def test_wrong_recipient_and_wrong_key() -> None:
    envelope = _seal(_hello())
    with pytest.raises(EnvelopeError, match="not addressed"):
        _open(envelope, opener="bob")
    mailbox_id = _holder("mailbox").verified.id
    with pytest.raises(DecryptionError):
        open_envelope(
            envelope,
            _holder("bob").keys,
            mailbox_id,
            _holder("alice").verified,
            now_ms=NOW_MS,
        )


def test_signature_by_another_key_is_refused() -> None:
    envelope = _resigned(_seal(_hello()), lambda e: None, signer="mallory")
    with pytest.raises(SignatureError):
        _open(envelope)


def test_commitment_is_checked_for_sealed_and_escrowed_keys() -> None:
    envelope = _seal(_hello())
    sender = _holder("alice").verified
    with pytest.raises(EnvelopeError, match="commitment"):
        decrypt_with_dek(envelope, b"\x00" * 32, sender, now_ms=NOW_MS)
    with pytest.raises(EnvelopeError, match="commitment"):
        decrypt_with_dek(envelope, b"\x00" * 31, sender, now_ms=NOW_MS)
    header = parse_header(envelope.header)
    with pytest.raises(EnvelopeError):
        verify_dek_commitment(header, b"\x01" * 32)

    def reseal(e: envelope_pb2.Envelope) -> None:
        mailbox = _holder("mailbox").keys.encryption_key
        e.sealed_keys[0].sealed_dek = _sodium.seal(mailbox, b"\x02" * 32)

    with pytest.raises(EnvelopeError, match="commitment"):
        _open(_resigned(envelope, reseal))
    _open(_resigned(envelope, reseal), opener="alice")  # the sender's own copy is untouched


def test_a_broken_part_yields_no_plaintext_at_all() -> None:
    envelope = _seal([Part(TEXT, b"first"), Part(TEXT, b"second")])

    def break_second(e: envelope_pb2.Envelope) -> None:
        ct = bytearray(e.part_ciphertexts[1])
        ct[0] ^= 1
        e.part_ciphertexts[1] = bytes(ct)

    with pytest.raises(DecryptionError):
        _open(_resigned(envelope, break_second))


def test_structure_must_match_the_header() -> None:
    envelope = _seal([Part(TEXT, b"first"), Part(TEXT, b"second")])

    def drop_part(e: envelope_pb2.Envelope) -> None:
        del e.part_ciphertexts[1]

    def drop_key(e: envelope_pb2.Envelope) -> None:
        del e.sealed_keys[1]

    def extra_key(e: envelope_pb2.Envelope) -> None:
        e.sealed_keys.add(key_id=b"\x00" * 32, sealed_dek=b"\x00" * 80)

    for mutate in (drop_part, drop_key, extra_key):
        with pytest.raises(FormatError):
            _open(_resigned(envelope, mutate))


def test_unknown_fields_anywhere_are_refused() -> None:
    envelope = _seal(_hello())
    wire = envelope.SerializeToString() + b"\x48\x01"
    with pytest.raises(FormatError, match="unknown"):
        parse_envelope(wire)
    nested = envelope_pb2.Envelope()
    nested.CopyFrom(envelope)
    nested.sealed_keys[0].MergeFromString(b"\x18\x01")  # field 3 inside a SealedKey
    with pytest.raises(FormatError, match="unknown"):
        verify_envelope(nested, _holder("alice").verified, now_ms=NOW_MS)


@pytest.mark.parametrize("data", [b"\xff", b"\x12\x05abc", b"\x08\x01\x12\x01", b"\x08\x81"])
def test_garbage_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        parse_envelope(data)


def test_oversized_envelope_is_refused_before_parsing() -> None:
    limits = Limits(max_parts=1, max_part_bytes=1, max_total_bytes=1, max_recipients=1)
    with pytest.raises(LimitError):
        parse_envelope(b"\x00" * (limits.max_envelope_bytes + 1), limits)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_part_bytes"):
        Limits(max_part_bytes=2, max_total_bytes=1)
    with pytest.raises(ValueError, match="non-negative"):
        Limits(max_age_ms=-1)
    with pytest.raises(ValueError, match="no parts"):
        Limits(max_parts=0)
    assert DEFAULT_LIMITS.max_total_bytes == 25 * MIB
    assert DEFAULT_LIMITS.max_envelope_bytes > DEFAULT_LIMITS.max_total_bytes


def test_limits_are_checked_on_the_reading_side() -> None:
    envelope = _seal([Part(TEXT, b"x" * 100, "a.txt")])  # size 8 + 5 + 100
    _open(envelope, limits=Limits(max_part_bytes=113, max_total_bytes=113))
    with pytest.raises(LimitError):
        _open(envelope, limits=Limits(max_part_bytes=112, max_total_bytes=1000))
    two = _seal([Part(TEXT, b"x" * 100, "a.txt"), Part(TEXT, b"")])  # 113 + 8
    _open(two, limits=Limits(max_part_bytes=113, max_total_bytes=121))
    with pytest.raises(LimitError, match="together"):
        _open(two, limits=Limits(max_part_bytes=113, max_total_bytes=120))
    assert _open(envelope, limits=Limits(max_filename_bytes=5))[0].filename == "a.txt"
    with pytest.raises(LimitError, match="file name"):
        _open(envelope, limits=Limits(max_filename_bytes=4))


# --- File names inside the encrypted parts, as a signing sender could craft them ---


def _crafted(plaintexts: list[bytes], base_parts: int | None = None) -> envelope_pb2.Envelope:
    """Alice's envelope whose parts encrypt ``plaintexts`` exactly, sizes to match, signed."""
    base = _seal([Part(TEXT, b"")] * (base_parts or len(plaintexts)))
    holder = _holder("mailbox")
    dek = open_dek(base, holder.keys, holder.verified.id, _holder("alice").verified, now_ms=NOW_MS)
    meta = envelope_pb2.EnvelopeHeader.FromString(base.header)
    for info, plaintext in zip(meta.parts, plaintexts, strict=True):
        info.size = len(plaintext)
    raw = meta.SerializeToString(deterministic=True)
    ciphertexts = [
        _sodium.aead_encrypt(dek, info.nonce, plaintext, part_associated_data(raw, index))
        for index, (info, plaintext) in enumerate(zip(meta.parts, plaintexts, strict=True))
    ]
    return sign_envelope(raw, ciphertexts, list(base.sealed_keys), _holder("alice").keys)


_BAD_NAMES: list[tuple[bytes, type[CryptoError], str]] = [
    (u64(6) + b"hello", FormatError, "past the end"),
    (u64(2**64 - 1) + b"hello", FormatError, "past the end"),
    (lp(b"a" * 256), LimitError, "longer than 255"),
    (lp(b"foto\xff.jpg"), FormatError, "UTF-8"),
    (lp(b"\xed\xa0\x80.txt"), FormatError, "UTF-8"),
    (lp(b"\xc0\xaf.txt"), FormatError, "UTF-8"),
    (lp(b"../../etc/passwd"), FormatError, "forbidden"),
    (lp(b"a\\b.txt"), FormatError, "forbidden"),
    (lp(b".."), FormatError, "directory"),
    (lp(b"brief\x00.pdf"), FormatError, "forbidden"),
    (lp("photo\u202egpj.exe".encode()), FormatError, "forbidden"),
    (lp("x\u2066.txt".encode()), FormatError, "forbidden"),
]


@pytest.mark.parametrize(("plaintext", "error", "message"), _BAD_NAMES)
def test_opening_refuses_a_malformed_embedded_name(
    plaintext: bytes, error: type[CryptoError], message: str
) -> None:
    with pytest.raises(error, match=message):
        decode_part_plaintext(TEXT, plaintext)
    envelope = _crafted([plaintext])
    sender = _holder("alice").verified
    verify_envelope(envelope, sender, now_ms=NOW_MS)  # the gateway cannot tell
    with pytest.raises(error, match=message):
        _open(envelope)
    with pytest.raises(error, match=message):
        _open(envelope, opener="alice")
    holder = _holder("mailbox")
    dek = open_dek(envelope, holder.keys, holder.verified.id, sender, now_ms=NOW_MS)
    with pytest.raises(error, match=message):
        decrypt_with_dek(envelope, dek, sender, now_ms=NOW_MS)


def test_part_shorter_than_the_name_length_is_refused_from_the_header() -> None:
    with pytest.raises(FormatError, match="8-byte file name length"):
        decode_part_plaintext(TEXT, b"\x00" * 7)
    envelope = _crafted([b"\x00" * 7])
    with pytest.raises(FormatError, match="8-byte file name length"):
        verify_envelope(envelope, _holder("alice").verified, now_ms=NOW_MS)


def test_a_bad_name_in_a_later_part_yields_no_plaintext_at_all() -> None:
    good = encode_part_plaintext(Part(TEXT, b"first"))
    envelope = _crafted([good, lp(b"a/b") + b"second"])
    with pytest.raises(FormatError):
        _open(envelope)
    assert _open(_crafted([good, lp(b"a.b") + b"second"]))[1] == Part(TEXT, b"second", "a.b")


def test_header_with_the_retired_file_name_field_is_refused() -> None:
    envelope = _seal(_hello())
    meta = envelope_pb2.EnvelopeHeader.FromString(envelope.header)
    meta.parts[0].MergeFromString(b"\x12\x09brief.pdf")  # field 2: a clear file name
    with pytest.raises(FormatError, match="unknown"):
        parse_header(meta.SerializeToString(deterministic=True))


def test_large_message_round_trip() -> None:
    data = bytes(range(256)) * (3 * MIB // 256)
    envelope = _seal([Part("application/pdf", data, "scan.pdf")])
    assert _open(envelope)[0].data == data


def test_sender_verified_key_is_needed_not_just_an_id() -> None:
    envelope = _seal(_hello())
    alice = _holder("alice").verified
    impostor = VerifiedKey(
        id=alice.id,
        purpose=alice.purpose,
        subject=alice.subject,
        encryption_key=alice.encryption_key,
        signing_key=_holder("mallory").verified.signing_key,
        not_before=alice.not_before,
        not_after=alice.not_after,
        issuer_key_id=alice.issuer_key_id,
    )
    with pytest.raises(SignatureError):
        verify_envelope(envelope, impostor, now_ms=NOW_MS)
