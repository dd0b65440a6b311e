"""The `sealpost` command and every subcommand answer --help through the real entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest

SUBCOMMANDS = ["gateway", "relative", "terminal", "review", "admin", "audit", "demo"]


def _sealpost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sealpost", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_top_level_help_lists_every_subcommand() -> None:
    result = _sealpost("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help(name: str) -> None:
    result = _sealpost(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: " in result.stdout


def test_gateway_serve_help_names_the_environment_variables() -> None:
    result = _sealpost("gateway", "serve", "--help")
    assert result.returncode == 0
    for env in ["SEALPOST_HOST", "SEALPOST_PORT", "SEALPOST_LOG_LEVEL", "SEALPOST_GRACE_SECONDS"]:
        assert env in result.stdout


def test_version() -> None:
    result = _sealpost("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("sealpost ")


def test_unknown_subcommand_fails() -> None:
    result = _sealpost("frobnicate")
    assert result.returncode == 2
