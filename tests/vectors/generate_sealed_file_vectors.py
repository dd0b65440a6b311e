"""Regenerate the sealed local files: tests/vectors/sealed-files-v1.json.

Run ``.venv/bin/python tests/vectors/generate_sealed_file_vectors.py``. The file holds,
byte for byte, one of each passphrase-sealed file the clients write (a relative's
profile, a terminal's profile, an exported institution key, an auditor's witness key),
made from the fixed inputs below. Randomness (salts and nonces) comes from a fixed
stream instead of libsodium, so the same code writes the same bytes on every run.

tests/unit/test_sealed_file_vectors.py opens every committed file with today's readers
(files written before keep opening) and fails when this script writes anything else
(today's writers still write the same format).
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final
from unittest import mock

from sealpost.clients.audit.witness import create_key
from sealpost.clients.relative.keystore import Profile, ProfileData, SentRecord
from sealpost.clients.terminal.profile import (
    ProfileSecrets,
    ProfileSettings,
    TerminalProfile,
    export_institution_key,
)
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.passphrase import KDF_INTERACTIVE

VECTOR_DIR = Path(__file__).resolve().parent
FILE_NAME = "sealed-files-v1.json"

#: Test passphrases and keys only; never use them for anything else.
RELATIVE_PASSPHRASE: Final = "wachtwoord café مرحبا"
TERMINAL_PASSPHRASE: Final = "correct horse battery staple"
EXPORT_PASSPHRASE: Final = "another passphrase for the export"
WITNESS_PASSPHRASE: Final = "the auditor's own passphrase"


def _bytes(label: str) -> bytes:
    return hashlib.sha256(f"sealpost test vector {label}".encode()).digest()


RELATIVE_KEYS: Final = PrivateKeys(_bytes("relative x25519"), _bytes("relative ed25519"))
INSTITUTION_KEYS: Final = PrivateKeys(_bytes("institution x25519"), _bytes("institution ed25519"))
WITNESS_SEED: Final = _bytes("witness ed25519")


def relative_data() -> ProfileData:
    """What the relative's profile holds: every field set, one verified and one open receipt."""
    return ProfileData(
        gateway="gateway.example:50051",
        ca_pem=b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        directory_pin=_bytes("directory pin"),
        display_name="فاطمة El Amrani — 王",
        account_id="acct-7f3a9c",
        key_id=_bytes("relative key id"),
        keys=RELATIVE_KEYS,
        inbox_cursor="42",
        notice_shown_at_ms=1_767_225_600_000,
        sent=[
            SentRecord(
                message_id=_bytes("message 1")[:16],
                detainee_id="d-1",
                accepted_at_ms=1_767_225_601_000,
                envelope_digest=_bytes("envelope 1"),
                receipt=b"\x0a\x10receipt one",
                verified_at_ms=1_767_225_602_000,
            ),
            SentRecord(
                message_id=_bytes("message 2")[:16],
                detainee_id="d-2",
                accepted_at_ms=1_767_225_603_000,
                envelope_digest=_bytes("envelope 2"),
                receipt=b"\x0a\x10receipt two",
                problem="the proof does not verify",
            ),
        ],
    )


def terminal_settings() -> ProfileSettings:
    """The terminal profile's public settings."""
    return ProfileSettings(
        institution_id="pi-vector",
        terminal_id="t-vector-1",
        gateway="gateway.example:50052",
        key_server="https://keys.example:8200",
        directory_pin=_bytes("directory pin"),
        certificate_pem=b"-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n",
        ca_pem=b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
        institution_key_id=_bytes("institution key id"),
        key_server_ca="/etc/sealpost/key-server-ca.pem",
        escrow_prefix="sealpost-vector",
    )


def terminal_secrets() -> ProfileSecrets:
    """The terminal profile's sealed secrets."""
    return ProfileSecrets(
        tls_key_pem=b"-----BEGIN PRIVATE KEY-----\nTLSKEY\n-----END PRIVATE KEY-----\n",
        institution_keys=INSTITUTION_KEYS,
        key_server_token="s.vector-terminal-token",
    )


@contextmanager
def _fixed_randomness(label: str) -> Iterator[None]:
    """Every draw of random bytes, through libsodium's randombytes, from a fixed stream."""
    draws = 0

    def fixed(size: int) -> bytes:
        nonlocal draws
        draws += 1
        return hashlib.shake_256(f"{label} {draws}".encode()).digest(size)

    with mock.patch("nacl.utils.random", fixed):
        yield


def _entry(kind: str, name: str, passphrase: str, data: bytes) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "passphrase": passphrase,
        "kdf": {"opslimit": KDF_INTERACTIVE.opslimit, "memlimit": KDF_INTERACTIVE.memlimit},
        "file_base64": base64.b64encode(data).decode("ascii"),
    }


def build() -> dict[str, str]:
    """File name -> contents, as the writers of today make them."""
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        with _fixed_randomness("relative profile"):
            Profile.create(
                folder / "relative", RELATIVE_PASSPHRASE, relative_data(), kdf=KDF_INTERACTIVE
            ).close()
        with _fixed_randomness("terminal profile"):
            terminal = TerminalProfile.create(
                folder / "terminal",
                TERMINAL_PASSPHRASE,
                terminal_settings(),
                terminal_secrets(),
                kdf=KDF_INTERACTIVE,
            )
        with _fixed_randomness("institution key"):
            export_institution_key(
                terminal, folder / "institution.key", EXPORT_PASSPHRASE, kdf=KDF_INTERACTIVE
            )
        with _fixed_randomness("witness key"):
            create_key(
                folder / "witness.key", WITNESS_PASSPHRASE, seed=WITNESS_SEED, kdf=KDF_INTERACTIVE
            )
        files = [
            _entry(
                "relative-profile",
                "profile.sealpost",
                RELATIVE_PASSPHRASE,
                (folder / "relative" / "profile.sealpost").read_bytes(),
            ),
            _entry(
                "terminal-profile",
                "terminal-profile.json",
                TERMINAL_PASSPHRASE,
                terminal.path.read_bytes(),
            ),
            _entry(
                "institution-key",
                "institution.key",
                EXPORT_PASSPHRASE,
                (folder / "institution.key").read_bytes(),
            ),
            _entry(
                "witness-key",
                "witness.key",
                WITNESS_PASSPHRASE,
                (folder / "witness.key").read_bytes(),
            ),
        ]
    document = {
        "description": (
            "Passphrase-sealed local files, version 1, byte for byte as the clients write "
            "them (tests/vectors/generate_sealed_file_vectors.py holds the inputs). Argon2id "
            "at libsodium's INTERACTIVE cost; test passphrases and keys only."
        ),
        "files": files,
    }
    return {FILE_NAME: json.dumps(document, indent=2, ensure_ascii=False) + "\n"}


def main() -> None:
    """Write the vector file next to this script."""
    for name, text in build().items():
        (VECTOR_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {VECTOR_DIR / name}")


if __name__ == "__main__":
    main()
