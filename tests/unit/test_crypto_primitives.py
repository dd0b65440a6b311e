"""Framing, domains and the libsodium additions the envelope builds on."""

from __future__ import annotations

import hashlib

import nacl.bindings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealpost.crypto import _sodium, domains
from sealpost.crypto._framing import framed, framed_sha256, lp, u64, unframe
from sealpost.crypto.errors import DecryptionError, FormatError

# Curve25519 points of small order and their non-canonical encodings (0, 1, the points of
# order 8, p - 1, p, p + 1): the list libsodium's X25519 code refuses (has_small_order).
LOW_ORDER_X25519 = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


def test_lp_and_u64_are_big_endian_length_prefixes() -> None:
    assert u64(1) == b"\x00\x00\x00\x00\x00\x00\x00\x01"
    assert u64(2**64 - 1) == b"\xff" * 8
    assert lp(b"abc") == b"\x00" * 7 + b"\x03abc"
    assert lp(b"") == b"\x00" * 8


def test_framed_prefixes_bytes_but_not_integers() -> None:
    assert framed(b"d", b"xy", 7) == lp(b"d") + lp(b"xy") + u64(7)


def test_framed_refuses_bool() -> None:
    with pytest.raises(TypeError):
        framed(b"d", True)


@given(st.lists(st.one_of(st.binary(max_size=64), st.integers(0, 2**64 - 1)), max_size=6))
@settings(max_examples=100)
def test_framed_sha256_streams_the_same_bytes(items: list[bytes | int]) -> None:
    expected = hashlib.sha256(framed(b"domain", *items)).digest()
    assert framed_sha256(b"domain", items) == expected
    assert _sodium.sha256(framed(b"domain", *items)) == expected


def test_framing_is_unambiguous() -> None:
    # Moving a byte between items changes the framing.
    assert framed(b"d", b"ab", b"c") != framed(b"d", b"a", b"bc")
    assert framed(b"d", b"abc") != framed(b"d", b"ab", b"c")


@given(st.lists(st.binary(max_size=40), min_size=0, max_size=4))
@settings(max_examples=100)
def test_unframe_inverts_framed(items: list[bytes]) -> None:
    assert unframe(framed(b"dom", *items), b"dom", len(items)) == items


@pytest.mark.parametrize(
    ("data", "count"),
    [
        (b"", 1),
        (framed(b"dom", b"a"), 2),  # too few items
        (framed(b"dom", b"a") + b"\x00", 1),  # trailing byte
        (framed(b"dom", b"a")[:-1], 1),  # truncated item
        (framed(b"other", b"a"), 1),  # wrong domain
        (u64(2**63) + b"dom", 0),  # absurd length
    ],
)
def test_unframe_refuses_malformed(data: bytes, count: int) -> None:
    with pytest.raises(FormatError):
        unframe(data, b"dom", count)


def test_domains_are_distinct_ascii_and_versioned() -> None:
    assert len(set(domains.ALL)) == len(domains.ALL)
    for domain in domains.ALL:
        assert domain.isascii()
        assert domain.startswith(b"sealpost/v1/")


def test_seal_with_ephemeral_is_libsodiums_sealed_box() -> None:
    recipient_public, recipient_secret = nacl.bindings.crypto_box_keypair()
    ephemeral_secret = bytes(range(32))
    sealed = _sodium.seal_with_ephemeral(recipient_public, b"k" * 32, ephemeral_secret)
    assert len(sealed) == 80
    # libsodium's own crypto_box_seal_open accepts it ...
    assert nacl.bindings.crypto_box_seal_open(sealed, recipient_public, recipient_secret) == (
        b"k" * 32
    )
    # ... and it is the documented construction.
    ephemeral_public = nacl.bindings.crypto_scalarmult_base(ephemeral_secret)
    nonce = hashlib.blake2b(ephemeral_public + recipient_public, digest_size=24).digest()
    boxed = nacl.bindings.crypto_box_easy(b"k" * 32, nonce, recipient_public, ephemeral_secret)
    assert sealed == ephemeral_public + boxed
    assert _sodium.seal_open(recipient_secret, sealed) == b"k" * 32


def test_seal_with_ephemeral_refuses_bad_keys() -> None:
    with pytest.raises(DecryptionError):
        _sodium.seal_with_ephemeral(b"short", b"m", bytes(32))
    with pytest.raises(DecryptionError):
        _sodium.seal_with_ephemeral(bytes(32), b"m", b"short")
    for point in LOW_ORDER_X25519:
        with pytest.raises(DecryptionError):
            _sodium.seal_with_ephemeral(point, b"m", bytes(range(32)))


def test_low_order_points_are_detected() -> None:
    for point in LOW_ORDER_X25519:
        assert _sodium.x25519_is_low_order(point), point.hex()
    assert _sodium.x25519_is_low_order(b"\x09" * 31)  # wrong length counts as unusable
    public, _secret = nacl.bindings.crypto_box_keypair()
    assert not _sodium.x25519_is_low_order(public)


def test_ed25519_public_validity() -> None:
    public = _sodium.ed25519_public_from_seed(b"s" * 32)
    assert _sodium.ed25519_public_is_valid(public)
    assert not _sodium.ed25519_public_is_valid(bytes(32))
    assert not _sodium.ed25519_public_is_valid(public[:31])
    # The identity point (small order) is refused.
    assert not _sodium.ed25519_public_is_valid((1).to_bytes(32, "little"))
