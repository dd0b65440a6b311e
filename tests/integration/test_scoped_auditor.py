"""An auditor scoped to one institution reads its log entries in full, and hashes of the rest.

SPEC P11: staff, auditors included, see only their own institutions. Before, an auditor
limited to one institution read every institution's entries (which name detainees,
institutions and transfers). Now GetEntries hands them the full leaves of their
institution and the public entries, and only the leaf hashes of the others; with those
they still recompute every root and check every signed head (`sealpost audit
verify-remote`), and a change to an entry they cannot read still shows.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sealpost import cli as sealpost_cli
from sealpost._internal.stack import Stack, approve_all, setup_institutions
from sealpost.clients.staff import StaffClient
from sealpost.crypto import merkle
from sealpost.crypto.logentry import decode_event
from sealpost.v1 import admin_pb2, audit_pb2, log_pb2

pytestmark = pytest.mark.integration

A, B = "pi-noord", "pi-zuid"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def two_institutions(stack: Stack) -> int:
    """Mail at both institutions, a transfer from A to B; returns the log's size."""
    admin, terminals = setup_institutions(
        stack, [("d-a", A, "regular"), ("d-b", B, "regular"), ("d-move", A, "regular")]
    )
    relative = stack.relative("Samira")
    for detainee in ("d-a", "d-b", "d-move"):
        relative.request_contact(detainee)
    approve_all(admin, A)
    approve_all(admin, B)
    relative.send("d-a", "voor A")
    relative.send("d-b", "voor B")
    for institution, terminal in terminals.items():
        terminal.take_in(terminal.intake(), stack.escrow_for(institution))
    admin.call(
        "admin",
        "TransferDetainee",
        admin_pb2.TransferDetaineeRequest(detainee_id="d-move", to_institution_id=B),
    )
    head = admin.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))
    return int(log_pb2.TreeHead.FromString(head.tree_head.tree_head).tree_size)


def entries(auditor: StaffClient, size: int) -> list[log_pb2.LogEntry]:
    reply = auditor.call("audit", "GetEntries", audit_pb2.GetEntriesRequest(start=0, end=size))
    return list(reply.entries)


def institutions_named(leaf: bytes) -> set[str]:
    return {v for k, v in decode_event(leaf).subjects if k.startswith("institution")}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_scoped_auditor_reads_own_entries_and_hashes_of_the_rest(
    stack: Stack, database_url: str
) -> None:
    size = two_institutions(stack)
    national = entries(stack.staff(["auditor"], ["*"]), size)
    scoped = entries(stack.staff(["auditor"], [A]), size)
    assert all(e.leaf and not e.leaf_hash for e in national)
    assert [e.index for e in scoped] == [e.index for e in national]

    readable = [e for e in scoped if e.leaf]
    hidden = [e for e in scoped if not e.leaf]
    assert readable
    assert hidden
    for entry in hidden:
        full = national[entry.index].leaf
        assert entry.leaf_hash == merkle.leaf_hash(full)
    # Nothing readable is about B alone; everything about B alone is hidden.
    for entry in readable:
        named = institutions_named(entry.leaf)
        assert named <= {A, B}
        assert named != {B}, decode_event(entry.leaf)
    hidden_events = [decode_event(national[e.index].leaf) for e in hidden]
    assert any(("detainee", "d-b") in event.subjects for event in hidden_events)
    # The transfer concerns both institutions: A's auditor reads it.
    transfers = [e for e in readable if decode_event(e.leaf).action.name == "DETAINEE_TRANSFERRED"]
    assert len(transfers) == 1


def verify_remote(stack: Stack, token: str) -> tuple[int, dict[str, object]]:
    env = dict.fromkeys(k for k in os.environ if k.startswith("SEALPOST_"))
    env["SEALPOST_STAFF_TOKEN"] = token
    ca = stack.gateway.workdir / "ca-for-auditor.pem"
    ca.write_bytes(stack.gateway.ca_pem)
    done = CliRunner(env=env).invoke(
        sealpost_cli.app,
        [
            "audit",
            "verify-remote",
            "--gateway",
            stack.gateway.address,
            "--ca-file",
            str(ca),
            "--directory-key",
            stack.pin.signing_key.hex(),
            "--json",
            "-q",
        ],
    )
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return done.exit_code, json.loads(done.stdout)


@SQLITE
def test_a_scoped_auditor_checks_every_head_and_sees_a_change_it_cannot_read(
    stack: Stack, database_url: str
) -> None:
    size = two_institutions(stack)
    _name, token = stack.staff_token(["auditor"], [A])
    code, result = verify_remote(stack, token)
    assert code == 0, result
    assert result["ok"] is True
    assert result["readable"] + result["hashed"] == size  # type: ignore[operator]
    assert result["hashed"]

    # An operator rewrites an entry about B only: A's auditor cannot read it, but the
    # signed heads no longer match.
    scoped = entries(stack.staff(["auditor"], [A]), size)
    target = next(e.index for e in scoped if not e.leaf)
    path = Path(stack.gateway.database_url.removeprefix("sqlite:///"))
    national = entries(stack.staff(["auditor"], ["*"]), size)
    forged = bytearray(national[target].leaf)
    forged[-1] ^= 1
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE log_leaves SET leaf = ? WHERE idx = ?", (bytes(forged), target))
    code, result = verify_remote(stack, token)
    assert code == 1
    assert result["ok"] is False
    # Without the gateway's node cache the change is bounded by signed head sizes, not
    # pinned to one leaf: the range reported holds the changed entry.
    findings = result["findings"]
    assert isinstance(findings, list)
    assert any(f["start"] <= target < (f["end"] or target + 1) for f in findings), findings
