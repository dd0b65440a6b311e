"""The terminal profile on disk: credentials, institution key, settings and the intake cursor.

A profile folder holds ``terminal-profile.json`` (mode 0600), a sealed document::

    {"format": "sealpost-terminal-profile", "version": 1,
     "body": {...},                        public settings: institution, addresses, pin
     "kdf": {"algorithm": "argon2id13", "opslimit": N, "memlimit": N, "salt": b64},
     "nonce": b64, "sealed": b64}          XChaCha20-Poly1305 of the secrets (JSON)

The secrets (the TLS private key, the institution's X25519 and Ed25519 keys and the
key-server token) and the detainee register (register.py: names and languages, which
the gateway never learns) are encrypted under a key that Argon2id derives from the
operator's passphrase. The sealed JSON has a version of its own: 1 holds the secrets
alone (an empty register), 2 adds ``"detainees"``; both are read. The settings are not
secret but are authenticated: the associated data is a domain string and the canonical
JSON of format, version, body and kdf, so a changed directory pin or gateway address
fails like a wrong passphrase. An exported
institution key (for a second terminal of the same institution) is the same kind of
document with format "sealpost-institution-key".

This is the document format of ``sealpost.clients.sealedfile``, version 1, which holds
the layout and the rules every sealed file follows (Argon2id costs, versions, one error
for a wrong passphrase or an altered file).

``intake-state.json`` beside it holds the intake cursor and the ids of malformed
messages (no content, no keys); ``intake.lock`` keeps a second intake loop out.
Every write is atomic (temporary file, fsync, rename) with mode 0600.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from sealpost._internal.files import write_atomic
from sealpost.clients import sealedfile
from sealpost.clients._grpc import Endpoint
from sealpost.clients.sealedfile import JsonFields
from sealpost.clients.terminal.client import Escrow, TerminalClient
from sealpost.clients.terminal.errors import PROFILE_ERRORS, ProfileFormatError
from sealpost.clients.terminal.intake import IntakeState
from sealpost.clients.terminal.register import DetaineeRegister
from sealpost.crypto.errors import FormatError
from sealpost.crypto.keyrecords import DirectoryPin
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.passphrase import KDF_MODERATE, KdfParams, PassphraseKey
from sealpost.escrow.bootstrap import BootstrapSettings
from sealpost.escrow.client import EscrowClient, KeyServerConfig, RetryPolicy, SealingClient
from sealpost.i18n import _
from sealpost.v1 import envelope_pb2

PROFILE_NAME: Final = "terminal-profile.json"
STATE_NAME: Final = "intake-state.json"
LOCK_NAME: Final = "intake.lock"
PROFILE_FORMAT: Final = "sealpost-terminal-profile"
STATE_FORMAT: Final = "sealpost-terminal-intake-state"
STATE_VERSION: Final = 1
#: Version of the sealed contents: 1 held the secrets alone; 2 adds the detainee register.
CONTENTS_VERSION: Final = 2
OLDEST_CONTENTS_VERSION: Final = 1
#: An institution key exported from one terminal for another of the same institution.
KEY_EXPORT_FORMAT: Final = "sealpost-institution-key"
#: The terminal profile and the exported institution key: sealed documents of two kinds.
PROFILE_FILE: Final = sealedfile.DocumentFormat(
    what="terminal profile", errors=PROFILE_ERRORS, kind=PROFILE_FORMAT
)
KEY_EXPORT_FILE: Final = sealedfile.DocumentFormat(
    what="institution key", errors=PROFILE_ERRORS, kind=KEY_EXPORT_FORMAT
)
#: Malformed message ids remembered (so rescans skip them); the oldest are forgotten first.
MAX_MALFORMED_REMEMBERED: Final = 10_000

#: Escrow retries inside one attempt of the intake loop: short, because the loop itself
#: waits with a longer backoff and keeps serving privileged mail meanwhile.
INTAKE_RETRY: Final = RetryPolicy(max_attempts=3, initial_delay=0.2, max_delay=1.0, max_elapsed=5.0)


@dataclass(frozen=True)
class ProfileSettings:
    """What a terminal needs to know that is not secret (but must not be altered)."""

    institution_id: str
    terminal_id: str
    #: The gateway's terminal port, host:port (mutual TLS).
    gateway: str
    #: The key server's URL (http:// only for a loopback development server); the nodes of
    #: a cluster separated by commas.
    key_server: str
    #: The directory's Ed25519 public key, as pinned at enrolment.
    directory_pin: bytes
    certificate_pem: bytes = field(repr=False)
    ca_pem: bytes = field(repr=False)
    #: The registered institution key's record id; empty until registered.
    institution_key_id: bytes = b""
    #: CA bundle for the key server's TLS certificate; "" for the system's CAs.
    key_server_ca: str = ""
    #: The key server's Sealpost name prefix (transit mount "<prefix>-transit").
    escrow_prefix: str = "sealpost"

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in the profile."""
        return {
            "institution_id": self.institution_id,
            "terminal_id": self.terminal_id,
            "gateway": self.gateway,
            "key_server": self.key_server,
            "key_server_ca": self.key_server_ca,
            "escrow_prefix": self.escrow_prefix,
            "directory_pin": self.directory_pin.hex(),
            "institution_key_id": self.institution_key_id.hex(),
            "certificate_pem": self.certificate_pem.decode("ascii"),
            "ca_pem": self.ca_pem.decode("ascii"),
        }

    @classmethod
    def from_json(cls, value: object) -> ProfileSettings:
        """Parse the stored object; ProfileFormatError if anything is missing or mistyped."""
        doc = JsonFields(value, "the terminal profile's settings", ProfileFormatError)
        return cls(
            institution_id=doc.text("institution_id"),
            terminal_id=doc.text("terminal_id"),
            gateway=doc.text("gateway"),
            key_server=doc.text("key_server"),
            key_server_ca=doc.text("key_server_ca"),
            escrow_prefix=doc.text("escrow_prefix"),
            directory_pin=doc.hex("directory_pin"),
            institution_key_id=doc.hex("institution_key_id"),
            certificate_pem=doc.text("certificate_pem").encode("ascii"),
            ca_pem=doc.text("ca_pem").encode("ascii"),
        )


