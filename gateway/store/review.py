"""Screening orders, the screening queue, grants, retrospective requests, escrow audits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update

from sealpost.gateway import policy, states
from sealpost.gateway.errors import FailedPrecondition
from sealpost.gateway.storage.direct import Direct
from sealpost.gateway.storage.schema import (
    detainees,
    grants,
    institutions,
    messages,
    retrospective_requests,
    screening_orders,
)
from sealpost.gateway.store._common import columns, first, found, new_id, rows
from sealpost.gateway.store.messages import MESSAGE_COLUMNS, MessageRow
from sealpost.v1 import common_pb2


class ScreeningOrderRow(NamedTuple):
    """An order to read a detainee's messages (art. 36 Pbw), with its legal ground."""

    id: str
    detainee_id: str
    legal_ground: common_pb2.LegalGround.ValueType
    direction: common_pb2.Direction.ValueType
    starts_at_ms: int
    ends_at_ms: int
    ordered_by: str
    note: str
    created_at_ms: int
    ended_early_at_ms: int | None


class RetrospectiveRequestRow(NamedTuple):
    """A screener's request to read a detainee's past messages, and its four-eyes decision."""

    id: str
    detainee_id: str
    institution_id: str
    direction: common_pb2.Direction.ValueType
    period_start_ms: int
    period_end_ms: int
    case_reference: str
    reason: str
    requested_by: str
    status: common_pb2.RetrospectiveStatus.ValueType
    decided_by: str | None
    decided_at_ms: int | None
    valid_until_ms: int | None
    note: str | None
    created_at_ms: int


class EscrowedRow(NamedTuple):
    """A message an escrow audit drew, with its escrow blob and the entry that logged it."""

    message: MessageRow
    escrow: bytes
    escrow_log_index: int


_ORDER = columns(ScreeningOrderRow, screening_orders)
_RETROSPECTIVE = columns(RetrospectiveRequestRow, retrospective_requests)


def create_order(
    connection: Connection,
    detainee_id: str,
    legal_ground: int,
    direction: int,
    starts_at_ms: int,
    ends_at_ms: int,
    ordered_by: str,
    note: str,
    now_ms: int,
) -> str:
    """Record a screening order; returns its id."""
    order_id = new_id("so")
    connection.execute(
        insert(screening_orders).values(
            id=order_id,
            detainee_id=detainee_id,
            legal_ground=legal_ground,
            direction=direction,
            starts_at_ms=starts_at_ms,
            ends_at_ms=ends_at_ms,
            ordered_by=ordered_by,
            note=note,
            created_at_ms=now_ms,
        )
    )
    return order_id


def order(connection: Connection, order_id: str) -> ScreeningOrderRow:
    """A screening order; NotFound if absent."""
    query = select(*_ORDER).where(screening_orders.c.id == order_id)
    return found(first(connection, query, ScreeningOrderRow), "no such screening order")


def end_order(connection: Connection, order_id: str, now_ms: int) -> None:
    """End an order before its planned end."""
    current = order(connection, order_id)
    if current.ended_early_at_ms is not None or current.ends_at_ms <= now_ms:
        raise FailedPrecondition("the order has ended already")
    connection.execute(
        update(screening_orders)
        .where(screening_orders.c.id == order_id)
        .values(ended_early_at_ms=now_ms)
    )


def orders_of(
    connection: Connection,
    detainee_id: str,
    institution_ids: frozenset[str] | None,
    include_ended: bool,
    now_ms: int,
) -> list[ScreeningOrderRow]:
    """Orders of one detainee, or of every detainee in the institutions."""
    query = (
        select(*_ORDER)
        .join(detainees, detainees.c.id == screening_orders.c.detainee_id)
        .order_by(screening_orders.c.starts_at_ms)
    )
    if detainee_id:
        query = query.where(screening_orders.c.detainee_id == detainee_id)
    if institution_ids is not None:
        query = query.where(detainees.c.institution_id.in_(institution_ids))
    if not include_ended:
        query = query.where(
            screening_orders.c.ends_at_ms > now_ms, screening_orders.c.ended_early_at_ms.is_(None)
        )
    return rows(connection, query, ScreeningOrderRow)


_Q_ORDERS_OF_DETAINEE = Direct(
    select(*_ORDER).where(screening_orders.c.detainee_id == bindparam("p_detainee")),
    ScreeningOrderRow,
)


