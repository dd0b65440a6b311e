"""The gateway's queries: one function per question or change, each within a caller's transaction.

Services open a transaction (``Database.write`` or ``Database.read``), call
these functions and log what changed in the same transaction (translog), so a
change and its log entry commit together or not at all. Nothing here decides
policy (gateway/policy.py) or formats API messages (gateway/services).

The queries every message passes through are built once, at import, with bound
parameters (the ``_Q_*`` constants), and run on the database driver directly
(gateway/storage/direct.py): building a SQLAlchemy statement costs several times
more than running it on SQLite, and executing one through SQLAlchemy several times
more again; these run a few times per message. Their rows are named tuples.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from sealpost.crypto.logentry import LogAction, LogEvent
from sealpost.gateway import policy, states, translog
from sealpost.gateway.errors import AlreadyExists, FailedPrecondition, NotFound
from sealpost.gateway.storage.direct import Direct, Record
from sealpost.gateway.storage.schema import (
    accounts,
    challenges,
    contacts,
    correspondents,
    detainees,
    feed,
    grants,
    handovers,
    institutions,
    key_records,
    mailbox_keys,
    messages,
    regimes,
    retrospective_requests,
    screening_orders,
    staff_members,
    terminals,
)
from sealpost.v1 import common_pb2, keys_pb2


def new_id(prefix: str) -> str:
    """A random opaque id such as ``acct-3f9c...`` (64 bits of randomness, hex)."""
    return f"{prefix}-{secrets.token_hex(8)}"


#: The actor of what the gateway records on its own (its keys, the default regimes).
GATEWAY_ACTOR = "gateway"


def log(
    connection: Connection,
    action: LogAction,
    actor: str,
    now_ms: int,
    subjects: Sequence[tuple[str, str]] = (),
    *,
    scope: translog.Scope,
    **extra: str,
) -> translog.Appended:
    """Append one event to the transparency log in the current transaction.

    ``scope`` names the institutions the event concerns (translog.PUBLIC: every
    auditor's; translog.NATIONAL: national auditors' only); an auditor scoped to some
    institutions reads the others as leaf hashes (docs/transparency-log.md).
    """
    event = LogEvent(action=action, actor=actor, time_ms=now_ms, subjects=subjects, extra=extra)
    return translog.append(connection, [event], [scope])[0]


# --------------------------------------------------------------------------- scope lookups


_Q_INSTITUTION_OF_DETAINEE = Direct(
    select(detainees.c.institution_id).where(detainees.c.id == bindparam("p_id"))
)
_Q_INSTITUTION_OF_MESSAGE = Direct(
    select(messages.c.institution_id).where(messages.c.message_id == bindparam("p_id"))
)


class Scopes:
    """authz.ScopeResolver over the database (one read transaction)."""

    def __init__(self, connection: Connection) -> None:
        """Look up through ``connection``."""
        self._c = connection

    def _one(self, query: Any) -> str | None:
        value = self._c.execute(query).scalar_one_or_none()
        return None if value is None else str(value)

    def institution_of_detainee(self, detainee_id: str) -> str | None:
        """The detainee's current institution."""
        value = _Q_INSTITUTION_OF_DETAINEE.scalar(self._c, {"p_id": detainee_id})
        return None if value is None else str(value)

    def institution_of_message(self, message_id: bytes) -> str | None:
        """The institution that currently holds the message's detainee side."""
        value = _Q_INSTITUTION_OF_MESSAGE.scalar(self._c, {"p_id": message_id})
        return None if value is None else str(value)

    def institution_of_contact(self, contact_id: str) -> str | None:
        """The institution of the contact's detainee."""
        return self._one(
            select(detainees.c.institution_id)
            .join(contacts, contacts.c.detainee_id == detainees.c.id)
            .where(contacts.c.id == contact_id)
        )

    def institution_of_order(self, order_id: str) -> str | None:
        """The institution of the order's detainee."""
        return self._one(
            select(detainees.c.institution_id)
            .join(screening_orders, screening_orders.c.detainee_id == detainees.c.id)
            .where(screening_orders.c.id == order_id)
        )

    def institution_of_terminal(self, terminal_id: str) -> str | None:
        """The terminal's institution."""
        return self._one(select(terminals.c.institution_id).where(terminals.c.id == terminal_id))

    def institution_of_retrospective(self, request_id: str) -> str | None:
        """The institution a retrospective request was filed at."""
        return self._one(
            select(retrospective_requests.c.institution_id).where(
                retrospective_requests.c.id == request_id
            )
        )

    def handover_sources(self, detainee_id: str) -> frozenset[str]:
        """Institutions that still owe a handover of this detainee's mailbox keys."""
        rows = self._c.execute(
            select(handovers.c.from_institution_id).where(
                handovers.c.detainee_id == detainee_id, handovers.c.completed_at_ms.is_(None)
            )
        ).scalars()
        return frozenset(rows)


