"""The attacks an outside test found against ``sealpost audit reconcile``, on a real OpenBao.

Each test plays one attack against a real key server and a real gateway, then
runs the auditor's reconciliation on the real audit devices' files (SPEC P14):

- decrypts after the message was delivered, matched to the old grant;
- the escrow key set exportable, exported and decrypted offline;
- an escrow encrypt of a privileged message's id;
- one audit device's copy edited, the two devices merged instead of compared;

and the grant's bound (GRANT_VALIDITY_MS), which the review tool keeps to itself.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealpost._internal.stack import (
    Stack,
    approve_all,
    screening_order,
    setup_institutions,
)
from sealpost.clients.audit import cli as audit_cli
from sealpost.clients.audit import database
from sealpost.clients.audit.reconcile import GRANT_VALIDITY_MS, Reason
from sealpost.clients.audit.reconcile import reconcile as reconcile_logs
from sealpost.clients.review.errors import GrantExpiredError
from sealpost.clients.staff import StaffClient
from sealpost.clients.terminal.client import TerminalClient
from sealpost.clients.terminal.desk import DeliveryDesk
from sealpost.escrow.bootstrap import BootstrapSettings
from sealpost.v1 import admin_pb2, audit_pb2, common_pb2, envelope_pb2

pytestmark = pytest.mark.integration

A = "pi-noord"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class Scene:
    """A small day: one watched detainee, messages queued, blobs kept for the attacker."""

    stack: Stack
    admin: StaffClient
    terminal: TerminalClient
    escrowed: dict[bytes, envelope_pb2.EscrowBlob]
    sent: list[bytes]


def scene(stack: Stack, messages: int = 2) -> Scene:
    admin, terminals = setup_institutions(stack, [("d-watched", A, "regular")])
    # The lawful key-server work (bootstrap, staff logins, terminal tokens) is recorded.
    stack.record_key_server_actions(admin)
    screening_order(admin, "d-watched", days=7, note="zaak 2026/077")
    relative = stack.relative("Yusuf")
    relative.request_contact("d-watched")
    approve_all(admin, A)
    sent = [relative.send("d-watched", f"bericht {n}").message_id for n in range(messages)]
    escrowed: dict[bytes, envelope_pb2.EscrowBlob] = {}
    escrow = stack.escrow_for(A)

    def keep(items: Sequence[tuple[bytes, bytes]]) -> list[envelope_pb2.EscrowBlob]:
        blobs = escrow(items)
        escrowed.update({b.message_id: b for b in blobs})
        return blobs

    states = terminals[A].take_in(terminals[A].intake(), keep)
    assert set(states.values()) == {common_pb2.MESSAGE_STATE_QUEUED}
    # Before any attack the day reconciles clean: every key-server change is recorded.
    code, found = reconcile(stack, admin)
    assert code == 0, json.dumps(found, indent=1)
    assert found["devices"]["compared"] is True
    assert found["key_server_changes"]["matched"]
    return Scene(stack, admin, terminals[A], escrowed, sent)


#: The gateway and OpenBao share this machine's clock: a small leeway keeps the test short.
LEEWAY_S = 1.0


def reconcile(stack: Stack, admin: StaffClient, *audit_logs: str) -> tuple[int, Any]:
    """``sealpost audit reconcile --json`` as the auditor runs it, in its own process."""
    admin.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))
    logs = audit_logs or (str(stack.openbao.audit_log), f"{stack.openbao.audit_log}.mirror")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
    args = [sys.executable, "-m", "sealpost", "audit", "reconcile", "--json", "-q"]
    args += ["--database-url", stack.gateway.database_url, "--leeway-seconds", str(LEEWAY_S)]
    for log in logs:
        args += ["--audit-log", log]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=180, check=False)
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"not JSON (exit {done.returncode}): {done.stdout}\n{done.stderr}")


def raw_call(
    stack: Stack, token: str, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    """A plain HTTP request to OpenBao, as an attacker's own tool would make it."""
    request = urllib.request.Request(  # noqa: S310 - http to loopback
        f"{stack.openbao.address}/v1/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"X-Vault-Token": token},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        text = response.read()
    return json.loads(text) if text else None


def key_ref(stack: Stack) -> Any:
    return BootstrapSettings(prefix=stack.prefix).escrow_key


@SQLITE
def test_decrypts_after_delivery_are_not_covered_by_the_review_grant(own_stack: Stack) -> None:
    stack = own_stack
    day = scene(stack, messages=1)
    (message,) = day.sent
    screener = stack.reviewer(["screener"], [A])
    screener.open(message)
    screener.verdict(message, common_pb2.VERDICT_RELEASE)
    printed = DeliveryDesk(day.terminal, A).print_pdf(message, None, write=lambda _pdf: None)
    assert printed.state == common_pb2.MESSAGE_STATE_DELIVERED

    # The same screener, days later in real life: three more decrypts straight at OpenBao.
    time.sleep(2 * LEEWAY_S)
    assert screener.escrow is not None
    for _ in range(3):
        screener.escrow.decrypt(message, day.escrowed[message].ciphertext)

    code, found = reconcile(stack, day.admin)
    assert code == 1, json.dumps(found, indent=1)
    late = [u for u in found["unmatched"] if u["message_id"] == message.hex()]
    assert len(late) == 3
    assert {u["reason"] for u in late} == {"the message had left the screening queue"}
    assert all(u["detail"].startswith("released at ") for u in late)
    assert len(found["matched"]) == 1
    assert found["key_server_changes"]["unmatched"] == []


@SQLITE
def test_exporting_the_escrow_key_and_decrypting_offline_is_found(own_stack: Stack) -> None:
    stack = own_stack
    day = scene(stack, messages=1)
    (message,) = day.sent
    ref = key_ref(stack)
    # A key-server root token holder makes the key exportable and takes it away.
    root = stack.openbao.root_token
    config = {"exportable": True, "allow_plaintext_backup": True}
    raw_call(stack, root, "POST", f"{ref.mount}/keys/{ref.name}/config", config)
    exported = raw_call(stack, root, "GET", f"{ref.mount}/export/encryption-key/{ref.name}")
    master = base64.b64decode(exported["data"]["keys"]["1"])
    raw_call(stack, root, "GET", f"{ref.mount}/backup/{ref.name}")

    # Offline: transit derives the message's key with HKDF-SHA256 (info = the context).
    ciphertext = day.escrowed[message].ciphertext
    _vault, _version, blob = ciphertext.split(":", 2)
    raw = base64.b64decode(blob)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=message).derive(master)
    dek = AESGCM(derived).decrypt(raw[:12], raw[12:], None)
    assert len(dek) == 32

    code, found = reconcile(stack, day.admin)
    assert code == 1, found
    assert found["unmatched"] == []  # no decrypt ever reached the key server
    unmatched = found["key_server_changes"]["unmatched"]
    assert [(c["kind"], c["detail"]) for c in unmatched] == [
        ("key-config", "sets exportable, allow_plaintext_backup"),
        ("key-export", "key-export"),
        ("key-backup", "key-backup"),
    ]
    assert {c["reason"] for c in unmatched} == {
        "Sealpost never does this: it lets the escrow key leave the key server"
    }
    assert {c["display_name"] for c in unmatched} == {"token"}  # the dev server's root token


