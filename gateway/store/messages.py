"""Messages, their states, and the feeds that stream them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from sealpost.gateway import policy, states
from sealpost.gateway.errors import FailedPrecondition
from sealpost.gateway.storage.direct import Direct
from sealpost.gateway.storage.schema import (
    accounts,
    detainees,
    feed,
    grants,
    key_records,
    messages,
)
from sealpost.gateway.store._common import columns, exists_already, found
from sealpost.v1 import common_pb2


class MessageRow(NamedTuple):
    """A stored message: its sealed envelope, where it goes, its state, and what was recorded."""

    seq: int
    message_id: bytes
    direction: common_pb2.Direction.ValueType
    detainee_id: str
    institution_id: str
    account_id: str
    sender_key_id: bytes
    #: The serialised Envelope, exactly as it was verified.
    envelope: bytes
    envelope_digest: bytes
    privileged: bool
    state: states.State
    accepted_at_ms: int
    state_changed_at_ms: int
    queued_at_ms: int | None
    #: The serialised EscrowBlob, once the message is escrowed.
    escrow: bytes | None
    verdict: common_pb2.Verdict.ValueType | None
    withhold_reason: common_pb2.WithholdReason.ValueType | None
    verdict_note: str | None
    verdict_by: str | None
    delivered_at_ms: int | None
    delivery_reference: str | None
    #: The MESSAGE_ACCEPTED log entry.
    log_index: int | None
    #: The MESSAGE_RELEASED log entry: a terminal delivers only on its proof.
    release_log_index: int | None
    #: The MESSAGE_ESCROWED log entry: escrow audits draw their sample in this order.
    escrow_log_index: int | None
    #: Whether the relative is told the withholding's reason category (set when withheld).
    withhold_reason_told: bool | None
    #: The terminal's sealed triage summary, while the message waits for a screener.
    triage_seal: str | None
    #: When the verdict was recorded (None before it, and for verdicts before revision 0008).
    verdict_at_ms: int | None


class FeedRow(NamedTuple):
    """A message on a stream, with the sender's display name and key record."""

    #: The position on the stream (a stream's cursor).
    seq: int
    message: MessageRow
    display_name: str
    #: The sender's serialised, directory-signed KeyRecord.
    sender_record: bytes


class DeliveryRow(NamedTuple):
    """A message released for delivery, with the sender's display name."""

    message: MessageRow
    display_name: str


class WithheldRow(NamedTuple):
    """A message a screener withheld, as its detainee is told of it: no content, no note."""

    seq: int
    message_id: bytes
    detainee_id: str
    direction: common_pb2.Direction.ValueType
    accepted_at_ms: int
    #: When it was withheld (WITHHELD is final: the state does not change again).
    state_changed_at_ms: int
    withhold_reason: common_pb2.WithholdReason.ValueType | None
    #: The relative's display name: the sender of a message, the addressee of a reply.
    display_name: str


#: The columns of MessageRow, for selects of messages here and in the other modules.
MESSAGE_COLUMNS = columns(MessageRow, messages)


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
_Q_MESSAGE = select(*MESSAGE_COLUMNS).where(messages.c.message_id == bindparam("p_id"))
_Q_MESSAGE_BY_ID = {
    False: Direct(_Q_MESSAGE, MessageRow),
    True: Direct(_Q_MESSAGE.with_for_update(), MessageRow),
}
_Q_MESSAGE_OF_ACCOUNT = Direct(
    select(*MESSAGE_COLUMNS).where(
        messages.c.message_id == bindparam("p_id"), messages.c.account_id == bindparam("p_account")
    ),
    MessageRow,
)


def message_exists(connection: Connection, message_id: bytes) -> bool:
    """True when a message with this id is stored."""
    return _Q_MESSAGE_EXISTS.first(connection, {"p_id": message_id}) is not None


def insert_message(connection: Connection, new: NewMessage, log_index: int) -> None:
    """Store a message; AlreadyExists for a replayed id (nothing new is stored).

    No savepoint of its own (every message passes here): after AlreadyExists the
    transaction cannot go on (PostgreSQL refuses it), so the caller lets the error end
    its job, and group commit's savepoint undoes that job alone.
    """
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
    with exists_already("a message with this id was accepted already"):
        _Q_INSERT_MESSAGE.execute(connection, values)


def message(connection: Connection, message_id: bytes, *, for_update: bool = False) -> MessageRow:
    """A stored message; NotFound if absent. ``for_update`` locks it until commit."""
    row = _Q_MESSAGE_BY_ID[for_update].first(connection, {"p_id": message_id})
    return found(row, "no such message")


def message_of_account(connection: Connection, message_id: bytes, account_id: str) -> MessageRow:
    """A message of this account's correspondence; NotFound otherwise (no existence leak)."""
    row = _Q_MESSAGE_OF_ACCOUNT.first(connection, {"p_id": message_id, "p_account": account_id})
    return found(row, "no such message")


#: UPDATE statements of set_state, by the extra columns they set (a handful of shapes).
_SET_STATE: dict[tuple[str, ...], Direct[Any]] = {}


