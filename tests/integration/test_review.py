"""Lawful review end to end: legal basis, logged grant, the screener's own decrypt, verdicts.

Against a real OpenBao (escrow, identity tokens, audit device) and a real gateway.
"""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from sealpost._internal.stack import Stack, approve_all, screening_order, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.clients.review.client import ReviewClient
from sealpost.crypto.envelope import Part
from sealpost.crypto.logentry import decode_event
from sealpost.escrow.auditlog import read_audit_log
from sealpost.v1 import admin_pb2, common_pb2, review_pb2

pytestmark = pytest.mark.integration

A, B = "pi-east", "pi-west"


def _stamp(when: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def _code(info: pytest.ExceptionInfo[ClientError]) -> grpc.StatusCode:
    return info.value.code


def test_screening_order_queue_grant_decrypt_verdict(stack: Stack) -> None:
    admin, terminals = setup_institutions(
        stack, [("d-watched", A, "regular"), ("d-free", A, "regular"), ("d-west", B, "regular")]
    )
    terminal = terminals[A]
    screening_order(admin, "d-watched")
    relative = stack.relative("Broer")
    relative.request_contact("d-watched")
    relative.request_contact("d-free")
    approve_all(admin, A)
    watched = relative.send(
        "d-watched", "Het pakket komt dinsdag", [Part("image/jpeg", b"\xff\xd8jpeg", "foto.jpg")]
    )
    free = relative.send("d-free", "Gewoon een groet")
    states = terminal.take_in(terminal.intake(), stack.escrow_for(A))
    assert states[watched.message_id] == common_pb2.MESSAGE_STATE_QUEUED
    assert states[free.message_id] == common_pb2.MESSAGE_STATE_RELEASED
    assert [d.message_id for d in terminal.deliveries()] == [free.message_id]

    screener = stack.reviewer(["screener"], [A])
    (item,) = screener.queue()
    assert item.message_id == watched.message_id
    assert item.legal_basis == common_pb2.LEGAL_BASIS_SCREENING_ORDER
    assert item.waited_seconds >= 0

    review = screener.open(watched.message_id)
    assert review.text == "Het pakket komt dinsdag"
    assert review.message.parts[1].filename == "foto.jpg"
    assert review.grant.legal_basis == common_pb2.LEGAL_BASIS_SCREENING_ORDER
    assert review.tree_head.tree_size > review.grant.grant_entry.index

    # The key server's own audit log names the message (in clear) and the screener.
    decrypts = [
        e
        for e in read_audit_log(stack.openbao.audit_log)
        if e.operation == "decrypt" and watched.message_id in e.message_ids
    ]
    grant_event = decode_event(review.grant.grant_entry.leaf)
    assert decrypts
    assert {e.entity_id for e in decrypts} == {grant_event.extra["key_server_entity"]}
    assert grant_event.actor.startswith("staff:")

    # A message released without screening has no legal basis for review.
    with pytest.raises(ClientError) as no_basis:
        screener.open(free.message_id)
    assert _code(no_basis) == grpc.StatusCode.PERMISSION_DENIED

    # Verdicts need a grant first, and only queued messages get one.
    other = stack.reviewer(["screener"], [A])
    with pytest.raises(ClientError) as ungranted:
        other.verdict(watched.message_id, common_pb2.VERDICT_RELEASE)
    assert _code(ungranted) == grpc.StatusCode.PERMISSION_DENIED
    assert (
        screener.verdict(watched.message_id, common_pb2.VERDICT_RELEASE, note="niets bijzonders")
        == common_pb2.MESSAGE_STATE_RELEASED
    )
    assert watched.message_id in [d.message_id for d in terminal.deliveries()]

    # Withholding: the relative only ever hears "not delivered".
    second = relative.send("d-watched", "Tweede bericht")
    terminal.take_in(terminal.intake(), stack.escrow_for(A))
    screener.open(second.message_id)
    with pytest.raises(ClientError) as no_reason:
        screener.verdict(second.message_id, common_pb2.VERDICT_WITHHOLD)
    assert _code(no_reason) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        screener.verdict(
            second.message_id,
            common_pb2.VERDICT_WITHHOLD,
            common_pb2.WITHHOLD_REASON_CRIME_PREVENTION,
            "aanwijzing voor voortgezet crimineel handelen",
        )
        == common_pb2.MESSAGE_STATE_WITHHELD
    )
    assert relative.status(second.message_id) == common_pb2.DELIVERY_STATUS_NOT_DELIVERED

    # Out of scope: a screener of another institution cannot see the queue or open it.
    west = stack.reviewer(["screener"], [B])
    assert west.queue() == []
    with pytest.raises(ClientError) as foreign:
        west.open(second.message_id)
    assert _code(foreign) == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(ClientError) as foreign_filter:
        west.queue(institution_id=A)
    assert _code(foreign_filter) == grpc.StatusCode.PERMISSION_DENIED


