"""Passphrase-sealed local files: the clients' profiles and the keys exported beside them.

Four kinds of file follow one set of rules, in one of two formats, both version 1 and
both kept byte for byte (tests/vectors/sealed-files-v1.json holds one file of each kind):

- **binary**, the relative's ``profile.sealpost`` (integers big-endian)::

      magic (16) | version (1) | opslimit (4) | memlimit (8) | salt (16) | nonce (24)
      | crypto_secretbox(contents) (16-byte tag first)

  Every header byte after the version feeds the key or the nonce, so an altered
  header fails like a wrong passphrase.

- **document**, the terminal's ``terminal-profile.json``, an exported institution key
  and an auditor's witness key (JSON)::

      {"format": KIND, "version": 1, "body": {...},
       "kdf": {"algorithm": "argon2id13", "opslimit": N, "memlimit": N, "salt": b64},
       "nonce": b64, "sealed": b64}

  ``body`` is in clear but authenticated: the associated data of XChaCha20-Poly1305 is
  DOCUMENT_AD_DOMAIN and the canonical JSON of format, version, body and kdf.

The rules: a passphrase is NFC-normalised UTF-8 (typed on any keyboard, it gives one
key); a new one has at least MIN_PASSPHRASE_CHARS characters; the Argon2id cost lies in
[INTERACTIVE, SENSITIVE] (crypto/passphrase.py) and is checked before any hashing; an
old or unknown version has an error of its own, never mistaken for a wrong passphrase;
a file that does not open is one WrongPassphraseError, whether the passphrase is wrong
or the file was altered. Writes are atomic with mode 0600; a lock file keeps a second
program out. The errors::

    SealpostError
    └── SealedFileError                     a sealed file (or its folder) cannot be used
        ├── SealedFileNotFoundError         no such file
        ├── SealedFileExistsError           one is already there (never replaced)
        ├── SealedFileBusyError             another program holds its lock
        ├── SealedFileFormatError           not such a file, or damaged
        │   └── SealedFileVersionError
        │       ├── SealedFileVersionTooOldError
        │       └── SealedFileVersionTooNewError
        ├── WrongPassphraseError            the passphrase does not open it (or it was altered)
        └── WeakPassphraseError             refused for a new file

A client names them after its own file (``ProfileError`` and the rest, in
clients/relative/errors.py and clients/terminal/errors.py, derive from these and from
the client's root error) and hands the classes over as ``FileErrors``: what is raised
here is the client's class, so ``except ProfileError`` and ``except SealedFileError``
both catch it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import struct
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sealpost._internal.files import FileLock, write_atomic
from sealpost.crypto import passphrase as crypto_passphrase
from sealpost.crypto.errors import DecryptionError, LimitError
from sealpost.crypto.passphrase import KdfParams, PassphraseKey
from sealpost.errors import SealpostError

# --------------------------------------------------------------------------- errors


class SealedFileError(SealpostError):
    """A sealed file, or the folder it is in, cannot be used."""


class SealedFileNotFoundError(SealedFileError):
    """No such file."""


class SealedFileExistsError(SealedFileError):
    """A file is already there; it is never replaced."""


class SealedFileBusyError(SealedFileError):
    """Another program holds the file's lock."""


class SealedFileFormatError(SealedFileError):
    """Not a file of the expected kind, or its contents are damaged."""


class SealedFileVersionError(SealedFileFormatError):
    """The file has a format version this program does not read."""


class SealedFileVersionTooOldError(SealedFileVersionError):
    """The format version is older than the oldest one still read."""


class SealedFileVersionTooNewError(SealedFileVersionError):
    """The format version is newer than this program knows: upgrade Sealpost."""


class WrongPassphraseError(SealedFileError):
    """The passphrase does not open the file, or the file was altered (one error for both)."""

    def explain(self) -> str:
        """Say both possibilities: the two are indistinguishable on purpose."""
        return f"{self} (or the file was altered)"


class WeakPassphraseError(SealedFileError):
    """The passphrase chosen for a new file is refused (too short, or not text)."""


