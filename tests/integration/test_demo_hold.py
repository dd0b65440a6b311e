"""``sealpost demo --hold``: a person walks in with the commands it prints; a signal ends it all.

The held demo runs as its own process, as a person starts it. The blocks it prints for
the screener, the auditor and the terminal are run exactly as printed, by bash; the
passwords never appear on the screen. SIGTERM and SIGINT stop the gateway and OpenBao
it started: afterwards none of its child processes is left and every port is closed.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sealpost.clients.demo import EXIT_FAILED, EXIT_HELD
from sealpost.clients.demo_hold import HEADING, LOGINS, LOGINS_FOLDER, OPERATOR_FILE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The line the held demo prints last, once everything is ready.
HOLDING = "[demo] holding;"
#: What a person types at the passphrase prompts of the relative and terminal blocks.
PASSPHRASE = "een zin om de demo te proberen"


class Demo:
    """``python -m sealpost demo`` as a child process, its output read as it comes."""

    def __init__(self, out: Path, *, hold: bool = True) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
        command = [sys.executable, "-m", "sealpost", "demo", "--out", str(out)]
        self.process = subprocess.Popen(
            [*command, "--hold"] if hold else command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    @property
    def output(self) -> str:
        """Everything printed so far."""
        return "\n".join(self.lines)

    def wait_for(self, start: str, timeout: float = 240) -> None:
        """Wait until a line starting with ``start`` is printed."""

        def printed() -> bool:
            return any(line.startswith(start) for line in self.lines)

        with self._seen:
            self._seen.wait_for(lambda: printed() or not self._reader.is_alive(), timeout)
        assert printed(), self.output

    def descendants(self) -> set[int]:
        """The process ids of the demo's children (the gateway, OpenBao) and theirs."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
        found: set[int] = set()
        level = {self.process.pid}
        while level:
            level = {pid for pid, parent in parents.items() if parent in level} - found
            found |= level
        return found

    def stop(self, number: signal.Signals) -> int:
        """Send ``number`` and wait for the demo to exit; its exit code."""
        self.process.send_signal(number)
        code = self.process.wait(60)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        """After a failed test: stop the demo (SIGTERM stops its servers too)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def blocks(lines: list[str]) -> dict[str, list[str]]:
    """The printed blocks by role: the lines from a heading to the next blank line."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith(HEADING):
            current = found.setdefault(line.removeprefix(HEADING).split(":")[0], [line])
        elif not line:
            current = None
        elif current is not None:
            current.append(line)
    return found


def exported(block: list[str]) -> dict[str, str]:
    """The plain values a block exports (not those read from a file)."""
    values = {}
    for line in block:
        if line.startswith("export ") and "$(" not in line:
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = shlex.split(value)[0]
    return values


def run_as_printed(block: list[str]) -> subprocess.CompletedProcess[str]:
    """Paste the block into bash, stopping at the first command that fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
    env["SEALPOST_PASSPHRASE"] = PASSPHRASE  # typed at the prompts, for a person
    return subprocess.run(
        ["bash", "-e", "-c", "\n".join(block)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=240,
        check=False,
    )


def ports(demo: Demo) -> list[int]:
    """Every port the held demo's servers listen on, from what it printed."""
    printed = blocks(demo.lines)
    values = {**exported(printed["terminal"]), **exported(printed["auditor"])}
    addresses = [
        values["SEALPOST_GATEWAY"],
        values["SEALPOST_TERMINAL_GATEWAY"],
        values["SEALPOST_KEY_SERVER_ADDRESS"],
        *re.findall(r"(https://127\.0\.0\.1:\d+) browsers", demo.output),
    ]
    assert len(addresses) == 4, demo.output
    return [int(address.rsplit(":", 1)[1]) for address in addresses]


def refused(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def assert_all_stopped(demo: Demo, children: set[int], listening: list[int]) -> None:
    """The demo's children are gone and nothing listens on their ports."""
    assert len(children) >= 2, children  # the gateway and OpenBao, at least
    left = [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert not left, f"still running: {left}\n{demo.output}"
    assert all(refused(port) for port in listening), listening
    assert "[demo] gateway stopped (exit code 0)" in demo.lines
    assert "[demo] key server stopped" in demo.lines


def test_the_printed_commands_work_as_printed_and_sigterm_stops_everything(
    tmp_path: Path,
) -> None:
    out = tmp_path / "demo-out"
    demo = Demo(out)
    try:
        demo.wait_for(HOLDING)
        printed = blocks(demo.lines)
        assert set(printed) == {
            "relative",
            "administrator",
            "screener",
            "approver",
            "terminal",
            "auditor",
        }

        # Every login is named; the passwords are in owner-only files, never on the screen.
        logins = out.resolve() / LOGINS_FOLDER
        assert stat.S_IMODE(logins.stat().st_mode) == 0o700
        for login in LOGINS:
            assert any(line.split()[1:2] == [login.name] for line in demo.lines), login
        for secret in [*(logins / login.name for login in LOGINS), logins / OPERATOR_FILE]:
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600
            assert secret.read_text() not in demo.output

        queue = run_as_printed(printed["screener"])
        assert queue.returncode == 0, queue.stderr
        assert "screening order" in queue.stdout  # the day leaves a message waiting

        verified = run_as_printed(printed["auditor"])
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "OK: the stored leaves reproduce every signed head" in verified.stdout

        # The terminal's key-server token is made with `sealpost admin terminal token`.
        terminal = run_as_printed(printed["terminal"])
        assert any(" admin terminal token " in line for line in printed["terminal"])
        assert terminal.returncode == 0, terminal.stdout + terminal.stderr
        assert "terminal token for pi-proef written to" in terminal.stdout
        assert re.search(r"key server  http://127\.0\.0\.1:\d+: ready", terminal.stdout)

        children, listening = demo.descendants(), ports(demo)
        assert demo.stop(signal.SIGTERM) == EXIT_HELD, demo.output
        assert_all_stopped(demo, children, listening)
    finally:
        demo.kill()


def test_ctrl_c_stops_the_held_demo_and_its_servers(tmp_path: Path) -> None:
    demo = Demo(tmp_path / "demo-out")
    try:
        demo.wait_for(HOLDING)
        children, listening = demo.descendants(), ports(demo)
        assert demo.stop(signal.SIGINT) == EXIT_HELD, demo.output
        assert_all_stopped(demo, children, listening)
        assert "[demo] stopping" in demo.lines
    finally:
        demo.kill()


def test_a_demo_stopped_before_the_day_ended_fails_and_leaves_nothing(tmp_path: Path) -> None:
    demo = Demo(tmp_path / "demo-out", hold=False)
    try:
        demo.wait_for("[demo] gateway is up")
        children = demo.descendants()
        assert demo.stop(signal.SIGTERM) == EXIT_FAILED, demo.output
        assert "[demo] interrupted before the day ended" in demo.lines
        left = [pid for pid in children if Path(f"/proc/{pid}").exists()]
        assert not left, f"still running: {left}\n{demo.output}"
    finally:
        demo.kill()
