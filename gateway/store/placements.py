"""Institutions, regimes, detainees and where they are held; mailbox keys and handovers."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, bindparam, insert, select, update

from sealpost.crypto.logentry import TELL_RELATIVES_REASON_FIELD, LogAction
from sealpost.gateway import policy, states, translog
from sealpost.gateway.errors import FailedPrecondition
from sealpost.gateway.storage.direct import Direct
from sealpost.gateway.storage.schema import (
    detainees,
    handovers,
    institutions,
    key_records,
    mailbox_keys,
    messages,
    regimes,
)
from sealpost.gateway.store._common import columns, first, found, insert_unique, rows
from sealpost.gateway.store.events import GATEWAY_ACTOR, log
from sealpost.gateway.store.messages import add_feed, institution_audience
from sealpost.v1 import common_pb2, keys_pb2


class InstitutionRow(NamedTuple):
    """A prison institution."""

    id: str
    name: str
    created_at_ms: int


class RegimeRow(NamedTuple):
    """A regime and how it treats messaging."""

    name: str
    policy: common_pb2.RegimePolicy.ValueType
    description: str
    updated_at_ms: int
    #: Whether relatives are told the reason category of a withholding in this regime.
    tell_relatives_reason: bool


class DetaineeRow(NamedTuple):
    """A detainee, where and under which regime it is held, with that regime's policy."""

    id: str
    institution_id: str
    regime: str
    status: common_pb2.DetaineeStatus.ValueType
    created_at_ms: int
    updated_at_ms: int
    #: The policy of ``regime``.
    policy: common_pb2.RegimePolicy.ValueType
    #: Whether ``regime`` tells relatives the reason category of a withholding.
    tell_relatives_reason: bool


class MailboxKeyRow(NamedTuple):
    """A mailbox secret wrapped to an institution's key, with the mailbox key's record."""

    key_id: bytes
    institution_id: str
    detainee_id: str
    wrapped_secret: bytes
    wrapped_to_key_id: bytes
    created_at_ms: int
    #: The mailbox key's serialised, directory-signed KeyRecord.
    record: bytes


class HandoverRow(NamedTuple):
    """An institution's duty to hand a transferred detainee's mailbox keys over."""

    id: int
    detainee_id: str
    from_institution_id: str
    to_institution_id: str
    created_at_ms: int
    completed_at_ms: int | None


_INSTITUTION = columns(InstitutionRow, institutions)
_REGIME = columns(RegimeRow, regimes)
#: A select of these joins ``regimes`` (``_WITH_POLICY``).
_DETAINEE = columns(DetaineeRow, detainees, regimes)
_WITH_POLICY = regimes.c.name == detainees.c.regime
_MAILBOX_KEY = columns(MailboxKeyRow, mailbox_keys, key_records)
_HANDOVER = columns(HandoverRow, handovers)


def create_institution(connection: Connection, institution_id: str, name: str, now_ms: int) -> None:
    """A new institution; AlreadyExists if the id is taken."""
    conflict = f"institution {institution_id!r} exists already"
    insert_unique(
        connection, institutions, conflict, id=institution_id, name=name, created_at_ms=now_ms
    )


def institution(connection: Connection, institution_id: str) -> InstitutionRow:
    """An institution; NotFound if absent."""
    query = select(*_INSTITUTION).where(institutions.c.id == institution_id)
    return found(first(connection, query, InstitutionRow), f"no institution {institution_id!r}")


def list_institutions(connection: Connection, only: frozenset[str] | None) -> list[InstitutionRow]:
    """Institutions, all or those in ``only``."""
    query = select(*_INSTITUTION).order_by(institutions.c.id)
    if only is not None:
        query = query.where(institutions.c.id.in_(only))
    return rows(connection, query, InstitutionRow)


def ensure_default_regimes(connection: Connection, now_ms: int) -> None:
    """Insert the default regimes that do not exist yet (never overwrites a change).

    Each is recorded in the log like an administrator's change, so the regimes too
    can be recomputed from the log.
    """
    existing = set(connection.execute(select(regimes.c.name)).scalars())
    for regime in policy.DEFAULT_REGIMES:
        if regime.name not in existing:
            connection.execute(
                insert(regimes).values(
                    name=regime.name,
                    policy=regime.policy,
                    description=regime.description,
                    updated_at_ms=now_ms,
                )
            )
            log(
                connection,
                LogAction.REGIME_POLICY_CHANGED,
                GATEWAY_ACTOR,
                now_ms,
                [("regime", regime.name)],
                scope=translog.PUBLIC,
                policy=common_pb2.RegimePolicy.Name(regime.policy),  # type: ignore[arg-type]
                **{TELL_RELATIVES_REASON_FIELD: "false"},
            )