@dataclass(frozen=True, repr=False)
class ProfileSecrets:
    """The terminal's secrets; repr shows nothing of them."""

    tls_key_pem: bytes
    institution_keys: PrivateKeys
    key_server_token: str

    def __repr__(self) -> str:
        """Nothing secret reaches a log or a traceback."""
        return "ProfileSecrets(<hidden>)"

    def to_json(self) -> dict[str, str]:
        """The secrets as the JSON object inside the sealed contents."""
        return {
            "tls_key_pem": self.tls_key_pem.decode("ascii"),
            "institution_x25519": _b64(self.institution_keys.x25519_secret),
            "institution_ed25519": _b64(self.institution_keys.ed25519_seed),
            "key_server_token": self.key_server_token,
        }

    def to_bytes(self) -> bytes:
        """The JSON of the secrets alone (the sealed contents of version 1)."""
        return json.dumps(self.to_json(), sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, plaintext: bytes) -> ProfileSecrets:
        """Parse the opened plaintext; ProfileFormatError if damaged."""
        try:
            value = json.loads(plaintext)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProfileFormatError(_("the profile's secrets are damaged")) from exc
        doc = JsonFields(value, "the terminal profile's secrets", ProfileFormatError)
        try:
            keys = PrivateKeys(doc.b64("institution_x25519"), doc.b64("institution_ed25519"))
        except FormatError as exc:
            raise ProfileFormatError(_("the profile's institution key is damaged")) from exc
        return cls(
            tls_key_pem=doc.text("tls_key_pem").encode("ascii"),
            institution_keys=keys,
            key_server_token=doc.text("key_server_token"),
        )


def seal_contents(secrets_: ProfileSecrets, register: DetaineeRegister) -> bytes:
    """The plaintext the profile seals: the secrets and the register, versioned.

    Without register entries the contents are version 1, byte for byte as before, so a
    profile nobody registered a detainee in still opens in an older terminal.
    """
    if not register:
        return secrets_.to_bytes()
    contents = {
        **secrets_.to_json(),
        "version": CONTENTS_VERSION,
        "detainees": register.to_json(),
    }
    return json.dumps(contents, sort_keys=True, ensure_ascii=False).encode("utf-8")


def open_contents(plaintext: bytes) -> tuple[ProfileSecrets, DetaineeRegister]:
    """The secrets and the register of opened contents of any version still read."""
    secrets_ = ProfileSecrets.from_bytes(plaintext)
    doc = JsonFields(json.loads(plaintext), "the terminal profile's contents", ProfileFormatError)
    stated = doc.optional_integer("version")
    version = OLDEST_CONTENTS_VERSION if stated is None else stated
    sealedfile.check_version(
        version,
        OLDEST_CONTENTS_VERSION,
        CONTENTS_VERSION,
        "the terminal profile's contents",
        PROFILE_ERRORS,
    )
    if version == OLDEST_CONTENTS_VERSION:
        return secrets_, DetaineeRegister()
    return secrets_, DetaineeRegister.from_json(doc.get("detainees", list))


