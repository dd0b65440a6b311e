"""Accounts, privileged correspondents, and contacts between accounts and detainees."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, bindparam, insert, select, update

from sealpost.gateway import policy
from sealpost.gateway.errors import FailedPrecondition, NotFound
from sealpost.gateway.storage.direct import Direct
from sealpost.gateway.storage.schema import accounts, contacts, correspondents, detainees
from sealpost.gateway.store._common import columns, first, found, new_id
from sealpost.v1 import common_pb2


class AccountRow(NamedTuple):
    """A relative's or correspondent's account."""

    id: str
    display_name: str
    created_at_ms: int


class CorrespondentRow(NamedTuple):
    """An account's verification as a privileged correspondent (a lawyer, say)."""

    account_id: str
    kind: str
    evidence_reference: str
    verified_by: str
    verified_at_ms: int
    revoked_at_ms: int | None
    revoked_by: str | None


class ContactRow(NamedTuple):
    """An account's request to write to a detainee, and the institution's decision."""

    id: str
    account_id: str
    detainee_id: str
    relationship: str
    #: As stored: an undecided request shows as EXPIRED after a while (policy.contact_status).
    status: common_pb2.ContactStatus.ValueType
    requested_at_ms: int
    decided_by: str | None
    decided_at_ms: int | None
    note: str | None


class NamedContactRow(NamedTuple):
    """A contact with its account's display name (what staff see)."""

    contact: ContactRow
    display_name: str


class AccountContactRow(NamedTuple):
    """A contact with its detainee's status (what the relative sees)."""

    contact: ContactRow
    #: None when nobody is held under the id.
    detainee_status: common_pb2.DetaineeStatus.ValueType | None


_ACCOUNT = columns(AccountRow, accounts)
_CORRESPONDENT = columns(CorrespondentRow, correspondents)
_CONTACT = columns(ContactRow, contacts)


def create_account(connection: Connection, display_name: str, now_ms: int) -> str:
    """A new relative or correspondent account."""
    account_id = new_id("acct")
    connection.execute(
        insert(accounts).values(id=account_id, display_name=display_name, created_at_ms=now_ms)
    )
    return account_id


def account(connection: Connection, account_id: str) -> AccountRow:
    """An account; NotFound if absent."""
    query = select(*_ACCOUNT).where(accounts.c.id == account_id)
    return found(first(connection, query, AccountRow), "no such account")


_Q_IS_PRIVILEGED = Direct(
    select(correspondents.c.account_id).where(
        correspondents.c.account_id == bindparam("p_account"),
        correspondents.c.revoked_at_ms.is_(None),
    )
)


def is_privileged(connection: Connection, account_id: str) -> bool:
    """True when the account is a verified, unrevoked privileged correspondent."""
    return _Q_IS_PRIVILEGED.first(connection, {"p_account": account_id}) is not None


def correspondent(connection: Connection, account_id: str) -> CorrespondentRow | None:
    """The correspondent row of an account, if it was ever verified."""
    query = select(*_CORRESPONDENT).where(correspondents.c.account_id == account_id)
    return first(connection, query, CorrespondentRow)


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


def request_contact(
    connection: Connection, account_id: str, detainee_id: str, relationship: str, now_ms: int
) -> ContactRow:
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
        current = contact_between(connection, account_id, detainee_id)
        assert current is not None
        return current
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
    current = contact_between(connection, account_id, detainee_id)
    assert current is not None
    return current


_Q_CONTACT_BETWEEN = Direct(
    select(*_CONTACT).where(
        contacts.c.account_id == bindparam("p_account"),
        contacts.c.detainee_id == bindparam("p_detainee"),
    ),
    ContactRow,
)


def contact_between(connection: Connection, account_id: str, detainee_id: str) -> ContactRow | None:
    """The contact of an account with a detainee, if any."""
    return _Q_CONTACT_BETWEEN.first(
        connection, {"p_account": account_id, "p_detainee": detainee_id}
    )


#: Contacts with their accounts' display names (NamedContactRow), to narrow down.
_NAMED_CONTACT = select(*_CONTACT, accounts.c.display_name).join(
    accounts, accounts.c.id == contacts.c.account_id
)


def _named_contacts(connection: Connection, query: Select[Any]) -> list[NamedContactRow]:
    """The rows of ``query``, a narrowed ``_NAMED_CONTACT``."""
    listed = []
    for *stored, display_name in connection.execute(query):
        listed.append(NamedContactRow(ContactRow._make(stored), display_name))
    return listed


def contact(connection: Connection, contact_id: str) -> NamedContactRow:
    """A contact with the account's display name; NotFound if absent."""
    listed = _named_contacts(connection, _NAMED_CONTACT.where(contacts.c.id == contact_id))
    return found(listed[0] if listed else None, "no such contact")


def contacts_of_account(connection: Connection, account_id: str) -> list[AccountContactRow]:
    """An account's contacts with each detainee's status (None: no detainee by that id)."""
    result = connection.execute(
        select(*_CONTACT, detainees.c.status.label("detainee_status"))
        .outerjoin(detainees, detainees.c.id == contacts.c.detainee_id)
        .where(contacts.c.account_id == account_id)
        .order_by(contacts.c.requested_at_ms)
    )
    listed = []
    for *stored, detainee_status in result:
        listed.append(AccountContactRow(ContactRow._make(stored), detainee_status))
    return listed


def contact_requests(
    connection: Connection, institution_ids: frozenset[str] | None, status: int, now_ms: int
) -> list[NamedContactRow]:
    """Contacts of detainees in ``institution_ids`` (None: all), optionally by status.

    REQUESTED lists only the requests still waiting; EXPIRED those left too long.
    """
    query = _NAMED_CONTACT.join(detainees, detainees.c.id == contacts.c.detainee_id).order_by(
        contacts.c.requested_at_ms
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
    return _named_contacts(connection, query)


def decide_contact(
    connection: Connection, contact_id: str, decision: int, officer: str, note: str, now_ms: int
) -> None:
    """Approve, reject or revoke a contact; an expired request cannot be decided."""
    current = contact(connection, contact_id).contact
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


def approved_contacts_of_detainee(
    connection: Connection, detainee_id: str
) -> list[NamedContactRow]:
    """Approved contacts of a detainee with the accounts' names."""
    query = _NAMED_CONTACT.where(
        contacts.c.detainee_id == detainee_id,
        contacts.c.status == common_pb2.CONTACT_STATUS_APPROVED,
    )
    return _named_contacts(connection, query)