def order_windows(connection: Connection, detainee_id: str) -> list[policy.OrderWindow]:
    """Every order of a detainee as the policy sees it."""
    orders = _Q_ORDERS_OF_DETAINEE.rows(connection, {"p_detainee": detainee_id})
    return [
        policy.OrderWindow(r.direction, r.starts_at_ms, r.ends_at_ms, r.ended_early_at_ms)
        for r in orders
    ]


def queue(
    connection: Connection,
    institution_ids: frozenset[str] | None,
    detainee_id: str,
    limit: int,
    after: tuple[int, int] | None,
) -> list[MessageRow]:
    """The screening queue, longest waiting first; a page starts after (queued_at_ms, seq)."""
    query = (
        select(*MESSAGE_COLUMNS)
        .where(messages.c.state == states.QUEUED)
        .order_by(messages.c.queued_at_ms, messages.c.seq)
        .limit(limit)
    )
    if after is not None:
        queued_at_ms, seq = after
        query = query.where(
            or_(
                messages.c.queued_at_ms > queued_at_ms,
                and_(messages.c.queued_at_ms == queued_at_ms, messages.c.seq > seq),
            )
        )
    if institution_ids is not None:
        query = query.where(messages.c.institution_id.in_(institution_ids))
    if detainee_id:
        query = query.where(messages.c.detainee_id == detainee_id)
    return rows(connection, query, MessageRow)


def retrospective_windows(
    connection: Connection, request_id: str, detainee_id: str
) -> policy.RetrospectiveWindow | None:
    """A retrospective request as the policy sees it, if it concerns ``detainee_id``."""
    query = select(*_RETROSPECTIVE).where(
        retrospective_requests.c.id == request_id,
        retrospective_requests.c.detainee_id == detainee_id,
    )
    row = first(connection, query, RetrospectiveRequestRow)
    if row is None:
        return None
    return policy.RetrospectiveWindow(
        row.status, row.direction, row.period_start_ms, row.period_end_ms, row.valid_until_ms
    )


def add_grant(
    connection: Connection,
    message_id: bytes,
    staff: str,
    legal_basis: int,
    retrospective_request_id: str | None,
    now_ms: int,
    log_index: int,
    grant_id: str,
) -> None:
    """Record that a screener was granted access to one message."""
    connection.execute(
        insert(grants).values(
            id=grant_id,
            message_id=message_id,
            staff=staff,
            legal_basis=legal_basis,
            retrospective_request_id=retrospective_request_id,
            granted_at_ms=now_ms,
            log_index=log_index,
        )
    )


def escrowed_count(connection: Connection, below: int) -> int:
    """How many messages were escrowed by a log entry before index ``below``."""
    return int(
        connection.execute(
            select(func.count()).select_from(messages).where(messages.c.escrow_log_index < below)
        ).scalar_one()
    )


def escrowed_at(connection: Connection, below: int, position: int) -> EscrowedRow:
    """The message escrowed ``position``-th (from 0) by an entry before index ``below``.

    The order is the log's: escrow audits draw their samples by position in it.
    """
    query = (
        select(*MESSAGE_COLUMNS)
        .where(messages.c.escrow_log_index < below)
        .order_by(messages.c.escrow_log_index)
        .offset(position)
        .limit(1)
    )
    row = found(first(connection, query, MessageRow), "no escrowed message at that position")
    # Drawn by its escrow entry, so escrowed: the blob is stored with the entry (take_in).
    assert row.escrow is not None
    assert row.escrow_log_index is not None
    return EscrowedRow(row, row.escrow, row.escrow_log_index)


def has_grant(connection: Connection, message_id: bytes, staff: str) -> bool:
    """True when ``staff`` was granted access to the message."""
    row = connection.execute(
        select(grants.c.id).where(grants.c.message_id == message_id, grants.c.staff == staff)
    ).first()
    return row is not None


def file_retrospective(
    connection: Connection,
    detainee_id: str,
    institution_id: str,
    direction: int,
    period_start_ms: int,
    period_end_ms: int,
    case_reference: str,
    reason: str,
    requested_by: str,
    now_ms: int,
) -> str:
    """A pending retrospective request; returns its id."""
    request_id = new_id("rr")
    connection.execute(
        insert(retrospective_requests).values(
            id=request_id,
            detainee_id=detainee_id,
            institution_id=institution_id,
            direction=direction,
            period_start_ms=period_start_ms,
            period_end_ms=period_end_ms,
            case_reference=case_reference,
            reason=reason,
            requested_by=requested_by,
            status=common_pb2.RETROSPECTIVE_STATUS_PENDING,
            created_at_ms=now_ms,
        )
    )
    return request_id


