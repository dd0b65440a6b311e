"""Every command, run against a gateway and a key server that are down, fails in words.

Systematic: the command tree is walked, each command gets well-formed values for what it
requires, and nothing is listening where the gateway and the key server should be. Every
command must end with one of the documented exit codes and say why in ``error:`` lines —
never a traceback, never gRPC's raw text.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from sealpost.cli import app
from sealpost.gateway import pki

ROOT: Any = typer.main.get_command(app)
#: Commands that start servers or run for long: covered by their own tests.
SKIP = {
    ("demo",),
    ("gateway", "serve"),
    ("gateway", "init"),
    ("gateway", "migrate"),
    ("review", "tui"),  # a full-screen program: tests/unit/test_review_screens.py
}


def _leaves(command: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    subs = getattr(command, "commands", None)
    if subs is None:
        yield path
        return
    for name, sub in subs.items():
        yield from _leaves(sub, (*path, name))


LEAVES = [path for path in _leaves(ROOT, ()) if path not in SKIP]


_CA_PEM = pki.create_ca("A CA no gateway here uses").certificate_pem


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _value(param: Any, tmp: Path) -> str:
    """A well-formed value for a required parameter, from its name and type."""
    name = (param.name or "").lower()
    choices = getattr(getattr(param, "type", None), "choices", None)
    if choices:
        return str(next(iter(choices)))
    type_name = getattr(getattr(param, "type", None), "name", "")
    if "id" in name and ("message" in name or name == "message_id"):
        return "ab" * 16
    if type_name in {"integer", "float"} or name in {"days", "count"}:
        return "1"
    if name in {"from_", "to", "start", "end", "period_start", "period_end"}:
        return "2026-01-01"
    if type_name == "path" or name in {"out", "file", "key_file", "certificates"}:
        return str(tmp / name)
    return "x"


def _command(path: tuple[str, ...]) -> Any:
    command: Any = ROOT
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_a_command_with_its_servers_down_fails_in_words(
    path: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    ca = tmp_path / "ca.pem"
    ca.write_bytes(_CA_PEM)
    for name, value in {
        "SEALPOST_GATEWAY": f"127.0.0.1:{port}",
        "SEALPOST_TERMINAL_GATEWAY": f"127.0.0.1:{port}",
        "SEALPOST_CA_FILE": str(ca),
        "SEALPOST_KEY_SERVER_ADDRESS": f"http://127.0.0.1:{port}",
        "SEALPOST_STAFF_TOKEN": "token",
        "SEALPOST_KEY_SERVER_TOKEN": "token",
        "SEALPOST_USER": "someone",
        "SEALPOST_PASSWORD": "a long enough passphrase",
        "SEALPOST_PASSPHRASE": "a long enough passphrase",
        "SEALPOST_NEW_PASSWORD": "a long enough passphrase",
        "SEALPOST_DIRECTORY_KEY": "11" * 32,
        "SEALPOST_DATABASE_URL": f"sqlite:///{tmp_path / 'missing' / 'gateway.db'}",
        "SEALPOST_PROFILE": str(tmp_path / "profile"),
        "SEALPOST_TERMINAL_PROFILE": str(tmp_path / "terminal"),
        "HOME": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    command = _command(path)
    args: list[str] = []
    for param in command.params:
        if not getattr(param, "required", False):
            continue
        opts = getattr(param, "opts", [])
        value = _value(param, tmp_path)
        if opts and opts[0].startswith("-"):
            args += [opts[0], value]
        else:
            args.append(value)

    result = CliRunner().invoke(app, [*path, *args], input="a long enough passphrase\n" * 4)

    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{' '.join(path)} raised {result.exception!r}"
    )
    assert result.exit_code in {0, 1, 2, 3, 4}, result.output
    assert "Traceback" not in result.output
    for raw in ("ipv4:", "UNKNOWN:", "StatusCode.", "failed to connect to all addresses"):
        assert raw not in result.output, result.output
    # Log lines are for servers' operators; a person reads words (--verbose shows them).
    assert '"event":' not in result.output, result.output
    if result.exit_code and "Aborted" not in result.output:  # a question answered "no"
        assert "error: " in result.output, result.output