# --------------------------------------------------------------------------- key records


_Q_KEY_RECORD = Direct(select(key_records).where(key_records.c.id == bindparam("p_id")))
_Q_KEY_RECORDS = select(key_records).where(key_records.c.id.in_(bindparam("p_ids", expanding=True)))
_Q_CURRENT_KEY = Direct(
    select(key_records)
    .where(
        key_records.c.purpose == bindparam("p_purpose"),
        key_records.c.subject == bindparam("p_subject"),
        key_records.c.revoked_at_ms.is_(None),
        key_records.c.not_after > bindparam("p_now_s"),
    )
    .order_by(key_records.c.created_at_ms.desc(), key_records.c.id)
    .limit(1)
)


def key_record(connection: Connection, key_id: bytes) -> Record | None:
    """A stored key record row (record bytes, purpose, subject, revocation)."""
    return _Q_KEY_RECORD.first(connection, {"p_id": key_id})


def key_records_by_id(connection: Connection, key_ids: Sequence[bytes]) -> list[Row[Any]]:
    """Stored records among ``key_ids``."""
    if not key_ids:
        return []
    return list(connection.execute(_Q_KEY_RECORDS, {"p_ids": list(key_ids)}))


def current_key(
    connection: Connection, purpose: keys_pb2.KeyPurpose.ValueType, subject: str, now_s: int
) -> Record | None:
    """The newest unrevoked, unexpired record of ``purpose`` for ``subject``."""
    return _Q_CURRENT_KEY.first(
        connection, {"p_purpose": purpose, "p_subject": subject, "p_now_s": now_s}
    )


def keys_of(
    connection: Connection, purpose: keys_pb2.KeyPurpose.ValueType, subject: str, now_s: int
) -> list[Row[Any]]:
    """Every unrevoked, unexpired record of ``purpose`` for ``subject``."""
    return list(
        connection.execute(
            select(key_records).where(
                key_records.c.purpose == purpose,
                key_records.c.subject == subject,
                key_records.c.revoked_at_ms.is_(None),
                key_records.c.not_after > now_s,
            )
        )
    )


def revoke_key(connection: Connection, key_id: bytes, revocation: bytes, now_ms: int) -> None:
    """Mark a record revoked and keep the signed revocation."""
    result = connection.execute(
        update(key_records)
        .where(key_records.c.id == key_id, key_records.c.revoked_at_ms.is_(None))
        .values(revoked_at_ms=now_ms, revocation=revocation)
    )
    if result.rowcount != 1:
        raise NotFound("no such unrevoked key")


def revocations(connection: Connection) -> list[bytes]:
    """Every signed revocation."""
    return list(
        connection.execute(
            select(key_records.c.revocation).where(key_records.c.revocation.is_not(None))
        ).scalars()
    )


# --------------------------------------------------------------------------- accounts


def create_account(connection: Connection, display_name: str, now_ms: int) -> str:
    """A new relative or correspondent account."""
    account_id = new_id("acct")
    connection.execute(
        insert(accounts).values(id=account_id, display_name=display_name, created_at_ms=now_ms)
    )
    return account_id


def account(connection: Connection, account_id: str) -> Row[Any]:
    """An account; NotFound if absent."""
    row = connection.execute(select(accounts).where(accounts.c.id == account_id)).first()
    if row is None:
        raise NotFound("no such account")
    return row