def retrospective(connection: Connection, request_id: str) -> RetrospectiveRequestRow:
    """A retrospective request; NotFound if absent."""
    query = select(*_RETROSPECTIVE).where(retrospective_requests.c.id == request_id)
    return found(first(connection, query, RetrospectiveRequestRow), "no such retrospective request")


def decide_retrospective(
    connection: Connection,
    request_id: str,
    status: int,
    decided_by: str,
    valid_until_ms: int | None,
    note: str,
    now_ms: int,
) -> None:
    """Approve or reject a pending request."""
    result = connection.execute(
        update(retrospective_requests)
        .where(
            retrospective_requests.c.id == request_id,
            retrospective_requests.c.status == common_pb2.RETROSPECTIVE_STATUS_PENDING,
        )
        .values(
            status=status,
            decided_by=decided_by,
            decided_at_ms=now_ms,
            valid_until_ms=valid_until_ms,
            note=note,
        )
    )
    if result.rowcount != 1:
        raise FailedPrecondition("the request has been decided already")


def retrospectives(
    connection: Connection,
    institution_ids: frozenset[str] | None,
    status: int,
    limit: int,
    after: str,
) -> list[RetrospectiveRequestRow]:
    """Retrospective requests in the institutions, optionally by status."""
    query = (
        select(*_RETROSPECTIVE)
        .where(retrospective_requests.c.id > after)
        .order_by(retrospective_requests.c.id)
        .limit(limit)
    )
    if institution_ids is not None:
        query = query.where(retrospective_requests.c.institution_id.in_(institution_ids))
    if status:
        query = query.where(retrospective_requests.c.status == status)
    return rows(connection, query, RetrospectiveRequestRow)


def messages_in_period(
    connection: Connection,
    detainee_id: str,
    directions: Sequence[int],
    start_ms: int,
    end_ms: int,
    after_seq: int,
    limit: int,
) -> list[MessageRow]:
    """Non-privileged, escrowed messages of a detainee accepted in [start, end)."""
    query = (
        select(*MESSAGE_COLUMNS)
        .where(
            messages.c.detainee_id == detainee_id,
            messages.c.direction.in_(directions),
            messages.c.accepted_at_ms >= start_ms,
            messages.c.accepted_at_ms < end_ms,
            messages.c.privileged.is_(False),
            messages.c.escrow.is_not(None),
            messages.c.seq > after_seq,
        )
        .order_by(messages.c.seq)
        .limit(limit)
    )
    return rows(connection, query, MessageRow)


class DecisionRow(NamedTuple):
    """One verdict's institution, screener and times (no content, no verdict)."""

    institution_id: str
    verdict_by: str | None
    queued_at_ms: int | None
    verdict_at_ms: int | None


_DECISION = columns(DecisionRow, messages)


def decisions(
    connection: Connection, institution_ids: frozenset[str] | None, since_ms: int, until_ms: int
) -> list[DecisionRow]:
    """Verdicts recorded in [since_ms, until_ms) at the institutions (None: all)."""
    query = select(*_DECISION).where(
        messages.c.verdict_at_ms >= since_ms, messages.c.verdict_at_ms < until_ms
    )
    if institution_ids is not None:
        query = query.where(messages.c.institution_id.in_(institution_ids))
    return rows(connection, query, DecisionRow)


def waiting_since(
    connection: Connection, institution_ids: frozenset[str] | None
) -> list[tuple[str, int]]:
    """(institution, queued at) of every message waiting for a verdict now."""
    query = select(messages.c.institution_id, messages.c.queued_at_ms).where(
        messages.c.state == states.QUEUED
    )
    if institution_ids is not None:
        query = query.where(messages.c.institution_id.in_(institution_ids))
    return [(i, int(q or 0)) for i, q in connection.execute(query)]


def queue_by_institution(connection: Connection) -> dict[str, tuple[int, int | None]]:
    """Per institution: (messages waiting for a verdict, when the longest waiting was queued).

    Every institution is named, an empty queue as (0, None).
    """
    waiting = and_(
        messages.c.institution_id == institutions.c.id, messages.c.state == states.QUEUED
    )
    query = (
        select(institutions.c.id, func.count(messages.c.seq), func.min(messages.c.queued_at_ms))
        .select_from(institutions.outerjoin(messages, waiting))
        .group_by(institutions.c.id)
    )
    return {
        institution: (int(count), None if oldest is None else int(oldest))
        for institution, count, oldest in connection.execute(query)
    }
