"""The escrow audit on the real stack: a bad blob is found, its terminal named, the log agrees.

A terminal could hand in an escrow blob that does not open to the message's key, and
nothing noticed until a screener needed it. An escrow auditor now draws a sample from a
fresh signed head, gets a logged grant per sampled message, decrypts each key with their
own OpenBao identity, and checks it against the sender's commitment. Reconcile matches
those decrypts to the grants; the state check confirms the log drew each message.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from sealpost._internal.stack import (
    Stack,
    approve_all,
    setup_institutions,
)
from sealpost.clients._grpc import ClientError
from sealpost.clients.audit.escrowaudit import run_escrow_audit
from sealpost.clients.staff import StaffClient
from sealpost.escrow._transport import KeyServerConfig
from sealpost.escrow.bootstrap import BootstrapSettings
from sealpost.escrow.client import EscrowClient
from sealpost.escrow.errors import PermissionDeniedError
from sealpost.v1 import audit_pb2, envelope_pb2

pytestmark = pytest.mark.integration

A = "pi-noord"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _audit(stack: Stack, *args: str) -> tuple[int, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
    command = [sys.executable, "-m", "sealpost", "audit", *args, "--json", "-q"]
    command += ["--database-url", stack.gateway.database_url]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=180, check=False
    )
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"not JSON (exit {done.returncode}): {done.stdout}\n{done.stderr}")


@SQLITE
def test_a_bad_escrow_blob_is_found_and_its_terminal_named(
    own_stack: Stack, database_url: str
) -> None:
    stack = own_stack
    admin, terminals = setup_institutions(stack, [("d-1", A, "regular")])
    stack.record_key_server_actions(admin)
    relative = stack.relative("Marieke")
    relative.request_contact("d-1")
    approve_all(admin, A)
    sent = [relative.send("d-1", f"bericht {n}").message_id for n in range(5)]
    rogue = sent[2]
    escrow = stack.escrow_for(A)

    def rogue_escrow(items: Sequence[tuple[bytes, bytes]]) -> list[envelope_pb2.EscrowBlob]:
        # A faulty (or rogue) terminal escrows another key for one message.
        return escrow([(m, secrets.token_bytes(32) if m == rogue else k) for m, k in items])

    terminals[A].take_in(terminals[A].intake(), rogue_escrow)

    _name, session, token = stack.staff_login(["escrow-auditor"], ["*"])
    auditor = StaffClient(stack.endpoint, token)
    keys = EscrowClient(
        KeyServerConfig(stack.openbao.address),
        session.token,
        key=BootstrapSettings(prefix=stack.prefix).escrow_key,
    )
    try:
        report = run_escrow_audit(auditor, keys, stack.pin, count=100)
    finally:
        keys.close()
        auditor.close()
    assert report.population == 5
    assert sorted(c.message_id for c in report.checked) == sorted(sent)
    (bad,) = [c for c in report.checked if not c.ok]
    assert bad.message_id == rogue
    assert bad.terminal == f"terminal:{terminals[A].terminal_id}"  # type: ignore[attr-defined]
    assert "commit" in bad.problem
    assert not report.ok
    assert report.by_terminal() == {bad.terminal: (5, 1)}

    # Every decrypt of the audit is matched to its logged grant; the log drew each message.
    code, reconciled = _audit(
        stack,
        "reconcile",
        "--audit-log",
        str(stack.openbao.audit_log),
        "--audit-log",
        f"{stack.openbao.audit_log}.mirror",
        "--leeway-seconds",
        "1",
    )
    assert code == 0, json.dumps(reconciled, indent=1)
    assert len(reconciled["matched"]) == 5
    code, verified = _audit(stack, "verify", "--log-key", _log_key(stack), "--no-state")
    assert verified["state"]["findings"] == []
    assert code == 0, json.dumps(verified, indent=1)


def _log_key(stack: Stack) -> str:
    from sealpost.crypto import _sodium  # noqa: PLC0415 - the test reads the key file itself

    keys = json.loads((stack.gateway.state_dir / "gateway-keys.json").read_text())
    return _sodium.ed25519_public_from_seed(bytes.fromhex(keys["log"]["ed25519_seed"])).hex()


@SQLITE
def test_only_escrow_auditors_draw_a_sample_and_only_from_a_stored_head(
    own_stack: Stack, database_url: str
) -> None:
    stack = own_stack
    admin, terminals = setup_institutions(stack, [("d-1", A, "regular")])
    relative = stack.relative("Jan")
    relative.request_contact("d-1")
    approve_all(admin, A)
    relative.send("d-1", "hallo")
    terminals[A].take_in(terminals[A].intake(), stack.escrow_for(A))
    head = admin.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))
    from sealpost.v1 import log_pb2  # noqa: PLC0415

    size = log_pb2.TreeHead.FromString(head.tree_head.tree_head).tree_size
    request = audit_pb2.GrantEscrowAuditRequest(tree_size=size, count=1)
    for roles, scope in ((["auditor"], ["*"]), (["screener"], ["*"]), (["escrow-auditor"], [A])):
        other = stack.staff(roles, scope)
        with pytest.raises(ClientError) as refused:
            other.call("audit", "GrantEscrowAudit", request)
        assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED, roles
    escrow_auditor = stack.staff(["escrow-auditor"], ["*"])
    with pytest.raises(ClientError) as unknown:
        escrow_auditor.call(
            "audit",
            "GrantEscrowAudit",
            audit_pb2.GrantEscrowAuditRequest(tree_size=size + 7, count=1),
        )
    assert unknown.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ClientError) as too_many:
        escrow_auditor.call(
            "audit",
            "GrantEscrowAudit",
            audit_pb2.GrantEscrowAuditRequest(tree_size=size, count=101),
        )
    assert too_many.value.code == grpc.StatusCode.INVALID_ARGUMENT
    granted = escrow_auditor.call("audit", "GrantEscrowAudit", request)
    assert len(granted.items) == 1

    # An ordinary auditor's key-server identity may not decrypt at all.
    _name, session, _token = stack.staff_login(["auditor"], ["*"])
    keys = EscrowClient(
        KeyServerConfig(stack.openbao.address),
        session.token,
        key=BootstrapSettings(prefix=stack.prefix).escrow_key,
    )
    try:
        item = granted.items[0]
        with pytest.raises(PermissionDeniedError):
            keys.decrypt(item.message_id, item.escrow.ciphertext)
    finally:
        keys.close()
