"""Settings and files of key_custody = key-server, refused where they would not work or leak."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealpost.gateway.config import GatewayConfig
from sealpost.gateway.custody import read_token
from sealpost.gateway.errors import ConfigError

ADDRESS = "https://bao.sealpost.example:8200"


def test_key_server_custody_needs_an_address_and_a_token_file() -> None:
    with pytest.raises(ConfigError, match="key_server_token_file"):
        GatewayConfig.load({}, {"SEALPOST_KEY_CUSTODY": "key-server"})
    with pytest.raises(ConfigError, match="key_server_address"):
        GatewayConfig.load(
            {}, {"SEALPOST_KEY_CUSTODY": "key-server", "SEALPOST_KEY_SERVER_TOKEN_FILE": "/t"}
        )
    config = GatewayConfig.load(
        {},
        {
            "SEALPOST_KEY_CUSTODY": "key-server",
            "SEALPOST_KEY_SERVER_ADDRESS": ADDRESS,
            "SEALPOST_KEY_SERVER_TOKEN_FILE": "/run/secrets/gateway-token",
        },
    )
    assert config.key_custody == "key-server"
    assert not config.staff_auth_enabled  # the address alone does not ask for staff sign-in


@pytest.mark.parametrize(("raw", "expect"), [("vault", "one of"), ("", "one of")])
def test_an_unknown_custody_is_refused(raw: str, expect: str) -> None:
    with pytest.raises(ConfigError, match=expect):
        GatewayConfig.load({}, {"SEALPOST_KEY_CUSTODY": raw})


@pytest.mark.parametrize("raw", ["0", "121", "600"])
def test_a_refresh_slower_than_the_token_keys_activation_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="KEY_REFRESH_SECONDS"):
        GatewayConfig.load({}, {"SEALPOST_KEY_REFRESH_SECONDS": raw})


def test_the_token_file_must_be_the_owners_alone_and_one_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway-token"
    path.write_text("s.token-value\n")
    path.chmod(0o600)
    assert read_token(path) == "s.token-value"
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="readable by others"):
        read_token(path)
    path.chmod(0o600)
    path.write_text("one\ntwo\n")
    with pytest.raises(ConfigError, match="one line"):
        read_token(path)
    with pytest.raises(ConfigError, match="cannot read"):
        read_token(tmp_path / "missing")
