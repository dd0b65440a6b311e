"""How the review tool names things for people: legal bases, directions, waits, times.

Words people read are in the staff language (``sealpost.i18n``); what goes into JSON for
scripts (``direction``, ``retro_status``, ``item_json``, ``request_json``) stays English.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from sealpost.clients._text import enum_word
from sealpost.i18n import _
from sealpost.v1 import common_pb2, review_pb2

#: Directions as scripts read them (JSON); people read :func:`direction_words`.
DIRECTIONS: Final[dict[int, str]] = {
    common_pb2.DIRECTION_INBOUND: "inbound",
    common_pb2.DIRECTION_OUTBOUND: "outbound",
    common_pb2.DIRECTION_BOTH: "both",
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
    """A legal basis in the staff language."""
    words: dict[int, str] = {
        common_pb2.LEGAL_BASIS_REGIME_SCREEN_ALL: _("regime screens all"),
        common_pb2.LEGAL_BASIS_SCREENING_ORDER: _("screening order"),
        common_pb2.LEGAL_BASIS_RETROSPECTIVE_REQUEST: _("retrospective request"),
    }
    return words.get(value, _("none"))


def direction(value: int) -> str:
    """A direction as scripts read it: inbound, outbound, both."""
    return DIRECTIONS.get(value, "unknown")


def direction_words(value: int) -> str:
    """A direction in the staff language."""
    words: dict[int, str] = {
        common_pb2.DIRECTION_INBOUND: _("inbound"),
        common_pb2.DIRECTION_OUTBOUND: _("outbound"),
        common_pb2.DIRECTION_BOTH: _("both"),
    }
    return words.get(value, _("unknown"))


def state_words(value: int) -> str:
    """A message's state after a verdict, in the staff language."""
    words: dict[int, str] = {
        common_pb2.MESSAGE_STATE_RELEASED: _("released"),
        common_pb2.MESSAGE_STATE_WITHHELD: _("withheld"),
    }
    return words.get(value, _("recorded"))


def reason_words(code: str) -> str:
    """A withhold reason code (as typed on the command line) in the staff language."""
    words = {
        "order-and-security": _("order and security"),
        "public-order": _("public order"),
        "crime-prevention": _("crime prevention"),
        "victim-protection": _("victim protection"),
    }
    return words.get(code, code)


def retro_status(value: int) -> str:
    """A retrospective request's status as scripts read it."""
    names: dict[int, str] = {int(v): k for k, v in RETRO_STATUSES.items()}
    return names.get(value, "unknown")


def retro_status_words(value: int) -> str:
    """A retrospective request's status in the staff language."""
    words: dict[int, str] = {
        common_pb2.RETROSPECTIVE_STATUS_PENDING: _("pending"),
        common_pb2.RETROSPECTIVE_STATUS_APPROVED: _("approved"),
        common_pb2.RETROSPECTIVE_STATUS_REJECTED: _("rejected"),
        common_pb2.RETROSPECTIVE_STATUS_EXPIRED: _("expired"),
    }
    return words.get(value, _("unknown"))


def waited(seconds: int) -> str:
    """A wait as people read it: 45s, 12m, 3h 05m, 2d 04h (in Dutch 3u 05m, 2d 04u)."""
    if seconds < 60:
        return _("{seconds}s", seconds=seconds)
    minutes = seconds // 60
    if minutes < 60:
        return _("{minutes}m", minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("{hours}h {minutes:02d}m", hours=hours, minutes=minutes)
    days, hours = divmod(hours, 24)
    return _("{days}d {hours:02d}h", days=days, hours=hours)


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


def queue_headers() -> tuple[str, ...]:
    """The queue table's column headers, in the staff language."""
    return (
        _("waited"),
        _("message id"),
        _("detainee"),
        _("institution"),
        _("direction"),
        _("basis"),
    )


def item_row(item: review_pb2.QueueItem) -> tuple[str, ...]:
    """A queue item's cells: wait, message id, detainee, institution, direction, basis."""
    return (
        waited(item.waited_seconds),
        item.message_id.hex(),
        item.detainee_id,
        item.institution_id,
        direction_words(item.direction),
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
    line = _(
        "{request}  {status}  {detainee}  {direction}  {start}..{end}  case {case}  by {requester}",
        request=request.request_id,
        status=retro_status_words(request.status),
        detainee=request.detainee_id,
        direction=direction_words(request.direction),
        start=when(request.period_start.ToMilliseconds())[:10],
        end=when(request.period_end.ToMilliseconds())[:10],
        case=request.case_reference,
        requester=request.requested_by,
    )
    if request.decided_by:
        line += _(", decided by {officer}", officer=request.decided_by)
    if request.HasField("valid_until"):
        line += _(", valid until {time}", time=when(request.valid_until.ToMilliseconds()))
    return line
