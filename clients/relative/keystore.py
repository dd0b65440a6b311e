"""The relative's profile on disk: device keys, account, pinned directory and local history.

One file, ``profile.sealpost`` in the profile folder, encrypted under a passphrase:
Argon2id (libsodium crypto_pwhash) turns the passphrase and a random salt into a key,
and XSalsa20-Poly1305 (crypto_secretbox) seals the contents with it. File layout,
version 1 (integers big-endian)::

    magic "SEALPOST-PROFILE" (16) | version (1) | opslimit (4) | memlimit (8)
    | salt (16) | nonce (24) | secretbox(JSON contents) (16-byte tag first)

Every header byte after the version feeds the key or the nonce, so an altered header
fails authentication like a wrong passphrase. Writes are atomic (temporary file, fsync,
rename) with mode 0600; a lock file keeps two programs from using one profile at once.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import struct
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

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
from sealpost.crypto import _sodium
from sealpost.crypto.errors import DecryptionError, FormatError
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.passphrase import (
    KDF_MODERATE,
    KdfParams,
    derive_key,
    kdf_accepted,
)

FILE_NAME: Final = "profile.sealpost"
LOCK_NAME: Final = ".lock"
MAGIC: Final = b"SEALPOST-PROFILE"
#: The format this code writes; the byte after the magic.
PROFILE_VERSION: Final = 1
#: The oldest format still read (0 was never written).
MIN_PROFILE_VERSION: Final = 1
#: Characters a new passphrase needs at least (after NFC normalisation).
MIN_PASSPHRASE_CHARS: Final = 8
#: How long opening waits for another program to let go of the profile.
LOCK_TIMEOUT_SECONDS = 10.0

_PREFIX = struct.Struct(">16sB")  # magic, version
_KDF = struct.Struct(">IQ")  # opslimit, memlimit
_HEADER_BYTES: Final = (
    _PREFIX.size + _KDF.size + _sodium.ARGON2ID_SALT_BYTES + _sodium.SECRETBOX_NONCE_BYTES
)


@dataclass
class SentRecord:
    """One message this device sent, and the receipt that proves the gateway logged it."""

    message_id: bytes
    detainee_id: str
    #: When the gateway accepted it (milliseconds since the epoch).
    accepted_at_ms: int
    envelope_digest: bytes
    #: A serialised ``sealpost.v1.Receipt``: with tree head and proof once verified.
    receipt: bytes
    #: When the receipt's proof verified; None while unconfirmed or after a failure.
    verified_at_ms: int | None = None
    #: Why the last verification failed ("" when it did not).
    problem: str = ""


@dataclass
class ProfileData:
    """What a profile holds."""

    gateway: str
    ca_pem: bytes
    directory_pin: bytes
    display_name: str
    account_id: str
    key_id: bytes
    keys: PrivateKeys
    #: Resume point of the inbox: replies up to here reached this device.
    inbox_cursor: str = ""
    #: When the review notice was shown (milliseconds); None before the first message.
    notice_shown_at_ms: int | None = None
    sent: list[SentRecord] = field(default_factory=list)


def check_new_passphrase(passphrase: str) -> None:
    """Raise WeakPassphraseError unless ``passphrase`` may protect a new profile."""
    _passphrase_bytes(passphrase)
    if len(unicodedata.normalize("NFC", passphrase)) < MIN_PASSPHRASE_CHARS:
        raise WeakPassphraseError(
            f"choose a passphrase of at least {MIN_PASSPHRASE_CHARS} characters"
        )


def profile_exists(folder: Path) -> bool:
    """True when ``folder`` holds a profile file."""
    return (folder / FILE_NAME).exists()


class Profile:
    """An open, unlocked profile; ``save`` writes it back encrypted under the same passphrase."""

    def __init__(
        self,
        folder: Path,
        data: ProfileData,
        *,
        key: bytes,
        salt: bytes,
        kdf: KdfParams,
        lock_fd: int,
    ) -> None:
        """Use ``Profile.create`` or ``Profile.open``."""
        self.folder = folder
        self.data = data
        self._key = key
        self._salt = salt
        self._kdf = kdf
        self._lock_fd: int | None = lock_fd

    @property
    def path(self) -> Path:
        """The encrypted profile file."""
        return self.folder / FILE_NAME

    @classmethod
    def create(
        cls, folder: Path, passphrase: str, data: ProfileData, *, kdf: KdfParams = KDF_MODERATE
    ) -> Profile:
        """Write a new profile into ``folder`` (made with mode 0700); never overwrites one."""
        check_new_passphrase(passphrase)
        secret = _passphrase_bytes(passphrase)
        _check_kdf(kdf)
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ProfileError(f"cannot create {folder}: {exc.strerror or exc}") from exc
        lock_fd = _lock(folder)
        try:
            if profile_exists(folder):
                raise ProfileExistsError(f"{folder} already holds a profile; it is not replaced")
            salt = _sodium.random_bytes(_sodium.ARGON2ID_SALT_BYTES)
            key = _derive(secret, salt, kdf)
            profile = cls(folder, data, key=key, salt=salt, kdf=kdf, lock_fd=lock_fd)
            profile.save()
        except BaseException:
            _unlock(lock_fd)
            raise
        return profile

    @classmethod
    def open(cls, folder: Path, passphrase: str) -> Profile:
        """Read and decrypt the profile in ``folder``; the lock is held until ``close``."""
        if not profile_exists(folder):
            raise ProfileNotFoundError(
                f"no profile in {folder}: create one with `sealpost relative init`"
            )
        secret = _passphrase_bytes(passphrase)
        lock_fd = _lock(folder)
        try:
            try:
                raw = (folder / FILE_NAME).read_bytes()
            except OSError as exc:
                raise ProfileError(f"cannot read {folder / FILE_NAME}: {exc.strerror}") from exc
            kdf, salt, nonce, box = _parse_file(raw)
            key = _derive(secret, salt, kdf)
            try:
                plaintext = _sodium.secretbox_decrypt(key, nonce, box)
            except DecryptionError as exc:
                raise WrongPassphraseError("the passphrase does not open the profile") from exc
            data = _decode_contents(plaintext)
        except BaseException:
            _unlock(lock_fd)
            raise
        return cls(folder, data, key=key, salt=salt, kdf=kdf, lock_fd=lock_fd)

    def save(self) -> None:
        """Encrypt the contents with a fresh nonce and replace the file atomically."""
        if self._lock_fd is None:
            raise ProfileBusyError("the profile was closed")
        nonce = _sodium.random_bytes(_sodium.SECRETBOX_NONCE_BYTES)
        header = (
            _PREFIX.pack(MAGIC, PROFILE_VERSION)
            + _KDF.pack(self._kdf.opslimit, self._kdf.memlimit)
            + self._salt
            + nonce
        )
        box = _sodium.secretbox_encrypt(self._key, nonce, _encode_contents(self.data))
        try:
            _write_atomically(self.path, header + box)
        except OSError as exc:
            raise ProfileError(
                f"cannot save {self.path}: {exc.strerror or exc}; the previous version is intact"
            ) from exc

    def close(self) -> None:
        """Let go of the profile (other programs may open it)."""
        if self._lock_fd is not None:
            _unlock(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Profile:
        """Use in a ``with`` block to close it reliably."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close."""
        self.close()

    # ----------------------------------------------------------------- updates (saved at once)

    def record_sent(self, record: SentRecord) -> None:
        """Add or update the record of a sent message, by message id, and save."""
        for index, existing in enumerate(self.data.sent):
            if existing.message_id == record.message_id:
                self.data.sent[index] = record
                break
        else:
            self.data.sent.append(record)
        self.save()

    def sent_record(self, message_id: bytes) -> SentRecord | None:
        """The record of one sent message, if this device sent it."""
        for record in self.data.sent:
            if record.message_id == message_id:
                return record
        return None

    def set_inbox_cursor(self, cursor: str) -> None:
        """Remember that replies up to ``cursor`` reached this device, and save."""
        self.data.inbox_cursor = cursor
        self.save()

    def mark_notice_shown(self, now_ms: int) -> None:
        """Record that the review notice was shown, and save."""
        self.data.notice_shown_at_ms = now_ms
        self.save()


