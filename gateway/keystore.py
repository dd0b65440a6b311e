"""The gateway's own secrets and TLS material, kept in its state folder.

    <state>/gateway-keys.json   directory key, log key, token key (mode 0600)
    <state>/tls/ca.pem          CA for the server and terminal certificates
    <state>/tls/ca-key.pem      its private key (mode 0600)
    <state>/tls/server.pem      the gateway's TLS certificate
    <state>/tls/server-key.pem  its private key (mode 0600)

``sealpost gateway init`` creates them once; ``serve`` refuses to start
without them. None of these keys can open a message: the directory key signs
key records, the log key signs tree heads, the token key authenticates
relatives' short-lived session tokens.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sealpost.crypto.auth import new_session_token_key
from sealpost.crypto.keys import PrivateKeys, Signer
from sealpost.gateway import pki
from sealpost.gateway.auth import TokenKeys, TokenKeySource
from sealpost.gateway.errors import ConfigError

KEYS_FILE: Final = "gateway-keys.json"
KEYS_VERSION: Final = 1


@dataclass(frozen=True, repr=False)
class GatewayKeys:
    """The gateway's signing and token keys: in this process, or held by the key server."""

    directory: Signer
    log: Signer
    tokens: TokenKeySource

    def __repr__(self) -> str:
        """Never show secrets."""
        return "GatewayKeys(<secret>)"


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the TLS material in a state folder."""

    ca: Path
    ca_key: Path
    server: Path
    server_key: Path

    @classmethod
    def at(cls, state_dir: Path) -> TlsFiles:
        """The standard locations under ``state_dir``."""
        tls = state_dir / "tls"
        return cls(tls / "ca.pem", tls / "ca-key.pem", tls / "server.pem", tls / "server-key.pem")

    def ca_pair(self) -> pki.KeyPair:
        """The CA certificate and key."""
        return pki.KeyPair(self.ca.read_bytes(), self.ca_key.read_bytes())


def _write_secret(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _keys_json(keys: PrivateKeys) -> dict[str, str]:
    return {"x25519_secret": keys.x25519_secret.hex(), "ed25519_seed": keys.ed25519_seed.hex()}


def _keys_from(data: Any) -> PrivateKeys:
    return PrivateKeys(
        x25519_secret=bytes.fromhex(data["x25519_secret"]),
        ed25519_seed=bytes.fromhex(data["ed25519_seed"]),
    )


def init_state(state_dir: Path, hosts: list[str], *, file_keys: bool = True) -> list[Path]:
    """Create whatever is missing in ``state_dir``; returns the files created.

    ``file_keys`` False: the directory, log and token keys are kept by the key server
    (gateway/custody.py) and no key file is made.
    """
    created: list[Path] = []
    state_dir.mkdir(parents=True, exist_ok=True)
    keys_path = state_dir / KEYS_FILE
    if file_keys and not keys_path.exists():
        document = {
            "version": KEYS_VERSION,
            "directory": _keys_json(PrivateKeys.generate()),
            "log": _keys_json(PrivateKeys.generate()),
            "token_key": new_session_token_key().hex(),
        }
        _write_secret(keys_path, json.dumps(document, indent=2).encode())
        created.append(keys_path)
    tls = TlsFiles.at(state_dir)
    if not tls.ca.exists():
        ca = pki.create_ca()
        _write_secret(tls.ca_key, ca.key_pem)
        tls.ca.write_bytes(ca.certificate_pem)
        created += [tls.ca, tls.ca_key]
    if not tls.server.exists():
        server = pki.issue_server_certificate(tls.ca_pair(), hosts)
        _write_secret(tls.server_key, server.key_pem)
        tls.server.write_bytes(server.certificate_pem)
        created += [tls.server, tls.server_key]
    return created


def load_keys(state_dir: Path) -> GatewayKeys:
    """Read the gateway's keys; ConfigError with the fix when missing or damaged."""
    path = state_dir / KEYS_FILE
    if not path.exists():
        raise ConfigError(
            [f"{path} does not exist: run `sealpost gateway init --state-dir {state_dir}`"]
        )
    if path.stat().st_mode & 0o077:
        raise ConfigError([f"{path} is readable by others: chmod 600 it"])
    try:
        document = json.loads(path.read_text())
        if document.get("version") != KEYS_VERSION:
            raise ConfigError([f"{path}: unsupported version {document.get('version')!r}"])
        return GatewayKeys(
            directory=_keys_from(document["directory"]),
            log=_keys_from(document["log"]),
            tokens=TokenKeys(bytes.fromhex(document["token_key"])),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError([f"{path} is damaged: {type(exc).__name__}"]) from exc


def stage_directory_key(state_dir: Path, new: PrivateKeys) -> Path:
    """Write the key file with ``new`` as the directory key beside the current one.

    Returns the staged file (``gateway-keys.json.new``); ``commit_staged`` puts it in
    place once the hand-over is in the database, so that a failure in between leaves the
    old key serving and the new one on disk to finish with.
    """
    path = state_dir / KEYS_FILE
    document = json.loads(path.read_text())
    document["directory"] = _keys_json(new)
    staged = path.with_name(path.name + ".new")
    _write_secret(staged, json.dumps(document, indent=2).encode())
    return staged


def replace_token_key(state_dir: Path) -> None:
    """A new session-token key in the key file: every token made before stops verifying."""
    path = state_dir / KEYS_FILE
    document = json.loads(path.read_text())
    document["token_key"] = new_session_token_key().hex()
    staged = path.with_name(path.name + ".new")
    _write_secret(staged, json.dumps(document, indent=2).encode())
    commit_staged(staged)


def commit_staged(staged: Path) -> Path:
    """Put a staged key file in place (one rename); the key file's path."""
    target = staged.with_name(staged.name.removesuffix(".new"))
    staged.replace(target)
    return target


def load_tls(state_dir: Path) -> TlsFiles:
    """The TLS files; ConfigError with the fix when any is missing."""
    tls = TlsFiles.at(state_dir)
    missing = [str(p) for p in (tls.ca, tls.ca_key, tls.server, tls.server_key) if not p.exists()]
    if missing:
        raise ConfigError([f"missing TLS files {', '.join(missing)}: run `sealpost gateway init`"])
    return tls


def renew_server_certificate(state_dir: Path, hosts: list[str] | None = None) -> Path:
    """Issue a new server certificate from the state folder's CA, for the same hosts.

    The key is written before the certificate, each by rename, so a gateway that looks
    in between sees a pair that does not match and keeps serving the old one
    (gateway/certreload.py). Returns the certificate's path.
    """
    tls = TlsFiles.at(state_dir)
    if hosts is None:
        hosts = pki.certificate_hosts(tls.server.read_bytes())
    issued = pki.issue_server_certificate(tls.ca_pair(), hosts)
    for path, data, secret in (
        (tls.server_key, issued.key_pem, True),
        (tls.server, issued.certificate_pem, False),
    ):
        fresh = path.with_name(path.name + ".new")
        if secret:
            _write_secret(fresh, data)
        else:
            fresh.write_bytes(data)
        fresh.replace(path)
    return tls.server