def add_challenge(connection: Connection, challenge: bytes, key_id: bytes, expires: int) -> None:
    """Remember a login challenge until it is used or expires."""
    connection.execute(delete(challenges).where(challenges.c.expires_at_ms < expires - 3_600_000))
    connection.execute(
        insert(challenges).values(challenge=challenge, key_id=key_id, expires_at_ms=expires)
    )


def take_challenge(connection: Connection, challenge: bytes, key_id: bytes, now_ms: int) -> bool:
    """Consume a challenge: True once if it was issued for ``key_id`` and is unexpired."""
    result = connection.execute(
        delete(challenges).where(
            challenges.c.challenge == challenge,
            challenges.c.key_id == key_id,
            challenges.c.expires_at_ms > now_ms,
        )
    )
    return result.rowcount == 1


_Q_IS_PRIVILEGED = Direct(
    select(correspondents.c.account_id).where(
        correspondents.c.account_id == bindparam("p_account"),
        correspondents.c.revoked_at_ms.is_(None),
    )
)


def is_privileged(connection: Connection, account_id: str) -> bool:
    """True when the account is a verified, unrevoked privileged correspondent."""
    return _Q_IS_PRIVILEGED.first(connection, {"p_account": account_id}) is not None


def correspondent(connection: Connection, account_id: str) -> Row[Any] | None:
    """The correspondent row of an account, if it was ever verified."""
    return connection.execute(
        select(correspondents).where(correspondents.c.account_id == account_id)
    ).first()


def verify_correspondent(
    connection: Connection, account_id: str, kind: str, evidence: str, officer: str, now_ms: int
) -> None:
    """Record (or renew) a verification by an administrator."""
    account(connection, account_id)
    values = {
        "kind": kind,
        "evidence_reference": evidence,
        "verified_by": officer,
        "verified_at_ms": now_ms,
        "revoked_at_ms": None,
        "revoked_by": None,
    }
    if correspondent(connection, account_id) is None:
        connection.execute(insert(correspondents).values(account_id=account_id, **values))
    else:
        connection.execute(
            update(correspondents).where(correspondents.c.account_id == account_id).values(**values)
        )


def revoke_correspondent(
    connection: Connection, account_id: str, officer: str, now_ms: int
) -> None:
    """End an account's privileged status."""
    result = connection.execute(
        update(correspondents)
        .where(correspondents.c.account_id == account_id, correspondents.c.revoked_at_ms.is_(None))
        .values(revoked_at_ms=now_ms, revoked_by=officer)
    )
    if result.rowcount != 1:
        raise NotFound("no verified correspondent with this account")


# --------------------------------------------------------------------------- institutions


def create_institution(connection: Connection, institution_id: str, name: str, now_ms: int) -> None:
    """A new institution; AlreadyExists if the id is taken."""
    try:
        with connection.begin_nested():
            connection.execute(
                insert(institutions).values(id=institution_id, name=name, created_at_ms=now_ms)
            )
    except IntegrityError as exc:
        raise AlreadyExists(f"institution {institution_id!r} exists already") from exc


def institution(connection: Connection, institution_id: str) -> Row[Any]:
    """An institution; NotFound if absent."""
    row = connection.execute(
        select(institutions).where(institutions.c.id == institution_id)
    ).first()
    if row is None:
        raise NotFound(f"no institution {institution_id!r}")
    return row


def list_institutions(connection: Connection, only: frozenset[str] | None) -> list[Row[Any]]:
    """Institutions, all or those in ``only``."""
    query = select(institutions).order_by(institutions.c.id)
    if only is not None:
        query = query.where(institutions.c.id.in_(only))
    return list(connection.execute(query))


# --------------------------------------------------------------------------- regimes


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
            )


def regime(connection: Connection, name: str) -> Row[Any]:
    """A regime; NotFound if absent."""
    row = connection.execute(select(regimes).where(regimes.c.name == name)).first()
    if row is None:
        raise NotFound(f"no regime {name!r}")
    return row


def set_regime(
    connection: Connection, name: str, policy_value: int, description: str, now_ms: int
) -> None:
    """Create or change a regime's policy."""
    values = {"policy": policy_value, "description": description, "updated_at_ms": now_ms}
    result = connection.execute(update(regimes).where(regimes.c.name == name).values(**values))
    if result.rowcount == 0:
        connection.execute(insert(regimes).values(name=name, **values))