class TerminalProfile:
    """An opened terminal profile: settings, secrets, register, and the key that re-seals them."""

    def __init__(
        self,
        folder: Path,
        settings: ProfileSettings,
        secrets_: ProfileSecrets,
        key: PassphraseKey,
        register: DetaineeRegister | None = None,
    ) -> None:
        """Use ``create`` or ``open``."""
        self.folder = folder
        self.settings = settings
        self.secrets = secrets_
        self.register = register if register is not None else DetaineeRegister()
        self._key = key
        self._gateway: str | None = None
        self._key_server: str | None = None

    def __repr__(self) -> str:
        """Folder and institution only."""
        return f"TerminalProfile({str(self.folder)!r}, {self.settings.institution_id!r})"

    @property
    def path(self) -> Path:
        """The profile file."""
        return self.folder / PROFILE_NAME

    @property
    def gateway(self) -> str:
        """Where this run reaches the gateway: the operator's address, else the profile's."""
        return self._gateway or self.settings.gateway

    @property
    def key_server(self) -> str:
        """Where this run reaches the key server: the operator's URL, else the profile's."""
        return self._key_server or self.settings.key_server

    def use_addresses(self, *, gateway: str | None, key_server: str | None) -> None:
        """Connect to these addresses (None: the profile's) for this run; never saved.

        Only the addresses change: the gateway must still present a certificate of the
        pinned CA and a directory signed by the pinned key, the key server one the
        profile's CA bundle trusts (config.py).
        """
        self._gateway, self._key_server = gateway, key_server

    @classmethod
    def create(
        cls,
        folder: Path,
        passphrase: str,
        settings: ProfileSettings,
        secrets_: ProfileSecrets,
        *,
        kdf: KdfParams = KDF_MODERATE,
    ) -> TerminalProfile:
        """Write a new profile; never replaces an existing one."""
        cls.check_new(folder, passphrase)
        key = PROFILE_FILE.new_key(passphrase, kdf)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        profile = cls(folder, settings, secrets_, key)
        profile.save()
        return profile

    @staticmethod
    def check_new(folder: Path, passphrase: str) -> None:
        """Raise unless a new profile may go into ``folder`` under ``passphrase``."""
        PROFILE_FILE.refuse_existing(
            folder / PROFILE_NAME,
            _("{folder} already holds a terminal profile; not replaced", folder=folder),
        )
        sealedfile.check_new_passphrase(passphrase, PROFILE_ERRORS)

    @classmethod
    def open(cls, folder: Path, passphrase: str) -> TerminalProfile:
        """Read and decrypt a profile; WrongPassphraseError if it does not open."""
        raw = PROFILE_FILE.read(
            folder / PROFILE_NAME, _("no terminal profile in {folder}", folder=folder)
        )
        opened = PROFILE_FILE.open(raw, passphrase)
        settings = ProfileSettings.from_json(opened.body)
        secrets_, register = open_contents(opened.plaintext)
        return cls(folder, settings, secrets_, opened.key, register)

    def save(self) -> None:
        """Seal the secrets and the register with a fresh nonce; replace the file atomically."""
        contents = seal_contents(self.secrets, self.register)
        data = PROFILE_FILE.seal(self._key, self.settings.to_json(), contents)
        PROFILE_FILE.write(self.path, data)

    def set_register(self, register: DetaineeRegister) -> None:
        """Keep a changed detainee register, sealed, and save."""
        self.register = register
        self.save()

    def update(self, **changes: Any) -> None:
        """Change settings (for example the institution key id) and save."""
        self.settings = replace(self.settings, **changes)
        self.save()

    # ----------------------------------------------------------------- what the profile opens

    def client(self) -> TerminalClient:
        """A TerminalClient with this terminal's certificate and institution key."""
        return TerminalClient(
            Endpoint(self.gateway, self.settings.ca_pem),
            DirectoryPin(self.settings.directory_pin),
            self.secrets.tls_key_pem,
            self.settings.certificate_pem,
            institution_keys=self.secrets.institution_keys,
            institution_key_id=self.settings.institution_key_id,
        )

    def key_server_config(self) -> KeyServerConfig:
        """Where the key server is and which CA its certificate chains to."""
        return KeyServerConfig(self.key_server, verify=self.settings.key_server_ca or True)

    def escrow_client(self, retry: RetryPolicy = INTAKE_RETRY) -> EscrowClient:
        """The key-server client with this terminal's encrypt-only token."""
        return EscrowClient(
            self.key_server_config(),
            self.secrets.key_server_token,
            key=BootstrapSettings(prefix=self.settings.escrow_prefix).escrow_key,
            retry=retry,
        )

    def sealing_client(self, retry: RetryPolicy = INTAKE_RETRY) -> SealingClient:
        """The key-server client that seals triage summaries and opens watch lists."""
        return SealingClient(
            self.key_server_config(),
            self.secrets.key_server_token,
            key=BootstrapSettings(prefix=self.settings.escrow_prefix).triage_key,
            retry=retry,
        )

    def state_store(self) -> FileStateStore:
        """The intake cursor's file."""
        return FileStateStore(self.folder / STATE_NAME)

    @contextlib.contextmanager
    def intake_lock(self) -> Iterator[None]:
        """Hold the intake lock: one intake loop per profile (the desk may run beside it)."""
        busy = _("another intake loop is running with this profile")
        with PROFILE_FILE.lock(self.folder / LOCK_NAME, wait=0, busy=busy):
            yield


