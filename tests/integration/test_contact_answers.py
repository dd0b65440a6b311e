"""No detention-status oracle (SPEC P11): a contact request gets one answer for any id.

Before, RequestContact said "no such detainee" for an unknown id, recorded a request for
a held detainee and said "mailbox is closed" for a released one, and `deliverable`
showed release status on contacts that were never approved: anyone who registered a
device could learn whether a person is detained. Now all three requests wait alike,
only an approval shows anything, and an undecided request expires the same way.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import grpc
import pytest

from sealpost._internal.stack import Stack, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.gateway import policy
from sealpost.v1 import admin_pb2, common_pb2, relative_pb2

pytestmark = pytest.mark.integration

A = "pi-noord"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _anonymised(contact: relative_pb2.Contact) -> bytes:
    shown = relative_pb2.Contact()
    shown.CopyFrom(contact)
    shown.contact_id = ""
    shown.detainee_id = ""
    return shown.SerializeToString(deterministic=True)


def _request(client: object, detainee_id: str) -> relative_pb2.Contact:
    reply: relative_pb2.RequestContactResponse = client._call(  # type: ignore[attr-defined]
        "RequestContact",
        relative_pb2.RequestContactRequest(detainee_id=detainee_id, relationship="zus"),
        relative_pb2.RequestContactResponse,
    )
    return reply.contact


def _listed(client: object) -> dict[str, relative_pb2.Contact]:
    reply: relative_pb2.ListContactsResponse = client._call(  # type: ignore[attr-defined]
        "ListContacts", relative_pb2.ListContactsRequest(), relative_pb2.ListContactsResponse
    )
    return {c.detainee_id: c for c in reply.contacts}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_held_released_and_unknown_ids_get_the_same_answer(stack: Stack, database_url: str) -> None:
    admin, _terminals = setup_institutions(
        stack, [("d-held", A, "regular"), ("d-gone", A, "regular")]
    )
    admin.call("admin", "ReleaseDetainee", admin_pb2.ReleaseDetaineeRequest(detainee_id="d-gone"))
    relative = stack.relative("Nieuwsgierig")
    answers = {d: _request(relative, d) for d in ("d-held", "d-gone", "d-nobody")}
    assert {c.status for c in answers.values()} == {common_pb2.CONTACT_STATUS_REQUESTED}
    assert len({_anonymised(c) for c in answers.values()}) == 1
    assert not any(c.deliverable or c.HasField("mailbox_key") for c in answers.values())
    listed = _listed(relative)
    assert set(listed) == {"d-held", "d-gone", "d-nobody"}
    assert len({_anonymised(c) for c in listed.values()}) == 1
    # Asking again is the same answer again.
    assert _anonymised(_request(relative, "d-nobody")) == _anonymised(answers["d-held"])

    # The institution sees the requests for the people it holds (and held), never the other.
    pending = admin.call(
        "admin",
        "ListContactRequests",
        admin_pb2.ListContactRequestsRequest(
            institution_id=A, status=common_pb2.CONTACT_STATUS_REQUESTED
        ),
    )
    assert {r.detainee_id for r in pending.requests} == {"d-held", "d-gone"}

    # Only an approval tells anything about the detainee.
    for request in pending.requests:
        admin.call(
            "admin",
            "DecideContact",
            admin_pb2.DecideContactRequest(
                contact_id=request.contact_id, decision=common_pb2.CONTACT_STATUS_APPROVED
            ),
        )
    listed = _listed(relative)
    assert listed["d-held"].status == common_pb2.CONTACT_STATUS_APPROVED
    assert listed["d-held"].deliverable
    assert listed["d-held"].HasField("mailbox_key")
    assert listed["d-gone"].status == common_pb2.CONTACT_STATUS_APPROVED
    assert not listed["d-gone"].deliverable
    assert listed["d-nobody"].status == common_pb2.CONTACT_STATUS_REQUESTED


@SQLITE
def test_an_undecided_request_expires_alike_and_can_be_made_again(
    stack: Stack, database_url: str
) -> None:
    admin, _terminals = setup_institutions(stack, [("d-held", A, "regular")])
    relative = stack.relative("Geduldig")
    for detainee in ("d-held", "d-nobody"):
        _request(relative, detainee)
    old = int(time.time() * 1000) - policy.CONTACT_REQUEST_TTL_MS - 1000
    path = Path(stack.gateway.database_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE contacts SET requested_at_ms = ?", (old,))
    listed = _listed(relative)
    assert {c.status for c in listed.values()} == {common_pb2.CONTACT_STATUS_EXPIRED}
    assert len({_anonymised(c) for c in listed.values()}) == 1

    waiting = admin.call(
        "admin",
        "ListContactRequests",
        admin_pb2.ListContactRequestsRequest(
            institution_id=A, status=common_pb2.CONTACT_STATUS_REQUESTED
        ),
    )
    assert list(waiting.requests) == []
    expired = admin.call(
        "admin",
        "ListContactRequests",
        admin_pb2.ListContactRequestsRequest(
            institution_id=A, status=common_pb2.CONTACT_STATUS_EXPIRED
        ),
    )
    (stale,) = expired.requests
    with pytest.raises(ClientError) as refused:
        admin.call(
            "admin",
            "DecideContact",
            admin_pb2.DecideContactRequest(
                contact_id=stale.contact_id, decision=common_pb2.CONTACT_STATUS_APPROVED
            ),
        )
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "expired" in refused.value.message

    renewed = _request(relative, "d-held")
    assert renewed.status == common_pb2.CONTACT_STATUS_REQUESTED
    assert _listed(relative)["d-nobody"].status == common_pb2.CONTACT_STATUS_EXPIRED