def regime(connection: Connection, name: str) -> RegimeRow:
    """A regime; NotFound if absent."""
    query = select(*_REGIME).where(regimes.c.name == name)
    return found(first(connection, query, RegimeRow), f"no regime {name!r}")


def set_regime(
    connection: Connection,
    name: str,
    policy_value: int,
    description: str,
    now_ms: int,
    *,
    tell_relatives_reason: bool = False,
) -> None:
    """Create or change a regime's policy and what it tells relatives."""
    values = {
        "policy": policy_value,
        "description": description,
        "updated_at_ms": now_ms,
        "tell_relatives_reason": tell_relatives_reason,
    }
    result = connection.execute(update(regimes).where(regimes.c.name == name).values(**values))
    if result.rowcount == 0:
        connection.execute(insert(regimes).values(name=name, **values))


def list_regimes(connection: Connection) -> list[RegimeRow]:
    """Every regime."""
    return rows(connection, select(*_REGIME).order_by(regimes.c.name), RegimeRow)


_Q_DETAINEE = Direct(
    select(*_DETAINEE).join(regimes, _WITH_POLICY).where(detainees.c.id == bindparam("p_id")),
    DetaineeRow,
)


def detainee(connection: Connection, detainee_id: str) -> DetaineeRow:
    """A detainee with its regime's policy; NotFound if absent."""
    return found(_Q_DETAINEE.first(connection, {"p_id": detainee_id}), "no such detainee")


def intake_detainee(
    connection: Connection, detainee_id: str, institution_id: str, regime_name: str, now_ms: int
) -> None:
    """Register a detainee at an institution; AlreadyExists if the id is taken."""
    institution(connection, institution_id)
    regime(connection, regime_name)
    insert_unique(
        connection,
        detainees,
        "a detainee with this id exists already",
        id=detainee_id,
        institution_id=institution_id,
        regime=regime_name,
        status=policy.HELD,
        created_at_ms=now_ms,
        updated_at_ms=now_ms,
    )


def list_detainees(
    connection: Connection, institution_ids: frozenset[str] | None, after: str, limit: int
) -> list[DetaineeRow]:
    """Detainees ordered by id, after ``after``, optionally within institutions."""
    query = (
        select(*_DETAINEE)
        .join(regimes, _WITH_POLICY)
        .where(detainees.c.id > after)
        .order_by(detainees.c.id)
        .limit(limit)
    )
    if institution_ids is not None:
        query = query.where(detainees.c.institution_id.in_(institution_ids))
    return rows(connection, query, DetaineeRow)


def set_detainee_regime(connection: Connection, detainee_id: str, name: str, now_ms: int) -> None:
    """Move a detainee to another regime."""
    regime(connection, name)
    connection.execute(
        update(detainees)
        .where(detainees.c.id == detainee_id)
        .values(regime=name, updated_at_ms=now_ms)
    )


def transfer_detainee(
    connection: Connection, detainee_id: str, to_institution: str, now_ms: int
) -> str:
    """Move a detainee and its undelivered messages; returns the institution it left.

    Messages not yet taken in are fed to the new institution's intake stream; the
    old institution's mailbox keys must be handed over (a handover row) before the
    new one can open them.
    """
    current = detainee(connection, detainee_id)
    if current.status == policy.RELEASED_DETAINEE:
        raise FailedPrecondition("the detainee has been released")
    source = current.institution_id
    if source == to_institution:
        raise FailedPrecondition("the detainee is held there already")
    institution(connection, to_institution)
    connection.execute(
        update(detainees)
        .where(detainees.c.id == detainee_id)
        .values(
            institution_id=to_institution,
            status=policy.TRANSFERRED,
            updated_at_ms=now_ms,
        )
    )
    open_states = [states.ACCEPTED, states.ESCROWED, states.QUEUED, states.RELEASED]
    pending = list(
        connection.execute(
            select(messages.c.message_id, messages.c.state).where(
                messages.c.detainee_id == detainee_id,
                messages.c.state.in_(open_states),
                messages.c.direction == policy.INBOUND,
            )
        )
    )
    connection.execute(
        update(messages)
        .where(messages.c.detainee_id == detainee_id, messages.c.state.in_(open_states))
        .values(institution_id=to_institution)
    )
    for row in pending:
        if row.state == states.ACCEPTED:
            add_feed(connection, institution_audience(to_institution), row.message_id)
    connection.execute(
        insert(handovers).values(
            detainee_id=detainee_id,
            from_institution_id=source,
            to_institution_id=to_institution,
            created_at_ms=now_ms,
        )
    )
    return source