def export_institution_key(
    profile: TerminalProfile, path: Path, passphrase: str, *, kdf: KdfParams = KDF_MODERATE
) -> None:
    """Write the institution key, sealed under its own passphrase, for another terminal."""
    if not profile.settings.institution_key_id:
        raise ProfileFormatError(_("this profile holds no registered institution key"))
    key = KEY_EXPORT_FILE.new_key(passphrase, kdf)
    keys = profile.secrets.institution_keys
    plaintext = json.dumps(
        {
            "institution_x25519": _b64(keys.x25519_secret),
            "institution_ed25519": _b64(keys.ed25519_seed),
        },
        sort_keys=True,
    ).encode("utf-8")
    body = {
        "institution_id": profile.settings.institution_id,
        "institution_key_id": profile.settings.institution_key_id.hex(),
    }
    KEY_EXPORT_FILE.refuse_existing(path, _("{path} exists; it is not replaced", path=path))
    KEY_EXPORT_FILE.write(path, KEY_EXPORT_FILE.seal(key, body, plaintext))


def read_institution_key(path: Path, passphrase: str) -> tuple[str, bytes, PrivateKeys]:
    """An exported institution key: (institution id, key record id, keys)."""
    raw = KEY_EXPORT_FILE.read(path, _("cannot read {path}: there is no such file", path=path))
    opened = KEY_EXPORT_FILE.open(raw, passphrase)
    body = JsonFields(opened.body, "the institution key", ProfileFormatError)
    try:
        secret = JsonFields(json.loads(opened.plaintext), "the institution key", ProfileFormatError)
        keys = PrivateKeys(secret.b64("institution_x25519"), secret.b64("institution_ed25519"))
    except (ValueError, FormatError) as exc:
        raise ProfileFormatError(_("the institution key file is damaged")) from exc
    return body.text("institution_id"), body.hex("institution_key_id"), keys


def escrow_with(client: EscrowClient) -> Escrow:
    """The terminal's escrow step: transit encrypt, one blob per (message id, data key)."""

    def escrow(items: Sequence[tuple[bytes, bytes]]) -> list[envelope_pb2.EscrowBlob]:
        return [k.to_proto() for k in client.escrow_batch(list(items))] if items else []

    return escrow


class FileStateStore:
    """The intake state as JSON beside the profile, replaced atomically on every save."""

    def __init__(self, path: Path) -> None:
        """Store at ``path``."""
        self.path = path

    def load(self) -> IntakeState:
        """The saved state; a fresh one when there is none yet."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return IntakeState()
        except OSError as exc:
            raise ProfileFormatError(
                _("cannot read {path}: {reason}", path=self.path, reason=exc.strerror)
            ) from exc
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProfileFormatError(_("{path} is not intake state", path=self.path)) from exc
        doc = JsonFields(value, "intake state", ProfileFormatError)
        if doc.text("format") != STATE_FORMAT:
            raise ProfileFormatError(_("{path} is not intake state", path=self.path))
        sealedfile.check_version(
            doc.integer("version"), STATE_VERSION, STATE_VERSION, "intake state", PROFILE_ERRORS
        )
        malformed = doc.get("malformed", dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in malformed.items()):
            raise ProfileFormatError(_("intake state: malformed ids are not text"))
        return IntakeState(
            cursor=doc.text("cursor"),
            malformed=dict(malformed),
            taken_in=doc.integer("taken_in"),
            updated_at_ms=doc.integer("updated_at_ms"),
        )

    def save(self, state: IntakeState) -> None:
        """Write the state atomically (forgetting the oldest malformed ids past the cap)."""
        malformed = list(state.malformed.items())[-MAX_MALFORMED_REMEMBERED:]
        document = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "cursor": state.cursor,
            "malformed": dict(malformed),
            "taken_in": state.taken_in,
            "updated_at_ms": state.updated_at_ms,
        }
        write_atomic(self.path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))


# --------------------------------------------------------------------- helpers


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
