"""Sealed local files written before still open, and today's writers write the same bytes.

The committed files (tests/vectors/sealed-files-v1.json) are a relative's profile, a
terminal's profile, an exported institution key and an auditor's witness key, as the
clients wrote them; a profile on a relative's phone or a terminal's disk must keep
opening whatever is refactored underneath.
"""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sealpost.clients.audit.witness import open_key
from sealpost.clients.relative import keystore
from sealpost.clients.relative.keystore import FILE_NAME, Profile
from sealpost.clients.terminal.errors import WrongPassphraseError
from sealpost.clients.terminal.profile import (
    PROFILE_NAME,
    TerminalProfile,
    read_institution_key,
)
from sealpost.crypto import cosignature

VECTOR_DIR = Path(__file__).resolve().parent.parent / "vectors"


def _generator() -> ModuleType:
    path = VECTOR_DIR / "generate_sealed_file_vectors.py"
    spec = importlib.util.spec_from_file_location("generate_sealed_file_vectors", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


def _files() -> dict[str, dict[str, Any]]:
    document = json.loads((VECTOR_DIR / "sealed-files-v1.json").read_text(encoding="utf-8"))
    return {entry["kind"]: entry for entry in document["files"]}


def _written(entry: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(entry["file_base64"]))
    path.chmod(0o600)
    return path


def test_committed_files_are_what_the_writers_write() -> None:
    for name, text in GENERATOR.build().items():
        committed = (VECTOR_DIR / name).read_text(encoding="utf-8")
        assert committed == text, (
            f"{name} changed: the sealed file format must stay byte for byte the same "
            f"(run {VECTOR_DIR}/generate_sealed_file_vectors.py only for a new version)"
        )


def test_a_relative_profile_written_before_opens(tmp_path: Path) -> None:
    entry = _files()["relative-profile"]
    _written(entry, tmp_path / "profile" / FILE_NAME)
    with Profile.open(tmp_path / "profile", entry["passphrase"]) as profile:
        # Every field, keys and sent records included, as the profile's own encoding puts it.
        assert keystore._encode_contents(profile.data) == keystore._encode_contents(
            GENERATOR.relative_data()
        )


def test_a_terminal_profile_written_before_opens(tmp_path: Path) -> None:
    entry = _files()["terminal-profile"]
    _written(entry, tmp_path / "terminal" / PROFILE_NAME)
    profile = TerminalProfile.open(tmp_path / "terminal", entry["passphrase"])
    assert profile.settings == GENERATOR.terminal_settings()
    secrets = GENERATOR.terminal_secrets()
    assert profile.secrets.tls_key_pem == secrets.tls_key_pem
    assert profile.secrets.key_server_token == secrets.key_server_token
    keys = profile.secrets.institution_keys
    assert keys.x25519_secret == secrets.institution_keys.x25519_secret
    assert keys.ed25519_seed == secrets.institution_keys.ed25519_seed


def test_an_institution_key_exported_before_opens(tmp_path: Path) -> None:
    entry = _files()["institution-key"]
    path = _written(entry, tmp_path / "institution.key")
    institution, key_id, keys = read_institution_key(path, entry["passphrase"])
    settings = GENERATOR.terminal_settings()
    assert institution == settings.institution_id
    assert key_id == settings.institution_key_id
    assert keys.x25519_secret == GENERATOR.INSTITUTION_KEYS.x25519_secret
    assert keys.ed25519_seed == GENERATOR.INSTITUTION_KEYS.ed25519_seed
    with pytest.raises(WrongPassphraseError):
        read_institution_key(path, _files()["terminal-profile"]["passphrase"])


def test_a_witness_key_written_before_opens(tmp_path: Path) -> None:
    entry = _files()["witness-key"]
    path = _written(entry, tmp_path / "witness.key")
    key = open_key(path, entry["passphrase"])
    assert key.seed == GENERATOR.WITNESS_SEED
    public = GENERATOR.PrivateKeys(bytes(32), GENERATOR.WITNESS_SEED).signing_key
    assert key.key_id == cosignature.witness_key_id(public)