def release_detainee(connection: Connection, detainee_id: str, now_ms: int) -> list[bytes]:
    """Close the mailbox; undelivered messages become REJECTED. Returns their ids."""
    current = detainee(connection, detainee_id)
    if current.status == policy.RELEASED_DETAINEE:
        raise FailedPrecondition("the detainee has been released already")
    connection.execute(
        update(detainees)
        .where(detainees.c.id == detainee_id)
        .values(status=policy.RELEASED_DETAINEE, updated_at_ms=now_ms)
    )
    open_rows = list(
        connection.execute(
            select(messages.c.message_id, messages.c.state, messages.c.privileged).where(
                messages.c.detainee_id == detainee_id,
                messages.c.state.not_in(list(states.SETTLED)),
            )
        )
    )
    for row in open_rows:
        states.transition(row.state, states.REJECTED, privileged=row.privileged)
    if open_rows:
        connection.execute(
            update(messages)
            .where(messages.c.message_id.in_([r.message_id for r in open_rows]))
            .values(state=states.REJECTED, state_changed_at_ms=now_ms)
        )
    return [r.message_id for r in open_rows]


def add_mailbox_key(
    connection: Connection,
    key_id: bytes,
    detainee_id: str,
    institution_id: str,
    wrapped: bytes,
    wrapped_to: bytes,
    now_ms: int,
) -> None:
    """Keep a mailbox secret wrapped to an institution key; AlreadyExists if it is held."""
    insert_unique(
        connection,
        mailbox_keys,
        "this mailbox key is already held by the institution",
        key_id=key_id,
        institution_id=institution_id,
        detainee_id=detainee_id,
        wrapped_secret=wrapped,
        wrapped_to_key_id=wrapped_to,
        created_at_ms=now_ms,
    )


def mailbox_keys_for(
    connection: Connection, institution_id: str, detainee_id: str
) -> list[MailboxKeyRow]:
    """Wrapped mailbox secrets the institution holds (for one detainee, or all held there)."""
    query = (
        select(*_MAILBOX_KEY)
        .join(key_records, key_records.c.id == mailbox_keys.c.key_id)
        .join(detainees, detainees.c.id == mailbox_keys.c.detainee_id)
        .where(
            mailbox_keys.c.institution_id == institution_id,
            detainees.c.institution_id == institution_id,
        )
        .order_by(mailbox_keys.c.created_at_ms)
    )
    if detainee_id:
        query = query.where(mailbox_keys.c.detainee_id == detainee_id)
    return rows(connection, query, MailboxKeyRow)


_Q_MAILBOX_KEY_OWNER = Direct(
    select(key_records.c.subject).where(
        key_records.c.id == bindparam("p_id"),
        key_records.c.purpose == keys_pb2.KEY_PURPOSE_MAILBOX,
    )
)


def mailbox_key_owner(connection: Connection, key_id: bytes) -> str | None:
    """The detainee whose mailbox key this is."""
    row = _Q_MAILBOX_KEY_OWNER.scalar(connection, {"p_id": key_id})
    return None if row is None else str(row)


def pending_handovers(connection: Connection, institution_id: str) -> list[HandoverRow]:
    """Handovers this institution owes."""
    query = select(*_HANDOVER).where(
        handovers.c.from_institution_id == institution_id,
        handovers.c.completed_at_ms.is_(None),
    )
    return rows(connection, query, HandoverRow)


def complete_handovers(
    connection: Connection, detainee_id: str, from_institution: str, now_ms: int
) -> None:
    """Mark this institution's handovers of a detainee done."""
    connection.execute(
        update(handovers)
        .where(
            handovers.c.detainee_id == detainee_id,
            handovers.c.from_institution_id == from_institution,
            handovers.c.completed_at_ms.is_(None),
        )
        .values(completed_at_ms=now_ms)
    )


_Q_HELD_MAILBOX_KEY_IDS = Direct(
    select(mailbox_keys.c.key_id).where(
        mailbox_keys.c.institution_id == bindparam("p_institution"),
        mailbox_keys.c.detainee_id == bindparam("p_detainee"),
    )
)


def held_mailbox_key_ids(
    connection: Connection, institution_id: str, detainee_id: str
) -> list[bytes]:
    """Ids of the mailbox keys of ``detainee_id`` wrapped for ``institution_id``."""
    records = _Q_HELD_MAILBOX_KEY_IDS.rows(
        connection, {"p_institution": institution_id, "p_detainee": detainee_id}
    )
    return [key_id for (key_id,) in records]
