"""The terminal profile on disk: encrypted, authenticated, versioned, atomic (no network)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from sealpost.clients.terminal.errors import (
    ProfileBusyError,
    ProfileExistsError,
    ProfileFormatError,
    ProfileNotFoundError,
    ProfileVersionTooNewError,
    ProfileVersionTooOldError,
    RegisterError,
    WeakPassphraseError,
    WrongPassphraseError,
)
from sealpost.clients.terminal.intake import IntakeState
from sealpost.clients.terminal.profile import (
    PROFILE_FILE,
    PROFILE_NAME,
    STATE_NAME,
    FileStateStore,
    ProfileSecrets,
    ProfileSettings,
    TerminalProfile,
    export_institution_key,
    read_institution_key,
)
from sealpost.clients.terminal.register import DetaineeRegister
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.passphrase import KDF_INTERACTIVE, KdfParams

PASSPHRASE = "correct horse battery staple"
TOKEN = "s.terminal-token-1234567890"
TLS_KEY = b"-----BEGIN PRIVATE KEY-----\nTLSKEYMATERIAL\n-----END PRIVATE KEY-----\n"


def _settings() -> ProfileSettings:
    return ProfileSettings(
        institution_id="pi-unit",
        terminal_id="t-1",
        gateway="127.0.0.1:50052",
        key_server="http://127.0.0.1:8200",
        directory_pin=bytes(range(32)),
        certificate_pem=b"-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n",
        ca_pem=b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
        institution_key_id=b"\x09" * 32,
    )


def _create(folder: Path, keys: PrivateKeys | None = None) -> TerminalProfile:
    secrets = ProfileSecrets(TLS_KEY, keys or PrivateKeys.generate(), TOKEN)
    return TerminalProfile.create(folder, PASSPHRASE, _settings(), secrets, kdf=KDF_INTERACTIVE)


def test_round_trip_keeps_everything_and_stores_no_secret_in_clear(tmp_path: Path) -> None:
    keys = PrivateKeys.generate()
    created = _create(tmp_path / "p", keys)
    path = tmp_path / "p" / PROFILE_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    raw = path.read_bytes()
    for secret in (TOKEN.encode(), b"TLSKEYMATERIAL", keys.x25519_secret, keys.ed25519_seed):
        assert secret not in raw
    assert keys.x25519_secret.hex().encode() not in raw
    opened = TerminalProfile.open(tmp_path / "p", PASSPHRASE)
    assert opened.settings == created.settings
    assert opened.secrets.key_server_token == TOKEN
    assert opened.secrets.tls_key_pem == TLS_KEY
    assert opened.secrets.institution_keys.encryption_key == keys.encryption_key
    assert opened.secrets.institution_keys.signing_key == keys.signing_key
    assert TOKEN not in repr(opened.secrets)
    assert TOKEN not in repr(opened)
    assert list((tmp_path / "p").iterdir()) == [path]  # no temporary files left behind


def test_update_reseals_with_a_fresh_nonce(tmp_path: Path) -> None:
    profile = _create(tmp_path)
    before = json.loads((tmp_path / PROFILE_NAME).read_text())
    profile.update(institution_key_id=b"\x01" * 32)
    after = json.loads((tmp_path / PROFILE_NAME).read_text())
    assert before["nonce"] != after["nonce"]
    assert before["kdf"] == after["kdf"]
    reopened = TerminalProfile.open(tmp_path, PASSPHRASE)
    assert reopened.settings.institution_key_id == b"\x01" * 32


def test_wrong_passphrase_and_any_altered_setting_fail_alike(tmp_path: Path) -> None:
    _create(tmp_path)
    with pytest.raises(WrongPassphraseError):
        TerminalProfile.open(tmp_path, "not the passphrase")
    with pytest.raises(WrongPassphraseError):
        TerminalProfile.open(tmp_path, "")
    path = tmp_path / PROFILE_NAME
    original = json.loads(path.read_text())
    for field, value in (
        ("directory_pin", "ff" * 32),
        ("gateway", "evil.example:50052"),
        ("key_server", "http://127.0.0.1:9999"),
        ("institution_id", "pi-other"),
    ):
        altered = json.loads(json.dumps(original))
        altered["body"][field] = value
        path.write_text(json.dumps(altered))
        with pytest.raises(WrongPassphraseError):
            TerminalProfile.open(tmp_path, PASSPHRASE)
    sealed = json.loads(json.dumps(original))
    sealed["sealed"] = sealed["sealed"][:-4] + (
        "AAAA" if sealed["sealed"][-4:] != "AAAA" else "BBBB"
    )
    path.write_text(json.dumps(sealed))
    with pytest.raises(WrongPassphraseError):
        TerminalProfile.open(tmp_path, PASSPHRASE)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": 2}, ProfileVersionTooNewError),
        ({"version": 0}, ProfileVersionTooOldError),
        ({"format": "sealpost-relative-profile"}, ProfileFormatError),
        ({"nonce": "c2hvcnQ="}, ProfileFormatError),
        ({"sealed": "not base64!"}, ProfileFormatError),
        (
            {"kdf": {"algorithm": "scrypt", "opslimit": 2, "memlimit": 67108864, "salt": ""}},
            ProfileFormatError,
        ),
    ],
)
def test_versions_and_formats_are_refused_distinctly(
    tmp_path: Path, change: dict[str, object], error: type[Exception]
) -> None:
    _create(tmp_path)
    path = tmp_path / PROFILE_NAME
    document = json.loads(path.read_text())
    document.update(change)
    path.write_text(json.dumps(document))
    with pytest.raises(error):
        TerminalProfile.open(tmp_path, PASSPHRASE)


def test_kdf_costs_out_of_range_are_refused_before_deriving(tmp_path: Path) -> None:
    _create(tmp_path)
    path = tmp_path / PROFILE_NAME
    document = json.loads(path.read_text())
    document["kdf"]["memlimit"] = 1 << 40  # a planted file must not exhaust memory
    path.write_text(json.dumps(document))
    with pytest.raises(ProfileFormatError, match="cost"):
        TerminalProfile.open(tmp_path, PASSPHRASE)
    with pytest.raises(ProfileFormatError, match="cost"):
        TerminalProfile.create(
            tmp_path / "weak",
            PASSPHRASE,
            _settings(),
            ProfileSecrets(TLS_KEY, PrivateKeys.generate(), TOKEN),
            kdf=KdfParams(1, 8192),
        )


def test_missing_existing_garbage_and_weak(tmp_path: Path) -> None:
    with pytest.raises(ProfileNotFoundError):
        TerminalProfile.open(tmp_path / "nowhere", PASSPHRASE)
    _create(tmp_path)
    with pytest.raises(ProfileExistsError):
        _create(tmp_path)
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / PROFILE_NAME).write_bytes(b"\x00\xff not json")
    with pytest.raises(ProfileFormatError):
        TerminalProfile.open(tmp_path / "garbage", PASSPHRASE)
    with pytest.raises(WeakPassphraseError):
        TerminalProfile.create(
            tmp_path / "weak",
            "short",
            _settings(),
            ProfileSecrets(TLS_KEY, PrivateKeys.generate(), TOKEN),
            kdf=KDF_INTERACTIVE,
        )
    assert not (tmp_path / "weak" / PROFILE_NAME).exists()


def test_intake_state_round_trip_and_versions(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / STATE_NAME)
    assert store.load() == IntakeState()
    store.save(IntakeState(cursor="42", malformed={"ab" * 16: "DecryptionError"}, taken_in=7))
    assert (tmp_path / STATE_NAME).stat().st_mode & 0o777 == 0o600
    loaded = store.load()
    assert (loaded.cursor, loaded.malformed, loaded.taken_in) == (
        "42",
        {"ab" * 16: "DecryptionError"},
        7,
    )
    document = json.loads((tmp_path / STATE_NAME).read_text())
    document["version"] = 9
    (tmp_path / STATE_NAME).write_text(json.dumps(document))
    with pytest.raises(ProfileVersionTooNewError):
        store.load()
    (tmp_path / STATE_NAME).write_text('{"format": "something else"}')
    with pytest.raises(ProfileFormatError):
        store.load()


def test_one_intake_loop_per_profile(tmp_path: Path) -> None:
    profile = _create(tmp_path)
    other = TerminalProfile.open(tmp_path, PASSPHRASE)
    with profile.intake_lock(), pytest.raises(ProfileBusyError), other.intake_lock():
        pass
    with other.intake_lock():
        pass


def test_institution_key_export_round_trip(tmp_path: Path) -> None:
    keys = PrivateKeys.generate()
    profile = _create(tmp_path / "p", keys)
    out = tmp_path / "institution.key"
    export_institution_key(profile, out, "another passphrase", kdf=KDF_INTERACTIVE)
    assert out.stat().st_mode & 0o777 == 0o600
    assert keys.x25519_secret not in out.read_bytes()
    institution, key_id, imported = read_institution_key(out, "another passphrase")
    assert institution == "pi-unit"
    assert key_id == b"\x09" * 32
    assert imported.encryption_key == keys.encryption_key
    assert imported.signing_key == keys.signing_key
    with pytest.raises(WrongPassphraseError):
        read_institution_key(out, PASSPHRASE)
    with pytest.raises(ProfileExistsError):
        export_institution_key(profile, out, "another passphrase", kdf=KDF_INTERACTIVE)
    # A profile file is not an exported key, and the other way round.
    with pytest.raises(ProfileFormatError):
        read_institution_key(tmp_path / "p" / PROFILE_NAME, PASSPHRASE)


# --------------------------------------------------------------------- the detainee register


def test_the_register_is_sealed_with_the_secrets_and_survives_a_reopen(tmp_path: Path) -> None:
    profile = _create(tmp_path)
    assert len(profile.register) == 0
    register = profile.register.set("d-1", name="Yusuf Demir", language="tr")
    register = register.set("d-2", name="Ewa Nowak", language="pl-PL")
    profile.set_register(register.set("d-1", language="ar"))
    raw = (tmp_path / PROFILE_NAME).read_bytes()
    for personal in (b"Yusuf", b"Nowak", b'"ar"', b"d-1"):
        assert personal not in raw  # names and languages never lie in clear
    reopened = TerminalProfile.open(tmp_path, PASSPHRASE)
    assert [d.to_json() for d in reopened.register] == [
        {"detaineeId": "d-1", "name": "Yusuf Demir", "language": "ar"},
        {"detaineeId": "d-2", "name": "Ewa Nowak", "language": "pl"},
    ]
    assert reopened.register.lookup("d-1").shown() == "Yusuf Demir (d-1)"
    assert reopened.secrets.key_server_token == TOKEN
    # Not registered: Dutch, and the id alone.
    unknown = reopened.register.lookup("d-9")
    assert (unknown.language, unknown.shown()) == ("nl", "d-9")
    reopened.set_register(reopened.register.remove("d-2"))
    assert [d.detainee_id for d in TerminalProfile.open(tmp_path, PASSPHRASE).register] == ["d-1"]


def test_register_entries_are_checked() -> None:
    empty = DetaineeRegister()
    with pytest.raises(RegisterError, match="give the name"):
        empty.set("d-1", language="ar")
    with pytest.raises(RegisterError, match="choose one of nl, en, ar, tr, pl"):
        empty.set("d-1", name="Anna", language="de")
    with pytest.raises(RegisterError, match="empty"):
        empty.set("d-1", name="   ")
    with pytest.raises(RegisterError, match="control"):
        empty.set("d-1", name="Anna\u202edlog")  # a bidi override would turn a name around
    with pytest.raises(RegisterError, match="longer"):
        empty.set("d-1", name="A" * 201)
    with pytest.raises(RegisterError, match="not in the register"):
        empty.remove("d-1")
    assert empty.set(" d-1 ", name=" Anna ").lookup("d-1").name == "Anna"


def _contents(profile: TerminalProfile, plaintext: Mapping[str, object]) -> None:
    """Re-seal the profile's contents as an older or newer program would have written them."""
    data = PROFILE_FILE.seal(
        profile._key,
        profile.settings.to_json(),
        json.dumps(plaintext).encode(),
    )
    PROFILE_FILE.write(profile.path, data)


def test_a_profile_without_a_register_opens_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    profile = _create(tmp_path)
    secrets = profile.secrets
    _contents(profile, secrets.to_json())  # version 1: the secrets alone
    old = TerminalProfile.open(tmp_path, PASSPHRASE)
    assert len(old.register) == 0
    assert old.secrets.key_server_token == TOKEN
    old.set_register(old.register.set("d-1", name="Anna"))  # written as version 2
    assert TerminalProfile.open(tmp_path, PASSPHRASE).register.lookup("d-1").name == "Anna"
    _contents(profile, {**secrets.to_json(), "version": 3, "detainees": []})
    with pytest.raises(ProfileVersionTooNewError):
        TerminalProfile.open(tmp_path, PASSPHRASE)
    _contents(profile, {**secrets.to_json(), "version": 2, "detainees": [{"name": "x"}]})
    with pytest.raises(ProfileFormatError, match="register is damaged"):
        TerminalProfile.open(tmp_path, PASSPHRASE)