def list_regimes(connection: Connection) -> list[Row[Any]]:
    """Every regime."""
    return list(connection.execute(select(regimes).order_by(regimes.c.name)))


# --------------------------------------------------------------------------- detainees


_Q_DETAINEE = Direct(
    select(detainees, regimes.c.policy)
    .join(regimes, regimes.c.name == detainees.c.regime)
    .where(detainees.c.id == bindparam("p_id"))
)


def detainee(connection: Connection, detainee_id: str) -> Record:
    """A detainee with its regime's policy; NotFound if absent."""
    row = _Q_DETAINEE.first(connection, {"p_id": detainee_id})
    if row is None:
        raise NotFound("no such detainee")
    return row


def intake_detainee(
    connection: Connection, detainee_id: str, institution_id: str, regime_name: str, now_ms: int
) -> None:
    """Register a detainee at an institution."""
    institution(connection, institution_id)
    regime(connection, regime_name)
    try:
        with connection.begin_nested():
            connection.execute(
                insert(detainees).values(
                    id=detainee_id,
                    institution_id=institution_id,
                    regime=regime_name,
                    status=policy.HELD,
                    created_at_ms=now_ms,
                    updated_at_ms=now_ms,
                )
            )
    except IntegrityError as exc:
        raise AlreadyExists("a detainee with this id exists already") from exc


def list_detainees(
    connection: Connection, institution_ids: frozenset[str] | None, after: str, limit: int
) -> list[Row[Any]]:
    """Detainees ordered by id, after ``after``, optionally within institutions."""
    query = select(detainees).where(detainees.c.id > after).order_by(detainees.c.id).limit(limit)
    if institution_ids is not None:
        query = query.where(detainees.c.institution_id.in_(institution_ids))
    return list(connection.execute(query))


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
    source = str(current.institution_id)
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
                messages.c.state.not_in(list(states.FINAL)),
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


# --------------------------------------------------------------------------- contacts


def request_contact(
    connection: Connection, account_id: str, detainee_id: str, relationship: str, now_ms: int
) -> Record:
    """A contact request (idempotent while it waits or is approved; an expired one is renewed).

    The id is not looked up: a request for an id nobody is held under is stored and
    answered like any other, and simply never gets approved (docs/gateway.md).
    """
    existing = contact_between(connection, account_id, detainee_id)
    if existing is not None:
        status = policy.contact_status(existing.status, existing.requested_at_ms, now_ms)
        if status == policy.EXPIRED:
            connection.execute(
                update(contacts)
                .where(contacts.c.id == existing.id)
                .values(requested_at_ms=now_ms, relationship=relationship)
            )
        elif status not in (policy.REQUESTED, policy.APPROVED):
            raise FailedPrecondition("this contact was refused or revoked by the institution")
        found = contact_between(connection, account_id, detainee_id)
        assert found is not None
        return found
    connection.execute(
        insert(contacts).values(
            id=new_id("ct"),
            account_id=account_id,
            detainee_id=detainee_id,
            relationship=relationship,
            status=common_pb2.CONTACT_STATUS_REQUESTED,
            requested_at_ms=now_ms,
        )
    )
    found = contact_between(connection, account_id, detainee_id)
    assert found is not None
    return found


_Q_CONTACT_BETWEEN = Direct(
    select(contacts).where(
        contacts.c.account_id == bindparam("p_account"),
        contacts.c.detainee_id == bindparam("p_detainee"),
    )
)


def contact_between(connection: Connection, account_id: str, detainee_id: str) -> Record | None:
    """The contact of an account with a detainee, if any."""
    return _Q_CONTACT_BETWEEN.first(
        connection, {"p_account": account_id, "p_detainee": detainee_id}
    )


def contact(connection: Connection, contact_id: str) -> Row[Any]:
    """A contact with the account's display name; NotFound if absent."""
    row = connection.execute(
        select(contacts, accounts.c.display_name)
        .join(accounts, accounts.c.id == contacts.c.account_id)
        .where(contacts.c.id == contact_id)
    ).first()
    if row is None:
        raise NotFound("no such contact")
    return row


