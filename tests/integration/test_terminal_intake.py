"""The terminal's intake loop against a real gateway and a real OpenBao (SPEC 3.3, P2, P3, P10)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from sealpost._internal.stack import BaseStack, Stack, approve_all, log_events, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.clients.staff import StaffClient
from sealpost.clients.terminal.client import Intake, TerminalClient
from sealpost.clients.terminal.intake import (
    CollectingReporter,
    IntakeLoop,
    IntakeSettings,
    MemoryStateStore,
)
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.logentry import LogAction
from sealpost.escrow.blob import EscrowedKey
from sealpost.escrow.bootstrap import BootstrapSettings
from sealpost.escrow.client import EscrowClient, KeyServerConfig
from sealpost.gateway.storage.schema import messages
from sealpost.v1 import admin_pb2, common_pb2, keys_pb2, terminal_pb2

pytestmark = pytest.mark.integration

A = "pi-intake"
FAST = IntakeSettings(
    window_seconds=0.1, poll_seconds=0.1, backoff_initial=0.2, backoff_max=0.5, rescan_seconds=0.5
)


def send_many(
    relatives: Sequence[RelativeClient], detainees: Sequence[str], count: int, prefix: str = "m"
) -> list[bytes]:
    """Send ``count`` messages round-robin (seal and send; no proof wait); their ids in order."""
    contacts = {(r.account_id, d): r.contact(d) for r in relatives for d in detainees}
    ids = []
    pairs = itertools.cycle([(r, d) for r in relatives for d in detainees])
    for index in range(count):
        relative, detainee = next(pairs)
        request = relative.seal(contacts[(relative.account_id, detainee)], f"{prefix} {index}")
        ids.append(relative.send_sealed(request).message_id)
    return ids


def message_rows(stack: BaseStack) -> dict[bytes, Any]:
    """Message id -> (state, escrow, privileged) straight from the gateway's database."""
    engine = sa.create_engine(stack.gateway.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    messages.c.message_id,
                    messages.c.state,
                    messages.c.escrow,
                    messages.c.privileged,
                    messages.c.direction,
                )
            ).all()
    finally:
        engine.dispose()
    return {bytes(r.message_id): r for r in rows}


def root_escrow(stack: Stack) -> EscrowClient:
    """An EscrowClient with the key server's root token (to check escrow, as a screener would)."""
    return EscrowClient(
        KeyServerConfig(stack.openbao.address),
        stack.openbao.root_token,
        key=BootstrapSettings(prefix=stack.prefix).escrow_key,
    )


def dek_of(terminal: TerminalClient, delivery: terminal_pb2.Delivery) -> bytes:
    """The data key of a released message, opened with the detainee's mailbox key."""
    accepted = delivery.accepted_at.ToMilliseconds()
    sender = terminal.verify(delivery.sender_key, keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE, accepted)
    header = crypto_envelope.parse_header(delivery.envelope.header)
    item = Intake(
        "",
        header.message_id,
        delivery.detainee_id,
        delivery.envelope,
        sender,
        delivery.sender_display_name,
        delivery.privileged,
        accepted,
    )
    return terminal.open_dek(item)


def screen_all(admin: StaffClient, detainee: str) -> None:
    """Put a detainee under a screen-all regime (every message goes to the queue)."""
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
        admin_pb2.SetDetaineeRegimeRequest(detainee_id=detainee, regime="screen-all"),
    )