@dataclass(frozen=True)
class FileErrors:
    """The classes one client raises for its sealed files, each a subclass of the one here."""

    base: type[SealedFileError] = SealedFileError
    not_found: type[SealedFileNotFoundError] = SealedFileNotFoundError
    exists: type[SealedFileExistsError] = SealedFileExistsError
    busy: type[SealedFileBusyError] = SealedFileBusyError
    malformed: type[SealedFileFormatError] = SealedFileFormatError
    too_old: type[SealedFileVersionTooOldError] = SealedFileVersionTooOldError
    too_new: type[SealedFileVersionTooNewError] = SealedFileVersionTooNewError
    wrong_passphrase: type[WrongPassphraseError] = WrongPassphraseError
    weak_passphrase: type[WeakPassphraseError] = WeakPassphraseError


#: This module's own classes, for a file no client names otherwise.
GENERIC_ERRORS: Final = FileErrors()

# --------------------------------------------------------------------------- the rules

#: Characters a new passphrase needs at least (after NFC normalisation).
MIN_PASSPHRASE_CHARS: Final = 8
#: The format version this code writes, and the oldest it reads, of both formats.
FORMAT_VERSION: Final = 1
MIN_FORMAT_VERSION: Final = 1


def check_new_passphrase(passphrase: str, errors: FileErrors = GENERIC_ERRORS) -> None:
    """Raise WeakPassphraseError unless ``passphrase`` may protect a new file."""
    if len(unicodedata.normalize("NFC", passphrase)) < MIN_PASSPHRASE_CHARS:
        raise errors.weak_passphrase(
            f"choose a passphrase of at least {MIN_PASSPHRASE_CHARS} characters"
        )
    _secret(passphrase, errors.weak_passphrase)


def check_cost(kdf: KdfParams, errors: FileErrors = GENERIC_ERRORS) -> None:
    """Raise SealedFileFormatError unless the Argon2id cost is one a file may ask for."""
    try:
        crypto_passphrase.check_kdf(kdf)
    except LimitError as exc:
        raise errors.malformed(str(exc)) from None


def check_version(
    version: int, oldest: int, newest: int, what: str, errors: FileErrors = GENERIC_ERRORS
) -> None:
    """Raise the too-old or too-new error unless ``oldest <= version <= newest``."""
    if version < oldest:
        raise errors.too_old(f"{what} format version {version} is no longer read")
    if version > newest:
        raise errors.too_new(
            f"{what} format version {version} is newer than this program reads "
            f"(up to {newest}): upgrade Sealpost"
        )


def _secret(passphrase: str, error: type[SealedFileError]) -> bytes:
    """NFC-normalised UTF-8, so the same passphrase typed on any keyboard gives one key."""
    if not passphrase:
        raise error("a passphrase is required")
    try:
        return unicodedata.normalize("NFC", passphrase).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error("the passphrase is not valid Unicode text") from exc


# --------------------------------------------------------------------------- one kind of file


