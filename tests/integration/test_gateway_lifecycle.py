"""Transfers, releases, resumable streams, rate limits and the plaintext canary (SPEC P1, P11)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import grpc
import pytest

from sealpost._internal.devservers import OpenBaoDevServer
from sealpost._internal.stack import Stack, approve_all, setup_institutions, start_gateway
from sealpost.clients._grpc import ClientError
from sealpost.crypto.envelope import Part
from sealpost.escrow.bootstrap import BootstrapResult
from sealpost.v1 import (
    admin_pb2,
    common_pb2,
    relative_pb2,
    terminal_pb2,
)

pytestmark = pytest.mark.integration

A, B = "pi-north", "pi-south"


def test_transfer_moves_pending_mail_and_the_old_institution_sees_nothing_new(
    stack: Stack,
) -> None:
    admin, terminals = setup_institutions(stack, [("d-1", A, "regular"), ("d-x", B, "regular")])
    north, south = terminals[A], terminals[B]
    relative = stack.relative("Moeder")
    relative.request_contact("d-1")
    approve_all(admin, A)
    pending = relative.send("d-1", "before the transfer")

    admin.call(
        "admin",
        "TransferDetainee",
        admin_pb2.TransferDetaineeRequest(detainee_id="d-1", to_institution_id=B),
    )
    # The old institution can fetch nothing more for the detainee.
    assert north.intake() == []
    assert north.deliveries() == []
    held = north.stub.ListHeldDetainees(terminal_pb2.ListHeldDetaineesRequest(), timeout=10)
    assert [d.detainee_id for d in held.detainees] == []
    # The new one sees the pending message, and opens it once the mailbox is handed over.
    (item,) = south.intake()
    assert item.message_id == pending.message_id
    with pytest.raises(ClientError):
        south.open_dek(item)
    assert north.hand_over() == 1
    assert south.take_in([item], stack.escrow_for(B)) == {
        item.message_id: common_pb2.MESSAGE_STATE_RELEASED
    }
    (delivery,) = south.deliveries("d-1")
    assert south.open_delivery(delivery).parts[0].data == b"before the transfer"

    # A new mailbox key at the new institution: the old key is no longer accepted,
    # and the old institution never holds the new one.
    south.provision_mailbox("d-1")
    stale = relative.seal("d-1", "sealed to the new key")
    new_key = relative.contact("d-1").mailbox
    assert new_key is not None
    south.load_mailboxes()
    north.load_mailboxes()
    assert new_key.id not in north._mailboxes
    receipt = relative.send_sealed(stale)
    assert north.intake() == []
    (after,) = [i for i in south.intake() if i.message_id == receipt.message_id]
    assert south.open_dek(after)


def test_release_closes_the_mailbox(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-2", A, "regular")])
    relative = stack.relative()
    relative.request_contact("d-2")
    approve_all(admin, A)
    receipt = relative.send("d-2", "tot gauw")
    admin.call("admin", "ReleaseDetainee", admin_pb2.ReleaseDetaineeRequest(detainee_id="d-2"))
    assert relative.status(receipt.message_id) == common_pb2.DELIVERY_STATUS_NOT_DELIVERED
    assert relative.contact("d-2").deliverable is False
    with pytest.raises(ClientError) as closed:
        relative.send("d-2", "nog een")
    assert closed.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "closed" in closed.value.message
    assert terminals[A].intake() == []


def test_streams_resume_without_loss_or_duplication(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-3", A, "regular")])
    terminal = terminals[A]
    relative = stack.relative()
    relative.request_contact("d-3")
    approve_all(admin, A)
    sent = [relative.send("d-3", f"message {i}").message_id for i in range(3)]
    first, *_rest = terminal.intake()
    assert [i.message_id for i in terminal.intake(first.cursor)] == sent[1:]

    # A following stream gets new messages as they arrive; after a disconnect it resumes.
    received: list[terminal_pb2.StreamIntakeResponse] = []
    stream = terminal.stub.StreamIntake(
        terminal_pb2.StreamIntakeRequest(after_cursor=terminal.intake()[-1].cursor, follow=True),
        timeout=30,
    )
    got_one = threading.Event()

    def read() -> None:
        try:
            for item in stream:
                received.append(item)
                got_one.set()
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=read)
    reader.start()
    fourth = relative.send("d-3", "message 3").message_id
    assert got_one.wait(10)
    stream.cancel()  # the terminal loses its connection
    reader.join(10)
    fifth = relative.send("d-3", "message 4").message_id
    resumed = terminal.intake(received[-1].cursor)
    assert [i.message_id for i in resumed] == [fifth]
    assert len(received) == 1
    assert terminal.intake(first.cursor)[-2].message_id == fourth


def test_relatives_never_receive_institution_keys(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-4", A, "regular")])
    relative = stack.relative()
    reply = relative.stub.GetKeyRecords(
        relative_pb2.GetKeyRecordsRequest(key_ids=[terminals[A].institution_key_id]),
        metadata=(("authorization", f"Bearer {relative.token}"),),
        timeout=10,
    )
    assert list(reply.key_records) == []
    assert admin is not None


def test_flood_guard_answers_resource_exhausted_with_a_retry_hint(
    tmp_path: Path, openbao: OpenBaoDevServer, keyserver: BootstrapResult
) -> None:
    gateway = start_gateway(
        tmp_path,
        openbao,
        keyserver,
        f"sqlite:///{tmp_path / 'rate.db'}",
        extra_env={"SEALPOST_SEND_RATE_PER_MINUTE": "3"},
    )
    stack = Stack(openbao, keyserver, gateway)
    try:
        admin, _terminals = setup_institutions(stack, [("d-5", A, "regular")])
        relative = stack.relative()
        relative.request_contact("d-5")
        approve_all(admin, A)
        for i in range(3):
            relative.send("d-5", f"{i}")
        request = relative.seal("d-5", "one too many")
        with pytest.raises(grpc.RpcError) as flood:
            relative.stub.SendMessage(
                request, metadata=(("authorization", f"Bearer {relative.token}"),), timeout=10
            )
        assert flood.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        error: grpc.Call = flood.value  # type: ignore[assignment]
        trailing: dict[str, Any] = dict(error.trailing_metadata() or ())
        assert float(trailing["retry-after-seconds"]) > 0
    finally:
        stack.close()
        gateway.stop()


def test_canary_plaintext_never_reaches_the_gateway_disk_or_logs(stack: Stack) -> None:
    canary = "CANARY-7f3a9c-Plaintext-Zeegras"
    name_canary = "CANARY-filename-4b1d"
    admin, terminals = setup_institutions(stack, [("d-6", A, "regular")])
    terminal = terminals[A]
    relative = stack.relative()
    relative.request_contact("d-6")
    approve_all(admin, A)
    receipt = relative.send(
        "d-6",
        f"geheim: {canary}",
        attachments=[Part("application/pdf", f"%PDF {canary}".encode(), f"{name_canary}.pdf")],
    )
    (item,) = terminal.intake()
    terminal.take_in([item], stack.escrow_for(A))
    (delivery,) = terminal.deliveries("d-6")
    assert canary in terminal.open_delivery(delivery).parts[0].data.decode()
    terminal.acknowledge(receipt.message_id, "REF-1")
    terminal.reply("d-6", relative.account_id, f"antwoord {canary}", stack.escrow_for(A))
    assert canary in next(iter(relative.inbox())).text
    stack.gateway.stop()  # flush everything to disk

    needles = [canary.encode(), name_canary.encode(), canary.encode("utf-16-le")]
    scanned = 0
    roots = [stack.gateway.workdir]
    if stack.gateway.database_url.startswith("sqlite:///"):
        roots.append(Path(stack.gateway.database_url.removeprefix("sqlite:///")).parent)
    else:
        from tests.conftest import postgres_datadirs  # noqa: PLC0415

        roots += postgres_datadirs()
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                scanned += 1
                for needle in needles:
                    assert needle not in data, f"plaintext found in {path}"
    assert scanned > 3
    assert any(p.name.endswith(".db") for root in roots for p in root.rglob("*")) or (
        stack.gateway.database_url.startswith("postgresql")
    )
