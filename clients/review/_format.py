"""How the review tool names things for people: legal bases, directions, waits, times."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from sealpost.clients._text import enum_word
from sealpost.v1 import common_pb2, review_pb2

LEGAL_BASES: Final[dict[int, str]] = {
    common_pb2.LEGAL_BASIS_REGIME_SCREEN_ALL: "regime screens all",
    common_pb2.LEGAL_BASIS_SCREENING_ORDER: "screening order",
    common_pb2.LEGAL_BASIS_RETROSPECTIVE_REQUEST: "retrospective request",
}
DIRECTIONS: Final[dict[int, str]] = {
    common_pb2.DIRECTION_INBOUND: "inbound",
    common_pb2.DIRECTION_OUTBOUND: "outbound",
    common_pb2.DIRECTION_BOTH: "both",
}
STATES: Final[dict[int, str]] = {
    common_pb2.MESSAGE_STATE_RELEASED: "released",
    common_pb2.MESSAGE_STATE_WITHHELD: "withheld",
}
#: Withhold reason codes as typed on the command line and shown in the terminal UI.
REASONS: Final = {
    "order-and-security": common_pb2.WITHHOLD_REASON_ORDER_AND_SECURITY,
    "public-order": common_pb2.WITHHOLD_REASON_PUBLIC_ORDER,
    "crime-prevention": common_pb2.WITHHOLD_REASON_CRIME_PREVENTION,
    "victim-protection": common_pb2.WITHHOLD_REASON_VICTIM_PROTECTION,
}
RETRO_STATUSES: Final = {
    "pending": common_pb2.RETROSPECTIVE_STATUS_PENDING,
    "approved": common_pb2.RETROSPECTIVE_STATUS_APPROVED,
    "rejected": common_pb2.RETROSPECTIVE_STATUS_REJECTED,
    "expired": common_pb2.RETROSPECTIVE_STATUS_EXPIRED,
}


def legal_basis(value: int) -> str:
    """A legal basis in words."""
    return LEGAL_BASES.get(value, "none")


def direction(value: int) -> str:
    """A direction in words."""
    return DIRECTIONS.get(value, "unknown")


def retro_status(value: int) -> str:
    """A retrospective request's status in words."""
    names: dict[int, str] = {int(v): k for k, v in RETRO_STATUSES.items()}
    return names.get(value, "unknown")


def waited(seconds: int) -> str:
    """A wait as people read it: 45s, 12m, 3h 05m, 2d 04h."""
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def when(time_ms: int) -> str:
    """A UTC time to the second, ISO 8601."""
    moment = dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def item_json(item: review_pb2.QueueItem) -> dict[str, Any]:
    """A queue item for scripts, its message id in hex as the command line takes it."""
    return {
        "messageId": item.message_id.hex(),
        "detaineeId": item.detainee_id,
        "institutionId": item.institution_id,
        "direction": direction(item.direction),
        "acceptedAt": when(item.accepted_at.ToMilliseconds()),
        "waitedSeconds": item.waited_seconds,
        "legalBasis": enum_word(common_pb2.LegalBasis, item.legal_basis),
    }


QUEUE_HEADERS: Final = ("waited", "message id", "detainee", "institution", "direction", "basis")


def item_row(item: review_pb2.QueueItem) -> tuple[str, ...]:
    """A queue item's cells: wait, message id, detainee, institution, direction, basis."""
    return (
        waited(item.waited_seconds),
        item.message_id.hex(),
        item.detainee_id,
        item.institution_id,
        direction(item.direction),
        legal_basis(item.legal_basis),
    )


def request_json(request: review_pb2.RetrospectiveRequest) -> dict[str, Any]:
    """A retrospective request for scripts."""
    data: dict[str, Any] = {
        "requestId": request.request_id,
        "detaineeId": request.detainee_id,
        "institutionId": request.institution_id,
        "direction": direction(request.direction),
        "periodStart": when(request.period_start.ToMilliseconds()),
        "periodEnd": when(request.period_end.ToMilliseconds()),
        "caseReference": request.case_reference,
        "reason": request.reason,
        "requestedBy": request.requested_by,
        "status": retro_status(request.status),
    }
    if request.decided_by:
        data["decidedBy"] = request.decided_by
        data["decidedAt"] = when(request.decided_at.ToMilliseconds())
    if request.HasField("valid_until"):
        data["validUntil"] = when(request.valid_until.ToMilliseconds())
    return data


def request_line(request: review_pb2.RetrospectiveRequest) -> str:
    """A retrospective request on one line."""
    line = (
        f"{request.request_id}  {retro_status(request.status)}  {request.detainee_id}  "
        f"{direction(request.direction)}  {when(request.period_start.ToMilliseconds())[:10]}"
        f"..{when(request.period_end.ToMilliseconds())[:10]}  case {request.case_reference}  "
        f"by {request.requested_by}"
    )
    if request.decided_by:
        line += f", decided by {request.decided_by}"
    if request.HasField("valid_until"):
        line += f", valid until {when(request.valid_until.ToMilliseconds())}"
    return line
