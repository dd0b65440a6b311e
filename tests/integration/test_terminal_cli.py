"""``sealpost terminal`` through its entry point: enrol, intake, desk, reply, revocation."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pypdf
import pytest

from sealpost._internal.stack import Stack, approve_all
from sealpost.escrow.bootstrap import BootstrapSettings, KeyServerBootstrap
from sealpost.escrow.client import KeyServerConfig
from sealpost.v1 import admin_pb2
from tests.integration.test_terminal_desk import CHINESE, plain, png

pytestmark = pytest.mark.integration

INSTITUTION = "pi-terminal-cli"
PASSPHRASE = "lange zin voor de terminal"


def _sealpost(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sealpost", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def _admin(stack: Stack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    ca = stack.gateway.state_dir / "tls" / "ca.pem"
    return _sealpost(
        "admin",
        "--gateway",
        stack.gateway.address,
        "--ca-file",
        str(ca),
        *args,
        env={"SEALPOST_STAFF_TOKEN": token},
    )


class Terminal:
    """Runs `sealpost terminal ...` with one profile and passphrase."""

    def __init__(self, profile: Path, token: str) -> None:
        self.profile = profile
        self.env = {
            "SEALPOST_PASSPHRASE": PASSPHRASE,
            "SEALPOST_TERMINAL_PROFILE": str(profile),
            "SEALPOST_KEY_SERVER_TOKEN": token,
            "SEALPOST_EXPORT_PASSPHRASE": "export passphrase 123",
        }

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return _sealpost("terminal", *args, env={**self.env, **env})

    def json(self, *args: str) -> Any:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def json_lines(self, *args: str) -> list[dict[str, object]]:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _issue(stack: Stack, token: str, out: Path) -> str:
    issued = _admin(
        stack, token, "--json", "terminal", "issue", "--institution", INSTITUTION, "--out", str(out)
    )
    assert issued.returncode == 0, issued.stderr
    terminal_id: str = json.loads(issued.stdout)["terminalId"]
    return terminal_id


def _terminal_token(stack: Stack) -> str:
    admin = KeyServerBootstrap(
        KeyServerConfig(stack.openbao.address),
        stack.openbao.root_token,
        BootstrapSettings(prefix=stack.prefix),
    )
    try:
        return admin.create_terminal_token(INSTITUTION).token
    finally:
        admin.close()


def _enroll_args(stack: Stack, certificates: Path) -> list[str]:
    return [
        "enroll",
        "--certificates",
        str(certificates),
        "--gateway",
        stack.gateway.terminal_address,
        "--key-server",
        stack.openbao.address,
        "--directory-key",
        stack.pin.signing_key.hex(),
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_terminal_cli_from_enrolment_to_reply_and_revocation(stack: Stack, tmp_path: Path) -> None:
    admin = stack.staff(["administrator"], ["*"])
    admin.call(
        "admin",
        "CreateInstitution",
        admin_pb2.CreateInstitutionRequest(institution_id=INSTITUTION, name="PI CLI"),
    )
    admin.call(
        "admin",
        "IntakeDetainee",
        admin_pb2.IntakeDetaineeRequest(
            detainee_id="d-cli", institution_id=INSTITUTION, regime="regular"
        ),
    )
    _name, staff_token = stack.staff_token(["administrator"], [INSTITUTION])
    key_server_token = _terminal_token(stack)
    terminal_id = _issue(stack, staff_token, tmp_path / "issued")
    terminal = Terminal(tmp_path / "profile", key_server_token)

    # Enrol: the first terminal registers the institution key; secrets are encrypted.
    enrolled = terminal.json(*_enroll_args(stack, tmp_path / "issued"))
    assert enrolled == {
        "profile": str(tmp_path / "profile"),
        "institutionId": INSTITUTION,
        "terminalId": terminal_id,
        "institutionKeyId": enrolled["institutionKeyId"],
        "registeredInstitutionKey": True,
    }
    profile_file = tmp_path / "profile" / "terminal-profile.json"
    assert profile_file.stat().st_mode & 0o777 == 0o600
    stored = profile_file.read_text()
    assert key_server_token not in stored
    assert "PRIVATE KEY" not in stored
    again = terminal(*_enroll_args(stack, tmp_path / "issued"))
    assert again.returncode == 1
    assert "already holds a terminal profile" in again.stderr
    wrong = terminal("status", SEALPOST_PASSPHRASE="not the passphrase")
    assert wrong.returncode == 1
    assert "passphrase does not open" in wrong.stderr

    # The first intake provisions the detainee's mailbox; then relatives can write.
    lines = terminal.json_lines("intake", "--once")
    assert {
        "event": "notice",
        "kind": "mailboxes",
        "text": "made a mailbox key for 1 detainee",
    } in lines
    assert lines[-1]["event"] == "summary"
    assert lines[-1]["submitted"] == 0
    relative = stack.relative("Oma Jansen")
    relative.request_contact("d-cli")
    approve_all(admin, INSTITUTION)
    first = relative.send_sealed(relative.seal("d-cli", f"Lieve jongen\n{CHINESE}")).message_id
    second = relative.send_sealed(relative.seal("d-cli", "Tweede bericht")).message_id
    summary = terminal.json_lines("intake", "--once", "--batch-size", "1")[-1]
    assert summary["submitted"] == 2
    assert summary["batches"] == 2
    assert summary["drained"] is True

    # The desk: list (no content), show, print to PDF and acknowledge.
    listed = terminal.json("deliveries", "--detainee", "d-cli")
    assert isinstance(listed, list)
    assert [m["messageId"] for m in listed] == [first.hex(), second.hex()]
    assert all("text" not in m for m in listed)
    shown = terminal("show", first.hex())
    assert shown.returncode == 0, shown.stderr
    assert "Lieve jongen" in shown.stdout
    assert "Oma Jansen" in shown.stdout
    printed = terminal.json("print", first.hex(), "--out", str(tmp_path / "slip.pdf"))
    assert isinstance(printed, dict)
    reference = printed["deliveryReference"]
    assert isinstance(reference, str)
    assert reference.startswith(f"{INSTITUTION}-")
    assert reference.endswith(first.hex()[:8])
    reader = pypdf.PdfReader(io.BytesIO((tmp_path / "slip.pdf").read_bytes()))
    text = plain(reader.pages[0].extract_text())
    assert "Lieve jongen" in text
    assert CHINESE in text
    assert reference in text
    piped = subprocess.run(
        [sys.executable, "-m", "sealpost", "terminal", "print", second.hex(), "--out", "-"],
        capture_output=True,
        env={**os.environ, **terminal.env},
        timeout=120,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith(b"%PDF-")
    assert b"delivered, reference" in piped.stderr
    assert terminal.json("deliveries") == []

    # A reply with a scanned page, to the relative listed under `contacts`.
    contacts = terminal.json("contacts", "d-cli")
    assert isinstance(contacts, list)
    assert [c["displayName"] for c in contacts] == ["Oma Jansen"]
    scan = tmp_path / "scan.png"
    scan.write_bytes(png())
    sent = terminal.json(
        "reply", "d-cli", "--to", relative.account_id, "--text", "Dag oma!", "--attach", str(scan)
    )
    assert isinstance(sent, dict)
    assert (sent["status"], sent["waitsForScreening"]) == ("sent", False)  # no screening here
    (reply,) = list(relative.inbox())
    assert reply.message_id.hex() == sent["messageId"]
    assert reply.text == "Dag oma!"
    assert [p.filename for p in reply.attachments] == ["scan.png"]

    status = terminal.json("status")
    assert isinstance(status, dict)
    assert status["gatewayStatus"] == "ok"
    assert status["keyServerStatus"] == "ready"
    assert status["institutionKeyStatus"] == "valid"
    assert status["takenIn"] == 2

    # A second terminal of the institution: refused a new key, takes the exported one.
    _issue(stack, staff_token, tmp_path / "issued-2")
    second_terminal = Terminal(tmp_path / "profile-2", key_server_token)
    refused = second_terminal(*_enroll_args(stack, tmp_path / "issued-2"))
    assert refused.returncode == 1
    assert "already has an institution key" in refused.stderr
    assert not (tmp_path / "profile-2" / "terminal-profile.json").exists()
    exported = terminal("export-key", "--out", str(tmp_path / "institution.key"))
    assert exported.returncode == 0, exported.stderr
    joined = second_terminal.json(
        *_enroll_args(stack, tmp_path / "issued-2"),
        "--institution-key",
        str(tmp_path / "institution.key"),
    )
    assert isinstance(joined, dict)
    assert joined["registeredInstitutionKey"] is False
    assert joined["institutionKeyId"] == enrolled["institutionKeyId"]
    third = relative.send_sealed(relative.seal("d-cli", "Voor de tweede terminal")).message_id
    assert second_terminal.json_lines("intake", "--once")[-1]["submitted"] == 1

    # Revoked centrally: the next command stops with a clear error.
    assert _admin(stack, staff_token, "terminal", "revoke", terminal_id).returncode == 0
    for command in (["deliveries"], ["intake", "--once"]):
        stopped = terminal(*command)
        assert stopped.returncode == 1, command
        assert "refuses this terminal's certificate" in stopped.stderr
        assert "Traceback" not in stopped.stderr
    # The other terminal of the institution is not affected.
    assert [m["messageId"] for m in second_terminal.json("deliveries")] == [third.hex()]