@SQLITE
def test_escrow_of_a_privileged_message_is_found(own_stack: Stack) -> None:
    stack = own_stack
    day = scene(stack, messages=1)
    lawyer = stack.relative("mr. De Vries")
    lawyer.request_contact("d-watched", "lawyer")
    approve_all(day.admin, A)
    day.admin.call(
        "admin",
        "VerifyCorrespondent",
        admin_pb2.VerifyCorrespondentRequest(
            account_id=lawyer.account_id, kind="lawyer", evidence_reference="NOvA 31415"
        ),
    )
    privileged = lawyer.send("d-watched", "Vertrouwelijk.").message_id
    states = day.terminal.take_in(day.terminal.intake(), stack.escrow_for(A))
    assert states[privileged] == common_pb2.MESSAGE_STATE_RELEASED
    # A rogue terminal escrows the lawyer's message anyway: its data key, under its id.
    escrow = stack.escrow_for(A)
    escrow([(privileged, os.urandom(32))])

    code, found = reconcile(stack, day.admin)
    assert code == 1, found
    (flagged,) = found["privileged_escrows"]
    assert flagged["message_id"] == privileged.hex()
    assert flagged["institution_id"] == A
    assert found["unmatched"] == []
    assert found["key_server_changes"]["unmatched"] == []


