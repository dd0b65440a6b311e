"""The gateway core end to end over real gRPC: register, approve, send, take in, deliver, reply.

Runs on SQLite and on PostgreSQL (the ``stack`` fixture is parametrised), with
a real OpenBao issuing staff identity tokens and escrowing data keys.
"""

from __future__ import annotations

import grpc
import pytest

from sealpost._internal.stack import Stack, approve_all, log_events
from sealpost.clients._grpc import ClientError
from sealpost.clients.staff import StaffClient
from sealpost.clients.terminal.client import TerminalClient
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.logentry import LogAction
from sealpost.v1 import admin_pb2, common_pb2, relative_pb2, relative_pb2_grpc, terminal_pb2

pytestmark = pytest.mark.integration

A, B = "pi-alpha", "pi-beta"


def _setup(stack: Stack) -> tuple[StaffClient, TerminalClient, TerminalClient]:
    admin = stack.staff(["administrator"], ["*"])
    for institution, name in ((A, "PI Alpha"), (B, "PI Beta")):
        admin.call(
            "admin",
            "CreateInstitution",
            admin_pb2.CreateInstitutionRequest(institution_id=institution, name=name),
        )
    for detainee, institution, regime in (
        ("d-regular", A, "regular"),
        ("d-ebi", A, "ebi"),
        ("d-beta", B, "regular"),
    ):
        admin.call(
            "admin",
            "IntakeDetainee",
            admin_pb2.IntakeDetaineeRequest(
                detainee_id=detainee, institution_id=institution, regime=regime
            ),
        )
    term_a = stack.terminal(admin, A)
    term_b = stack.terminal(admin, B)
    term_a.provision_mailbox("d-regular")
    term_a.provision_mailbox("d-ebi")
    term_b.provision_mailbox("d-beta")
    return admin, term_a, term_b


def _code(error: pytest.ExceptionInfo[ClientError]) -> grpc.StatusCode:
    return error.value.code


