"""``sealpost admin`` for the directory: institutions, detainees, regimes, orders, contacts, staff.

Most calls run the entry point's own Typer app in this process (a fresh Python per call
costs seconds); the refusals that scripts rely on also run as a real ``python -m sealpost``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

import pytest
from typer.testing import CliRunner

from sealpost import cli as sealpost_cli
from sealpost._internal.stack import Stack, approve_all, log_events, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.clients.relative.sdk import ContactStatus
from sealpost.crypto.logentry import LogAction
from sealpost.escrow import identity
from sealpost.escrow._transport import KeyServerConfig

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

A = "pi-a"
B = "pi-b"


class Result(NamedTuple):
    code: int
    stdout: str
    stderr: str


def _base(stack: Stack) -> list[str]:
    ca = stack.gateway.state_dir / "tls" / "ca.pem"
    return ["admin", "--gateway", stack.gateway.address, "--ca-file", str(ca)]


def admin(stack: Stack, env: Mapping[str, str], *args: str) -> Result:
    """``sealpost admin ...`` in this process, with only ``env`` of the SEALPOST_ variables."""
    clean: dict[str, str | None] = dict.fromkeys(k for k in os.environ if k.startswith("SEALPOST_"))
    done = CliRunner(env={**clean, **env}).invoke(sealpost_cli.app, [*_base(stack), *args])
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return Result(done.exit_code, done.stdout, done.stderr)


def admin_process(stack: Stack, env: Mapping[str, str], *args: str) -> Result:
    """The same through the installed entry point, as a separate process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
    done = subprocess.run(
        [sys.executable, "-m", "sealpost", *_base(stack), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def ok(result: Result) -> Any:
    """The JSON of a command that must have succeeded."""
    assert result.code == 0, f"exit {result.code}: {result.stdout}\n{result.stderr}"
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"not JSON: {result.stdout}")


def token_env(stack: Stack, roles: list[str], institutions: list[str]) -> dict[str, str]:
    _name, token = stack.staff_token(roles, institutions)
    return {"SEALPOST_STAFF_TOKEN": token}


def test_an_administrator_keeps_the_directory_from_the_command_line(stack: Stack) -> None:
    national = token_env(stack, ["administrator"], ["*"])

    def run(*args: str) -> Any:
        return ok(admin(stack, national, "--json", *args))

    assert run("institution", "add", A, "--name", "PI Vught")["institutionId"] == A
    run("institution", "add", B, "--name", "PI Zwolle")
    listed = run("institution", "list")["institutions"]
    assert [(i["institutionId"], i["name"]) for i in listed] == [
        (A, "PI Vught"),
        (B, "PI Zwolle"),
    ]

    # Regimes: a new one with a policy, and the policy of an existing one changed.
    regime = run("regime", "set", "wing-x", "--policy", "screen-all", "--description", "Wing X")
    assert regime == {
        "name": "wing-x",
        "policy": "screen_all",
        "description": "Wing X",
    }
    run("regime", "set", "wing-x", "--policy", "blocked")
    regimes = {r["name"]: r["policy"] for r in run("regime", "list")["regimes"]}
    assert regimes["wing-x"] == "blocked"

    # Intake: one id given, one made by the gateway; then a regime change.
    d1 = run("detainee", "intake", "d-1", "--institution", A)
    assert (d1["detaineeId"], d1["institutionId"], d1["regime"], d1["status"]) == (
        "d-1",
        A,
        "regular",
        "held",
    )
    made = run("detainee", "intake", "--institution", A, "--regime", "regular")["detaineeId"]
    assert made.startswith("det")
    assert run("detainee", "regime", "d-1", "wing-x")["regime"] == "wing-x"
    at_a = run("detainee", "list", "--institution", A)["detainees"]
    assert sorted(d["detaineeId"] for d in at_a) == sorted(["d-1", made])
    assert run("detainee", "list", "--institution", B) == {"detainees": []}

    # A screening order: created for a period, listed, ended early, then only listed with --all.
    order = run(
        "order",
        "create",
        made,
        "--ground",
        "crime-prevention",
        "--direction",
        "inbound",
        "--from",
        "2030-03-01",
        "--to",
        "2030-03-31",
        "--note",
        "OM 2030/17",
    )
    assert order["legalGround"] == "crime_prevention"
    assert order["direction"] == "inbound"
    assert (order["startsAt"], order["endsAt"]) == ("2030-03-01T00:00:00Z", "2030-04-01T00:00:00Z")
    assert order["note"] == "OM 2030/17"
    assert order["orderedBy"]
    listed_orders = run("order", "list", "--detainee", made)["orders"]
    assert [o["orderId"] for o in listed_orders] == [order["orderId"]]
    ended = run("order", "end", order["orderId"])
    assert "endedEarlyAt" in ended
    assert run("order", "list", "--detainee", made) == {"orders": []}
    assert [o["orderId"] for o in run("order", "list", "--all")["orders"]] == [order["orderId"]]

    # Contacts requested by relatives: one approved, one rejected; each relative sees its own.
    fatima = stack.relative("Fatima")
    fatima.request_contact(made, "daughter")
    stranger = stack.relative("Stranger")
    stranger.request_contact(made, "friend")
    pending = run("contact", "list", "--institution", A, "--status", "requested")["requests"]
    by_account = {r["accountId"]: r for r in pending}
    assert set(by_account) == {fatima.account_id, stranger.account_id}
    assert by_account[fatima.account_id]["relationship"] == "daughter"
    approved = run("contact", "approve", by_account[fatima.account_id]["contactId"])
    assert approved["status"] == "approved"
    assert approved["decidedBy"]
    rejected = run(
        "contact", "reject", by_account[stranger.account_id]["contactId"], "--note", "unknown"
    )
    assert rejected["status"] == "rejected"
    assert run("contact", "list", "--status", "requested") == {"requests": []}
    assert fatima.contact(made).state is ContactStatus.APPROVED
    assert stranger.contact(made).state is ContactStatus.REJECTED

    # A lawyer is verified as a privileged correspondent, then no longer.
    lawyer = stack.relative("Mr. Jansen")
    lawyer.request_contact(made, "lawyer")
    verified = run(
        "correspondent", "verify", lawyer.account_id, "--kind", "lawyer", "--evidence", "NOvA 42"
    )
    assert (verified["accountId"], verified["kind"], verified["evidenceReference"]) == (
        lawyer.account_id,
        "lawyer",
        "NOvA 42",
    )
    assert "revokedAt" not in verified
    assert lawyer.contact(made).privileged
    assert "revokedAt" in run("correspondent", "revoke", lawyer.account_id)
    assert not lawyer.contact(made).privileged

    # Transfer with a new regime, then release.
    moved = run("detainee", "transfer", made, "--to", B, "--regime", "regular")
    assert (moved["institutionId"], moved["regime"], moved["status"]) == (
        B,
        "regular",
        "transferred",
    )
    niece = fatima.request_contact("d-1", "niece")
    # Before the institution approves, nothing about the detainee is told (SPEC P11).
    assert not niece.deliverable
    run("contact", "approve", niece.contact_id)
    assert fatima.contact("d-1").deliverable
    released = run("detainee", "release", "d-1", "--yes")
    assert released["status"] == "released"
    assert not fatima.contact("d-1").deliverable

    # Every change is in the transparency log, the transfer with its new regime.
    events = log_events(stack)
    actions = [e.action for e in events]
    for action in (
        LogAction.INSTITUTION_CREATED,
        LogAction.REGIME_POLICY_CHANGED,
        LogAction.DETAINEE_INTAKE,
        LogAction.DETAINEE_REGIME_CHANGED,
        LogAction.SCREENING_ORDER_CREATED,
        LogAction.SCREENING_ORDER_ENDED,
        LogAction.CONTACT_APPROVED,
        LogAction.CONTACT_REJECTED,
        LogAction.CORRESPONDENT_VERIFIED,
        LogAction.CORRESPONDENT_REVOKED,
        LogAction.DETAINEE_RELEASED,
    ):
        assert action in actions, action
    (transfer,) = [e for e in events if e.action == LogAction.DETAINEE_TRANSFERRED]
    assert transfer.extra["regime"] == "regular"

    # People get lines, not JSON.
    text = admin(stack, national, "detainee", "list", "--institution", B)
    assert text.code == 0
    assert text.stdout.split() == [made, B, "regular", "transferred", "no", "mailbox", "key", "yet"]


def test_refusals_are_clear_and_exit_non_zero(stack: Stack) -> None:
    national = token_env(stack, ["administrator"], ["*"])
    for institution in (A, B):
        ok(admin(stack, national, "--json", "institution", "add", institution, "--name", "PI"))
        intake = ["detainee", "intake", f"d-{institution}", "--institution", institution]
        ok(admin(stack, national, "--json", *intake))

    # A screener is not an administrator: refused by the gateway, in a real process.
    screener = token_env(stack, ["screener"], ["*"])
    refused = admin_process(stack, screener, "detainee", "intake", "d-x", "--institution", A)
    assert (refused.code, refused.stdout, refused.stderr.strip()) == (
        1,
        "",
        "error: your role may not call this method",
    )

    # An administrator of pi-a: fine at pi-a, refused on pi-b's detainee and on national work.
    local = token_env(stack, ["administrator"], [A])
    assert ok(admin(stack, local, "--json", "detainee", "regime", "d-pi-a", "regular"))
    for args in (
        ("detainee", "release", "d-pi-b", "--yes"),
        ("detainee", "transfer", "d-pi-a", "--to", B),
        ("order", "create", "d-pi-b", "--ground", "public-order", "--to", "2030-01-01"),
        ("detainee", "list", "--institution", B),
    ):
        result = admin(stack, local, *args)
        assert (result.code, result.stderr.strip()) == (
            1,
            "error: outside your institutions",
        ), args
    national_only = admin(stack, local, "regime", "set", "x", "--policy", "blocked")
    assert (national_only.code, national_only.stderr.strip()) == (
        1,
        "error: only national staff may do this",
    )
    detainees = ok(admin(stack, national, "--json", "detainee", "list"))["detainees"]
    assert {d["detaineeId"]: d["status"] for d in detainees} == {
        "d-pi-a": "held",
        "d-pi-b": "held",
    }

    # Unknown enum words are usage errors (exit 2) that list the valid ones, before any call.
    usage = admin(stack, national, "regime", "set", "x", "--policy", "screen-some")
    assert usage.code == 2
    for word in ("'blocked'", "'screen-all'", "'screen-on-order'"):
        assert word in usage.stderr
    for args in (
        ("order", "create", "d-pi-a", "--ground", "suspicion", "--to", "2030-01-01"),
        ("contact", "list", "--status", "pending"),
        ("staff", "add", "someone", "--role", "janitor", "--institution", A),
    ):
        assert admin(stack, national, *args).code == 2, args
    too_long = ["--ground", "public-order", "--from", "2030-01-01", "--to", "2031-06-01"]
    gateway_refusal = admin(stack, national, "order", "create", "d-pi-a", *too_long)
    assert gateway_refusal.code == 1
    assert "within 366 days" in gateway_refusal.stderr

    # Staff logins: made with the key server's operator token, never with one's own login.
    # The change is recorded in the log, signed in as a national administrator (SPEC P14).
    keyserver = {"SEALPOST_KEY_SERVER_ADDRESS": stack.openbao.address}
    password = "correct horse battery staple"
    operator = {
        **keyserver,
        **token_env(stack, ["administrator"], ["*"]),
        "SEALPOST_KEY_SERVER_TOKEN": stack.openbao.root_token,
        "SEALPOST_NEW_PASSWORD": password,
    }
    roles = ["--role", "administrator", "--role", "approver"]
    made = ok(
        admin(stack, operator, "--json", "staff", "add", "anna.a", *roles, "--institution", A)
    )
    assert (made["name"], made["roles"], made["institutions"]) == (
        "anna.a",
        ["administrator", "approver"],
        [A],
    )
    assert made["policies"] == ["sealpost-key-administrator", "sealpost-staff"]
    assert made["recorded"] == 1
    (staff_change,) = [
        e
        for e in log_events(stack)
        if e.action is LogAction.ADMIN_ACTION and e.extra.get("target") == "anna.a"
    ]
    assert staff_change.extra["kind"] == "staff_change"
    assert "auth/userpass/users/anna.a" in staff_change.extra["paths"].split(",")

    # The operator lists the staff logins: Anna with her roles and institution.
    listed = ok(admin(stack, operator, "--json", "staff", "list"))["staff"]
    (anna_row,) = [u for u in listed if u["name"] == "anna.a"]
    assert (anna_row["roles"], anna_row["institutions"]) == (["administrator", "approver"], [A])

    # Anna signs in with her password (no token given) and works within pi-a only.
    anna = {**keyserver, "SEALPOST_USER": "anna.a", "SEALPOST_PASSWORD": password}
    seen = ok(admin(stack, anna, "--json", "detainee", "list"))["detainees"]
    assert [d["detaineeId"] for d in seen] == ["d-pi-a"]
    outside = admin(stack, anna, "detainee", "release", "d-pi-b", "--yes")
    assert (outside.code, outside.stderr.strip()) == (
        1,
        "error: outside your institutions",
    )

    # Her own key-server login cannot make staff (nor widen her own scope); the error says why.
    session = identity.login_staff(KeyServerConfig(stack.openbao.address), "anna.a", password)
    own = {**operator, "SEALPOST_KEY_SERVER_TOKEN": session.token}
    escalate = admin(stack, own, "staff", "add", "anna.a", *roles, "--institution", "*")
    assert escalate.code == 1
    assert "needs a key-server operator token in SEALPOST_KEY_SERVER_TOKEN" in escalate.stderr
    again = ok(admin(stack, anna, "--json", "detainee", "list"))["detainees"]
    assert [d["detaineeId"] for d in again] == ["d-pi-a"]

    # The key server's own rules come through as clear errors.
    mixed = ["--role", "screener", "--role", "auditor", "--institution", A]
    refused_mix = admin(stack, operator, "staff", "add", "eve", *mixed)
    assert (refused_mix.code, refused_mix.stderr.strip()) == (
        1,
        "error: screener and auditor roles are never combined",
    )
    # Removed, Anna can no longer sign in; the removal is logged like the creation.
    removed = ok(admin(stack, operator, "--json", "staff", "remove", "anna.a", "--yes"))
    assert removed == {"name": "anna.a", "removed": True, "recorded": 1}
    gone = admin(stack, anna, "detainee", "list")
    assert gone.code != 0
    assert "anna.a" not in [
        u["name"] for u in ok(admin(stack, operator, "--json", "staff", "list"))["staff"]
    ]
    changes = [
        e
        for e in log_events(stack)
        if e.action is LogAction.ADMIN_ACTION and e.extra.get("target") == "anna.a"
    ]
    assert len(changes) == 2
    assert "identity/entity/name/anna.a" in changes[1].extra["paths"].split(",")
    missing = admin(stack, operator, "staff", "remove", "nobody.here", "--yes")
    assert missing.code == 1
    weak = {**operator, "SEALPOST_NEW_PASSWORD": "short"}
    short = admin(stack, weak, "staff", "add", "bob", "--role", "auditor", "--institution", "*")
    assert short.code == 1
    assert "at least 12 characters" in short.stderr


def test_a_lost_device_is_revoked_from_the_command_line(stack: Stack) -> None:
    admin_client, _terminals = setup_institutions(stack, [("d-kwijt", A, "regular")])
    relative = stack.relative("Kwijt")
    relative.request_contact("d-kwijt")
    approve_all(admin_client, A)
    relative.send("d-kwijt", "voor het verlies")
    national = token_env(stack, ["administrator"], ["*"])
    local = token_env(stack, ["administrator"], [A])

    bad = admin(stack, national, "key-record", "revoke", "abc", "--reason", "kwijt", "--yes")
    assert bad.code == 2
    refused = admin(
        stack, local, "key-record", "revoke", relative.key_id.hex(), "--reason", "kwijt", "--yes"
    )
    assert refused.code == 1  # national administrators only
    args = ("key-record", "revoke", relative.key_id.hex(), "--reason", "telefoon gestolen")
    done = ok(admin(stack, national, "--json", *args, "--yes"))
    assert done == {"keyId": relative.key_id.hex(), "revoked": True, "reason": "telefoon gestolen"}
    with pytest.raises(ClientError):
        relative.send("d-kwijt", "na het verlies")
    (revoked,) = [e for e in log_events(stack) if e.action is LogAction.KEY_REVOKED]
    assert revoked.extra.get("reason") == "telefoon gestolen"
