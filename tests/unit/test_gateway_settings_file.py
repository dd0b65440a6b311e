"""The gateway's TOML settings file: precedence, refusals, masked secrets, check-config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from sealpost.cli import app
from sealpost.crypto.keys import PrivateKeys
from sealpost.gateway.config import (
    GatewayConfig,
    mask_secrets,
    setting_kinds,
)
from sealpost.gateway.errors import ConfigError
from sealpost.settings_file import Kind, line_of

PASSWORD = "hunter2-not-for-print"
URL = f"postgresql+psycopg://sealpost:{PASSWORD}@db.example:5432/sealpost"


def _file(folder: Path, text: str, name: str = "gateway.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def _problems(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    return "\n".join(exc.value.problems)


def test_each_layer_overrides_the_next(tmp_path: Path) -> None:
    path = _file(tmp_path, "port = 6000\nterminal_port = 6001\nweb_port = 6002\n")
    env = {"SEALPOST_TERMINAL_PORT": "7001", "SEALPOST_WEB_PORT": "7002"}
    resolved = GatewayConfig.resolve({"web_port": "8002"}, env, config_file=path)
    config = resolved.config
    # default < file < variable < flag, one setting per step
    assert (config.host, config.port, config.terminal_port, config.web_port) == (
        "127.0.0.1",
        6000,
        7001,
        8002,
    )
    sources = resolved.sources
    assert (sources["host"].kind, sources["port"].kind) == ("default", "file")
    assert (sources["terminal_port"].kind, sources["web_port"].kind) == ("variable", "flag")
    assert sources["port"].line == 1
    assert sources["terminal_port"].where == "SEALPOST_TERMINAL_PORT"
    assert sources["web_port"].where == "--web-port"


def test_the_variable_names_the_file_and_the_flag_beats_the_variable(tmp_path: Path) -> None:
    named = _file(tmp_path, "port = 6000\n", "named.toml")
    flagged = _file(tmp_path, "port = 6100\n", "flagged.toml")
    env = {"SEALPOST_CONFIG": str(named)}
    assert GatewayConfig.load({}, env).port == 6000
    assert GatewayConfig.load({}, env, config_file=flagged).port == 6100
    assert GatewayConfig.load({}, {}).port == 50051


def test_every_kind_of_toml_value_becomes_the_setting(tmp_path: Path) -> None:
    key = PrivateKeys.generate().signing_key.hex()
    path = _file(
        tmp_path,
        f"""
host = "192.0.2.10"
web_port = "off"
web_origins = ["https://post.example.nl", "https://www.post.example.nl"]
grace_seconds = 3
head_interval_seconds = 0.5
allow_tls12 = true
register_limit = "5/h,60/min"
state_dir = "/var/lib/sealpost/state"

