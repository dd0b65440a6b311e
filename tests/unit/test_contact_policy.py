"""A contact's status and deliverability as a relative sees them: nothing before approval."""

from __future__ import annotations

import pytest

from sealpost.gateway import policy
from sealpost.v1 import common_pb2

TTL = policy.CONTACT_REQUEST_TTL_MS


@pytest.mark.parametrize(
    ("stored", "age", "shown"),
    [
        (common_pb2.CONTACT_STATUS_REQUESTED, 0, common_pb2.CONTACT_STATUS_REQUESTED),
        (common_pb2.CONTACT_STATUS_REQUESTED, TTL - 1, common_pb2.CONTACT_STATUS_REQUESTED),
        (common_pb2.CONTACT_STATUS_REQUESTED, TTL, common_pb2.CONTACT_STATUS_EXPIRED),
        (common_pb2.CONTACT_STATUS_APPROVED, 10 * TTL, common_pb2.CONTACT_STATUS_APPROVED),
        (common_pb2.CONTACT_STATUS_REJECTED, 10 * TTL, common_pb2.CONTACT_STATUS_REJECTED),
    ],
)
def test_only_an_undecided_request_expires(stored: int, age: int, shown: int) -> None:
    assert policy.contact_status(stored, 1_000, 1_000 + age) == shown


@pytest.mark.parametrize(
    ("status", "detainee", "deliverable"),
    [
        (common_pb2.CONTACT_STATUS_APPROVED, policy.HELD, True),
        (common_pb2.CONTACT_STATUS_APPROVED, policy.TRANSFERRED, True),
        (common_pb2.CONTACT_STATUS_APPROVED, policy.RELEASED_DETAINEE, False),
        (common_pb2.CONTACT_STATUS_REQUESTED, policy.HELD, False),
        (common_pb2.CONTACT_STATUS_REQUESTED, policy.RELEASED_DETAINEE, False),
        (common_pb2.CONTACT_STATUS_REQUESTED, None, False),
        (common_pb2.CONTACT_STATUS_EXPIRED, policy.HELD, False),
    ],
)
def test_deliverable_is_told_on_approved_contacts_only(
    status: int, detainee: int | None, deliverable: bool
) -> None:
    assert policy.contact_deliverable(status, detainee) is deliverable