@dataclass(frozen=True, kw_only=True)
class SealedFileKind:
    """What a client calls one kind of sealed file, and which error classes it raises."""

    #: Its name in messages, e.g. "relative profile".
    what: str
    errors: FileErrors = GENERIC_ERRORS

    def new_key(self, passphrase: str, kdf: KdfParams) -> PassphraseKey:
        """The key for a new file: the passphrase and the cost checked, a fresh salt drawn."""
        check_new_passphrase(passphrase, self.errors)
        check_cost(kdf, self.errors)
        return PassphraseKey.new(_secret(passphrase, self.errors.weak_passphrase), kdf)

    def _open_key(self, passphrase: str, salt: bytes, kdf: KdfParams) -> PassphraseKey:
        """The key of an existing file, whose cost the caller has checked."""
        return PassphraseKey.derive(_secret(passphrase, self.errors.wrong_passphrase), salt, kdf)

    def _does_not_open(self) -> SealedFileError:
        return self.errors.wrong_passphrase(f"the passphrase does not open the {self.what}")

    def _not_this(self) -> SealedFileError:
        return self.errors.malformed(f"this file is not a Sealpost {self.what}")

    def refuse_existing(self, path: Path, message: str) -> None:
        """Raise SealedFileExistsError with ``message`` when ``path`` exists: never replaced."""
        if path.exists():
            raise self.errors.exists(message)

    def read(self, path: Path, missing: str) -> bytes:
        """The file's bytes; SealedFileNotFoundError with ``missing`` when there is none."""
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise self.errors.not_found(missing) from None
        except OSError as exc:
            raise self.errors.base(f"cannot read {path}: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def saving(self, path: Path) -> Iterator[None]:
        """Turn a failed write of ``path`` into the client's error (the old file stays)."""
        try:
            yield
        except OSError as exc:
            raise self.errors.base(
                f"cannot save {path}: {exc.strerror or exc}; the previous version is intact"
            ) from exc

    def write(self, path: Path, data: bytes) -> None:
        """Replace ``path`` with ``data`` atomically, mode 0600."""
        with self.saving(path):
            write_atomic(path, data)

    def lock(self, path: Path, *, wait: float, busy: str) -> FileLock:
        """The lock file ``path``, waiting up to ``wait`` seconds; SealedFileBusyError ``busy``."""
        try:
            return FileLock.acquire(path, wait=wait)
        except BlockingIOError:
            raise self.errors.busy(busy) from None
        except OSError as exc:
            raise self.errors.base(f"cannot use {path.parent}: {exc.strerror or exc}") from exc


@dataclass(frozen=True, repr=False)
class Opened:
    """A sealed file after opening: its clear body (documents), its plaintext, its key."""

    body: dict[str, Any]
    plaintext: bytes
    #: Re-seals the file under the same passphrase without asking for it again.
    key: PassphraseKey


# --------------------------------------------------------------------------- binary format

_PREFIX: Final = struct.Struct(">16sB")  # magic, version
_KDF: Final = struct.Struct(">IQ")  # opslimit, memlimit
_SALT_AT: Final = _PREFIX.size + _KDF.size
_NONCE_AT: Final = _SALT_AT + crypto_passphrase.SALT_BYTES
_BOX_AT: Final = _NONCE_AT + crypto_passphrase.SECRETBOX_NONCE_BYTES


@dataclass(frozen=True, kw_only=True)
class BinaryFormat(SealedFileKind):
    """The binary format: ``magic`` names the kind of file (16 bytes)."""

    magic: bytes

    def __post_init__(self) -> None:
        """The magic fills its 16 bytes exactly."""
        if len(self.magic) != _PREFIX.size - 1:
            raise ValueError("a sealed file's magic is 16 bytes")

    def seal(self, key: PassphraseKey, contents: bytes) -> bytes:
        """The file: header, then ``contents`` sealed with a fresh nonce."""
        nonce, box = key.seal_secretbox(contents)
        kdf = _KDF.pack(key.kdf.opslimit, key.kdf.memlimit)
        return _PREFIX.pack(self.magic, FORMAT_VERSION) + kdf + key.salt + nonce + box

    def open(self, raw: bytes, passphrase: str) -> Opened:
        """Check magic, version, length and cost, in that order, then derive and open."""
        if len(raw) < _PREFIX.size or raw[: len(self.magic)] != self.magic:
            raise self._not_this()
        check_version(
            raw[len(self.magic)], MIN_FORMAT_VERSION, FORMAT_VERSION, self.what, self.errors
        )
        if len(raw) < _BOX_AT + crypto_passphrase.SECRETBOX_TAG_BYTES:
            raise self.errors.malformed(f"the {self.what} file is truncated")
        kdf = KdfParams(*_KDF.unpack_from(raw, _PREFIX.size))
        check_cost(kdf, self.errors)
        key = self._open_key(passphrase, raw[_SALT_AT:_NONCE_AT], kdf)
        try:
            plaintext = key.open_secretbox(raw[_NONCE_AT:_BOX_AT], raw[_BOX_AT:])
        except DecryptionError:
            raise self._does_not_open() from None
        return Opened({}, plaintext, key)


# --------------------------------------------------------------------------- document format

#: Associated-data domain of every sealed document (the terminal's first, hence the name).
DOCUMENT_AD_DOMAIN: Final = b"sealpost/terminal-sealed-document/v1\n"
#: The key derivation a document names.
KDF_ALGORITHM: Final = "argon2id13"


@dataclass(frozen=True, kw_only=True)
class DocumentFormat(SealedFileKind):
    """The JSON document format: ``kind`` is its "format" field."""

    kind: str

    def seal(self, key: PassphraseKey, body: dict[str, Any], plaintext: bytes) -> bytes:
        """The document: ``body`` in clear but authenticated, ``plaintext`` sealed."""
        header = {
            "format": self.kind,
            "version": FORMAT_VERSION,
            "body": body,
            "kdf": {
                "algorithm": KDF_ALGORITHM,
                "opslimit": key.kdf.opslimit,
                "memlimit": key.kdf.memlimit,
                "salt": _b64(key.salt),
            },
        }
        nonce, sealed = key.seal(plaintext, _associated(header))
        document = {**header, "nonce": _b64(nonce), "sealed": _b64(sealed)}
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")

    def open(self, raw: bytes, passphrase: str) -> Opened:
        """Check format, version and cost, derive the key and open; distinct errors for each."""
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._not_this() from None
        doc = JsonFields(value, self.what, self.errors.malformed)
        if doc.get("format", str) != self.kind:
            raise self._not_this()
        check_version(
            doc.integer("version"), MIN_FORMAT_VERSION, FORMAT_VERSION, self.what, self.errors
        )
        kdf_doc = JsonFields(doc.get("kdf", dict), f"the {self.what}'s kdf", self.errors.malformed)
        if kdf_doc.text("algorithm") != KDF_ALGORITHM:
            raise self.errors.malformed(f"the {self.what}'s key derivation is not Argon2id")
        kdf = KdfParams(kdf_doc.integer("opslimit"), kdf_doc.integer("memlimit"))
        check_cost(kdf, self.errors)
        salt = kdf_doc.b64("salt")
        nonce = doc.b64("nonce")
        if len(salt) != crypto_passphrase.SALT_BYTES or len(nonce) != crypto_passphrase.NONCE_BYTES:
            raise self.errors.malformed(f"the {self.what}'s salt or nonce has the wrong size")
        body: dict[str, Any] = doc.get("body", dict)
        key = self._open_key(passphrase, salt, kdf)
        try:
            plaintext = key.open(nonce, doc.b64("sealed"), _associated(doc.value))
        except DecryptionError:
            raise self._does_not_open() from None
        return Opened(body, plaintext, key)


def _associated(header: dict[str, Any]) -> bytes:
    canonical = json.dumps(
        {k: header[k] for k in ("format", "version", "body", "kdf")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return DOCUMENT_AD_DOMAIN + canonical.encode("ascii")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- JSON fields


class JsonFields:
    """Typed access to a parsed JSON object; ``error`` (a format error) names the bad field."""

    def __init__(self, value: object, where: str, error: type[SealedFileFormatError]) -> None:
        """Wrap ``value``, which must be a JSON object."""
        if not isinstance(value, dict):
            raise error(f"{where}: not a JSON object")
        self.value: dict[str, Any] = value
        self.where = where
        self.error = error

    def get(self, name: str, kind: type[Any]) -> Any:
        """The field ``name``, which must be a ``kind`` (never a bool for a number)."""
        item = self.value.get(name)
        if not isinstance(item, kind) or (isinstance(item, bool) and kind is not bool):
            raise self.error(f"{self.where}: field {name!r} is missing or mistyped")
        return item

    def text(self, name: str) -> str:
        """A string field."""
        value: str = self.get(name, str)
        return value

    def integer(self, name: str) -> int:
        """An integer field."""
        value: int = self.get(name, int)
        return value

    def optional_integer(self, name: str) -> int | None:
        """An integer field that may be missing or null."""
        if self.value.get(name) is None:
            return None
        return self.integer(name)

    def items(self, name: str) -> list[object]:
        """A list field."""
        value: list[object] = self.get(name, list)
        return value

    def hex(self, name: str) -> bytes:
        """Bytes written as hex."""
        try:
            return bytes.fromhex(self.text(name))
        except ValueError:
            raise self.error(f"{self.where}: field {name!r} is not hex") from None

    def b64(self, name: str) -> bytes:
        """Bytes written as (strict) base64."""
        try:
            return base64.b64decode(self.text(name).encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise self.error(f"{self.where}: field {name!r} is not base64") from None