def set_state(
    connection: Connection,
    row: MessageRow,
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
    names = tuple(sorted(extra))
    statement = _SET_STATE.get(names)
    if statement is None:
        statement = _SET_STATE[names] = Direct(
            update(messages)
            .where(
                messages.c.message_id == bindparam("p_id"),
                messages.c.state == bindparam("p_from"),
            )
            .values({name: bindparam(name) for name in ("state", "state_changed_at_ms", *names)})
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


#: Its rows hold a FeedRow's values in order, under SQLAlchemy's names (the message's
#: ``seq`` is ``seq_1``); ``_feed_row`` nests them into one.
_Q_FEED_AFTER = Direct(
    select(
        feed.c.seq,
        *MESSAGE_COLUMNS,
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


def _feed_row(values: Sequence[Any]) -> FeedRow:
    seq, *message, display_name, sender_record = values
    return FeedRow(seq, MessageRow._make(message), display_name, sender_record)


def feed_after(connection: Connection, audience: str, after_seq: int, limit: int) -> list[FeedRow]:
    """Messages on a stream after ``after_seq``, with the sender's name and key record."""
    records = _Q_FEED_AFTER.rows(
        connection, {"p_audience": audience, "p_after": after_seq, "p_limit": limit}
    )
    return [_feed_row(values) for values in records]


#: Its rows hold a DeliveryRow's values in order; ``_delivery_row`` nests them into one.
_S_DELIVERIES = (
    select(*MESSAGE_COLUMNS, accounts.c.display_name)
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
) -> list[DeliveryRow]:
    """Inbound messages released for delivery at an institution."""
    query = _Q_DELIVERIES_OF_DETAINEE if detainee_id else _Q_DELIVERIES
    parameters = {"p_institution": institution_id, "p_after": after_seq, "p_limit": limit}
    if detainee_id:
        parameters["p_detainee"] = detainee_id
    return [_delivery_row(values) for values in query.rows(connection, parameters)]


def _delivery_row(values: Sequence[Any]) -> DeliveryRow:
    *message, display_name = values
    return DeliveryRow(MessageRow._make(message), display_name)


#: Withheld messages of the detainees an institution holds now (a detainee transferred in
#: is told there of what was withheld before; one released is told nowhere).
_S_WITHHELD = (
    select(*columns(WithheldRow, messages, accounts))
    .join(accounts, accounts.c.id == messages.c.account_id)
    .join(detainees, detainees.c.id == messages.c.detainee_id)
    .where(
        detainees.c.institution_id == bindparam("p_institution"),
        detainees.c.status != policy.RELEASED_DETAINEE,
        messages.c.state == states.WITHHELD,
        messages.c.seq > bindparam("p_after"),
    )
    .order_by(messages.c.seq)
    .limit(bindparam("p_limit"))
)
_Q_WITHHELD = Direct(_S_WITHHELD, WithheldRow)
_Q_WITHHELD_OF_DETAINEE = Direct(
    _S_WITHHELD.where(messages.c.detainee_id == bindparam("p_detainee")), WithheldRow
)


def withheld(
    connection: Connection, institution_id: str, detainee_id: str, after_seq: int, limit: int
) -> list[WithheldRow]:
    """Messages withheld by a screener, to or from detainees held at an institution."""
    query = _Q_WITHHELD_OF_DETAINEE if detainee_id else _Q_WITHHELD
    parameters = {"p_institution": institution_id, "p_after": after_seq, "p_limit": limit}
    if detainee_id:
        parameters["p_detainee"] = detainee_id
    return query.rows(connection, parameters)


#: Rows deleted per statement by ``delete_settled_before`` (bounded IN lists).
_RETENTION_CHUNK = 500


def delete_settled_before(connection: Connection, cutoff_ms: int) -> list[bytes]:
    """Delete settled messages accepted before ``cutoff_ms``, with their feed rows and grants.

    Settled: delivered, rejected or withheld (states.SETTLED); a message still on its
    way is never deleted. Returns the ids deleted, in acceptance order.
    """
    found = list(
        connection.execute(
            select(messages.c.message_id)
            .where(
                messages.c.accepted_at_ms < cutoff_ms,
                messages.c.state.in_(sorted(states.SETTLED)),
            )
            .order_by(messages.c.seq)
        ).scalars()
    )
    for start in range(0, len(found), _RETENTION_CHUNK):
        chunk = found[start : start + _RETENTION_CHUNK]
        connection.execute(delete(feed).where(feed.c.message_id.in_(chunk)))
        connection.execute(delete(grants).where(grants.c.message_id.in_(chunk)))
        connection.execute(delete(messages).where(messages.c.message_id.in_(chunk)))
    return [bytes(m) for m in found]


def count_by_state(connection: Connection) -> dict[states.State, int]:
    """How many stored messages are in each state (states with none are left out)."""
    query = select(messages.c.state, func.count()).group_by(messages.c.state)
    return {state: int(count) for state, count in connection.execute(query)}
