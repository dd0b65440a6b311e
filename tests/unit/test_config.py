"""Gateway configuration: precedence, validation and the wording of errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealpost.gateway.config import GatewayConfig
from sealpost.gateway.errors import ConfigError

NO_FLAGS: dict[str, str | None] = {}


def test_defaults_listen_on_loopback() -> None:
    config = GatewayConfig.load(NO_FLAGS, environ={})
    assert config.host == "127.0.0.1"
    assert config.port == 50051
    assert config.address == "127.0.0.1:50051"
    assert config.log_level == "info"
    assert config.port_file is None


def test_environment_over_default_and_flag_over_environment() -> None:
    env = {"SEALPOST_PORT": "6000", "SEALPOST_LOG_LEVEL": "debug", "SEALPOST_PORT_FILE": "/tmp/p"}
    config = GatewayConfig.load({"port": "7000"}, environ=env)
    assert config.port == 7000
    assert config.log_level == "debug"
    assert config.port_file == Path("/tmp/p")


def test_ipv6_address_is_bracketed() -> None:
    assert GatewayConfig.load({"host": "::1", "port": "0"}, environ={}).address == "[::1]:0"


@pytest.mark.parametrize(
    ("flags", "env", "fragment"),
    [
        ({"port": "65536"}, {}, "--port: expected an integer from 0 to 65535, got '65536'"),
        ({"port": "-1"}, {}, "--port"),
        ({}, {"SEALPOST_HOST": "localhost"}, "SEALPOST_HOST: expected an IP address"),
        ({"grace_seconds": "nan?"}, {}, "--grace-seconds"),
        ({"grace_seconds": "4000"}, {}, "--grace-seconds"),
        ({"port_file": ""}, {}, "--port-file: expected a file path"),
    ],
)
def test_invalid_values_are_refused(
    flags: dict[str, str], env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        GatewayConfig.load(flags, environ=env)
    assert fragment in info.value.explain()


def test_all_problems_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        GatewayConfig.load({"port": "x", "host": "y"}, environ={"SEALPOST_LOG_LEVEL": "z"})
    assert len(info.value.problems) == 3
    assert info.value.explain().startswith("invalid configuration:\n  - ")
