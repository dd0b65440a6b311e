"""Keys derived from a passphrase (crypto/passphrase.py): costs, derivation, both sealings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import nacl.bindings
import nacl.pwhash
import pytest

from sealpost.crypto.errors import DecryptionError, FormatError, LimitError
from sealpost.crypto.passphrase import (
    KDF_INTERACTIVE,
    KDF_MODERATE,
    KDF_SENSITIVE,
    NONCE_BYTES,
    SALT_BYTES,
    SECRETBOX_NONCE_BYTES,
    SECRETBOX_TAG_BYTES,
    KdfParams,
    PassphraseKey,
    check_kdf,
    kdf_accepted,
)

SECRET = "wachtwoord café".encode()
SALT = bytes(range(SALT_BYTES))


class _Stream:
    """A deterministic rng."""

    def __init__(self) -> None:
        self.draws = 0

    def __call__(self, size: int) -> bytes:
        self.draws += 1
        return hashlib.shake_256(bytes([self.draws])).digest(size)


def _key() -> PassphraseKey:
    return PassphraseKey.derive(SECRET, SALT, KDF_INTERACTIVE)


def _argon2id(salt: bytes = SALT) -> bytes:
    """The key as PyNaCl's own Argon2id recipe derives it, apart from the code under test."""
    return nacl.pwhash.argon2id.kdf(
        32, SECRET, salt, opslimit=KDF_INTERACTIVE.opslimit, memlimit=KDF_INTERACTIVE.memlimit
    )


def test_accepted_costs_are_interactive_to_sensitive() -> None:
    for kdf in (KDF_INTERACTIVE, KDF_MODERATE, KDF_SENSITIVE):
        assert kdf_accepted(kdf)
        check_kdf(kdf)
    for kdf in (
        KdfParams(KDF_INTERACTIVE.opslimit - 1, KDF_INTERACTIVE.memlimit),
        KdfParams(KDF_INTERACTIVE.opslimit, KDF_INTERACTIVE.memlimit - 1),
        KdfParams(KDF_SENSITIVE.opslimit + 1, KDF_SENSITIVE.memlimit),
        KdfParams(KDF_SENSITIVE.opslimit, 1 << 40),
    ):
        assert not kdf_accepted(kdf)
        with pytest.raises(LimitError, match="outside the accepted range"):
            check_kdf(kdf)


def test_a_cost_out_of_range_or_a_bad_salt_is_refused_before_hashing() -> None:
    with pytest.raises(LimitError):
        PassphraseKey.derive(SECRET, SALT, KdfParams(KDF_SENSITIVE.opslimit, 1 << 40))
    with pytest.raises(LimitError):
        PassphraseKey.new(SECRET, KdfParams(1, 8192))
    with pytest.raises(FormatError):
        PassphraseKey.derive(SECRET, SALT[:-1], KDF_INTERACTIVE)


def test_a_new_key_draws_its_salt_and_derives_like_derive() -> None:
    fresh = PassphraseKey.new(SECRET, KDF_INTERACTIVE, _Stream())
    assert fresh.salt == _Stream()(SALT_BYTES)
    assert fresh.kdf == KDF_INTERACTIVE
    nonce, sealed = fresh.seal(b"m", b"ad")
    assert PassphraseKey.derive(SECRET, fresh.salt, KDF_INTERACTIVE).open(nonce, sealed, b"ad")
    assert PassphraseKey.new(SECRET, KDF_INTERACTIVE).salt != fresh.salt


def test_seal_is_xchacha20_poly1305_under_the_argon2id_key() -> None:
    nonce, sealed = _key().seal(b"secrets", b"header", _Stream())
    assert nonce == _Stream()(NONCE_BYTES)
    expected = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        b"secrets", b"header", nonce, _argon2id()
    )
    assert sealed == expected
    assert _key().open(nonce, sealed, b"header") == b"secrets"


def test_seal_secretbox_is_crypto_secretbox_under_the_argon2id_key() -> None:
    nonce, box = _key().seal_secretbox(b"contents", _Stream())
    assert nonce == _Stream()(SECRETBOX_NONCE_BYTES)
    assert box == nacl.bindings.crypto_secretbox_easy(b"contents", nonce, _argon2id())
    assert len(box) == len(b"contents") + SECRETBOX_TAG_BYTES
    assert _key().open_secretbox(nonce, box) == b"contents"


def test_every_change_fails_to_open_alike() -> None:
    key = _key()
    nonce, sealed = key.seal(b"secrets", b"header")
    box_nonce, box = key.seal_secretbox(b"contents")
    other = PassphraseKey.derive(b"another passphrase", SALT, KDF_INTERACTIVE)
    attempts: tuple[Callable[[], bytes], ...] = (
        lambda: other.open(nonce, sealed, b"header"),
        lambda: key.open(nonce, sealed, b"other header"),
        lambda: key.open(bytes(NONCE_BYTES), sealed, b"header"),
        lambda: key.open(nonce, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"header"),
        lambda: key.open(nonce[:-1], sealed, b"header"),
        lambda: other.open_secretbox(box_nonce, box),
        lambda: key.open_secretbox(bytes(SECRETBOX_NONCE_BYTES), box),
        lambda: key.open_secretbox(box_nonce, bytes([box[0] ^ 1]) + box[1:]),
        lambda: key.open_secretbox(box_nonce, box[: SECRETBOX_TAG_BYTES - 1]),
    )
    for attempt in attempts:
        with pytest.raises(DecryptionError) as refused:
            attempt()
        assert str(refused.value) == "cannot open"


def test_fresh_nonces_and_no_key_in_repr() -> None:
    key = _key()
    assert key.seal(b"m", b"")[0] != key.seal(b"m", b"")[0]
    assert key.seal_secretbox(b"m")[0] != key.seal_secretbox(b"m")[0]
    shown = repr(key) + str(key)
    assert _argon2id().hex() not in shown
    assert "opslimit=2" in shown
