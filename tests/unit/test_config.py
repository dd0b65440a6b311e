"""Gateway configuration: precedence, validation and the wording of errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealpost.crypto.keys import PrivateKeys
from sealpost.gateway.config import GatewayConfig
from sealpost.gateway.errors import ConfigError

NO_FLAGS: dict[str, str | None] = {}
_KEY_ONE = PrivateKeys.generate().signing_key.hex()
_KEY_TWO = PrivateKeys.generate().signing_key.hex()


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


def test_heads_are_signed_every_two_seconds_by_default() -> None:
    assert GatewayConfig.load(NO_FLAGS, environ={}).head_interval_seconds == 2.0
    env = {"SEALPOST_HEAD_INTERVAL_SECONDS": "0.5"}
    assert GatewayConfig.load(NO_FLAGS, environ=env).head_interval_seconds == 0.5
    assert (
        GatewayConfig.load({"head_interval_seconds": "10"}, environ=env).head_interval_seconds == 10
    )


@pytest.mark.parametrize("raw", ["0", "0.05", "61", "-1", "nan", "soon"])
def test_head_intervals_out_of_bounds_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="--head-interval-seconds"):
        GatewayConfig.load({"head_interval_seconds": raw}, environ={})


def test_witness_keys_round_trip_through_their_text() -> None:
    one, two = PrivateKeys.generate().signing_key, PrivateKeys.generate().signing_key
    text = f"audit-office={one.hex()}, second.auditor={two.hex()}"
    config = GatewayConfig.load({}, environ={"SEALPOST_WITNESS_KEYS": text})
    names = [(k.name, k.public_key) for k in config.witness_keys.keys]
    assert names == [("audit-office", one), ("second.auditor", two)]
    assert len({k.key_id for k in config.witness_keys.keys}) == 2
    # The worker processes get the setting back as text (gateway/workers.py).
    again = GatewayConfig.load({"witness_keys": str(config.witness_keys)}, environ={})
    assert again.witness_keys == config.witness_keys
    assert GatewayConfig.load(NO_FLAGS, environ={}).witness_keys.keys == ()


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "audit",
        "Audit=" + "11" * 32,
        "audit=" + "11" * 31,
        "audit=" + "zz" * 32,
        "audit=" + "00" * 32,  # not a usable Ed25519 public key
        f"a={_KEY_ONE},a={_KEY_TWO}",  # one name twice
        f"a={_KEY_ONE},b={_KEY_ONE}",  # one key twice
    ],
)
def test_bad_witness_keys_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="--witness-keys"):
        GatewayConfig.load({"witness_keys": raw}, environ={})
