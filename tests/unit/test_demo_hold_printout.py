"""The held demo's blocks: what bash makes of them is what they mean, for every role."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sealpost.clients.demo_hold import (
    HEADING,
    LOGINS,
    FromFile,
    Held,
    Trial,
    trials,
)


def _held(out: Path) -> Held:
    return Held(
        out=out,
        program="sealpost",
        gateway="127.0.0.1:1001",
        terminal_gateway="127.0.0.1:1002",
        web_url="https://127.0.0.1:1003",
        web_app=True,
        key_server="http://127.0.0.1:1004",
        ca_file=out / "ca.pem",
        directory_key="ab" * 32,
        database_url=f"sqlite:///{out}/sealpost.db",
        audit_logs=(out / "openbao" / "a.log", out / "openbao" / "a.log.mirror"),
        gateway_log=out / "gateway" / "gateway.log",
    )


def test_exports_mean_what_they_say_even_with_spaces_and_quotes(tmp_path: Path) -> None:
    secret = tmp_path / "a folder" / "it's secret"
    secret.parent.mkdir()
    secret.write_text("p@ss w0rd'\"$x")
    trial = Trial(
        "role",
        "about",
        (("PLAIN", "it's a $value with spaces"), ("SECRET", FromFile(secret))),
        ('printf "%s|%s" "$PLAIN" "$SECRET"',),
    )
    lines = trial.lines()
    assert lines[0] == f"{HEADING}role: about"
    assert "p@ss" not in "\n".join(lines)  # the secret is read when it runs, never shown
    ran = subprocess.run(
        ["bash", "-e", "-c", "\n".join(lines)],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert ran.stdout == "it's a $value with spaces|p@ss w0rd'\"$x"


def test_every_login_has_a_block_and_every_block_commands(tmp_path: Path) -> None:
    blocks = trials(_held(tmp_path / "demo out"))
    assert [t.role for t in blocks] == [
        "relative",
        "administrator",
        "screener",
        "approver",
        "terminal",
        "auditor",
    ]
    users = {str(value) for t in blocks for name, value in t.exports if name == "SEALPOST_USER"}
    assert users == {login.name for login in LOGINS}
    assert all(t.commands for t in blocks)
    terminal = next(t for t in blocks if t.role == "terminal")
    assert any(" admin terminal token " in command for command in terminal.commands)
    # Paths with a space stay one word: each block is valid shell.
    for trial in blocks:
        subprocess.run(["bash", "-n", "-c", "\n".join(trial.lines())], check=True)
