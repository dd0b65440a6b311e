"""What a terminal learns of withheld messages, to tell its detainees on paper (SPEC 3.5).

Against a real gateway on SQLite and a real OpenBao: a screener withholds a message to a
detainee and a detainee's reply; the terminal of the detainee's institution lists both,
with the reason category and no content; another institution's terminal sees nothing.
"""

from __future__ import annotations

import grpc
import pytest

from sealpost._internal.stack import Stack, approve_all, screening_order, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.v1 import admin_pb2, common_pb2

pytestmark = pytest.mark.integration

A, B = "pi-notice", "pi-elsewhere"
NOTE = "aanwijzing voor voortgezet crimineel handelen"
SECRET = "Het pakket ligt bij de kapper"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_withheld_messages_are_listed_for_the_detainees_institution_only(stack: Stack) -> None:
    admin, terminals = setup_institutions(
        stack, [("d-watched", A, "regular"), ("d-free", A, "regular"), ("d-b", B, "regular")]
    )
    north, south = terminals[A], terminals[B]
    screening_order(admin, "d-watched")
    relative = stack.relative("Samira Haddad")
    for detainee in ("d-watched", "d-free", "d-b"):
        relative.request_contact(detainee)
    approve_all(admin, A)
    approve_all(admin, B)
    escrow = stack.escrow_for(A)

    inbound = relative.send("d-watched", SECRET)
    free = relative.send("d-free", "Gewoon een groet")
    north.take_in(north.intake(), escrow)
    # The gateway says truthfully where a reply is: waiting for a screener, or sent.
    reply = north.send_reply("d-watched", relative.account_id, f"antwoord: {SECRET}", escrow)
    assert reply.state == common_pb2.MESSAGE_STATE_QUEUED
    assert reply.contact.display_name == "Samira Haddad"
    sent = north.send_reply("d-free", relative.account_id, "Tot zondag", escrow)
    assert sent.state == common_pb2.MESSAGE_STATE_RELEASED
    assert north.withheld() == []

    screener = stack.reviewer(["screener"], [A])
    screener.open(inbound.message_id)
    screener.verdict(
        inbound.message_id,
        common_pb2.VERDICT_WITHHOLD,
        common_pb2.WITHHOLD_REASON_CRIME_PREVENTION,
        NOTE,
    )
    screener.open(reply.receipt.message_id)
    screener.verdict(
        reply.receipt.message_id,
        common_pb2.VERDICT_WITHHOLD,
        common_pb2.WITHHOLD_REASON_VICTIM_PROTECTION,
        NOTE,
    )

    listed = north.withheld()
    assert [m.message_id for m in listed] == [inbound.message_id, reply.receipt.message_id]
    to_detainee, from_detainee = listed
    assert to_detainee.detainee_id == "d-watched"
    assert to_detainee.direction == common_pb2.DIRECTION_INBOUND
    assert to_detainee.counterpart_display_name == "Samira Haddad"
    assert to_detainee.reason == common_pb2.WITHHOLD_REASON_CRIME_PREVENTION
    assert to_detainee.accepted_at.ToMilliseconds() == inbound.accepted_at_ms
    assert to_detainee.withheld_at.ToMilliseconds() >= inbound.accepted_at_ms
    assert from_detainee.direction == common_pb2.DIRECTION_OUTBOUND
    assert from_detainee.counterpart_display_name == "Samira Haddad"
    assert from_detainee.reason == common_pb2.WITHHOLD_REASON_VICTIM_PROTECTION
    # Who, when and why only: never the content, the screener's note or the screener.
    wire = b"".join(m.SerializeToString() for m in listed)
    for secret in (SECRET, NOTE, "staff:"):
        assert secret.encode() not in wire
    assert [m.message_id for m in north.withheld("d-watched")] == [
        inbound.message_id,
        reply.receipt.message_id,
    ]
    assert north.withheld("d-free") == []
    assert free.message_id not in {m.message_id for m in listed}

    # Another institution's terminal sees nothing of them, and may not ask.
    assert south.withheld() == []
    with pytest.raises(ClientError) as foreign:
        south.withheld("d-watched")
    assert foreign.value.code == grpc.StatusCode.PERMISSION_DENIED

    # The detainee is told where they are held now: after a transfer, by the new
    # institution; the one they left no longer lists them.
    admin.call(
        "admin",
        "TransferDetainee",
        admin_pb2.TransferDetaineeRequest(detainee_id="d-watched", to_institution_id=B),
    )
    assert north.withheld() == []
    assert [m.message_id for m in south.withheld()] == [
        inbound.message_id,
        reply.receipt.message_id,
    ]
    with pytest.raises(ClientError) as moved:
        north.withheld("d-watched")
    assert moved.value.code == grpc.StatusCode.PERMISSION_DENIED

    # Released: no one holds the detainee, no one lists them.
    admin.call(
        "admin", "ReleaseDetainee", admin_pb2.ReleaseDetaineeRequest(detainee_id="d-watched")
    )
    assert south.withheld() == []
