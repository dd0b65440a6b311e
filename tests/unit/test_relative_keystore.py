"""The relative's encrypted profile: round trip, refusals, file format, mode and locking."""

from __future__ import annotations

import errno
import stat
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealpost.clients.relative import keystore
from sealpost.clients.relative.errors import (
    ProfileBusyError,
    ProfileError,
    ProfileExistsError,
    ProfileFormatError,
    ProfileNotFoundError,
    ProfileVersionTooNewError,
    ProfileVersionTooOldError,
    WeakPassphraseError,
    WrongPassphraseError,
)
from sealpost.clients.relative.keystore import (
    FILE_NAME,
    Profile,
    ProfileData,
    SentRecord,
)
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.passphrase import KDF_INTERACTIVE, KdfParams

PASSPHRASE = "correct horse battery staple"
VERSION_OFFSET = len(keystore.MAGIC)
SALT_OFFSET = VERSION_OFFSET + 1 + 4 + 8


def _data(**changes: object) -> ProfileData:
    data = ProfileData(
        gateway="127.0.0.1:50051",
        ca_pem=b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        directory_pin=bytes(range(32)),
        display_name="فاطمة El Amrani — 王",
        account_id="acct-1",
        key_id=bytes(32),
        keys=PrivateKeys.generate(),
    )
    for name, value in changes.items():
        setattr(data, name, value)
    return data


def _create(folder: Path, data: ProfileData | None = None) -> Profile:
    return Profile.create(folder, PASSPHRASE, data or _data(), kdf=KDF_INTERACTIVE)


def _same(a: ProfileData, b: ProfileData) -> None:
    assert a.keys.x25519_secret == b.keys.x25519_secret
    assert a.keys.ed25519_seed == b.keys.ed25519_seed
    for name in (
        "gateway",
        "ca_pem",
        "directory_pin",
        "display_name",
        "account_id",
        "key_id",
        "inbox_cursor",
        "notice_shown_at_ms",
        "sent",
    ):
        assert getattr(a, name) == getattr(b, name), name


def test_round_trip_keeps_keys_cursor_notice_and_receipts(tmp_path: Path) -> None:
    folder = tmp_path / "profile"
    data = _data()
    with _create(folder, data) as profile:
        profile.record_sent(
            SentRecord(bytes(16), "d-1", 1_000, bytes(range(32)), b"\x0a\x10receipt")
        )
        profile.set_inbox_cursor("42")
        profile.mark_notice_shown(1_234)
        profile.record_sent(
            SentRecord(bytes(16), "d-1", 1_000, bytes(range(32)), b"\x0aproved", 2_000)
        )
    with Profile.open(folder, PASSPHRASE) as reopened:
        _same(reopened.data, data)
        assert reopened.data.inbox_cursor == "42"
        assert reopened.data.notice_shown_at_ms == 1_234
        (record,) = reopened.data.sent  # updated in place, by message id
        assert record.verified_at_ms == 2_000
        assert record.receipt == b"\x0aproved"
        assert reopened.sent_record(bytes(16)) == record
        assert reopened.sent_record(b"\x01" * 16) is None


