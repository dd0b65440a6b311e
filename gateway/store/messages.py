"""Messages, their states, and the feeds that stream them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from sealpost.gateway import policy, states
from sealpost.gateway.errors import FailedPrecondition, NotFound
from sealpost.gateway.storage.direct import Direct, Record
from sealpost.gateway.storage.schema import accounts, feed, key_records, messages


def institution_audience(institution_id: str) -> str:
    """The feed of an institution's intake stream."""
    return f"institution:{institution_id}"


def account_audience(account_id: str) -> str:
    """The feed of a relative's inbox stream."""
    return f"account:{account_id}"


_Q_ADD_FEED = Direct(insert(feed))


def add_feed(connection: Connection, audience: str, message_id: bytes) -> None:
    """Make a message appear on a stream."""
    _Q_ADD_FEED.execute(connection, {"audience": audience, "message_id": message_id})


@dataclass(frozen=True)
class NewMessage:
    """A message the gateway has verified and is about to store."""

    message_id: bytes
    direction: int
    detainee_id: str
    institution_id: str
    account_id: str
    sender_key_id: bytes
    envelope: bytes
    envelope_digest: bytes
    privileged: bool
    state: int
    accepted_at_ms: int
    escrow: bytes | None = None


_Q_MESSAGE_EXISTS = Direct(select(messages.c.seq).where(messages.c.message_id == bindparam("p_id")))
_Q_INSERT_MESSAGE = Direct(insert(messages))
_Q_MESSAGE = select(messages).where(messages.c.message_id == bindparam("p_id"))
_Q_MESSAGE_BY_ID = {False: Direct(_Q_MESSAGE), True: Direct(_Q_MESSAGE.with_for_update())}
_Q_MESSAGE_OF_ACCOUNT = Direct(
    select(messages).where(
        messages.c.message_id == bindparam("p_id"), messages.c.account_id == bindparam("p_account")
    )
)


def message_exists(connection: Connection, message_id: bytes) -> bool:
    """True when a message with this id is stored."""
    return _Q_MESSAGE_EXISTS.first(connection, {"p_id": message_id}) is not None


def insert_message(connection: Connection, new: NewMessage, log_index: int) -> None:
    """Store a message; AlreadyExists for a replayed id (nothing new is stored)."""
    values = {
        "message_id": new.message_id,
        "direction": new.direction,
        "detainee_id": new.detainee_id,
        "institution_id": new.institution_id,
        "account_id": new.account_id,
        "sender_key_id": new.sender_key_id,
        "envelope": new.envelope,
        "envelope_digest": new.envelope_digest,
        "privileged": new.privileged,
        "state": new.state,
        "accepted_at_ms": new.accepted_at_ms,
        "state_changed_at_ms": new.accepted_at_ms,
        "queued_at_ms": new.accepted_at_ms if new.state == states.QUEUED else None,
        "escrow": new.escrow,
        "log_index": log_index,
    }
    _Q_INSERT_MESSAGE.execute(connection, values)


def message(connection: Connection, message_id: bytes, *, for_update: bool = False) -> Record:
    """A stored message; NotFound if absent. ``for_update`` locks it until commit."""
    row = _Q_MESSAGE_BY_ID[for_update].first(connection, {"p_id": message_id})
    if row is None:
        raise NotFound("no such message")
    return row


def message_of_account(connection: Connection, message_id: bytes, account_id: str) -> Record:
    """A message of this account's correspondence; NotFound otherwise (no existence leak)."""
    row = _Q_MESSAGE_OF_ACCOUNT.first(connection, {"p_id": message_id, "p_account": account_id})
    if row is None:
        raise NotFound("no such message")
    return row


#: UPDATE statements of set_state, by the extra columns they set (a handful of shapes).
_SET_STATE: dict[tuple[str, ...], Direct[Any]] = {}


def set_state(
    connection: Connection,
    row: Record,
    target: states.State,
    now_ms: int,
    *,
    through: states.State | None = None,
    **values: Any,
) -> None:
    """Move a message on, checked by the state machine, guarded against concurrent moves.

    With ``through`` the message passes that state on its way (each step is checked)
    and is written once, in ``target``.
    """
    if through is None:
        states.transition(row.state, target, privileged=row.privileged)
    else:
        states.transition(row.state, through, privileged=row.privileged)
        states.transition(through, target, privileged=row.privileged)
    extra: dict[str, Any] = dict(values)
    if target == states.QUEUED:
        extra["queued_at_ms"] = now_ms
    columns = tuple(sorted(extra))
    statement = _SET_STATE.get(columns)
    if statement is None:
        statement = _SET_STATE[columns] = Direct(
            update(messages)
            .where(
                messages.c.message_id == bindparam("p_id"),
                messages.c.state == bindparam("p_from"),
            )
            .values({name: bindparam(name) for name in ("state", "state_changed_at_ms", *columns)})
        )
    changed = statement.execute(
        connection,
        {
            "p_id": row.message_id,
            "p_from": row.state,
            "state": target,
            "state_changed_at_ms": now_ms,
        }
        | extra,
    )
    if changed != 1:
        raise FailedPrecondition("the message changed meanwhile; try again")


_Q_FEED_AFTER = Direct(
    select(
        feed.c.seq,
        messages,
        accounts.c.display_name,
        key_records.c.record.label("sender_record"),
    )
    .join(messages, messages.c.message_id == feed.c.message_id)
    .join(accounts, accounts.c.id == messages.c.account_id)
    .join(key_records, key_records.c.id == messages.c.sender_key_id)
    .where(feed.c.audience == bindparam("p_audience"), feed.c.seq > bindparam("p_after"))
    .order_by(feed.c.seq)
    .limit(bindparam("p_limit"))
)


def feed_after(connection: Connection, audience: str, after_seq: int, limit: int) -> list[Record]:
    """Messages on a stream after ``after_seq``, with the sender's name and key record."""
    return _Q_FEED_AFTER.rows(
        connection, {"p_audience": audience, "p_after": after_seq, "p_limit": limit}
    )


_S_DELIVERIES = (
    select(messages, accounts.c.display_name)
    .join(accounts, accounts.c.id == messages.c.account_id)
    .where(
        messages.c.institution_id == bindparam("p_institution"),
        messages.c.state == states.RELEASED,
        messages.c.direction == policy.INBOUND,
        messages.c.seq > bindparam("p_after"),
    )
    .order_by(messages.c.seq)
    .limit(bindparam("p_limit"))
)
_Q_DELIVERIES = Direct(_S_DELIVERIES)
_Q_DELIVERIES_OF_DETAINEE = Direct(
    _S_DELIVERIES.where(messages.c.detainee_id == bindparam("p_detainee"))
)


def deliveries(
    connection: Connection, institution_id: str, detainee_id: str, after_seq: int, limit: int
) -> list[Record]:
    """Inbound messages released for delivery at an institution."""
    query = _Q_DELIVERIES_OF_DETAINEE if detainee_id else _Q_DELIVERIES
    parameters = {"p_institution": institution_id, "p_after": after_seq, "p_limit": limit}
    if detainee_id:
        parameters["p_detainee"] = detainee_id
    return query.rows(connection, parameters)
