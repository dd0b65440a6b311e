"""A gateway that has seen a sender and a mailbox key before still sees every change at once.

A send takes the sender's verified device record and the detainee a mailbox key belongs to
from memory once it has read them (both are immutable: a record's id is the digest of its
body). What can change is read at every send: the device's revocation (the guard), whether
the mailbox key is still the detainee's current one, the detainee's institution and status,
the contact's approval (the send's write transaction). Each test warms the gateway with one
send first, so a stale in-memory fact would let the second one through.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest

from sealpost._internal.stack import Stack, approve_all, setup_institutions
from sealpost.clients._grpc import ClientError, bearer
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.clients.staff import StaffClient
from sealpost.clients.terminal.client import TerminalClient
from sealpost.v1 import admin_pb2, relative_pb2

pytestmark = pytest.mark.integration

A, B = "pi-known-a", "pi-known-b"


@dataclass
class Warm:
    """A relative who has sent once to ``detainee``, and an envelope sealed for after."""

    admin: StaffClient
    terminals: dict[str, TerminalClient]
    relative: RelativeClient
    sealed: relative_pb2.SendMessageRequest


def _warm(stack: Stack, detainee: str) -> Warm:
    admin, terminals = setup_institutions(stack, [(detainee, A, "regular"), ("d-kx", B, "regular")])
    relative = stack.relative("Broer")
    relative.request_contact(detainee)
    approve_all(admin, A)
    relative.send(detainee, "the gateway knows this sender and this mailbox now")
    # Sealed now: after the change the client itself might no longer seal it.
    sealed = relative.seal(detainee, "after the change")
    return Warm(admin, terminals, relative, sealed)


def _refused(warm: Warm) -> ClientError:
    with pytest.raises(ClientError) as refused:
        warm.relative.send_sealed(warm.sealed)
    return refused.value


def test_a_revoked_device_is_refused_after_it_has_sent(stack: Stack) -> None:
    warm = _warm(stack, "d-known-1")
    warm.admin.call(
        "admin",
        "RevokeKey",
        admin_pb2.RevokeKeyRequest(key_id=warm.relative.key_id, reason="lost"),
    )
    # The session the device had; the client would otherwise try to sign in again.
    relative = warm.relative
    with pytest.raises(grpc.RpcError) as refused:
        relative.stub.SendMessage(warm.sealed, metadata=bearer(relative.token), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (refused.value.details() or "")


def test_a_revoked_mailbox_key_is_refused_after_it_was_sent_to(stack: Stack) -> None:
    warm = _warm(stack, "d-known-2")
    mailbox = warm.relative.contact("d-known-2").mailbox
    assert mailbox is not None
    warm.admin.call(
        "admin",
        "RevokeKey",
        admin_pb2.RevokeKeyRequest(key_id=mailbox.id, reason="compromised"),
    )
    refused = _refused(warm)
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "mailbox key has changed" in refused.message


def test_a_replaced_mailbox_key_is_refused_after_it_was_sent_to(stack: Stack) -> None:
    warm = _warm(stack, "d-known-3")
    warm.terminals[A].provision_mailbox("d-known-3")
    refused = _refused(warm)
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "mailbox key has changed" in refused.message
    # Sealed again, to the new key, it is accepted.
    assert warm.relative.send("d-known-3", "to the new key").message_id


def test_a_transfer_is_followed_by_the_next_send(stack: Stack) -> None:
    warm = _warm(stack, "d-known-4")
    north, south = warm.terminals[A], warm.terminals[B]
    (first,) = north.intake()
    warm.admin.call(
        "admin",
        "TransferDetainee",
        admin_pb2.TransferDetaineeRequest(detainee_id="d-known-4", to_institution_id=B),
    )
    receipt = warm.relative.send_sealed(warm.sealed)  # the same mailbox key, now at B
    assert receipt.message_id in [item.message_id for item in south.intake()]
    assert [item.message_id for item in north.intake(first.cursor)] == []


def test_a_release_is_followed_by_the_next_send(stack: Stack) -> None:
    warm = _warm(stack, "d-known-5")
    warm.admin.call(
        "admin", "ReleaseDetainee", admin_pb2.ReleaseDetaineeRequest(detainee_id="d-known-5")
    )
    refused = _refused(warm)
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "closed" in refused.message
