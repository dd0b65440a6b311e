"""The terminal operator's settings: flags over variables over the file over the profile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sealpost.cli import app
from sealpost.clients.terminal.config import SETTINGS, TerminalConfig
from sealpost.clients.terminal.errors import TerminalSettingsError
from sealpost.clients.terminal.profile import (
    ProfileSecrets,
    ProfileSettings,
    TerminalProfile,
)
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.passphrase import KDF_INTERACTIVE

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _no_sealpost_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SEALPOST_"):
            monkeypatch.delenv(name)


def _file(folder: Path, text: str, name: str = "terminal.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def _profile(folder: Path) -> TerminalProfile:
    settings = ProfileSettings(
        institution_id="pi-unit",
        terminal_id="t-1",
        gateway="127.0.0.1:50052",
        key_server="http://127.0.0.1:8200",
        directory_pin=bytes(range(32)),
        certificate_pem=b"-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n",
        ca_pem=b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
    )
    secrets = ProfileSecrets(b"TLS KEY", PrivateKeys.generate(), "token")
    return TerminalProfile.create(folder, PASSPHRASE, settings, secrets, kdf=KDF_INTERACTIVE)


def test_defaults_keep_the_profiles_addresses() -> None:
    config = TerminalConfig.load({}, {})
    assert config == TerminalConfig()
    assert (config.gateway, config.key_server) == (None, None)
    assert (config.batch_size, config.triage, config.max_wait) == (200, True, 60.0)


def test_each_layer_overrides_the_next(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        'gateway = "gw.example.nl:50052"\nbatch_size = 50\ntriage = false\nmax_wait = 5\n',
    )
    env = {"SEALPOST_TERMINAL_BATCH_SIZE": "100", "SEALPOST_TERMINAL_TRIAGE": "true"}
    config = TerminalConfig.load({"triage": "false"}, env, config_file=path)
    # file < variable < flag; the file alone sets the gateway and max_wait
    assert config.gateway == "gw.example.nl:50052"
    assert config.max_wait == 5.0
    assert config.batch_size == 100
    assert config.triage is False
    assert config.sources == {
        "gateway": f"{path}, line 1: gateway",
        "batch_size": "SEALPOST_TERMINAL_BATCH_SIZE",
        "triage": "--triage",
        "max_wait": f"{path}, line 4: max_wait",
    }


def test_the_metrics_port_is_off_unless_set_and_a_variable_beats_the_file(
    tmp_path: Path,
) -> None:
    assert TerminalConfig.load({}, {}).metrics_port is None
    path = _file(tmp_path, "metrics_port = 9464\n")
    assert TerminalConfig.load({}, {}, config_file=path).metrics_port == 9464
    env = {"SEALPOST_TERMINAL_METRICS_PORT": "off"}
    assert TerminalConfig.load({}, env, config_file=path).metrics_port is None
    assert TerminalConfig.load({"metrics_port": "0"}, env, config_file=path).metrics_port == 0


def test_the_variable_names_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, 'key_server = "https://bao.example.nl:8200/"\n')
    config = TerminalConfig.load({}, {"SEALPOST_TERMINAL_CONFIG": str(path)})
    assert config.key_server == "https://bao.example.nl:8200"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gatway = 'x:1'", "gatway: no such setting (did you mean gateway?)"),
        ('batch_size = "50"', "batch_size: expected an integer, got a string"),
        ("triage = 0", "triage: expected true or false, got an integer"),
        ("batch_size = 201", "batch_size: expected a whole number from 1 to 200, got '201'"),
        ('gateway = "gw.example.nl"', "gateway: expected host:port"),
        ('key_server = "http://bao.example.nl:8200"', "key_server: expected an https URL"),
        ("database_url = 'x'", "database_url: no such setting"),
        ("metrics_port = true", 'metrics_port: expected an integer or "off", got a boolean'),
        ("metrics_port = 70000", "metrics_port: expected an integer from 0 to 65535, or off"),
    ],
)
def test_unknown_keys_wrong_types_and_bad_values_are_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _file(tmp_path, f"{text}\n")
    with pytest.raises(TerminalSettingsError) as info:
        TerminalConfig.load({}, {}, config_file=path)
    assert info.value.problems[0].startswith(f"{path}, line 1: {expected}")


def test_every_setting_has_a_variable_of_its_own() -> None:
    variables = [setting.env for setting in SETTINGS.values()]
    assert len(set(variables)) == len(variables)
    assert all(v.startswith("SEALPOST_") for v in variables)


def test_addresses_from_the_settings_are_used_but_never_saved(tmp_path: Path) -> None:
    profile = _profile(tmp_path / "p")
    profile.use_addresses(gateway="gw.example.nl:50052", key_server="https://bao.example.nl")
    assert profile.gateway == "gw.example.nl:50052"
    assert profile.key_server_config().address == "https://bao.example.nl"
    profile.update(institution_key_id=b"\x01" * 32)  # a save while overridden
    reopened = TerminalProfile.open(tmp_path / "p", PASSPHRASE)
    assert reopened.settings.gateway == "127.0.0.1:50052"
    assert reopened.settings.key_server == "http://127.0.0.1:8200"
    assert reopened.gateway == "127.0.0.1:50052"


def test_intake_refuses_bad_settings_before_asking_for_the_passphrase(tmp_path: Path) -> None:
    path = _file(tmp_path, "batch_size = 0\nsecret = 'x'\n")
    result = CliRunner().invoke(
        app,
        ["terminal", "intake", "--once", "--config", str(path), "--profile", str(tmp_path)],
    )
    assert result.exit_code == 2, result.output
    assert "Passphrase" not in result.output
    assert f"{path}, line 1: batch_size: expected a whole number from 1 to 200" in result.output
    assert f"{path}, line 2: secret: no such setting" in result.output


def test_the_passphrase_file_opens_the_profile(tmp_path: Path) -> None:
    _profile(tmp_path / "p")
    secret = _file(tmp_path, PASSPHRASE + "\n", "passphrase")
    settings = _file(tmp_path, f'passphrase_file = "{secret}"\n')
    env = {
        "SEALPOST_TERMINAL_CONFIG": str(settings),
        "SEALPOST_TERMINAL_PROFILE": str(tmp_path / "p"),
    }
    result = CliRunner().invoke(app, ["terminal", "detainee", "list"], env=env)
    assert result.exit_code == 0, result.output
    assert "no detainees" in result.output
    secret.write_text("not the passphrase at all\n")
    result = CliRunner().invoke(app, ["terminal", "detainee", "list"], env=env)
    assert result.exit_code == 1
    assert "passphrase does not open" in result.output


def test_a_changed_address_is_said_on_standard_error(tmp_path: Path) -> None:
    _profile(tmp_path / "p")
    env = {
        "SEALPOST_TERMINAL_PROFILE": str(tmp_path / "p"),
        "SEALPOST_PASSPHRASE": PASSPHRASE,
        "SEALPOST_TERMINAL_GATEWAY": "gw.example.nl:50052",
    }
    result = CliRunner().invoke(app, ["terminal", "detainee", "list"], env=env)
    assert result.exit_code == 0, result.output
    assert (
        "note: gw.example.nl:50052 from SEALPOST_TERMINAL_GATEWAY instead of the profile's "
        "127.0.0.1:50052"
    ) in result.output
