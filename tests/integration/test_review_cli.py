"""``sealpost review`` through its entry point, against a real gateway and a real OpenBao.

Queue, open (with evidence and saved attachments), verdict, retrospective requests with
two officers, and the offline check of an evidence bundle, intact and tampered.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sealpost._internal.stack import Stack, approve_all, screening_order, setup_institutions
from sealpost.crypto.envelope import Part
from sealpost.escrow._transport import KeyServerConfig
from sealpost.escrow.auditlog import read_audit_log
from sealpost.escrow.bootstrap import BootstrapSettings, KeyServerBootstrap

pytestmark = pytest.mark.integration

A = "pi-north"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}


def _officer(stack: Stack, roles: list[str]) -> dict[str, str]:
    """The environment of one officer: gateway token, own key-server token, where things are."""
    _name, session, token = stack.staff_login(roles, [A])
    return {
        **_clean_env(),
        "SEALPOST_GATEWAY": stack.gateway.address,
        "SEALPOST_CA_FILE": str(stack.gateway.state_dir / "tls" / "ca.pem"),
        "SEALPOST_KEY_SERVER_ADDRESS": stack.openbao.address,
        "SEALPOST_STAFF_TOKEN": token,
        "SEALPOST_KEY_SERVER_TOKEN": session.token,
        "SEALPOST_DIRECTORY_KEY": stack.pin.signing_key.hex(),
    }


def _review(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sealpost", "review", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _refusal(env: dict[str, str], *args: str) -> str:
    """The error code of a refused command (its JSON error on stderr, exit code 1)."""
    result = _review(env, *args, "--json")
    assert result.returncode == 1, result.stderr
    return str(json.loads(result.stderr)["error"]["code"])


def _json(env: dict[str, str], *args: str) -> Any:
    result = _review(env, "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_queue_open_evidence_verdict(stack: Stack, tmp_path: Path) -> None:
    admin, terminals = setup_institutions(stack, [("d-cli", A, "regular")])
    screening_order(admin, "d-cli")
    relative = stack.relative("Moeder")
    relative.request_contact("d-cli")
    approve_all(admin, A)
    first = relative.send(
        "d-cli",
        "Tot zondag, schat — إلى اللقاء",
        [Part("application/pdf", b"%PDF-1.7 brief", "brief.pdf")],
    )
    second = relative.send("d-cli", "Tweede bericht")
    terminal = terminals[A]
    terminal.take_in(terminal.intake(), stack.escrow_for(A))
    screener = _officer(stack, ["screener"])

    # The queue, longest waiting first, message ids in hex.
    items = _json(screener, "queue")["items"]
    assert [i["messageId"] for i in items] == [first.message_id.hex(), second.message_id.hex()]
    assert items[0]["legalBasis"] == "screening_order"
    assert items[0]["detaineeId"] == "d-cli"
    assert _json(screener, "queue", "--detainee", "d-other")["items"] == []
    people = _review(screener, "queue")
    assert people.returncode == 0, people.stderr
    assert first.message_id.hex() in people.stdout
    assert "screening order" in people.stdout

    # Open: grant logged, own decrypt, the text, the attachment saved, evidence written.
    evidence = tmp_path / "evidence.json"
    saved = tmp_path / "attachments"
    opened = _json(
        screener,
        "open",
        first.message_id.hex(),
        "--evidence",
        str(evidence),
        "--save-attachments",
        str(saved),
    )
    assert opened["text"] == "Tot zondag, schat — إلى اللقاء"
    assert opened["legalBasis"] == "screening_order"
    assert opened["grantId"].startswith("gr")
    assert opened["attachments"][0]["filename"] == "brief.pdf"
    assert (saved / "brief.pdf").read_bytes() == b"%PDF-1.7 brief"
    assert oct(evidence.stat().st_mode & 0o777) == "0o600"
    assert oct((saved / "brief.pdf").stat().st_mode & 0o777) == "0o600"

    text = _review(screener, "open", second.message_id.hex())
    assert text.returncode == 0, text.stderr
    assert "ACCESS LOGGED" in text.stdout
    assert "legal basis: screening order" in text.stdout
    assert "Tweede bericht" in text.stdout

    # An outsider verifies the bundle offline: no gateway, no key server, only the pin.
    outsider = _clean_env()
    pin = stack.pin.signing_key.hex()
    verified = _review(outsider, "verify-evidence", str(evidence), "--directory-key", pin)
    assert verified.returncode == 0, verified.stderr
    for check in ["directory", "sender-key", "envelope", "data-key", "content", "inclusion"]:
        assert f"ok      {check}" in verified.stdout
    assert "Tot zondag" in verified.stdout
    report = _json(outsider, "verify-evidence", str(evidence), "--directory-key", pin)
    assert report["verified"] is True
    assert report["grantId"] == opened["grantId"]
    assert report["keyServerEntity"]

    # A tampered copy fails, naming the check.
    document = json.loads(evidence.read_text())
    document["message"]["parts"][0]["data"] = base64.b64encode(b"Tot maandag, schat").decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(document))
    refused = _review(outsider, "verify-evidence", str(tampered), "--directory-key", pin)
    assert refused.returncode == 4
    assert "FAILED  content" in refused.stdout
    assert "content" in refused.stderr
    wrong_pin = _review(outsider, "verify-evidence", str(evidence), "--directory-key", "ab" * 32)
    assert wrong_pin.returncode == 4
    assert "directory" in wrong_pin.stderr
    future = tmp_path / "future.json"
    future.write_text(json.dumps({**json.loads(evidence.read_text()), "version": 9}))
    too_new = _review(outsider, "verify-evidence", str(future), "--directory-key", pin)
    assert too_new.returncode == 2
    assert "newer" in too_new.stderr

    # Verdicts: withholding needs a reason; release delivers; a second verdict is refused.
    no_reason = _review(screener, "verdict", first.message_id.hex(), "withhold")
    assert no_reason.returncode == 2
    assert "--reason" in no_reason.stderr
    released = _json(screener, "verdict", first.message_id.hex(), "release", "--note", "ok")
    assert released["state"] == "released"
    assert first.message_id in [d.message_id for d in terminal.deliveries()]
    withheld = _review(
        screener,
        "verdict",
        second.message_id.hex(),
        "withhold",
        "--reason",
        "crime-prevention",
        "--note",
        "aanwijzing",
    )
    assert withheld.returncode == 0, withheld.stderr
    assert "withheld (crime-prevention)" in withheld.stdout
    assert second.message_id not in [d.message_id for d in terminal.deliveries()]
    again = _refusal(screener, "verdict", first.message_id.hex(), "release")
    assert again == "failed_precondition"
    assert _json(screener, "queue")["items"] == []

    # Another officer, who never opened it, cannot decide on a message.
    third = relative.send("d-cli", "Derde")
    terminal.take_in(terminal.intake(), stack.escrow_for(A))
    colleague = _officer(stack, ["screener"])
    ungranted = _refusal(colleague, "verdict", third.message_id.hex(), "release")
    assert ungranted == "permission_denied"

    # Bad input is refused before anything is sent.
    assert _review(screener, "open", "not-hex").returncode == 2
    missing_pin = {k: v for k, v in screener.items() if k != "SEALPOST_DIRECTORY_KEY"}
    no_pin = _review(missing_pin, "open", third.message_id.hex())
    assert no_pin.returncode == 2
    assert "--directory-key" in no_pin.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_retrospective_request_with_two_officers(stack: Stack, tmp_path: Path) -> None:
    admin, terminals = setup_institutions(stack, [("d-old", A, "regular")])
    relative = stack.relative()
    relative.request_contact("d-old")
    approve_all(admin, A)
    sent = relative.send("d-old", "Oud bericht")
    terminal = terminals[A]
    terminal.take_in(terminal.intake(), stack.escrow_for(A))
    terminal.acknowledge(sent.message_id, "REF-1")

    requester = _officer(stack, ["screener", "approver"])
    approver = _officer(stack, ["approver"])
    # Delivered without screening: no basis to open it.
    assert _refusal(requester, "open", sent.message_id.hex()) == "permission_denied"

    today = dt.datetime.now(dt.UTC).date()
    filed = _json(
        requester,
        "retro",
        "file",
        "d-old",
        "--from",
        (today - dt.timedelta(days=2)).isoformat(),
        "--to",
        today.isoformat(),
        "--case",
        "OM 2026/778",
        "--reason",
        "Onderzoek naar bedreiging van een getuige",
    )
    request_id = filed["requestId"]
    assert filed["status"] == "pending"
    assert filed["direction"] == "both"

    # Four eyes: not one's own request; not before approval.
    assert _refusal(requester, "retro", "decide", request_id, "approve") == "permission_denied"
    pending = _review(requester, "open", sent.message_id.hex(), "--retrospective", request_id)
    assert pending.returncode == 1
    too_long = _review(approver, "retro", "decide", request_id, "approve", "--valid-days", "31")
    assert too_long.returncode == 2

    listed = _json(approver, "retro", "list", "--status", "pending")["requests"]
    assert [r["requestId"] for r in listed] == [request_id]
    decided = _json(approver, "retro", "decide", request_id, "approve", "--valid-days", "3")
    assert decided["status"] == "approved"
    assert decided["decidedBy"] != filed["requestedBy"]
    assert "validUntil" in decided
    assert _json(approver, "retro", "list", "--status", "pending")["requests"] == []

    messages = _json(requester, "retro", "messages", request_id)["items"]
    assert [m["messageId"] for m in messages] == [sent.message_id.hex()]
    assert messages[0]["legalBasis"] == "retrospective_request"
    # Only the officer who filed the request may use it.
    borrowed = _review(approver, "retro", "messages", request_id)
    assert borrowed.returncode == 1

    evidence = tmp_path / "retro.json"
    opened = _json(
        requester,
        "open",
        sent.message_id.hex(),
        "--retrospective",
        request_id,
        "--evidence",
        str(evidence),
    )
    assert opened["text"] == "Oud bericht"
    assert opened["legalBasis"] == "retrospective_request"
    report = _json(
        _clean_env(),
        "verify-evidence",
        str(evidence),
        "--directory-key",
        stack.pin.signing_key.hex(),
    )
    assert report["legalBasis"] == "LEGAL_BASIS_RETROSPECTIVE_REQUEST"

    # A rejection gives nothing.
    second = _json(
        requester,
        "retro",
        "file",
        "d-old",
        "--from",
        f"{today - dt.timedelta(days=1)}T00:00:00+00:00",
        "--to",
        f"{today}T23:59:00",
        "--case",
        "OM 2026/779",
        "--reason",
        "Tweede verzoek",
        "--direction",
        "inbound",
    )
    rejected = _json(approver, "retro", "decide", second["requestId"], "reject", "--note", "nee")
    assert rejected["status"] == "rejected"
    use_rejected = _refusal(
        requester, "open", sent.message_id.hex(), "--retrospective", second["requestId"]
    )
    assert use_rejected == "permission_denied"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sign_in_decrypts_under_the_screeners_own_identity(stack: Stack, tmp_path: Path) -> None:
    admin, terminals = setup_institutions(stack, [("d-own", A, "regular")])
    screening_order(admin, "d-own")
    relative = stack.relative()
    relative.request_contact("d-own")
    approve_all(admin, A)
    sent = relative.send("d-own", "Wie leest dit?")
    terminals[A].take_in(terminals[A].intake(), stack.escrow_for(A))

    name, password = f"screener-{secrets.token_hex(3)}", secrets.token_urlsafe(18)
    bootstrap = KeyServerBootstrap(
        KeyServerConfig(stack.openbao.address),
        stack.openbao.root_token,
        BootstrapSettings(prefix=stack.prefix),
    )
    try:
        bootstrap.create_staff_user(name, password, ["screener"], [A])
    finally:
        bootstrap.close()
    env = {
        **_clean_env(),
        "SEALPOST_PASSWORD": password,
        "SEALPOST_DIRECTORY_KEY": stack.pin.signing_key.hex(),
    }
    evidence = tmp_path / "own.json"
    opened = _json(
        env,
        "--gateway",
        stack.gateway.address,
        "--ca-file",
        str(stack.gateway.state_dir / "tls" / "ca.pem"),
        "--key-server",
        stack.openbao.address,
        "--user",
        name,
        "open",
        sent.message_id.hex(),
        "--evidence",
        str(evidence),
    )
    assert opened["text"] == "Wie leest dit?"
    report = _json(env, "verify-evidence", str(evidence))
    entity = report["keyServerEntity"]
    decrypts = {
        e.entity_id
        for e in read_audit_log(stack.openbao.audit_log)
        if e.operation == "decrypt" and sent.message_id in e.message_ids
    }
    # The key server logged the decrypt with this message in clear, under this person.
    assert decrypts == {entity}
    assert report["actor"].startswith("staff:")
