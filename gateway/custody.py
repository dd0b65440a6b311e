"""The gateway's keys kept by the key server, and the chores that keep them current.

With ``key_custody = "key-server"`` (docs/operations.md, section 16):

- the directory and log keys are transit Ed25519 keys that never leave the key server
  (escrow/signing.py); the gateway knows their public keys and asks for signatures;
- the session-token key is a versioned secret there (gateway/tokenkeys.py), read into
  memory at start and refreshed, so that no request waits on the key server;
- the gateway's own token is periodic and renewed while it runs.

The directory key is the one every relative and terminal pins. The gateway therefore
signs with the version whose public key the published directory record carries, and
refuses to start when the key server has no such version. Newer versions are adopted
while the gateway runs (``adopt_keys``): a newer directory key by a hand-over both
versions sign, which clients follow from GetDirectory; a newer log key by a new log
record, signed by the directory and recorded in the log, which clients take up as heads
name it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import Connection

from sealpost._internal.logs import get_logger
from sealpost.crypto.keys import Signer
from sealpost.escrow._transport import Connection as KeyServerConnection
from sealpost.escrow._transport import KeyServerConfig
from sealpost.escrow.bootstrap import BootstrapSettings
from sealpost.escrow.signing import (
    SIGN_RETRY,
    SigningKeyError,
    TransitKeyInfo,
    TransitSigner,
    read_key_info,
)
from sealpost.gateway import directory, store, translog
from sealpost.gateway.config import GatewayConfig
from sealpost.gateway.errors import ConfigError, FailedPrecondition
from sealpost.gateway.keystore import GatewayKeys
from sealpost.gateway.tokenkeys import KeyServerTokenKeys

_log = get_logger("sealpost.gateway.custody")


def read_token(path: Path) -> str:
    """The gateway's key-server token from ``path`` (one line, a mounted secret)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read the key-server token from {path}: {exc}"]) from exc
    if not token or "\n" in token:
        raise ConfigError([f"{path} must hold the gateway's key-server token on one line"])
    if path.stat().st_mode & 0o077:
        raise ConfigError([f"{path} is readable by others: chmod 600 it"])
    return token


class KeyServerCustody:
    """Signers and token keys at the key server, for one gateway process."""

    def __init__(self, config: GatewayConfig) -> None:
        """Connections with the gateway's token; nothing is asked yet."""
        if config.key_server_token_file is None:
            raise ConfigError(["key_custody = key-server needs key_server_token_file"])
        token = read_token(config.key_server_token_file)
        self.settings = BootstrapSettings(prefix=config.key_server_prefix)
        server = KeyServerConfig(address=config.key_server_address)
        self._server, self._token = server, token
        self._connection = KeyServerConnection(server, token)
        self.tokens = KeyServerTokenKeys(
            KeyServerConnection(server, token), self.settings.gateway_secrets_mount
        )

    def _signer(self, name: str, version: int) -> TransitSigner:
        connection = KeyServerConnection(self._server, self._token, retry=SIGN_RETRY)
        return TransitSigner(connection, self.settings.signing_mount, name, version)

    def keys(self, published_directory_key: bytes | None) -> GatewayKeys:
        """The gateway's keys: the pinned directory version, the newest log version.

        SigningKeyError when the key server has no version of the directory key that
        the published directory record carries (every client's pin would break).
        """
        directory_signer, log_signer = self.signers(published_directory_key)
        self.tokens.load()
        return GatewayKeys(directory=directory_signer, log=log_signer, tokens=self.tokens)

    def _version_of(self, info: TransitKeyInfo, published: bytes) -> int:
        """The directory key's version that carries ``published`` (what clients pin)."""
        for version, key in info.public_keys.items():
            if key == published:
                return version
        raise SigningKeyError(
            f"the key server's {self.settings.signing_mount}/{info.name} has no version with "
            "the published directory key; every client pins that key "
            "(docs/operations.md, section 16)"
        )

    def signers(self, published_directory_key: bytes | None) -> tuple[TransitSigner, TransitSigner]:
        """The directory key's version that ``published_directory_key`` names, and the log's.

        The directory version is the newest one before a directory record exists; the
        log version is always the newest.
        """
        directory_name, log_name = self.settings.signing_keys
        mount = self.settings.signing_mount
        info = read_key_info(self._connection, mount, directory_name)
        if published_directory_key is None:
            version = info.latest_version
        else:
            version = self._version_of(info, published_directory_key)
        log_version = read_key_info(self._connection, mount, log_name).latest_version
        return self._signer(directory_name, version), self._signer(log_name, log_version)

    def newer_keys(self, current: GatewayKeys, published: bytes | None) -> GatewayKeys | None:
        """The keys to move to, or None when ``current`` holds them already.

        The directory: the version ``published`` carries when another gateway handed over
        to it, else the newest version (a hand-over for this gateway to make). The log:
        the newest version.
        """
        mount = self.settings.signing_mount
        directory_name, log_name = self.settings.signing_keys
        directory_info = read_key_info(self._connection, mount, directory_name)
        if published is not None and published != current.directory.signing_key:
            target = self._version_of(directory_info, published)
        else:
            target = directory_info.latest_version
        log_latest = read_key_info(self._connection, mount, log_name).latest_version
        signers: list[Signer] = []
        for signer, name, version in (
            (current.directory, directory_name, target),
            (current.log, log_name, log_latest),
        ):
            if isinstance(signer, TransitSigner) and signer.version == version:
                signers.append(signer)
            else:
                signers.append(self._signer(name, version))
        if signers == [current.directory, current.log]:
            return None
        return dataclasses.replace(current, directory=signers[0], log=signers[1])

    def renew_token(self) -> None:
        """Renew the gateway's periodic token (its period starts again)."""
        self._connection.call(
            "renew the gateway's token",
            lambda c: c.adapter.post("/v1/auth/token/renew-self", json={}),
        )

    def close(self) -> None:
        """Close the connections."""
        self._connection.close()


def adopt_keys(
    connection: Connection, current: directory.Directory, keys: GatewayKeys, now_ms: int
) -> directory.Directory:
    """The directory with ``keys``, after a key administrator rotated a signing key.

    A newer directory key is handed over to (a succession both versions sign, once: a
    gateway that finds the hand-over made by another takes it up); a newer log key gets
    a log record. With the log's size row locked, so that gateways adopting the same
    versions side by side publish once.
    """
    translog.size(connection, for_update=True)
    published = directory.published_directory_key(connection)
    if keys.directory.signing_key != published:
        if published != current.directory.signing_key:
            # Another gateway handed over meanwhile: take that up next round.
            raise FailedPrecondition("the directory was handed over meanwhile")
        rotated = directory.rotate_directory(connection, current, keys, store.GATEWAY_ACTOR, now_ms)
        _log.info("gateway.directory_key_handed_over", key=rotated.directory.id.hex())
    adopted = directory.load_or_create(connection, keys, now_ms)
    if adopted.log.id != current.log.id:
        _log.info("gateway.log_key_adopted", key=adopted.log.id.hex())
    return adopted