# --------------------------------------------------------------------------- file format


def _passphrase_bytes(passphrase: str) -> bytes:
    """NFC-normalised UTF-8, so the same passphrase typed on any keyboard gives one key."""
    if not passphrase:
        raise WeakPassphraseError("the passphrase is empty")
    try:
        return unicodedata.normalize("NFC", passphrase).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WeakPassphraseError("the passphrase is not valid Unicode text") from exc


def _check_kdf(kdf: KdfParams) -> None:
    if not kdf_accepted(kdf):
        raise ProfileFormatError(
            f"Argon2id cost opslimit={kdf.opslimit} memlimit={kdf.memlimit} is outside the "
            "accepted range (libsodium INTERACTIVE to SENSITIVE)"
        )


def _derive(secret: bytes, salt: bytes, kdf: KdfParams) -> bytes:
    return derive_key(secret, salt, kdf)


def _parse_file(raw: bytes) -> tuple[KdfParams, bytes, bytes, bytes]:
    """Header checks in order: magic, version, then the version-1 layout and KDF bounds."""
    if len(raw) < _PREFIX.size or raw[: len(MAGIC)] != MAGIC:
        raise ProfileFormatError("this file is not a Sealpost relative profile")
    version = raw[len(MAGIC)]
    if version < MIN_PROFILE_VERSION:
        raise ProfileVersionTooOldError(f"profile format version {version} is no longer read")
    if version > PROFILE_VERSION:
        raise ProfileVersionTooNewError(
            f"profile format version {version} is newer than this program reads "
            f"(up to {PROFILE_VERSION}): upgrade Sealpost"
        )
    if len(raw) < _HEADER_BYTES + _sodium.SECRETBOX_MAC_BYTES:
        raise ProfileFormatError("the profile file is truncated")
    offset = _PREFIX.size
    opslimit, memlimit = _KDF.unpack_from(raw, offset)
    offset += _KDF.size
    salt = raw[offset : offset + _sodium.ARGON2ID_SALT_BYTES]
    offset += _sodium.ARGON2ID_SALT_BYTES
    nonce = raw[offset : offset + _sodium.SECRETBOX_NONCE_BYTES]
    offset += _sodium.SECRETBOX_NONCE_BYTES
    kdf = KdfParams(opslimit, memlimit)
    _check_kdf(kdf)
    return kdf, salt, nonce, raw[offset:]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encode_contents(data: ProfileData) -> bytes:
    document = {
        "gateway": data.gateway,
        "ca_pem": _b64(data.ca_pem),
        "directory_pin": data.directory_pin.hex(),
        "display_name": data.display_name,
        "account_id": data.account_id,
        "key_id": data.key_id.hex(),
        "x25519_secret": data.keys.x25519_secret.hex(),
        "ed25519_seed": data.keys.ed25519_seed.hex(),
        "inbox_cursor": data.inbox_cursor,
        "notice_shown_at_ms": data.notice_shown_at_ms,
        "sent": [
            {
                "message_id": r.message_id.hex(),
                "detainee_id": r.detainee_id,
                "accepted_at_ms": r.accepted_at_ms,
                "envelope_digest": r.envelope_digest.hex(),
                "receipt": _b64(r.receipt),
                "verified_at_ms": r.verified_at_ms,
                "problem": r.problem,
            }
            for r in data.sent
        ],
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _Reader:
    """Typed access to the decrypted JSON; any surprise is a ProfileFormatError."""

    def __init__(self, document: object, where: str) -> None:
        if not isinstance(document, dict):
            raise ProfileFormatError(f"the profile's {where} is not an object")
        self._document: dict[str, Any] = document
        self._where = where

    def _get(self, name: str, kind: type | tuple[type, ...]) -> Any:
        value = self._document.get(name)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ProfileFormatError(f"the profile's {self._where}.{name} is missing or damaged")
        return value

    def text(self, name: str) -> str:
        value: str = self._get(name, str)
        return value

    def integer(self, name: str) -> int:
        value: int = self._get(name, int)
        return value

    def optional_integer(self, name: str) -> int | None:
        if self._document.get(name) is None:
            return None
        return self.integer(name)

    def hex(self, name: str) -> bytes:
        try:
            return bytes.fromhex(self.text(name))
        except ValueError as exc:
            raise ProfileFormatError(f"the profile's {self._where}.{name} is damaged") from exc

    def b64(self, name: str) -> bytes:
        try:
            return base64.b64decode(self.text(name), validate=True)
        except ValueError as exc:
            raise ProfileFormatError(f"the profile's {self._where}.{name} is damaged") from exc

    def items(self, name: str) -> list[object]:
        value: list[object] = self._get(name, list)
        return value


def _decode_contents(plaintext: bytes) -> ProfileData:
    try:
        document = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileFormatError("the profile's contents are damaged") from exc
    top = _Reader(document, "contents")
    sent = []
    for item in top.items("sent"):
        entry = _Reader(item, "sent record")
        sent.append(
            SentRecord(
                message_id=entry.hex("message_id"),
                detainee_id=entry.text("detainee_id"),
                accepted_at_ms=entry.integer("accepted_at_ms"),
                envelope_digest=entry.hex("envelope_digest"),
                receipt=entry.b64("receipt"),
                verified_at_ms=entry.optional_integer("verified_at_ms"),
                problem=entry.text("problem"),
            )
        )
    try:
        keys = PrivateKeys(
            x25519_secret=top.hex("x25519_secret"), ed25519_seed=top.hex("ed25519_seed")
        )
    except FormatError as exc:
        raise ProfileFormatError("the profile's device keys are damaged") from exc
    return ProfileData(
        gateway=top.text("gateway"),
        ca_pem=top.b64("ca_pem"),
        directory_pin=top.hex("directory_pin"),
        display_name=top.text("display_name"),
        account_id=top.text("account_id"),
        key_id=top.hex("key_id"),
        keys=keys,
        inbox_cursor=top.text("inbox_cursor"),
        notice_shown_at_ms=top.optional_integer("notice_shown_at_ms"),
        sent=sent,
    )


# --------------------------------------------------------------------------- files and locks


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a temporary sibling (0600), fsync it, rename it over ``path``, fsync the folder."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    folder_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder_fd)
    finally:
        os.close(folder_fd)


def _lock(folder: Path) -> int:
    """An exclusive lock on the profile folder, waiting up to LOCK_TIMEOUT_SECONDS."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ProfileError(f"cannot use {folder}: {exc.strerror or exc}") from exc
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise ProfileBusyError(
                    f"the profile in {folder} is in use by another Sealpost program"
                ) from None
            time.sleep(0.05)
        else:
            return fd


def _unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
