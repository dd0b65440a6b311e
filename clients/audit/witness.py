"""The auditor as a witness of the gateway's log (SPEC P13): a key of its own, a state file.

An auditor is the witness least tied to the gateway's operator. It makes an Ed25519 key
of its own (``sealpost audit witness-key``), publishes the public key out of band (in
its report, on paper, on its own site) and hands it to the gateway's operator, who
configures it (``--witness-keys NAME=HEX``) so that the gateway accepts its
cosignatures. ``sealpost audit witness`` then runs one round of the witness of
``sealpost.clients.witness``: fetch the newest head, check it against the newest head
this auditor saw, cosign and hand it in. Run it from cron every few minutes.

The key file (``sealpost-witness-key``) is a passphrase-sealed document like the
terminal's profile (Argon2id, XChaCha20-Poly1305; sealpost.clients.sealedfile): the
public key and key id in clear but authenticated, the Ed25519 seed sealed. The witness
state goes to ``$XDG_STATE_HOME/sealpost/witness/directory-<16 hex digits>.json`` unless
``--state-file`` says otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sealpost.clients.sealedfile import DocumentFormat, SealedFileError
from sealpost.clients.witness import WitnessKey
from sealpost.crypto import cosignature
from sealpost.crypto.errors import FormatError
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.passphrase import KDF_MODERATE, KdfParams
from sealpost.errors import SealpostError

KEY_FORMAT: Final = "sealpost-witness-key"
#: The witness key file: a sealed document of its own kind.
KEY_FILE: Final = DocumentFormat(what="witness key", kind=KEY_FORMAT)


class WitnessKeyError(SealpostError):
    """The witness key file cannot be made or opened."""


@dataclass(frozen=True)
class PublicWitnessKey:
    """What an auditor publishes: the Ed25519 public key and the key id cosignatures carry."""

    public_key: bytes
    key_id: bytes


def create_key(
    path: Path, passphrase: str, *, seed: bytes | None = None, kdf: KdfParams = KDF_MODERATE
) -> PublicWitnessKey:
    """Write a new witness key to ``path`` (never over an existing file); its public half.

    ``seed`` is for tests; by default the key is fresh.
    """
    keys = PrivateKeys.generate() if seed is None else PrivateKeys(bytes(32), seed)
    public = PublicWitnessKey(keys.signing_key, cosignature.witness_key_id(keys.signing_key))
    body = {"public_key": public.public_key.hex(), "witness_key_id": public.key_id.hex()}
    try:
        KEY_FILE.refuse_existing(path, f"{path} exists; it is not replaced")
        document = KEY_FILE.seal(KEY_FILE.new_key(passphrase, kdf), body, keys.ed25519_seed)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        KEY_FILE.write(path, document)
    except SealedFileError as exc:
        raise WitnessKeyError(exc.explain()) from exc
    return public


def open_key(path: Path, passphrase: str) -> WitnessKey:
    """The witness key in ``path``; WitnessKeyError when it does not open or is damaged."""
    try:
        opened = KEY_FILE.open(KEY_FILE.read(path, f"cannot read {path}: no such file"), passphrase)
        keys = PrivateKeys(bytes(32), opened.plaintext)
    except (SealedFileError, FormatError) as exc:
        raise WitnessKeyError(exc.explain()) from exc
    key_id = cosignature.witness_key_id(keys.signing_key)
    if opened.body.get("witness_key_id") != key_id.hex():
        raise WitnessKeyError(f"{path}: the key id does not belong to the key")
    return WitnessKey(key_id, keys.ed25519_seed)


def default_state_path(directory_key: bytes) -> Path:
    """``$XDG_STATE_HOME/sealpost/witness/directory-<16 hex digits>.json``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "sealpost" / "witness" / f"directory-{directory_key.hex()[:16]}.json"