def test_file_and_folder_modes_and_no_leftovers(tmp_path: Path) -> None:
    folder = tmp_path / "profile"
    with _create(folder) as profile:
        before = profile.path.read_bytes()
        profile.save()
        after = profile.path.read_bytes()
    assert stat.S_IMODE((folder / FILE_NAME).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert before != after  # a fresh nonce on every save
    assert before[: SALT_OFFSET + 16] == after[: SALT_OFFSET + 16]  # same KDF and salt
    assert sorted(p.name for p in folder.iterdir()) == [keystore.LOCK_NAME, FILE_NAME]
    assert b"El Amrani" not in after
    assert b"acct-1" not in after


def test_wrong_passphrase_is_one_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "profile"
    _create(folder).close()
    with pytest.raises(WrongPassphraseError) as wrong:
        Profile.open(folder, PASSPHRASE + "!")
    assert "passphrase is wrong" in wrong.value.explain()
    # The lock is released after a failure: the right passphrase still works.
    Profile.open(folder, PASSPHRASE).close()


def test_unicode_passphrases_are_normalised(tmp_path: Path) -> None:
    folder = tmp_path / "profile"
    composed = "wachtwoord café مرحبا"
    Profile.create(folder, composed, _data(), kdf=KDF_INTERACTIVE).close()
    Profile.open(folder, unicodedata.normalize("NFD", composed)).close()


@pytest.mark.parametrize("offset", [SALT_OFFSET, SALT_OFFSET + 16, -1, -40])
def test_any_altered_byte_after_the_version_fails_like_a_wrong_passphrase(
    tmp_path: Path, offset: int
) -> None:
    folder = tmp_path / "profile"
    _create(folder).close()
    path = folder / FILE_NAME
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(WrongPassphraseError):
        Profile.open(folder, PASSPHRASE)


def test_header_refusals(tmp_path: Path) -> None:
    folder = tmp_path / "profile"
    _create(folder).close()
    path = folder / FILE_NAME
    good = path.read_bytes()

    def opened_with(raw: bytes) -> None:
        path.write_bytes(raw)
        Profile.open(folder, PASSPHRASE).close()

    with pytest.raises(ProfileVersionTooNewError, match="upgrade"):
        opened_with(good[:VERSION_OFFSET] + b"\x02" + good[VERSION_OFFSET + 1 :])
    with pytest.raises(ProfileVersionTooOldError):
        opened_with(good[:VERSION_OFFSET] + b"\x00" + good[VERSION_OFFSET + 1 :])
    with pytest.raises(ProfileFormatError, match="not a Sealpost relative profile"):
        opened_with(b"X" + good[1:])
    with pytest.raises(ProfileFormatError, match="truncated"):
        opened_with(good[: SALT_OFFSET + 8])
    with pytest.raises(ProfileFormatError, match="not a Sealpost"):
        opened_with(b"")
    # A planted cost that would exhaust memory is refused before any hashing.
    huge = good[: VERSION_OFFSET + 5] + (2**40).to_bytes(8, "big") + good[SALT_OFFSET:]
    with pytest.raises(ProfileFormatError, match="outside the accepted range"):
        opened_with(huge)
    # An unknown version is not mistaken for a wrong passphrase.
    assert not issubclass(ProfileVersionTooNewError, WrongPassphraseError)
    opened_with(good)


def test_create_refuses_to_overwrite_and_weak_passphrases(tmp_path: Path) -> None:
    folder = tmp_path / "profile"
    _create(folder).close()
    original = (folder / FILE_NAME).read_bytes()
    with pytest.raises(ProfileExistsError):
        _create(folder)
    assert (folder / FILE_NAME).read_bytes() == original
    for weak in ("", "short"):
        with pytest.raises(WeakPassphraseError):
            Profile.create(tmp_path / "other", weak, _data(), kdf=KDF_INTERACTIVE)
    assert not keystore.profile_exists(tmp_path / "other")
    with pytest.raises(ProfileFormatError):
        Profile.create(tmp_path / "cheap", PASSPHRASE, _data(), kdf=KdfParams(1, 8192))


def test_missing_profile(tmp_path: Path) -> None:
    with pytest.raises(ProfileNotFoundError, match="sealpost relative init"):
        Profile.open(tmp_path / "nothing", PASSPHRASE)


def test_one_program_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keystore, "LOCK_TIMEOUT_SECONDS", 0.2)
    folder = tmp_path / "profile"
    first = _create(folder)
    with pytest.raises(ProfileBusyError):
        Profile.open(folder, PASSPHRASE)
    first.close()
    with pytest.raises(ProfileBusyError):
        first.save()  # a closed profile is not written behind another program's back
    Profile.open(folder, PASSPHRASE).close()


def test_damaged_contents_are_a_format_error() -> None:
    for plaintext in (b"\xff", b"[]", b'{"gateway": 1}'):
        with pytest.raises(ProfileFormatError):
            keystore._decode_contents(plaintext)


_texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@settings(max_examples=50, deadline=None)
@given(
    name=_texts,
    cursor=_texts,
    notice=st.none() | st.integers(0, 2**62),
    sent=st.lists(
        st.builds(
            SentRecord,
            message_id=st.binary(min_size=16, max_size=16),
            detainee_id=_texts,
            accepted_at_ms=st.integers(0, 2**62),
            envelope_digest=st.binary(min_size=32, max_size=32),
            receipt=st.binary(max_size=64),
            verified_at_ms=st.none() | st.integers(0, 2**62),
            problem=_texts,
        ),
        max_size=4,
    ),
)
def test_contents_encoding_round_trips(
    name: str, cursor: str, notice: int | None, sent: list[SentRecord]
) -> None:
    data = _data(display_name=name, inbox_cursor=cursor, notice_shown_at_ms=notice, sent=sent)
    _same(keystore._decode_contents(keystore._encode_contents(data)), data)


def test_a_failed_save_leaves_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "profile"
    with _create(folder) as profile:
        before = profile.path.read_bytes()

        def disk_full(path: Path, data: bytes) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(keystore, "_write_atomically", disk_full)
        with pytest.raises(ProfileError, match="previous version is intact"):
            profile.set_inbox_cursor("7")
        assert profile.path.read_bytes() == before
    with Profile.open(folder, PASSPHRASE) as reopened:
        assert reopened.data.inbox_cursor == ""