def test_message_flow_and_refusals(stack: Stack) -> None:
    admin, term_a, term_b = _setup(stack)
    relative = stack.relative("Fatima El Amrani")
    contact = relative.request_contact("d-regular", "daughter")
    assert contact.status == common_pb2.CONTACT_STATUS_REQUESTED
    assert contact.mailbox is None  # no key before the institution approves
    relative.request_contact("d-ebi", "daughter")
    assert approve_all(admin, A) == 2
    assert relative.contact("d-regular").mailbox is not None

    # Send; the receipt names the message and its log entry.
    request = relative.seal("d-regular", "Hallo papa, مرحبا, 你好 — tot zondag!")
    receipt = relative.send_sealed(request)
    header = crypto_envelope.parse_header(request.envelope.header)
    assert receipt.message_id == header.message_id
    assert receipt.envelope_digest == crypto_envelope.envelope_digest(request.envelope)
    assert relative.status(receipt.message_id) == common_pb2.DELIVERY_STATUS_PENDING

    # A replay with the same id stores nothing new.
    with pytest.raises(ClientError) as replay:
        relative.send_sealed(request)
    assert _code(replay) == grpc.StatusCode.ALREADY_EXISTS

    # Only the detainee's own institution sees it.
    assert term_b.intake() == []
    (item,) = term_a.intake()
    assert item.message_id == receipt.message_id
    assert item.detainee_id == "d-regular"
    assert item.sender_display_name == "Fatima El Amrani"
    assert not item.privileged

    # Another institution's terminal cannot take it in or deliver it.
    with pytest.raises(ClientError) as foreign:
        term_b.take_in([item], stack.escrow_for(B))
    assert _code(foreign) in (
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    with pytest.raises(ClientError) as foreign_ack:
        term_b.acknowledge(item.message_id, "B-1")
    assert _code(foreign_ack) == grpc.StatusCode.PERMISSION_DENIED

    # Escrow with the real key server; no screening order, so it is released.
    states = term_a.take_in([item], stack.escrow_for(A))
    assert states == {item.message_id: common_pb2.MESSAGE_STATE_RELEASED}
    # A second take-in (another terminal, say) changes nothing.
    assert term_a.take_in([item], stack.escrow_for(A)) == states
    (delivery,) = term_a.deliveries("d-regular")
    opened = term_a.open_delivery(delivery)
    assert opened.parts[0].data.decode() == "Hallo papa, مرحبا, 你好 — tot zondag!"
    assert (
        term_a.acknowledge(item.message_id, "PI-A/2026/0001") == common_pb2.MESSAGE_STATE_DELIVERED
    )
    assert relative.status(receipt.message_id) == common_pb2.DELIVERY_STATUS_DELIVERED
    assert term_b.deliveries() == []

    # Blocked regime: refused with a clear status.
    with pytest.raises(ClientError) as blocked:
        relative.send("d-ebi", "Mag dit?")
    assert _code(blocked) == grpc.StatusCode.FAILED_PRECONDITION

    # The detainee replies; the relative reads it.
    term_a.reply("d-regular", relative.account_id, "Dank je, tot zondag.", stack.escrow_for(A))
    (reply,) = list(relative.inbox())
    assert reply.text == "Dank je, tot zondag."
    assert reply.detainee_id == "d-regular"


def test_tampered_and_unapproved_messages_are_refused(stack: Stack) -> None:
    admin, term_a, _term_b = _setup(stack)
    sender = stack.relative("Approved")
    sender.request_contact("d-regular")
    approve_all(admin, A)
    stranger = stack.relative("Not approved")
    stranger.request_contact("d-regular")

    # Tampering: one flipped bit in a ciphertext.
    request = sender.seal("d-regular", "echt")
    tampered = relative_pb2.SendMessageRequest()
    tampered.CopyFrom(request)
    ciphertext = bytearray(tampered.envelope.part_ciphertexts[0])
    ciphertext[0] ^= 1
    tampered.envelope.part_ciphertexts[0] = bytes(ciphertext)
    with pytest.raises(ClientError) as bad_signature:
        sender.send_sealed(tampered)
    assert _code(bad_signature) == grpc.StatusCode.INVALID_ARGUMENT

    # Signed by someone else's device: the signed-in device must be the signer.
    with pytest.raises(ClientError) as not_mine:
        stranger.send_sealed(request)
    assert _code(not_mine) == grpc.StatusCode.PERMISSION_DENIED

    # An unapproved contact, using the mailbox key it learned elsewhere.
    mailbox = sender.contact("d-regular").mailbox
    assert mailbox is not None
    envelope = crypto_envelope.seal_envelope(
        [crypto_envelope.Part("text/plain; charset=utf-8", b"hoi")],
        sender_keys=stranger.keys,
        sender_key_id=stranger.key_id,
        recipients=[mailbox],
        now_ms=_now(),
    )
    with pytest.raises(ClientError) as unapproved:
        stranger.send_sealed(relative_pb2.SendMessageRequest(envelope=envelope))
    assert _code(unapproved) == grpc.StatusCode.FAILED_PRECONDITION
    assert term_a.intake() == []  # nothing refused was stored


def test_roles_and_scopes_are_enforced(stack: Stack) -> None:
    admin, _term_a, _term_b = _setup(stack)
    relative = stack.relative()
    relative.request_contact("d-regular")
    beta_admin = stack.staff(["administrator"], [B])
    pending = admin.call(
        "admin",
        "ListContactRequests",
        admin_pb2.ListContactRequestsRequest(institution_id=A),
    ).requests
    contact_id = pending[0].contact_id
    decide = admin_pb2.DecideContactRequest(
        contact_id=contact_id, decision=common_pb2.CONTACT_STATUS_APPROVED
    )
    with pytest.raises(ClientError) as out_of_scope:
        beta_admin.call("admin", "DecideContact", decide)
    assert _code(out_of_scope) == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(ClientError) as listing:
        beta_admin.call(
            "admin", "ListContactRequests", admin_pb2.ListContactRequestsRequest(institution_id=A)
        )
    assert _code(listing) == grpc.StatusCode.PERMISSION_DENIED

    screener = stack.staff(["screener"], [A])
    with pytest.raises(ClientError) as wrong_role:
        screener.call("admin", "DecideContact", decide)
    assert _code(wrong_role) == grpc.StatusCode.PERMISSION_DENIED

    # A relative's session token does not open staff services.
    as_relative = StaffClient(stack.endpoint, relative.token)
    with pytest.raises(ClientError) as relative_on_admin:
        as_relative.call("admin", "DecideContact", decide)
    assert _code(relative_on_admin) == grpc.StatusCode.PERMISSION_DENIED
    as_relative.close()

    # No credentials at all.
    with stack.endpoint.channel() as channel:
        stub = relative_pb2_grpc.RelativeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as anonymous:
            stub.ListContacts(relative_pb2.ListContactsRequest(), timeout=10)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as forged:
            stub.ListContacts(
                relative_pb2.ListContactsRequest(),
                metadata=(("authorization", "Bearer sp1.AAAA.BBBB"),),
                timeout=10,
            )
        assert forged.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # A terminal port needs a registered certificate; a revoked one is refused at once.
    terminal = stack.terminal(admin, A, register_key=False)
    terminal.stub.ListHeldDetainees(terminal_pb2.ListHeldDetaineesRequest(), timeout=10)
    admin.call(
        "admin",
        "RevokeTerminal",
        admin_pb2.RevokeTerminalRequest(terminal_id=terminal.terminal_id),  # type: ignore[attr-defined]
    )
    with pytest.raises(grpc.RpcError) as revoked:
        terminal.stub.ListHeldDetainees(terminal_pb2.ListHeldDetaineesRequest(), timeout=10)
    assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _now() -> int:
    from sealpost.gateway.services.context import wall_clock_ms  # noqa: PLC0415

    return wall_clock_ms()


def test_privileged_correspondence_skips_escrow_and_is_decided_by_the_gateway(
    stack: Stack,
) -> None:
    admin, term_a, _term_b = _setup(stack)
    lawyer = stack.relative("Mr. J. de Vries, advocaat")
    lawyer.request_contact("d-ebi", "lawyer")
    lawyer.request_contact("d-regular", "lawyer")
    approve_all(admin, A)

    # Before verification the lawyer is an ordinary correspondent: the EBI is blocked.
    with pytest.raises(ClientError) as blocked:
        lawyer.send("d-ebi", "Voor verificatie")
    assert _code(blocked) == grpc.StatusCode.FAILED_PRECONDITION

    # Only a national administrator verifies; the officer and date are recorded.
    local_admin = stack.staff(["administrator"], [A])
    verify = admin_pb2.VerifyCorrespondentRequest(
        account_id=lawyer.account_id, kind="lawyer", evidence_reference="NOvA 12345"
    )
    with pytest.raises(ClientError) as local:
        local_admin.call("admin", "VerifyCorrespondent", verify)
    assert _code(local) == grpc.StatusCode.PERMISSION_DENIED
    verified = admin.call("admin", "VerifyCorrespondent", verify).correspondent
    assert verified.verified_by.startswith("staff:")
    assert verified.HasField("verified_at")
    assert lawyer.contact("d-ebi").privileged

    # Privileged mail goes through even in a blocked regime, carries no escrow, is released.
    receipt = lawyer.send("d-ebi", "Vertrouwelijk: uw zaak")
    (item,) = [i for i in term_a.intake() if i.message_id == receipt.message_id]
    assert item.privileged

    def no_escrow(_items: object) -> list[object]:
        raise AssertionError("privileged messages must not be escrowed")

    assert term_a.take_in([item], no_escrow) == {  # type: ignore[arg-type]
        item.message_id: common_pb2.MESSAGE_STATE_RELEASED
    }

    # A terminal that tries to escrow a privileged message anyway is refused.
    second = lawyer.send("d-regular", "Nog een vertrouwelijk bericht")
    (other,) = [i for i in term_a.intake() if i.message_id == second.message_id]
    submission = terminal_pb2.EscrowSubmission(message_id=other.message_id)
    submission.escrow.CopyFrom(stack.escrow_for(A)([(other.message_id, term_a.open_dek(other))])[0])
    with pytest.raises(grpc.RpcError) as escrowed:
        term_a.stub.SubmitEscrow(
            terminal_pb2.SubmitEscrowRequest(submissions=[submission]), timeout=10
        )
    assert escrowed.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # Revoking the verification ends the privilege for new messages.
    admin.call(
        "admin",
        "RevokeCorrespondent",
        admin_pb2.RevokeCorrespondentRequest(account_id=lawyer.account_id),
    )
    assert not lawyer.contact("d-ebi").privileged
    with pytest.raises(ClientError) as after:
        lawyer.send("d-ebi", "Na intrekking")
    assert _code(after) == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("token", ["sp1.not-a-session", "eyJhbGciOiJFZERTQSJ9.e30.c2ln"])
def test_a_stale_credential_does_not_block_signing_in_again(stack: Stack, token: str) -> None:
    metadata = (("authorization", f"Bearer {token}"),)
    with stack.endpoint.channel() as channel:
        stub = relative_pb2_grpc.RelativeServiceStub(channel)
        directory = stub.GetDirectory(relative_pb2.GetDirectoryRequest(), metadata=metadata)
        assert directory.directory_key.body
        # Anything beyond the open methods still needs a credential that verifies.
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListContacts(relative_pb2.ListContactsRequest(), metadata=metadata, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_desk_acknowledges_a_stack_of_deliveries_in_one_call(stack: Stack) -> None:
    admin, term_a, term_b = _setup(stack)
    relative = stack.relative("Fatima El Amrani")
    relative.request_contact("d-regular", "daughter")
    relative.request_contact("d-beta", "daughter")
    approve_all(admin, A)
    approve_all(admin, B)
    sent = [relative.send("d-regular", f"Brief {n}").message_id for n in range(3)]
    beta = relative.send("d-beta", "Brief voor Beta").message_id
    released = term_a.take_in(term_a.intake(), stack.escrow_for(A))
    assert set(released) == set(sent)
    term_b.take_in(term_b.intake(), stack.escrow_for(B))
    waiting = relative.send("d-regular", "Nog niet binnen").message_id  # not taken in yet
    reply = term_a.reply("d-regular", relative.account_id, "Dank je", stack.escrow_for(A))
    slips = [(message_id, f"PI-A/2026/{n}") for n, message_id in enumerate(sent)]

    def refused(items: list[tuple[bytes, str]]) -> grpc.StatusCode:
        request = terminal_pb2.AcknowledgeDeliveriesRequest(
            acknowledgements=[
                terminal_pb2.AcknowledgeDeliveryRequest(message_id=m, delivery_reference=r)
                for m, r in items
            ]
        )
        with pytest.raises(ClientError) as error:
            term_a._call("AcknowledgeDeliveries", request)
        return _code(error)

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert refused([]) == invalid
    assert refused([slips[0], slips[0]]) == invalid
    assert refused([slips[0]] * 201) == invalid
    assert refused([slips[0], (sent[1], "")]) == invalid  # every slip needs its reference
    assert refused([*slips, (beta, "B-1")]) == grpc.StatusCode.PERMISSION_DENIED
    assert refused([*slips, (bytes(16), "R-0")]) == grpc.StatusCode.NOT_FOUND
    assert refused([*slips, (waiting, "R-1")]) == grpc.StatusCode.FAILED_PRECONDITION
    assert refused([*slips, (reply.message_id, "R-2")]) == invalid
    # All or nothing: every refused call left the three released, and logged nothing.
    assert [relative.status(m) for m in sent] == [common_pb2.DELIVERY_STATUS_PENDING] * 3
    assert not [e for e in log_events(stack) if e.action == LogAction.MESSAGE_DELIVERED]

    delivered = dict.fromkeys(sent, common_pb2.MESSAGE_STATE_DELIVERED)
    assert term_a.acknowledge_many(slips) == delivered
    assert term_a.acknowledge_many(slips) == delivered  # again: unchanged, not logged twice
    assert [relative.status(m) for m in sent] == [common_pb2.DELIVERY_STATUS_DELIVERED] * 3
    logged = [e for e in log_events(stack) if e.action == LogAction.MESSAGE_DELIVERED]
    assert sorted(dict(e.subjects)["message"] for e in logged) == sorted(m.hex() for m in sent)
    assert {e.extra["delivery_reference"] for e in logged} == {r for _, r in slips}
    assert relative.status(beta) == common_pb2.DELIVERY_STATUS_PENDING
