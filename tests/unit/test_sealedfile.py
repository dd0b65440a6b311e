"""What every passphrase-sealed file follows (clients/sealedfile.py), and its one error tree."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from sealpost._internal.files import FileLock, write_atomic
from sealpost.clients import sealedfile
from sealpost.clients.relative import errors as relative_errors
from sealpost.clients.sealedfile import (
    GENERIC_ERRORS,
    BinaryFormat,
    DocumentFormat,
    FileErrors,
    JsonFields,
    SealedFileBusyError,
    SealedFileError,
    SealedFileExistsError,
    SealedFileFormatError,
    SealedFileNotFoundError,
    SealedFileVersionTooNewError,
    SealedFileVersionTooOldError,
    WeakPassphraseError,
    WrongPassphraseError,
)
from sealpost.clients.terminal import errors as terminal_errors
from sealpost.crypto.passphrase import KDF_INTERACTIVE, KdfParams

PASSPHRASE = "correct horse battery staple"
DOCUMENT = DocumentFormat(what="test document", kind="sealpost-test-document")
BINARY = BinaryFormat(what="test file", magic=b"SEALPOST-TESTING")


@pytest.mark.parametrize("errors", [relative_errors.PROFILE_ERRORS, terminal_errors.PROFILE_ERRORS])
def test_each_clients_classes_are_also_the_generic_ones(errors: FileErrors) -> None:
    for name in FileErrors.__dataclass_fields__:
        assert issubclass(getattr(errors, name), getattr(GENERIC_ERRORS, name)), name
        assert issubclass(getattr(errors, name), errors.base), name
    assert issubclass(errors.base, SealedFileError)
    assert not issubclass(errors.too_new, errors.wrong_passphrase)


def test_the_clients_keep_their_own_roots() -> None:
    assert issubclass(relative_errors.ProfileError, relative_errors.RelativeError)
    assert issubclass(terminal_errors.ProfileError, terminal_errors.TerminalError)
    assert issubclass(relative_errors.WrongPassphraseError, WrongPassphraseError)
    assert issubclass(terminal_errors.ProfileVersionTooOldError, SealedFileVersionTooOldError)


def test_a_document_round_trip_with_the_generic_errors(tmp_path: Path) -> None:
    key = DOCUMENT.new_key(PASSPHRASE, KDF_INTERACTIVE)
    path = tmp_path / "document.json"
    DOCUMENT.write(path, DOCUMENT.seal(key, {"name": "x"}, b"secret"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    opened = DOCUMENT.open(DOCUMENT.read(path, "missing"), PASSPHRASE)
    assert (opened.body, opened.plaintext) == ({"name": "x"}, b"secret")
    with pytest.raises(WrongPassphraseError) as wrong:
        DOCUMENT.open(path.read_bytes(), PASSPHRASE + "!")
    assert type(wrong.value) is WrongPassphraseError
    assert wrong.value.explain() == (
        "the passphrase does not open the test document (or the file was altered)"
    )
    with pytest.raises(SealedFileNotFoundError, match="missing"):
        DOCUMENT.read(tmp_path / "nothing.json", "missing")
    with pytest.raises(SealedFileExistsError, match="kept"):
        DOCUMENT.refuse_existing(path, "kept")


def test_a_binary_round_trip_and_header_checks() -> None:
    key = BINARY.new_key(PASSPHRASE, KDF_INTERACTIVE)
    raw = BINARY.seal(key, b"contents")
    assert raw.startswith(b"SEALPOST-TESTING\x01")
    assert BINARY.open(raw, PASSPHRASE).plaintext == b"contents"
    with pytest.raises(SealedFileFormatError, match="not a Sealpost test file"):
        BINARY.open(b"SEALPOST-PROFILE" + raw[16:], PASSPHRASE)
    with pytest.raises(SealedFileVersionTooNewError, match="upgrade Sealpost"):
        BINARY.open(raw[:16] + b"\x02" + raw[17:], PASSPHRASE)
    with pytest.raises(SealedFileFormatError, match="truncated"):
        BINARY.open(raw[:60], PASSPHRASE)
    with pytest.raises(ValueError, match="16 bytes"):
        BinaryFormat(what="x", magic=b"SHORT")


def test_passphrases_for_new_and_for_existing_files() -> None:
    for weak in ("", "short", "\u0065\u0301" * 4):  # eight code points, four characters in NFC
        with pytest.raises(WeakPassphraseError):
            sealedfile.check_new_passphrase(weak)
    with pytest.raises(WeakPassphraseError, match="not valid Unicode"):
        sealedfile.check_new_passphrase("\ud800" * 8)
    raw = DOCUMENT.seal(DOCUMENT.new_key(PASSPHRASE, KDF_INTERACTIVE), {}, b"")
    # Opening, an empty or broken passphrase is simply one that does not open the file.
    for given in ("", "\ud800" * 8):
        with pytest.raises(WrongPassphraseError):
            DOCUMENT.open(raw, given)


def test_costs_out_of_range_are_a_format_error_before_any_hashing() -> None:
    with pytest.raises(SealedFileFormatError, match="outside the accepted range"):
        DOCUMENT.new_key(PASSPHRASE, KdfParams(1, 8192))
    document = json.loads(DOCUMENT.seal(DOCUMENT.new_key(PASSPHRASE, KDF_INTERACTIVE), {}, b""))
    document["kdf"]["memlimit"] = 1 << 40
    started = time.monotonic()
    with pytest.raises(SealedFileFormatError, match="cost"):
        DOCUMENT.open(json.dumps(document).encode(), PASSPHRASE)
    assert time.monotonic() - started < 1


def test_versions_are_refused_with_their_own_errors() -> None:
    sealedfile.check_version(1, 1, 1, "thing")
    with pytest.raises(SealedFileVersionTooOldError, match="thing format version 0 is no longer"):
        sealedfile.check_version(0, 1, 1, "thing")
    with pytest.raises(SealedFileVersionTooNewError, match=r"\(up to 1\): upgrade Sealpost"):
        sealedfile.check_version(2, 1, 1, "thing")


def test_json_fields_name_what_is_wrong() -> None:
    fields = JsonFields(
        {"n": 1, "b": True, "t": "x", "h": "zz", "s": "!"}, "here", SealedFileFormatError
    )
    assert fields.integer("n") == 1
    assert fields.optional_integer("missing") is None
    for read in (
        lambda: fields.integer("b"),  # a bool is not a number
        lambda: fields.text("n"),
        lambda: fields.hex("h"),
        lambda: fields.b64("s"),
        lambda: fields.items("t"),
    ):
        with pytest.raises(SealedFileFormatError, match="here: field"):
            read()
    with pytest.raises(SealedFileFormatError, match="not a JSON object"):
        JsonFields([], "here", SealedFileFormatError)


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"old")
    with pytest.raises(SealedFileError, match="previous version is intact"):
        DOCUMENT.write(tmp_path / "no such folder" / "file", b"new")
    assert path.read_bytes() == b"old"


def _held(lock: FileLock) -> bool:
    return lock.held


def test_a_lock_is_refused_at_once_or_after_waiting(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with DOCUMENT.lock(path, wait=0, busy="in use") as held:
        assert _held(held)
        with pytest.raises(SealedFileBusyError, match="in use"):
            DOCUMENT.lock(path, wait=0, busy="in use")
        started = time.monotonic()
        with pytest.raises(SealedFileBusyError):
            DOCUMENT.lock(path, wait=0.2, busy="in use")
        assert time.monotonic() - started >= 0.2
    assert not _held(held)
    held.release()  # again: nothing happens
    with pytest.raises(SealedFileError, match="cannot use"):
        DOCUMENT.lock(tmp_path / "no such folder" / "lock", wait=0, busy="in use")


def test_a_waited_for_lock_is_taken_once_let_go(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    first = FileLock.acquire(path, wait=0)
    timer = threading.Timer(0.1, first.release)
    timer.start()
    with FileLock.acquire(path, wait=5):
        pass
    timer.join()


def test_atomic_writes_have_exactly_the_mode_asked_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o277)  # would leave the owner read-only
    try:
        write_atomic(tmp_path / "file", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "file").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
