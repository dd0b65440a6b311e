"""The relative's profile on disk: device keys, account, pinned directory and local history.

One file, ``profile.sealpost`` in the profile folder, encrypted under a passphrase:
Argon2id (libsodium crypto_pwhash) turns the passphrase and a random salt into a key,
and XSalsa20-Poly1305 (crypto_secretbox) seals the contents, JSON, with it. The file is
in the binary format of ``sealpost.clients.sealedfile``, version 1, with the magic
"SEALPOST-PROFILE"; that module holds the layout and the rules every sealed file follows
(atomic writes with mode 0600, Argon2id costs, versions, one error for a wrong passphrase
or an altered file). A lock file keeps two programs from using one profile at once.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final

from sealpost._internal.files import FileLock
from sealpost._internal.files import write_atomic as _write_atomically
from sealpost.clients import sealedfile
from sealpost.clients.relative.errors import (
    PROFILE_ERRORS,
    ProfileBusyError,
    ProfileError,
    ProfileFormatError,
)
from sealpost.crypto.errors import FormatError
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.passphrase import KDF_MODERATE, KdfParams, PassphraseKey

FILE_NAME: Final = "profile.sealpost"
LOCK_NAME: Final = ".lock"
MAGIC: Final = b"SEALPOST-PROFILE"
#: How long opening waits for another program to let go of the profile.
LOCK_TIMEOUT_SECONDS = 10.0

#: The relative's profile file: the binary sealed format under this magic.
PROFILE_FILE: Final = sealedfile.BinaryFormat(
    what="relative profile", errors=PROFILE_ERRORS, magic=MAGIC
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
    sealedfile.check_new_passphrase(passphrase, PROFILE_ERRORS)


def profile_exists(folder: Path) -> bool:
    """True when ``folder`` holds a profile file."""
    return (folder / FILE_NAME).exists()


class Profile:
    """An open, unlocked profile; ``save`` writes it back encrypted under the same passphrase."""

    def __init__(
        self, folder: Path, data: ProfileData, *, key: PassphraseKey, lock: FileLock
    ) -> None:
        """Use ``Profile.create`` or ``Profile.open``."""
        self.folder = folder
        self.data = data
        self._key = key
        self._lock = lock

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
        sealedfile.check_cost(kdf, PROFILE_ERRORS)
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ProfileError(f"cannot create {folder}: {exc.strerror or exc}") from exc
        lock = _lock(folder)
        try:
            PROFILE_FILE.refuse_existing(
                folder / FILE_NAME, f"{folder} already holds a profile; it is not replaced"
            )
            profile = cls(folder, data, key=PROFILE_FILE.new_key(passphrase, kdf), lock=lock)
            profile.save()
        except BaseException:
            lock.release()
            raise
        return profile

    @classmethod
    def open(cls, folder: Path, passphrase: str) -> Profile:
        """Read and decrypt the profile in ``folder``; the lock is held until ``close``."""
        missing = f"no profile in {folder}: create one with `sealpost relative init`"
        if not profile_exists(folder):
            raise PROFILE_ERRORS.not_found(missing)
        lock = _lock(folder)
        try:
            opened = PROFILE_FILE.open(PROFILE_FILE.read(folder / FILE_NAME, missing), passphrase)
            data = _decode_contents(opened.plaintext)
        except BaseException:
            lock.release()
            raise
        return cls(folder, data, key=opened.key, lock=lock)

    def save(self) -> None:
        """Encrypt the contents with a fresh nonce and replace the file atomically."""
        if not self._lock.held:
            raise ProfileBusyError("the profile was closed")
        data = PROFILE_FILE.seal(self._key, _encode_contents(self.data))
        with PROFILE_FILE.saving(self.path):
            _write_atomically(self.path, data)

    def close(self) -> None:
        """Let go of the profile (other programs may open it)."""
        self._lock.release()

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


# --------------------------------------------------------------------------- contents


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


def _decode_contents(plaintext: bytes) -> ProfileData:
    try:
        document = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileFormatError("the profile's contents are damaged") from exc
    top = sealedfile.JsonFields(document, "the profile's contents", ProfileFormatError)
    sent = []
    for item in top.items("sent"):
        entry = sealedfile.JsonFields(item, "a sent record in the profile", ProfileFormatError)
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


# --------------------------------------------------------------------------- lock


def _lock(folder: Path) -> FileLock:
    """An exclusive lock on the profile folder, waiting up to LOCK_TIMEOUT_SECONDS."""
    return PROFILE_FILE.lock(
        folder / LOCK_NAME,
        wait=LOCK_TIMEOUT_SECONDS,
        busy=f"the profile in {folder} is in use by another Sealpost program",
    )
