"""A withheld message released after a successful complaint, on the real stack.

Against a real gateway (SQLite and PostgreSQL) and a real OpenBao: a screener withholds
a message; after the complaint decision a screener of the institution releases it with
``sealpost review release-withheld`` naming the decision; the release is in the log
with the reference and no content, the terminal delivers it on the log's proof, the
relative reads delivered, and ``sealpost audit verify`` finds the tables as the log
says. Refused: a message that is not withheld, another institution's screener, a role
other than screener, a release without a reference.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from sealpost import cli as sealpost_cli
from sealpost._internal.stack import (
    Stack,
    approve_all,
    log_events,
    screening_order,
    setup_institutions,
)
from sealpost.clients._grpc import ClientError
from sealpost.clients.terminal.desk import DeliveryDesk
from sealpost.crypto.logentry import COMPLAINT_REFERENCE_FIELD, LogAction, encode_event
from sealpost.v1 import admin_pb2, common_pb2, review_pb2
from tests.integration.test_state_follows_log import log_key, verify
from tests.programs import as_staff

pytestmark = pytest.mark.integration

A, B = "pi-klacht", "pi-elders"
SECRET = "Het geld ligt onder de tegel"
COMPLAINT = "BC 2026/1234"


def _review(stack: Stack, roles: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``sealpost review`` as an officer with ``roles`` at A, through its entry point."""
    return as_staff(stack, roles, [A], "review", *args)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_withheld_message_is_delivered_after_a_successful_complaint(
    stack: Stack, database_url: str, tmp_path: Path
) -> None:
    admin, terminals = setup_institutions(stack, [("d-klacht", A, "regular")])
    north = terminals[A]
    screening_order(admin, "d-klacht")
    relative = stack.relative("Samira")
    relative.request_contact("d-klacht")
    approve_all(admin, A)
    sent = relative.send("d-klacht", SECRET)
    north.take_in(north.intake(), stack.escrow_for(A))
    screener = stack.reviewer(["screener"], [A])
    screener.open(sent.message_id)
    screener.verdict(
        sent.message_id, common_pb2.VERDICT_WITHHOLD, common_pb2.WITHHOLD_REASON_PUBLIC_ORDER
    )
    assert relative.status(sent.message_id) == common_pb2.DELIVERY_STATUS_NOT_DELIVERED
    assert [m.message_id for m in north.withheld()] == [sent.message_id]

    done = _review(
        stack,
        ["screener"],
        "release-withheld",
        sent.message_id.hex(),
        "--complaint",
        COMPLAINT,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "messageId": sent.message_id.hex(),
        "state": "released",
        "complaintReference": COMPLAINT,
    }
    assert relative.status(sent.message_id) == common_pb2.DELIVERY_STATUS_PENDING
    assert north.withheld() == []

    # The release is in the log with the decision's reference, and nothing of the content.
    released = [
        e
        for e in log_events(stack)
        if e.action is LogAction.MESSAGE_RELEASED and e.message_id() == sent.message_id.hex()
    ]
    assert len(released) == 1
    assert dict(released[0].extra) == {COMPLAINT_REFERENCE_FIELD: COMPLAINT}
    assert released[0].actor.startswith("staff:")
    assert SECRET.encode() not in encode_event(released[0])

    # The terminal delivers it on the log's proof of its release, as any released message.
    desk = DeliveryDesk(north, A)
    assert [item.message_id for item in desk.pending()] == [sent.message_id]
    north.acknowledge(sent.message_id, f"{A}-klacht")
    assert relative.status(sent.message_id) == common_pb2.DELIVERY_STATUS_DELIVERED

    # A second release of the same message is refused: it is no longer withheld.
    with pytest.raises(ClientError) as again:
        screener.release_withheld(sent.message_id, COMPLAINT)
    assert again.value.code == grpc.StatusCode.FAILED_PRECONDITION

    code, state = verify(database_url, log_key(stack))
    assert (code, state["findings"]) == (0, [])

    # The audit report counts the withholding by reason and the release after the complaint.
    today = dt.datetime.now(dt.UTC).date().isoformat()
    clean: dict[str, str | None] = dict.fromkeys(k for k in os.environ if k.startswith("SEALPOST_"))
    made = CliRunner(env={**clean, "SEALPOST_LANGUAGE": "en"}).invoke(
        sealpost_cli.app,
        [
            *("audit", "report", "--database-url", database_url, "--institution", A),
            *("--from", today, "--to", today, "--out-dir", str(tmp_path / "report")),
            *("-q", "--json"),
        ],
    )
    assert made.exit_code == 0, made.stdout + made.stderr
    report = json.loads(made.stdout)
    assert report["withholdings"] == [
        {"institution": A, "reason": "public order", "withheld": 1, "released_after_complaint": 1}
    ]
    (release,) = report["complaint_releases"]
    assert (release["message"], release["complaint_reference"]) == (
        sent.message_id.hex(),
        COMPLAINT,
    )
    assert release["reason"] == "public order"
    # Time to a decision, from the log: one verdict at A, by the screener who withheld it.
    (verdict,) = [e for e in log_events(stack) if e.action is LogAction.VERDICT_RECORDED]
    decided_by = verdict.actor.removeprefix("staff:")
    decisions = report["decisions"]
    (row,) = decisions["institutions"]
    assert (row["institution"], row["verdicts"], row["undecided"]) == (A, 1, 0)
    assert 0 <= row["median_s"] == row["p90_s"] < 600
    assert [(s["screener"], s["institution"], s["verdicts"]) for s in decisions["screeners"]] == [
        (decided_by, A, 1)
    ]
    assert decisions["national"] is None
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Time to a decision" in markdown
    assert f"| {decided_by} | {A} | 1 |" in markdown
    assert f"| {A} | public order | 1 | 1 |" in markdown
    assert "| Released after a complaint | 1 |" in markdown
    assert f"after complaint {COMPLAINT}" in markdown


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_release_after_a_complaint_is_refused_when_it_may_not_be(stack: Stack) -> None:
    admin, terminals = setup_institutions(
        stack, [("d-vast", A, "regular"), ("d-weg", A, "regular"), ("d-b", B, "regular")]
    )
    north = terminals[A]
    screening_order(admin, "d-vast")
    screening_order(admin, "d-weg")
    relative = stack.relative("Moeder")
    for detainee in ("d-vast", "d-weg"):
        relative.request_contact(detainee)
    approve_all(admin, A)
    withheld = relative.send("d-vast", "Een")
    queued = relative.send("d-vast", "Twee")
    leaving = relative.send("d-weg", "Drie")
    north.take_in(north.intake(), stack.escrow_for(A))
    screener = stack.reviewer(["screener"], [A])
    for message in (withheld, leaving):
        screener.open(message.message_id)
        screener.verdict(
            message.message_id,
            common_pb2.VERDICT_WITHHOLD,
            common_pb2.WITHHOLD_REASON_CRIME_PREVENTION,
        )

    def refused(call: object) -> grpc.StatusCode:
        assert callable(call)
        with pytest.raises(ClientError) as info:
            call()
        return info.value.code

    # Not withheld: a message still in the screening queue needs a verdict, not a complaint.
    assert (
        refused(lambda: screener.release_withheld(queued.message_id, COMPLAINT))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    # No reference, or only spaces.
    for blank in ("", "   "):
        assert (
            refused(lambda b=blank: screener.release_withheld(withheld.message_id, b))
            == grpc.StatusCode.INVALID_ARGUMENT
        )
    done = _review(stack, ["screener"], "release-withheld", withheld.message_id.hex())
    assert done.returncode == 2
    assert "--complaint" in done.stderr
    # A screener of another institution, an approver and an administrator may not.
    elsewhere = stack.reviewer(["screener"], [B])
    approver = stack.reviewer(["approver"], [A])
    for other in (elsewhere, approver):
        assert (
            refused(lambda o=other: o.release_withheld(withheld.message_id, COMPLAINT))
            == grpc.StatusCode.PERMISSION_DENIED
        )
    request = review_pb2.ReleaseWithheldRequest(
        message_id=withheld.message_id, complaint_reference=COMPLAINT
    )
    assert (
        refused(lambda: admin.call("review", "ReleaseWithheld", request))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    # A released detainee's mailbox is closed: nothing more reaches it.
    admin.call("admin", "ReleaseDetainee", admin_pb2.ReleaseDetaineeRequest(detainee_id="d-weg"))
    assert (
        refused(lambda: screener.release_withheld(leaving.message_id, COMPLAINT))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    assert relative.status(withheld.message_id) == common_pb2.DELIVERY_STATUS_NOT_DELIVERED
    assert relative.status(leaving.message_id) == common_pb2.DELIVERY_STATUS_NOT_DELIVERED
    assert not [
        e
        for e in log_events(stack)
        if e.action is LogAction.MESSAGE_RELEASED and COMPLAINT_REFERENCE_FIELD in e.extra
    ]