[witness_keys]
auditor-a = "{key}"
""",
    )
    config = GatewayConfig.load({}, {}, config_file=path)
    assert config.host == "192.0.2.10"
    assert config.web_port is None
    assert config.web_origins == ("https://post.example.nl", "https://www.post.example.nl")
    assert (config.grace_seconds, config.head_interval_seconds) == (3.0, 0.5)
    assert config.allow_tls12 is True
    assert str(config.register_limit) == "5/h,60/min"
    assert config.state_dir == Path("/var/lib/sealpost/state")
    assert [(k.name, k.public_key.hex()) for k in config.witness_keys.keys] == [("auditor-a", key)]


def test_an_unknown_key_is_refused_with_file_line_and_a_suggestion(tmp_path: Path) -> None:
    path = _file(tmp_path, "# the public port\nprot = 6000\n")
    with pytest.raises(ConfigError) as info:
        GatewayConfig.load({}, {}, config_file=path)
    assert _problems(info) == f"{path}, line 2: prot: no such setting (did you mean port?)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('port = "6000"', "port: expected an integer, got a string"),
        ("port = 6000.0", "port: expected an integer, got a float"),
        ("allow_tls12 = 1", "allow_tls12: expected true or false, got an integer"),
        ("web_port = true", 'web_port: expected an integer or "off", got a boolean'),
        ('web_origins = "https://a.nl"', "web_origins: expected an array of strings, got a string"),
        ("web_origins = []", "web_origins: expected an array of strings, got an empty array"),
        ("grace_seconds = false", "grace_seconds: expected a number, got a boolean"),
        ("[witness_keys]\na = 1", "witness_keys: expected a table of strings, got a table"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_with_file_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _file(tmp_path, f'host = "127.0.0.1"\n{text}\n')
    with pytest.raises(ConfigError) as info:
        GatewayConfig.load({}, {}, config_file=path)
    assert _problems(info) == f"{path}, line 2: {expected}"


def test_a_value_of_the_right_type_is_still_checked_and_named_by_its_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "\n\nport = 70000\n")
    with pytest.raises(ConfigError) as info:
        GatewayConfig.load({}, {}, config_file=path)
    assert _problems(info) == (
        f"{path}, line 3: port: expected an integer from 0 to 65535, got '70000'"
    )


def test_broken_toml_names_the_line_tomllib_gives(tmp_path: Path) -> None:
    path = _file(tmp_path, "port = 6000\nhost = \n")
    with pytest.raises(ConfigError) as info:
        GatewayConfig.load({}, {}, config_file=path)
    assert _problems(info).startswith(f"{path} is not valid TOML: ")
    assert "line 2" in _problems(info)


def test_a_missing_file_and_one_others_may_change_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        GatewayConfig.load({}, {}, config_file=tmp_path / "absent.toml")
    assert _problems(info).startswith(f"cannot read {tmp_path / 'absent.toml'}")
    path = _file(tmp_path, "port = 6000\n")
    path.chmod(0o664)
    with pytest.raises(ConfigError) as info:
        GatewayConfig.load({}, {}, config_file=path)
    assert _problems(info) == f"{path} can be changed by other users: run chmod go-w {path}"


def test_every_problem_of_file_variables_and_flags_is_listed_together(tmp_path: Path) -> None:
    path = _file(tmp_path, 'portt = 1\nworkers = "2"\n')
    with pytest.raises(ConfigError) as info:
        GatewayConfig.load({"port": "x"}, {"SEALPOST_LOG_LEVEL": "loud"}, config_file=path)
    problems = info.value.problems
    assert len(problems) == 4
    assert problems[0].startswith(f"{path}, line 1: portt")
    assert problems[1].startswith(f"{path}, line 2: workers")
    assert any(p.startswith("--port:") for p in problems)
    assert any(p.startswith("SEALPOST_LOG_LEVEL:") for p in problems)


def test_every_setting_has_a_kind_for_the_file() -> None:
    kinds = setting_kinds()
    assert set(kinds) == set(GatewayConfig.__dataclass_fields__)
    assert kinds["port"] is Kind.INTEGER
    assert kinds["witness_keys"] is Kind.TEXT_TABLE


def test_line_of_finds_keys_before_tables_and_table_headers() -> None:
    text = 'port = 1\n"host" = "x"\n[witness_keys]\nport = "not top level"\n'
    assert (line_of(text, "port"), line_of(text, "host")) == (1, 2)
    assert line_of(text, "witness_keys") == 3
    assert line_of(text, "absent") == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL, "postgresql+psycopg://sealpost:***@db.example:5432/sealpost"),
        ("postgresql://u:p@ss@db/x", "postgresql://u:***@db/x"),
        ("postgresql://db/x?user=u&password=secret", "postgresql://db/x?user=u&password=***"),
        ("postgresql://u@db/x", "postgresql://u@db/x"),
        ("sqlite:///var/lib/sealpost.db", "sqlite:///var/lib/sealpost.db"),
        ("postgresql://u:p@[::1", "***"),
    ],
)
def test_the_database_password_is_masked(url: str, shown: str) -> None:
    assert mask_secrets(url) == shown


def test_the_password_file_goes_into_the_url_only_when_connecting(tmp_path: Path) -> None:
    secret = _file(tmp_path, f"{PASSWORD}\n", "db-password")
    flags = {
        "database_url": "postgresql+psycopg://sealpost@db/sealpost",
        "database_password_file": str(secret),
    }
    config = GatewayConfig.load(flags, {})
    assert config.database == f"postgresql+psycopg://sealpost:{PASSWORD}@db/sealpost"
    assert PASSWORD not in json.dumps(config.settings())
    secret.unlink()
    with pytest.raises(ConfigError, match="cannot read the database password"):
        _ = config.database


def test_the_password_file_keeps_a_clusters_host_list(tmp_path: Path) -> None:
    secret = _file(tmp_path, "p@ss:/word\n", "db-password")
    url = (
        "postgresql+psycopg://sealpost@/sealpost"
        "?host=10.0.0.1:5432&host=10.0.0.2:5433&target_session_attrs=read-write"
    )
    config = GatewayConfig.load({"database_url": url, "database_password_file": str(secret)}, {})
    parsed = make_url(config.database)
    assert parsed.password == "p@ss:/word"
    assert parsed.query["host"] == ("10.0.0.1:5432", "10.0.0.2:5433")
    assert "p@ss" not in mask_secrets(config.database)


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        ({"database_password_file": "/run/secrets/db"}, "needs database_url too"),
        (
            {"database_password_file": "/run/secrets/db", "database_url": URL},
            "give the password in one place",
        ),
    ],
)
def test_a_password_file_without_a_url_or_beside_a_password_is_refused(
    flags: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        GatewayConfig.load(flags, {})
    assert fragment in _problems(info)
    assert PASSWORD not in _problems(info)


def test_the_supervisor_rebuilds_the_same_configuration_from_a_file(tmp_path: Path) -> None:
    path = _file(tmp_path, 'port = 6000\nweb_port = "off"\nallow_tls12 = true\nworkers = 2\n')
    config = GatewayConfig.load({}, {}, config_file=path)
    assert GatewayConfig.load(config.settings(), environ={}) == config


# ------------------------------------------------------------------------- check-config


def _check(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["gateway", "check-config", *args], env=env or {})
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def _no_sealpost_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    import os  # noqa: PLC0415

    for name in list(os.environ):
        if name.startswith("SEALPOST_"):
            monkeypatch.delenv(name)


def test_check_config_prints_each_value_and_its_source_without_the_password(
    tmp_path: Path,
) -> None:
    path = _file(tmp_path, f'host = "192.0.2.10"\ndatabase_url = "{URL}"\n')
    code, output = _check(
        ["--config", str(path), "--port", "6000"], {"SEALPOST_LOG_LEVEL": "debug"}
    )
    assert code == 0, output
    assert PASSWORD not in output
    lines = {line.split()[0]: line.split()[1:] for line in output.splitlines() if line.strip()}
    assert lines["settings"] == ["file:", str(path)]
    assert lines["host"] == ["192.0.2.10", "settings", "file,", "line", "1"]
    assert lines["database_url"][0] == "postgresql+psycopg://sealpost:***@db.example:5432/sealpost"
    assert lines["port"] == ["6000", "flag", "--port"]
    assert lines["log_level"] == ["debug", "variable", "SEALPOST_LOG_LEVEL"]
    assert lines["workers"] == ["1", "default"]


def test_check_config_json_masks_the_password_too(tmp_path: Path) -> None:
    path = _file(tmp_path, f'database_url = "{URL}"\n')
    code, output = _check(["--json"], {"SEALPOST_CONFIG": str(path)})
    assert code == 0, output
    assert PASSWORD not in output
    document = json.loads(output)
    assert document["configFile"] == str(path)
    assert document["settings"]["database_url"] == {
        "value": "postgresql+psycopg://sealpost:***@db.example:5432/sealpost",
        "source": "file",
        "where": str(path),
        "line": 1,
    }
    assert document["settings"]["port"] == {"value": "50051", "source": "default"}


def test_check_config_exits_1_listing_every_problem(tmp_path: Path) -> None:
    path = _file(tmp_path, f'prot = 1\nport = "x"\ndatabase_url = "{URL}"\n')
    code, output = _check(["--config", str(path), "--workers", "0"])
    assert code == 1
    assert PASSWORD not in output
    assert "invalid configuration" in output
    for fragment in (
        f"{path}, line 1: prot: no such setting",
        f"{path}, line 2: port: expected an integer, got a string",
        "--workers: expected a whole number from 1 to 64, got '0'",
    ):
        assert fragment in output


def test_check_config_takes_every_option_serve_takes() -> None:
    import typer  # noqa: PLC0415

    group = typer.main.get_command(app).commands["gateway"]  # type: ignore[attr-defined]
    serve = {tuple(p.opts) for p in group.commands["serve"].params}
    check = {tuple(p.opts) for p in group.commands["check-config"].params}
    assert serve <= check
    assert ("--json",) in check