def test_privileged_messages_are_never_reviewed(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-all", A, "regular")])
    admin.call(
        "admin",
        "SetRegime",
        admin_pb2.SetRegimeRequest(
            regime=admin_pb2.Regime(name="screen-all", policy=common_pb2.REGIME_POLICY_SCREEN_ALL)
        ),
    )
    admin.call(
        "admin",
        "SetDetaineeRegime",
        admin_pb2.SetDetaineeRegimeRequest(detainee_id="d-all", regime="screen-all"),
    )
    lawyer = stack.relative("Advocaat")
    lawyer.request_contact("d-all")
    approve_all(admin, A)
    admin.call(
        "admin",
        "VerifyCorrespondent",
        admin_pb2.VerifyCorrespondentRequest(
            account_id=lawyer.account_id, kind="lawyer", evidence_reference="NOvA 1"
        ),
    )
    relative = stack.relative("Zus")
    relative.request_contact("d-all")
    approve_all(admin, A)
    privileged = lawyer.send("d-all", "Vertrouwelijk")
    ordinary = relative.send("d-all", "Alles goed?")
    states = terminals[A].take_in(terminals[A].intake(), stack.escrow_for(A))
    assert states[privileged.message_id] == common_pb2.MESSAGE_STATE_RELEASED
    assert states[ordinary.message_id] == common_pb2.MESSAGE_STATE_QUEUED

    screener = stack.reviewer(["screener"], [A])
    assert [i.message_id for i in screener.queue()] == [ordinary.message_id]
    assert screener.queue()[0].legal_basis == common_pb2.LEGAL_BASIS_REGIME_SCREEN_ALL
    with pytest.raises(ClientError) as refused:
        screener.open(privileged.message_id)
    assert _code(refused) == grpc.StatusCode.PERMISSION_DENIED
    assert "privileged" in refused.value.message
    assert screener.open(ordinary.message_id).text == "Alles goed?"


def _file(screener: ReviewClient, detainee: str) -> review_pb2.RetrospectiveRequest:
    now = dt.datetime.now(dt.UTC)
    reply: review_pb2.FileRetrospectiveRequestResponse = screener.staff.call(
        "review",
        "FileRetrospectiveRequest",
        review_pb2.FileRetrospectiveRequestRequest(
            detainee_id=detainee,
            direction=common_pb2.DIRECTION_BOTH,
            period_start=_stamp(now - dt.timedelta(days=1)),
            period_end=_stamp(now + dt.timedelta(hours=1)),
            case_reference="OM 2026/778",
            reason="Onderzoek naar bedreiging van een getuige",
        ),
    )
    return reply.request


def _decide(approver: ReviewClient, request_id: str, *, approve: bool, hours: float = 24) -> None:
    approver.staff.call(
        "review",
        "DecideRetrospectiveRequest",
        review_pb2.DecideRetrospectiveRequestRequest(
            request_id=request_id,
            approve=approve,
            valid_until=_stamp(dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)),
        ),
    )


