"""Property tests: round trips, single-bit tampering anywhere, recipient isolation, and the
unambiguous split of each part's encrypted plaintext into file name and content."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealpost.crypto import keyrecords as kr
from sealpost.crypto._framing import lp
from sealpost.crypto.envelope import (
    Part,
    decode_part_plaintext,
    encode_part_plaintext,
    open_envelope,
    parse_envelope,
    seal_envelope,
)
from sealpost.crypto.errors import (
    CryptoError,
    DecryptionError,
    EnvelopeError,
    FormatError,
    LimitError,
)
from sealpost.crypto.keys import PrivateKeys
from sealpost.v1 import envelope_pb2
from tests.generators import load_generator


def _load_generator() -> ModuleType:
    return load_generator("generate_envelope_vectors")


gen = _load_generator()
KEYRING: Any = gen.build_keyring()
NOW_MS: int = gen.NOW_MS
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_FORBIDDEN_IN_NAMES = "/\\\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

content_types = st.sampled_from(
    ["text/plain; charset=utf-8", "image/jpeg", "image/png", "application/pdf", "text/markdown"]
)
filenames = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs"), blacklist_characters=_FORBIDDEN_IN_NAMES
    ),
    max_size=40,
).filter(lambda name: name not in (".", ".."))
parts_strategy = st.lists(
    st.builds(Part, content_types, st.binary(max_size=4096), filenames), min_size=1, max_size=5
)
routes = st.sampled_from(
    [
        ("alice", ("mailbox",)),
        ("mailbox", ("alice",)),
        ("mailbox", ("alice", "bob")),
        ("mailbox", ("bob", "alice", "mallory")),
    ]
)


def _seal(
    parts: list[Part], sender: str, recipients: tuple[str, ...], seed: bytes
) -> envelope_pb2.Envelope:
    return seal_envelope(
        parts,
        sender_keys=KEYRING[sender].keys,
        sender_key_id=KEYRING[sender].verified.id,
        recipients=[KEYRING[r].verified for r in recipients],
        now_ms=NOW_MS,
        rng=gen.SeededRandom(seed),
    )


def _open(envelope: envelope_pb2.Envelope, opener: str, sender: str) -> list[Part]:
    holder = KEYRING[opener]
    opened = open_envelope(
        envelope, holder.keys, holder.verified.id, KEYRING[sender].verified, now_ms=NOW_MS
    )
    return list(opened.parts)


@SETTINGS
@given(parts=parts_strategy, route=routes, seed=st.binary(min_size=1, max_size=8))
def test_round_trip_for_random_parts(
    parts: list[Part], route: tuple[str, tuple[str, ...]], seed: bytes
) -> None:
    sender, recipients = route
    wire = _seal(parts, sender, recipients, seed).SerializeToString()
    expected = [(p.content_type, p.filename, p.data) for p in parts]
    for opener in (*recipients, sender):
        opened = _open(parse_envelope(wire), opener, sender)
        assert [(p.content_type, p.filename, p.data) for p in opened] == expected


def _flipped_fails(wire: bytes, position: int) -> None:
    tampered = bytearray(wire)
    tampered[position // 8] ^= 1 << (position % 8)
    with pytest.raises(CryptoError):
        _open(parse_envelope(bytes(tampered)), "mailbox", "alice")


@SETTINGS
@given(
    parts=st.lists(
        st.builds(Part, content_types, st.binary(max_size=300), filenames), min_size=1, max_size=3
    ),
    seed=st.binary(min_size=1, max_size=8),
    data=st.data(),
)
def test_any_single_flipped_bit_is_rejected(
    parts: list[Part], seed: bytes, data: st.DataObject
) -> None:
    wire = _seal(parts, "alice", ("mailbox",), seed).SerializeToString()
    position = data.draw(st.integers(0, len(wire) * 8 - 1), label="bit")
    _flipped_fails(wire, position)


def test_every_single_bit_of_one_envelope_is_protected() -> None:
    part = Part("text/plain; charset=utf-8", b"hello", "a.txt")
    wire = _seal([part], "alice", ("mailbox",), b"x").SerializeToString()
    for position in range(len(wire) * 8):
        _flipped_fails(wire, position)


def _record(keys: PrivateKeys, subject: str) -> kr.VerifiedKey:
    directory = KEYRING.directory
    record = kr.issue_key_record(
        purpose=kr.RELATIVE_DEVICE,
        subject=subject,
        encryption_key=keys.encryption_key,
        signing_key=keys.signing_key,
        not_before=0,
        not_after=NOW_MS // 1000 + 3600,
        directory_keys=directory.keys,
        directory_key_id=directory.verified.id,
    )
    return kr.verify_key_record(
        record, directory.verified, now_ms=NOW_MS, purpose=kr.RELATIVE_DEVICE
    )


@SETTINGS
@given(
    seed_a=st.binary(min_size=64, max_size=64),
    seed_b=st.binary(min_size=64, max_size=64),
    body=st.binary(max_size=512),
)
def test_sealed_to_a_never_opens_with_b(seed_a: bytes, seed_b: bytes, body: bytes) -> None:
    keys_a = PrivateKeys(x25519_secret=seed_a[:32], ed25519_seed=seed_a[32:])
    keys_b = PrivateKeys(x25519_secret=seed_b[:32], ed25519_seed=seed_b[32:])
    record_a, record_b = _record(keys_a, "account-a"), _record(keys_b, "account-b")
    if keys_a.encryption_key == keys_b.encryption_key:
        return  # the same key: nothing to separate
    alice = KEYRING["alice"]
    envelope = seal_envelope(
        [Part("text/plain; charset=utf-8", body)],
        sender_keys=alice.keys,
        sender_key_id=alice.verified.id,
        recipients=[record_a],
        now_ms=NOW_MS,
        rng=gen.SeededRandom(seed_a + seed_b),
    )
    assert (
        open_envelope(envelope, keys_a, record_a.id, alice.verified, now_ms=NOW_MS).parts[0].data
        == body
    )
    with pytest.raises(EnvelopeError):  # B, honestly, is not addressed
        open_envelope(envelope, keys_b, record_b.id, alice.verified, now_ms=NOW_MS)
    with pytest.raises(DecryptionError):  # B, posing as A, cannot open A's sealed key
        open_envelope(envelope, keys_b, record_a.id, alice.verified, now_ms=NOW_MS)


@SETTINGS
@given(part=st.builds(Part, content_types, st.binary(max_size=512), filenames))
def test_part_plaintext_round_trips(part: Part) -> None:
    encoded = encode_part_plaintext(part)
    assert encoded.startswith(lp(part.filename.encode("utf-8")))
    assert decode_part_plaintext(part.content_type, encoded) == part


@settings(max_examples=300, deadline=None)
@given(
    plaintext=st.one_of(
        st.binary(max_size=80),
        st.builds(lambda name, rest: lp(name) + rest, st.binary(max_size=40), st.binary()),
    )
)
def test_any_decrypted_part_splits_one_way_or_is_refused(plaintext: bytes) -> None:
    """The split is a function of the bytes, and re-encoding gives back exactly those bytes."""
    try:
        part = decode_part_plaintext("application/octet-stream", plaintext)
    except (FormatError, LimitError):
        return
    assert encode_part_plaintext(part) == plaintext


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_never_escape_the_error_tree(data: bytes) -> None:
    try:
        envelope = parse_envelope(data)
        _open(envelope, "mailbox", "alice")
    except CryptoError:
        return
    pytest.fail("random bytes opened as an envelope")