@SQLITE
def test_an_audit_device_missing_a_decrypt_is_found(own_stack: Stack, tmp_path: Path) -> None:
    stack = own_stack
    day = scene(stack, messages=1)
    (message,) = day.sent
    screener = stack.reviewer(["screener"], [A])
    screener.open(message)
    # Someone with access to the second device's storage removes the decrypt from it.
    context = base64.b64encode(message).decode()
    mirror = Path(f"{stack.openbao.audit_log}.mirror")
    edited = tmp_path / "mirror-edited.log"
    edited.write_text(
        "".join(
            line
            for line in mirror.read_text().splitlines(keepends=True)
            if not (context in line and "/decrypt/" in line)
        )
    )
    code, found = reconcile(stack, day.admin, str(stack.openbao.audit_log), str(edited))
    assert code == 1, found
    missing = found["devices"]["missing"]
    assert {m["request_id"] for m in missing} == {found["matched"][0]["request_id"]}
    assert len(found["matched"]) == 1


@SQLITE
def test_a_decrypt_long_after_its_grant_is_not_covered(own_stack: Stack) -> None:
    """The bound, shortened to seconds in the pure check, against a real key server's log."""
    stack = own_stack
    day = scene(stack, messages=1)
    (message,) = day.sent
    screener = stack.reviewer(["screener"], [A])
    screener.open(message)  # grant and decrypt together: covered
    time.sleep(3)
    assert screener.escrow is not None
    screener.escrow.decrypt(message, day.escrowed[message].ciphertext)  # still queued, 3 s on
    day.admin.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))
    with database.connect(stack.gateway.database_url) as connection:
        facts = audit_cli.log_facts(connection, None)
    server = audit_cli.key_server_log(
        [str(p) for p in stack.openbao.audit_logs], key_ref(stack), frozenset(), 500
    )
    short = reconcile_logs(server, facts, leeway_ms=500, grant_validity_ms=2_000)
    assert [u.reason for u in short.unmatched] == [Reason.GRANT_EXPIRED]
    assert len(short.matched) == 1
    # With the real bound (15 minutes) both decrypts are covered: the bound made the finding.
    assert reconcile_logs(server, facts, leeway_ms=500).clean()


@SQLITE
def test_the_review_tool_asks_for_a_new_grant_instead_of_decrypting_late(
    own_stack: Stack,
) -> None:
    stack = own_stack
    day = scene(stack, messages=1)
    (message,) = day.sent
    screener = stack.reviewer(["screener"], [A])
    seconds = iter([0.0, GRANT_VALIDITY_MS / 1000])  # the grant, then 15 minutes later
    screener.clock = lambda: next(seconds)
    with pytest.raises(GrantExpiredError) as refused:
        screener.open(message)
    assert "open the message again" in refused.value.explain()
    code, found = reconcile(stack, day.admin)
    assert found["matched"] == []
    assert found["unmatched"] == []  # nothing reached the key server
    # The grant after the last escrow entry: the audit log cannot say whether it was used.
    assert [g["message_id"] for g in found["outside_period"]] == [message.hex()]
    assert code == 0, json.dumps(found, indent=1)