def test_retrospective_access_needs_a_second_officer(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-past", A, "regular")])
    terminal = terminals[A]
    relative = stack.relative()
    relative.request_contact("d-past")
    approve_all(admin, A)
    sent = relative.send("d-past", "Oud bericht")
    terminal.take_in(terminal.intake(), stack.escrow_for(A))
    terminal.acknowledge(sent.message_id, "REF")

    screener = stack.reviewer(["screener", "approver"], [A])
    with pytest.raises(ClientError) as no_request:
        screener.open(sent.message_id)
    assert _code(no_request) == grpc.StatusCode.PERMISSION_DENIED

    request = _file(screener, "d-past")
    assert request.status == common_pb2.RETROSPECTIVE_STATUS_PENDING
    # Not approved yet: no access.
    with pytest.raises(ClientError) as pending:
        screener.open(sent.message_id, request.request_id)
    assert _code(pending) == grpc.StatusCode.PERMISSION_DENIED
    # Four eyes: one's own request cannot be approved by oneself.
    with pytest.raises(ClientError) as own:
        _decide(screener, request.request_id, approve=True)
    assert _code(own) == grpc.StatusCode.PERMISSION_DENIED
    # Approval is time-bound: at most 30 days.
    approver = stack.reviewer(["approver"], [A])
    with pytest.raises(ClientError) as too_long:
        _decide(approver, request.request_id, approve=True, hours=24 * 31)
    assert _code(too_long) == grpc.StatusCode.INVALID_ARGUMENT
    _decide(approver, request.request_id, approve=True)

    listed = screener.staff.call(
        "review",
        "ListRetrospectiveMessages",
        review_pb2.ListRetrospectiveMessagesRequest(request_id=request.request_id),
    )
    assert [i.message_id for i in listed.items] == [sent.message_id]
    review = screener.open(sent.message_id, request.request_id)
    assert review.text == "Oud bericht"
    assert review.grant.legal_basis == common_pb2.LEGAL_BASIS_RETROSPECTIVE_REQUEST

    # Someone else cannot ride on this officer's approved request.
    colleague = stack.reviewer(["screener"], [A])
    with pytest.raises(ClientError) as borrowed:
        colleague.open(sent.message_id, request.request_id)
    assert _code(borrowed) == grpc.StatusCode.PERMISSION_DENIED

    # A rejected request gives nothing.
    rejected = _file(screener, "d-past")
    _decide(approver, rejected.request_id, approve=False)
    with pytest.raises(ClientError) as refused:
        screener.open(sent.message_id, rejected.request_id)
    assert _code(refused) == grpc.StatusCode.PERMISSION_DENIED


def test_queue_pages_follow_waiting_order_not_arrival_order(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-p1", A, "regular"), ("d-p2", A, "regular")])
    terminal = terminals[A]
    screening_order(admin, "d-p1")
    screening_order(admin, "d-p2")
    relative = stack.relative("Oom")
    relative.request_contact("d-p1")
    relative.request_contact("d-p2")
    approve_all(admin, A)
    first = relative.send("d-p1", "eerst verstuurd").message_id
    second = relative.send("d-p2", "daarna verstuurd").message_id
    # The later message is taken in (and so queued) first: it has waited longest.
    intake = {i.message_id: i for i in terminal.intake()}
    escrow = stack.escrow_for(A)
    terminal.take_in([intake[second]], escrow)
    terminal.take_in([intake[first]], escrow)

    screener = stack.reviewer(["screener"], [A])
    seen: list[bytes] = []
    token = ""
    for _ in range(3):
        reply: review_pb2.ListQueueResponse = screener.staff.call(
            "review",
            "ListQueue",
            review_pb2.ListQueueRequest(page=common_pb2.PageRequest(page_size=1, page_token=token)),
        )
        seen += [item.message_id for item in reply.items]
        token = reply.next_page_token
        if not token:
            break
    assert seen == [second, first]
    with pytest.raises(ClientError) as bad:
        screener.staff.call(
            "review",
            "ListQueue",
            review_pb2.ListQueueRequest(page=common_pb2.PageRequest(page_token="12")),
        )
    assert _code(bad) == grpc.StatusCode.INVALID_ARGUMENT