def contacts_of_account(connection: Connection, account_id: str) -> list[Row[Any]]:
    """An account's contacts with each detainee's status (None: no detainee by that id)."""
    return list(
        connection.execute(
            select(contacts, detainees.c.status.label("detainee_status"))
            .outerjoin(detainees, detainees.c.id == contacts.c.detainee_id)
            .where(contacts.c.account_id == account_id)
            .order_by(contacts.c.requested_at_ms)
        )
    )


def contact_requests(
    connection: Connection, institution_ids: frozenset[str] | None, status: int, now_ms: int
) -> list[Row[Any]]:
    """Contacts of detainees in ``institution_ids`` (None: all), optionally by status.

    REQUESTED lists only the requests still waiting; EXPIRED those left too long.
    """
    query = (
        select(contacts, accounts.c.display_name)
        .join(accounts, accounts.c.id == contacts.c.account_id)
        .join(detainees, detainees.c.id == contacts.c.detainee_id)
        .order_by(contacts.c.requested_at_ms)
    )
    if institution_ids is not None:
        query = query.where(detainees.c.institution_id.in_(institution_ids))
    oldest = now_ms - policy.CONTACT_REQUEST_TTL_MS
    if status == policy.EXPIRED:
        query = query.where(
            contacts.c.status == policy.REQUESTED, contacts.c.requested_at_ms <= oldest
        )
    elif status == policy.REQUESTED:
        query = query.where(contacts.c.status == status, contacts.c.requested_at_ms > oldest)
    elif status:
        query = query.where(contacts.c.status == status)
    return list(connection.execute(query))


def decide_contact(
    connection: Connection, contact_id: str, decision: int, officer: str, note: str, now_ms: int
) -> None:
    """Approve, reject or revoke a contact; an expired request cannot be decided."""
    current = contact(connection, contact_id)
    if policy.contact_status(current.status, current.requested_at_ms, now_ms) == policy.EXPIRED:
        raise FailedPrecondition("the request has expired; the relative may ask again")
    allowed: dict[int, set[int]] = {
        common_pb2.CONTACT_STATUS_APPROVED: {common_pb2.CONTACT_STATUS_REQUESTED},
        common_pb2.CONTACT_STATUS_REJECTED: {common_pb2.CONTACT_STATUS_REQUESTED},
        common_pb2.CONTACT_STATUS_REVOKED: {common_pb2.CONTACT_STATUS_APPROVED},
    }
    if current.status not in allowed.get(decision, set()):
        raise FailedPrecondition("this decision does not apply to the contact's current status")
    connection.execute(
        update(contacts)
        .where(contacts.c.id == contact_id)
        .values(status=decision, decided_by=officer, decided_at_ms=now_ms, note=note)
    )


def approved_contacts_of_detainee(connection: Connection, detainee_id: str) -> list[Row[Any]]:
    """Approved contacts of a detainee with the accounts' names."""
    return list(
        connection.execute(
            select(contacts, accounts.c.display_name)
            .join(accounts, accounts.c.id == contacts.c.account_id)
            .where(
                contacts.c.detainee_id == detainee_id,
                contacts.c.status == common_pb2.CONTACT_STATUS_APPROVED,
            )
        )
    )


# --------------------------------------------------------------------------- mailbox keys


def add_mailbox_key(
    connection: Connection,
    key_id: bytes,
    detainee_id: str,
    institution_id: str,
    wrapped: bytes,
    wrapped_to: bytes,
    now_ms: int,
) -> None:
    """Keep a mailbox secret wrapped to an institution key."""
    try:
        with connection.begin_nested():
            connection.execute(
                insert(mailbox_keys).values(
                    key_id=key_id,
                    institution_id=institution_id,
                    detainee_id=detainee_id,
                    wrapped_secret=wrapped,
                    wrapped_to_key_id=wrapped_to,
                    created_at_ms=now_ms,
                )
            )
    except IntegrityError as exc:
        raise AlreadyExists("this mailbox key is already held by the institution") from exc


