"""``sealpost admin terminal token`` makes a token a terminal escrows with, and nothing more.

Against a real OpenBao and gateway: the command writes the token owner-only and records
it in the log; a terminal escrows a relative's message with it; the token cannot decrypt
what it escrowed; ``revoke-token`` cuts it off at once.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from sealpost._internal.stack import Stack, approve_all, log_events, setup_institutions
from sealpost.crypto.logentry import LogAction
from sealpost.escrow._transport import KeyServerConfig
from sealpost.escrow.bootstrap import BootstrapSettings
from sealpost.escrow.client import EscrowClient
from sealpost.escrow.errors import PermissionDeniedError
from sealpost.gateway import keyevents
from sealpost.v1 import envelope_pb2

pytestmark = pytest.mark.integration

INSTITUTION = "pi-token"
DETAINEE = "d-token"


def admin(stack: Stack, staff_token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``sealpost admin ...`` with the key-server operator token and a signed-in administrator."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
    ca = stack.gateway.state_dir / "tls" / "ca.pem"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sealpost",
            "admin",
            "--json",
            "--gateway",
            stack.gateway.address,
            "--ca-file",
            str(ca),
            "--key-server",
            stack.openbao.address,
            *args,
        ],
        capture_output=True,
        text=True,
        env={
            **clean,
            "SEALPOST_KEY_SERVER_TOKEN": stack.openbao.root_token,
            "SEALPOST_STAFF_TOKEN": staff_token,
        },
        timeout=120,
        check=False,
    )


def escrow_client(stack: Stack, token: str) -> EscrowClient:
    """The terminal's key-server client with ``token``."""
    return EscrowClient(
        KeyServerConfig(stack.openbao.address),
        token,
        key=BootstrapSettings(prefix=stack.prefix).escrow_key,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_terminal_escrows_with_the_token_the_command_made(stack: Stack, tmp_path: Path) -> None:
    _admin, terminals = setup_institutions(stack, [(DETAINEE, INSTITUTION, "regular")])
    terminal = terminals[INSTITUTION]
    _name, staff_token = stack.staff_token(["administrator"], ["*"])
    out = tmp_path / "terminal.token"

    made = admin(stack, staff_token, "terminal", "token", INSTITUTION, "--out", str(out))
    assert made.returncode == 0, made.stderr
    reply = json.loads(made.stdout)
    assert reply["institution"] == INSTITUTION
    assert reply["recorded"] == 1
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    token = out.read_text()
    assert token
    assert token not in made.stdout + made.stderr  # only the file holds it
    created = (keyevents.SUBJECT, keyevents.TERMINAL_TOKEN_CREATED)
    recorded = [e for e in log_events(stack) if created in e.subjects]
    assert [e.action for e in recorded] == [LogAction.ADMIN_ACTION]

    relative = stack.relative("Token Tester")
    relative.request_contact(DETAINEE, "zus")
    approve_all(_admin, INSTITUTION)
    relative.send(DETAINEE, "ontvangen met het nieuwe token")

    client = escrow_client(stack, token)
    blobs: list[envelope_pb2.EscrowBlob] = []

    def escrow(items: Sequence[tuple[bytes, bytes]]) -> list[envelope_pb2.EscrowBlob]:
        made = [k.to_proto() for k in client.escrow_batch(list(items))]
        blobs.extend(made)
        return made

    try:
        items = terminal.intake()
        assert len(items) == 1
        states = terminal.take_in(items, escrow)
        assert list(states) == [items[0].message_id]
        assert len(blobs) == 1
        # Encrypt-only: the terminal's token cannot recover the key it escrowed.
        with pytest.raises(PermissionDeniedError):
            client.decrypt(blobs[0].message_id, blobs[0].ciphertext)
    finally:
        client.close()

    revoked = admin(
        stack,
        staff_token,
        "terminal",
        "revoke-token",
        reply["accessor"],
        "--institution",
        INSTITUTION,
    )
    assert revoked.returncode == 0, revoked.stderr
    after = escrow_client(stack, token)
    try:
        with pytest.raises(PermissionDeniedError):
            after.escrow_batch([(b"\x01" * 16, b"\x02" * 32)])
    finally:
        after.close()


def test_the_help_says_what_the_command_needs_and_how_the_token_is_used() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "sealpost", "admin", "terminal", "token", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=60,
        check=True,
    ).stdout
    for needed in (
        "SEALPOST_KEY_SERVER_TOKEN",
        "national administrator",
        "SEALPOST_STAFF_TOKEN",
        "sealpost admin key record",
        "sealpost terminal enroll",
        "revoke-token ACCESSOR",
        "--out",
        "--receipt",
    ):
        assert needed in shown, needed