def verified_lawyer(
    stack: BaseStack, admin: StaffClient, detainees: Sequence[str]
) -> RelativeClient:
    """A privileged correspondent (verified by a national administrator) in contact."""
    lawyer = stack.relative("Mr. A. Advocaat")
    for detainee in detainees:
        lawyer.request_contact(detainee, "lawyer")
    admin.call(
        "admin",
        "VerifyCorrespondent",
        admin_pb2.VerifyCorrespondentRequest(
            account_id=lawyer.account_id, kind="lawyer", evidence_reference="NOvA 4711"
        ),
    )
    return lawyer


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_intake_loop_escrows_in_batches_and_the_key_server_opens_every_blob(stack: Stack) -> None:
    admin, terminals = setup_institutions(
        stack, [("d-free", A, "regular"), ("d-watched", A, "regular")]
    )
    terminal = terminals[A]
    screen_all(admin, "d-watched")
    relatives = [stack.relative(f"Familie {i}") for i in range(3)]
    for relative in relatives:
        relative.request_contact("d-free")
        relative.request_contact("d-watched")
    lawyer = verified_lawyer(stack, admin, ["d-free"])
    approve_all(admin, A)
    sent = send_many(relatives, ["d-free", "d-watched"], 240)
    privileged = send_many([lawyer], ["d-free"], 10, prefix="privileged")

    store = MemoryStateStore()
    reporter = CollectingReporter()
    started = time.perf_counter()
    summary = IntakeLoop(
        terminal, stack.escrow_for(A), store, settings=FAST, reporter=reporter
    ).run_once()
    elapsed = time.perf_counter() - started

    assert [b.received for b in reporter.batches] == [200, 50]
    assert summary.submitted == 250
    assert summary.escrowed == 240
    assert summary.privileged == 10
    assert summary.queued == 120
    assert summary.released == 130
    assert summary.malformed == 0
    assert summary.drained
    assert store.state.taken_in == 250
    print(f"intake of 250 messages: {elapsed:.2f} s ({250 / elapsed:.0f} messages/s)")

    # Every non-privileged message carries an escrow blob that the real key server opens
    # back to the data key its sender used (P3); privileged ones carry none (P4).
    rows = message_rows(stack)
    expected_state = {
        common_pb2.MESSAGE_STATE_RELEASED,
        common_pb2.MESSAGE_STATE_QUEUED,
    }
    for message_id in sent:
        assert rows[message_id].state in expected_state
        assert rows[message_id].escrow
    for message_id in privileged:
        assert rows[message_id].state == common_pb2.MESSAGE_STATE_RELEASED
        assert rows[message_id].escrow is None
    deliveries = {d.message_id: d for d in terminal.all_deliveries()}
    assert len(deliveries) == 130
    checked = 0
    with root_escrow(stack) as key_server:
        for message_id, delivery in deliveries.items():
            if delivery.privileged:
                continue
            escrowed = EscrowedKey.from_bytes(rows[message_id].escrow)
            dek = key_server.decrypt_escrowed(escrowed)
            assert dek == dek_of(terminal, delivery)
            header = crypto_envelope.parse_header(delivery.envelope.header)
            crypto_envelope.verify_dek_commitment(header, dek)
            checked += 1
    assert checked == 120

    # A second run finds nothing new and leaves the cursor where it was.
    cursor = store.state.cursor
    again = IntakeLoop(terminal, stack.escrow_for(A), store, settings=FAST).run_once()
    assert again.received == 0
    assert store.state.cursor == cursor


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_revoked_institution_key_is_seen_and_no_mailbox_is_wrapped_to_it(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-old", A, "regular")])
    terminal = terminals[A]
    assert not terminal.institution_key_revoked()
    admin.call(
        "admin",
        "RevokeKey",
        admin_pb2.RevokeKeyRequest(key_id=terminal.institution_key_id, reason="laptop lost"),
    )
    assert terminal.institution_key_revoked()
    admin.call(
        "admin",
        "IntakeDetainee",
        admin_pb2.IntakeDetaineeRequest(detainee_id="d-new", institution_id=A, regime="regular"),
    )
    reporter = CollectingReporter()
    summary = IntakeLoop(
        terminal, stack.escrow_for(A), MemoryStateStore(), settings=FAST, reporter=reporter
    ).run_once()
    assert summary.mailboxes_provisioned == 0
    assert any(
        kind == "mailboxes" and "FAILED_PRECONDITION" in text for kind, text in reporter.notices
    )
    held = {d.detainee_id: d.mailbox_key_id for d in terminal.held_detainees()}
    assert held["d-new"] == b""


def test_a_non_privileged_message_without_its_escrow_blob_is_refused_and_waits(
    stack: Stack,
) -> None:
    """SPEC P2 at the gateway: a terminal cannot move ordinary mail on without escrow.

    The refusal is INVALID_ARGUMENT with its own reason, the whole batch is refused (the
    escrowed message in it too), nothing is logged, and both messages stay ACCEPTED
    until they are submitted with their blobs.
    """
    admin, terminals = setup_institutions(stack, [("d-blobless", A, "regular")])
    terminal = terminals[A]
    relative = stack.relative("Moeder")
    relative.request_contact("d-blobless")
    approve_all(admin, A)
    missing, escrowed = send_many([relative], ["d-blobless"], 2, prefix="zonder escrow")
    items = {item.message_id: item for item in terminal.intake()}
    assert set(items) == {missing, escrowed}
    (blob,) = stack.escrow_for(A)([(escrowed, terminal.open_dek(items[escrowed]))])
    with_blob = terminal_pb2.EscrowSubmission(message_id=escrowed, escrow=blob)
    without = terminal_pb2.EscrowSubmission(message_id=missing)
    assert not without.HasField("escrow")

    for batch in ([without], [with_blob, without], [without, with_blob]):
        with pytest.raises(ClientError) as refused:
            terminal.submit_escrow(batch)
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.message == "a non-privileged message needs its escrow blob"

    rows = message_rows(stack)
    for message_id in (missing, escrowed):
        assert rows[message_id].state == common_pb2.MESSAGE_STATE_ACCEPTED
        assert rows[message_id].escrow is None
        assert relative.status(message_id) == common_pb2.DELIVERY_STATUS_PENDING
    logged = {(e.action, e.message_id()) for e in log_events(stack)}
    for message_id in (missing, escrowed):
        assert (LogAction.MESSAGE_ACCEPTED, message_id.hex()) in logged
        for action in (
            LogAction.MESSAGE_ESCROWED,
            LogAction.MESSAGE_QUEUED,
            LogAction.MESSAGE_RELEASED,
        ):
            assert (action, message_id.hex()) not in logged
    assert terminal.deliveries() == []
    assert {item.message_id for item in terminal.intake()} == {missing, escrowed}

    # With its blob the same message goes on as usual.
    states = terminal.take_in(list(items.values()), stack.escrow_for(A))
    assert states == {
        missing: common_pb2.MESSAGE_STATE_RELEASED,
        escrowed: common_pb2.MESSAGE_STATE_RELEASED,
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_escrow_blob_made_for_another_message_is_refused(stack: Stack) -> None:
    """SPEC P3: the key server's context is the message id, and the blob must name it too."""
    admin, terminals = setup_institutions(stack, [("d-swap", A, "regular")])
    terminal = terminals[A]
    relative = stack.relative("Broer")
    relative.request_contact("d-swap")
    approve_all(admin, A)
    first, second = send_many([relative], ["d-swap"], 2, prefix="verwisseld")
    items = {item.message_id: item for item in terminal.intake()}
    blobs = stack.escrow_for(A)([(m, terminal.open_dek(items[m])) for m in (first, second)])
    assert [b.message_id for b in blobs] == [first, second]
    swapped = terminal_pb2.EscrowSubmission(message_id=first, escrow=blobs[1])
    with pytest.raises(ClientError) as refused:
        terminal.submit_escrow([swapped])
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message == "escrow blob is for another message"
    rows = message_rows(stack)
    assert rows[first].state == common_pb2.MESSAGE_STATE_ACCEPTED
    assert rows[first].escrow is None
    # Each with its own blob, both go on.
    own = [
        terminal_pb2.EscrowSubmission(message_id=m, escrow=b)
        for m, b in zip((first, second), blobs, strict=True)
    ]
    assert terminal.submit_escrow(own) == {
        first: common_pb2.MESSAGE_STATE_RELEASED,
        second: common_pb2.MESSAGE_STATE_RELEASED,
    }