def mailbox_keys_for(
    connection: Connection, institution_id: str, detainee_id: str
) -> list[Row[Any]]:
    """Wrapped mailbox secrets the institution holds (for one detainee, or all held there)."""
    query = (
        select(mailbox_keys, key_records.c.record)
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
    return list(connection.execute(query))


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


def pending_handovers(connection: Connection, institution_id: str) -> list[Row[Any]]:
    """Handovers this institution owes."""
    return list(
        connection.execute(
            select(handovers).where(
                handovers.c.from_institution_id == institution_id,
                handovers.c.completed_at_ms.is_(None),
            )
        )
    )


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
    rows = _Q_HELD_MAILBOX_KEY_IDS.rows(
        connection, {"p_institution": institution_id, "p_detainee": detainee_id}
    )
    return [row.key_id for row in rows]


# --------------------------------------------------------------------------- screening orders


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


def order(connection: Connection, order_id: str) -> Row[Any]:
    """A screening order; NotFound if absent."""
    row = connection.execute(
        select(screening_orders).where(screening_orders.c.id == order_id)
    ).first()
    if row is None:
        raise NotFound("no such screening order")
    return row


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
) -> list[Row[Any]]:
    """Orders of one detainee, or of every detainee in the institutions."""
    query = (
        select(screening_orders)
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
    return list(connection.execute(query))


_Q_ORDERS_OF_DETAINEE = Direct(
    select(screening_orders).where(screening_orders.c.detainee_id == bindparam("p_detainee"))
)


def order_windows(connection: Connection, detainee_id: str) -> list[policy.OrderWindow]:
    """Every order of a detainee as the policy sees it."""
    rows = _Q_ORDERS_OF_DETAINEE.rows(connection, {"p_detainee": detainee_id})
    return [
        policy.OrderWindow(r.direction, r.starts_at_ms, r.ends_at_ms, r.ended_early_at_ms)
        for r in rows
    ]


# --------------------------------------------------------------------------- messages and feeds


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


def log_acceptance(connection: Connection, new: NewMessage, actor: str) -> translog.Appended:
    """Record a message's acceptance: what a receipt proves, and what the state replays from.

    It names the message, its detainee and the relative's account, the envelope's digest,
    the sender's key and whether the correspondence is privileged; never the institution,
    because the sender of a receipt may not learn it (SPEC P11).
    """
    return log(
        connection,
        LogAction.MESSAGE_ACCEPTED,
        actor,
        new.accepted_at_ms,
        [
            ("message", new.message_id.hex()),
            ("detainee", new.detainee_id),
            ("account", new.account_id),
        ],
        envelope_digest=new.envelope_digest.hex(),
        scope=frozenset({new.institution_id}),
        direction="inbound" if new.direction == policy.INBOUND else "outbound",
        privileged="true" if new.privileged else "false",
        sender_key=new.sender_key_id.hex(),
    )


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
_SET_STATE: dict[tuple[str, ...], Direct] = {}


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


def queue(
    connection: Connection,
    institution_ids: frozenset[str] | None,
    detainee_id: str,
    limit: int,
    after: tuple[int, int] | None,
) -> list[Row[Any]]:
    """The screening queue, longest waiting first; a page starts after (queued_at_ms, seq)."""
    query = (
        select(messages)
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
    return list(connection.execute(query))


def count_by_state(connection: Connection, institution_id: str) -> dict[int, int]:
    """How many messages of an institution are in each state."""
    rows = connection.execute(
        select(messages.c.state, func.count())
        .where(messages.c.institution_id == institution_id)
        .group_by(messages.c.state)
    )
    return {int(state): int(count) for state, count in rows}


_Q_TERMINAL_BY_FINGERPRINT = Direct(
    select(terminals).where(terminals.c.fingerprint == bindparam("p_fingerprint"))
)


def terminal_by_fingerprint(connection: Connection, fingerprint: str) -> Record | None:
    """A registered terminal by its certificate fingerprint."""
    return _Q_TERMINAL_BY_FINGERPRINT.first(connection, {"p_fingerprint": fingerprint})


def add_terminal(
    connection: Connection,
    terminal_id: str,
    institution_id: str,
    fingerprint: str,
    certificate: str,
    now_ms: int,
    expires_ms: int,
) -> None:
    """Register a terminal's certificate."""
    connection.execute(
        insert(terminals).values(
            id=terminal_id,
            institution_id=institution_id,
            fingerprint=fingerprint,
            certificate=certificate,
            issued_at_ms=now_ms,
            expires_at_ms=expires_ms,
        )
    )


def terminal(connection: Connection, terminal_id: str) -> Row[Any]:
    """A terminal; NotFound if absent."""
    row = connection.execute(select(terminals).where(terminals.c.id == terminal_id)).first()
    if row is None:
        raise NotFound("no such terminal")
    return row


def revoke_terminal(connection: Connection, terminal_id: str, now_ms: int) -> None:
    """Revoke a terminal's certificate: its next call is refused."""
    result = connection.execute(
        update(terminals)
        .where(terminals.c.id == terminal_id, terminals.c.revoked_at_ms.is_(None))
        .values(revoked_at_ms=now_ms)
    )
    if result.rowcount != 1:
        raise FailedPrecondition("the terminal is revoked already")


def list_terminals(
    connection: Connection, institution_ids: frozenset[str] | None
) -> list[Row[Any]]:
    """Terminals, optionally within institutions."""
    query = select(terminals).order_by(terminals.c.issued_at_ms)
    if institution_ids is not None:
        query = query.where(terminals.c.institution_id.in_(institution_ids))
    return list(connection.execute(query))


def retrospective_windows(
    connection: Connection, request_id: str, detainee_id: str
) -> policy.RetrospectiveWindow | None:
    """A retrospective request as the policy sees it, if it concerns ``detainee_id``."""
    row = connection.execute(
        select(retrospective_requests).where(
            retrospective_requests.c.id == request_id,
            retrospective_requests.c.detainee_id == detainee_id,
        )
    ).first()
    if row is None:
        return None
    return policy.RetrospectiveWindow(
        row.status, row.direction, row.period_start_ms, row.period_end_ms, row.valid_until_ms
    )


# --------------------------------------------------------------------------- review


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


def escrowed_at(connection: Connection, below: int, position: int) -> Row[Any]:
    """The message escrowed ``position``-th (from 0) by an entry before index ``below``.

    The order is the log's: escrow audits draw their samples by position in it.
    """
    row = connection.execute(
        select(messages)
        .where(messages.c.escrow_log_index < below)
        .order_by(messages.c.escrow_log_index)
        .offset(position)
        .limit(1)
    ).first()
    if row is None:
        raise NotFound("no escrowed message at that position")
    return row


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


def retrospective(connection: Connection, request_id: str) -> Row[Any]:
    """A retrospective request; NotFound if absent."""
    row = connection.execute(
        select(retrospective_requests).where(retrospective_requests.c.id == request_id)
    ).first()
    if row is None:
        raise NotFound("no such retrospective request")
    return row


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
) -> list[Row[Any]]:
    """Retrospective requests in the institutions, optionally by status."""
    query = (
        select(retrospective_requests)
        .where(retrospective_requests.c.id > after)
        .order_by(retrospective_requests.c.id)
        .limit(limit)
    )
    if institution_ids is not None:
        query = query.where(retrospective_requests.c.institution_id.in_(institution_ids))
    if status:
        query = query.where(retrospective_requests.c.status == status)
    return list(connection.execute(query))


def messages_in_period(
    connection: Connection,
    detainee_id: str,
    directions: Sequence[int],
    start_ms: int,
    end_ms: int,
    after_seq: int,
    limit: int,
) -> list[Row[Any]]:
    """Non-privileged, escrowed messages of a detainee accepted in [start, end)."""
    return list(
        connection.execute(
            select(messages)
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
    )


# --------------------------------------------------------------------------- staff


def staff_member(connection: Connection, name: str) -> Row[Any] | None:
    """A staff member's roles and institutions as last recorded, if ever."""
    return connection.execute(select(staff_members).where(staff_members.c.name == name)).first()


def record_staff(
    connection: Connection,
    name: str,
    subject: str,
    roles: str,
    institutions: str,
    now_ms: int,
    log_index: int,
) -> None:
    """Store a staff member's roles and institutions (recorded in the log by the caller)."""
    values = {
        "subject": subject,
        "roles": roles,
        "institutions": institutions,
        "recorded_at_ms": now_ms,
        "log_index": log_index,
    }
    changed = connection.execute(
        update(staff_members).where(staff_members.c.name == name).values(**values)
    )
    if changed.rowcount == 0:
        connection.execute(insert(staff_members).values(name=name, **values))
