"""The gateway's directory and log keys in the key server: they sign there and never leave.

With ``key_custody = "key-server"`` the directory and log keys are Ed25519 keys of
OpenBao's transit engine, made not exportable by the bootstrap, on a mount of their
own (``<prefix>-signing``, escrow/bootstrap.py). The gateway holds their public keys
only and asks the key server to sign each key record, revocation and tree head: rare
events (a head per interval, a record per registration), each one an audited request.
The file-kept keys of ``gateway-keys.json`` remain for the embedded single-host set.

A signature that comes back is checked against the public key before it is used, so
a key server that answers with another key's signature, or none, stops the signing
there, never in a client's hands.

Rotation (docs/operations.md, "Rotating the directory and log keys"): a key
administrator rotates a transit key; ``TransitSigner.newest`` tells the gateway that a
newer version exists, and the gateway adopts it for the log key (a new log record, which
the log itself records). The directory key is followed only by an explicit rotation.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from typing import Final

from sealpost._internal.logs import get_logger
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.keys import verify_signature
from sealpost.escrow._transport import Connection, RetryPolicy, data_of
from sealpost.escrow.errors import EscrowError, UnexpectedResponseError

_log = get_logger("sealpost.escrow.signing")

#: The transit key type of the directory and log keys.
KEY_TYPE: Final = "ed25519"
#: Signing happens inside a write transaction that holds the log's lock: a key server
#: that does not answer must not hold it for long (the connection that signs retries
#: this little). The next round tries again.
SIGN_RETRY: Final = RetryPolicy(max_attempts=3, initial_delay=0.05, max_delay=0.5, max_elapsed=3)
_PUBLIC_KEY_BYTES: Final = 32
_SIGNATURE_BYTES: Final = 64


class SigningKeyError(EscrowError):
    """The key server's signing key is missing, unsafe, or answered what does not verify."""


@dataclass(frozen=True)
class TransitKeyInfo:
    """What the key server says about a signing key: its versions' public keys and safety."""

    name: str
    key_type: str
    exportable: bool
    allow_plaintext_backup: bool
    deletion_allowed: bool
    latest_version: int
    public_keys: dict[int, bytes]

    def unsafe(self) -> list[str]:
        """What makes this key unfit to be the directory's or the log's (empty: fit)."""
        return [
            what
            for what, bad in (
                (f"type is {self.key_type}, not {KEY_TYPE}", self.key_type != KEY_TYPE),
                ("exportable", self.exportable),
                ("plaintext backup allowed", self.allow_plaintext_backup),
                ("deletion allowed", self.deletion_allowed),
            )
            if bad
        ]


def read_key_info(connection: Connection, mount: str, name: str) -> TransitKeyInfo:
    """The key's metadata and public keys; SigningKeyError when missing or malformed."""
    operation = f"read signing key {mount}/{name}"
    answer = connection.call(operation, lambda c: c.adapter.get(f"/v1/{mount}/keys/{name}"))
    data = data_of(answer, operation)
    versions = data.get("keys")
    if not isinstance(versions, dict):
        raise UnexpectedResponseError(f"{operation}: no key versions")
    public_keys: dict[int, bytes] = {}
    for version, entry in versions.items():
        text = entry.get("public_key") if isinstance(entry, dict) else None
        try:
            public = base64.b64decode(str(text), validate=True)
        except ValueError:
            public = b""
        if len(public) != _PUBLIC_KEY_BYTES:
            raise UnexpectedResponseError(f"{operation}: version {version} has no Ed25519 key")
        public_keys[int(version)] = public
    latest = data.get("latest_version")
    if not isinstance(latest, int) or latest not in public_keys:
        raise UnexpectedResponseError(f"{operation}: no latest version")
    return TransitKeyInfo(
        name=name,
        key_type=str(data.get("type")),
        exportable=data.get("exportable") is not False,
        allow_plaintext_backup=data.get("allow_plaintext_backup") is not False,
        deletion_allowed=data.get("deletion_allowed") is not False,
        latest_version=latest,
        public_keys=public_keys,
    )


class TransitSigner:
    """One version of a transit Ed25519 key: signs at the key server, never holds the key."""

    def __init__(self, connection: Connection, mount: str, name: str, version: int) -> None:
        """Fix the version and its public key; SigningKeyError if the key is unfit.

        ``connection`` is used by this signer alone (a lock keeps one request at a time).
        """
        info = read_key_info(connection, mount, name)
        problems = info.unsafe()
        if problems:
            raise SigningKeyError(f"signing key {mount}/{name} refused: {', '.join(problems)}")
        if version not in info.public_keys:
            raise SigningKeyError(f"signing key {mount}/{name} has no version {version}")
        self._connection = connection
        self._lock = threading.Lock()
        self.mount = mount
        self.name = name
        self.version = version
        self._public = info.public_keys[version]

    @classmethod
    def newest(cls, connection: Connection, mount: str, name: str) -> TransitSigner:
        """The key's latest version."""
        info = read_key_info(connection, mount, name)
        return cls(connection, mount, name, info.latest_version)

    def __repr__(self) -> str:
        """Names and the public key; there is no secret here to show."""
        return f"TransitSigner({self.mount}/{self.name} v{self.version}, {self._public.hex()})"

    @property
    def signing_key(self) -> bytes:
        """The Ed25519 public key of this version."""
        return self._public

    def sign(self, message: bytes) -> bytes:
        """The key server's signature of ``message`` by this version, checked before use."""
        operation = f"sign with {self.mount}/{self.name}"
        body = {"input": base64.b64encode(message).decode(), "key_version": self.version}
        path = f"/v1/{self.mount}/sign/{self.name}"
        with self._lock:
            answer = self._connection.call(operation, lambda c: c.adapter.post(path, json=body))
        text = data_of(answer, operation).get("signature")
        prefix = f"vault:v{self.version}:"
        if not isinstance(text, str) or not text.startswith(prefix):
            raise SigningKeyError(f"{operation}: not a signature of version {self.version}")
        try:
            signature = base64.b64decode(text[len(prefix) :], validate=True)
        except ValueError:
            signature = b""
        if len(signature) != _SIGNATURE_BYTES:
            raise SigningKeyError(f"{operation}: the signature is not {_SIGNATURE_BYTES} bytes")
        try:
            verify_signature(self._public, message, signature)
        except CryptoError:
            raise SigningKeyError(f"{operation}: the signature does not verify") from None
        return signature


def rotate(connection: Connection, mount: str, name: str) -> int:
    """Start a new version of a signing key at the key server; its number."""
    operation = f"rotate signing key {mount}/{name}"
    connection.call(operation, lambda c: c.adapter.post(f"/v1/{mount}/keys/{name}/rotate"))
    return read_key_info(connection, mount, name).latest_version
