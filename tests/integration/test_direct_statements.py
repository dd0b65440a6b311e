"""Hot statements on the driver (gateway/storage/direct.py) against SQLAlchemy, on both databases.

A ``Direct`` statement must give exactly what SQLAlchemy gives for the same statement:
the same values with the same Python types (SQLite's Boolean as bool, binary as bytes,
NULL as None), the same column names, the same row counts; inside SQLAlchemy's
transaction and savepoints; and driver errors as SQLAlchemy's exceptions, without the
bound values in the message. On PostgreSQL a lost server connection must invalidate
the connection so the next transaction gets a new one.
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple

import pytest
from sqlalchemy import Connection, bindparam, insert, make_url, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from sealpost.gateway import policy, states, store
from sealpost.gateway.errors import Unavailable
from sealpost.gateway.storage.database import Database
from sealpost.gateway.storage.direct import Direct, savepoint
from sealpost.gateway.storage.schema import accounts, correspondents, key_records, messages
from sealpost.gateway.store import keys as store_keys
from sealpost.gateway.store import messages as store_messages
from sealpost.gateway.store import people as store_people
from sealpost.gateway.store import placements as store_placements
from sealpost.v1 import common_pb2, keys_pb2

pytestmark = pytest.mark.integration

NOW = 1_767_225_600_000
MESSAGE_ID = bytes(range(16))
SECRET_ENVELOPE = b"sealed bytes that must never appear in an error message"


@pytest.fixture
def db(db: Database) -> Database:
    """The migrated database of each kind (tests/conftest.py), with one of everything."""
    db.write(populate)
    return db


def populate(connection: Connection) -> None:
    store.ensure_default_regimes(connection, NOW)
    store.create_institution(connection, "pi-a", "PI A", NOW)
    store.intake_detainee(connection, "d-1", "pi-a", "regular", NOW)
    connection.execute(insert(accounts).values(id="acct-1", display_name="Anna", created_at_ms=NOW))
    connection.execute(
        insert(key_records).values(
            id=b"k" * 32,
            purpose=keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE,
            subject="acct-1",
            record=b"\x00record\xff",
            not_before=0,
            not_after=2**40,
            created_at_ms=NOW,
        )
    )
    connection.execute(
        insert(correspondents).values(
            account_id="acct-1",
            kind="lawyer",
            evidence_reference="bar-123",
            verified_by="admin",
            verified_at_ms=NOW,
        )
    )
    store.request_contact(connection, "acct-1", "d-1", "sister", NOW)
    new = store.NewMessage(
        message_id=MESSAGE_ID,
        direction=policy.INBOUND,
        detainee_id="d-1",
        institution_id="pi-a",
        account_id="acct-1",
        sender_key_id=b"k" * 32,
        envelope=SECRET_ENVELOPE,
        envelope_digest=b"\x01" * 32,
        privileged=True,
        state=states.RELEASED,
        accepted_at_ms=NOW,
    )
    store.insert_message(connection, new, 0)
    store.add_feed(connection, "institution:pi-a", MESSAGE_ID)


def _same(connection: Connection, direct: Direct[Any], parameters: dict[str, Any]) -> list[Any]:
    """Direct and SQLAlchemy agree on names, values and value types; returns the rows."""
    ours = direct.rows(connection, parameters)
    theirs = list(connection.execute(direct.statement, parameters))
    assert ours, "the comparison needs rows"
    assert [row._fields for row in ours] == [tuple(row._fields) for row in theirs]
    assert [tuple(row) for row in ours] == [tuple(row) for row in theirs]
    assert [[type(v) for v in row] for row in ours] == [[type(v) for v in row] for row in theirs]
    return ours


def test_selects_match_sqlalchemy(db: Database) -> None:
    def check(connection: Connection) -> None:
        key = {"p_id": b"k" * 32}
        assert _same(connection, store_keys._Q_KEY_RECORD, key)[0].record == b"\x00record\xff"
        current = {
            "p_purpose": keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE,
            "p_subject": "acct-1",
            "p_now_s": NOW // 1000,
        }
        assert _same(connection, store_keys._Q_CURRENT_KEY, current)[0].revoked_at_ms is None
        _same(connection, store_people._Q_IS_PRIVILEGED, {"p_account": "acct-1"})
        assert (
            _same(connection, store_placements._Q_DETAINEE, {"p_id": "d-1"})[0].policy is not None
        )
        contact = {"p_account": "acct-1", "p_detainee": "d-1"}
        row = _same(connection, store_people._Q_CONTACT_BETWEEN, contact)[0]
        assert row.status == common_pb2.CONTACT_STATUS_REQUESTED
        message = _same(connection, store_messages._Q_MESSAGE_BY_ID[False], {"p_id": MESSAGE_ID})[0]
        assert message.privileged is True  # SQLite stores 1; both paths give a bool
        assert message.envelope == SECRET_ENVELOPE
        assert message.escrow is None
        feed = {"p_audience": "institution:pi-a", "p_after": 0, "p_limit": 10}
        rows = _same(connection, store_messages._Q_FEED_AFTER, feed)
        assert rows[0]._fields[:2] == ("seq", "seq_1")  # a repeated name, as SQLAlchemy names it
        assert rows[0].display_name == "Anna"
        assert rows[0].sender_record == b"\x00record\xff"
        deliveries = {"p_institution": "pi-a", "p_after": 0, "p_limit": 10}
        _same(connection, store_messages._Q_DELIVERIES, deliveries)
        assert store_placements._Q_MAILBOX_KEY_OWNER.scalar(connection, {"p_id": b"none"}) is None
        assert store_keys._Q_KEY_RECORD.first(connection, {"p_id": b"none"}) is None

    db.read(check)


def test_rowcounts_and_savepoints(db: Database) -> None:
    revoke = Direct(
        correspondents.update()
        .where(correspondents.c.account_id == bindparam("p_account"))
        .values(revoked_at_ms=bindparam("p_at"))
    )

    def change(connection: Connection) -> None:
        assert revoke.execute(connection, {"p_account": "nobody", "p_at": NOW}) == 0
        with connection.begin_nested() as savepoint:
            assert revoke.execute(connection, {"p_account": "acct-1", "p_at": NOW}) == 1
            assert not store.is_privileged(connection, "acct-1")
            savepoint.rollback()
        assert store.is_privileged(connection, "acct-1")  # undone with its savepoint

    db.write(change)
    assert db.read(lambda c: store.is_privileged(c, "acct-1"))


def test_a_failed_write_is_undone_with_the_transaction(db: Database) -> None:
    def add_then_fail(connection: Connection) -> None:
        store.add_feed(connection, "account:acct-1", MESSAGE_ID)
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        db.write(add_then_fail)
    feed = {"p_audience": "account:acct-1", "p_after": 0, "p_limit": 10}
    assert db.read(lambda c: store_messages._Q_FEED_AFTER.rows(c, feed)) == []


def test_a_constraint_is_sqlalchemys_integrity_error_without_the_values(db: Database) -> None:
    values = db.read(_stored_message_values)

    with pytest.raises(IntegrityError) as caught:
        db.write(lambda c: store_messages._Q_INSERT_MESSAGE.execute(c, values))
    assert caught.value.orig is not None
    assert "sealed bytes" not in str(caught.value)
    assert SECRET_ENVELOPE.hex() not in str(caught.value)
    count = db.read(lambda c: c.execute(select(messages.c.seq)).all())
    assert len(count) == 1


class _Account(NamedTuple):
    id: str
    display_name: str
    created_at_ms: int


def test_rows_of_a_named_tuple_class(db: Database) -> None:
    typed = Direct(select(accounts).where(accounts.c.id == bindparam("p_id")), _Account)
    rows = db.read(lambda c: _same(c, typed, {"p_id": "acct-1"}))
    assert rows == [_Account("acct-1", "Anna", NOW)]
    assert type(rows[0]) is _Account


def test_a_named_tuple_class_must_hold_the_selected_columns_in_order() -> None:
    with pytest.raises(TypeError, match="_Account"):
        Direct(select(accounts.c.display_name, accounts.c.id, accounts.c.created_at_ms), _Account)
    with pytest.raises(TypeError, match="_Account"):
        Direct(select(accounts.c.id, accounts.c.display_name), _Account)
    with pytest.raises(TypeError, match="_Account"):
        Direct(insert(accounts), _Account)


def test_many_rows_in_one_call(db: Database) -> None:
    add = Direct(insert(accounts))
    rows = [{"id": f"acct-m{i}", "display_name": f"M {i}", "created_at_ms": NOW} for i in range(5)]
    db.write(lambda c: add.execute_many(c, rows))
    names = db.read(
        lambda c: c.execute(select(accounts.c.id).where(accounts.c.id.like("acct-m%"))).all()
    )
    assert len(names) == 5


def test_expanding_parameters_are_refused(db: Database) -> None:
    wide = Direct(select(accounts).where(accounts.c.id.in_(bindparam("p_ids", expanding=True))))
    with pytest.raises(ValueError, match="expanding"):
        db.read(lambda c: wide.rows(c, {"p_ids": ["acct-1"]}))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_lost_postgresql_connection_is_invalidated(db: Database) -> None:

    seen: list[bool] = []

    def lose_own_connection(connection: Connection) -> None:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with db.writer.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()
        try:
            store.key_record(connection, b"k" * 32)
        finally:
            seen.append(connection.invalidated)  # before the transaction's own clean-up

    with pytest.raises(Unavailable) as caught:
        db.read(lose_own_connection)
    assert seen == [True]
    cause = caught.value.__cause__
    assert isinstance(cause, OperationalError)
    assert cause.connection_invalidated
    assert db.read(lambda c: store.key_record(c, b"k" * 32)) is not None  # a new connection


def test_a_driver_savepoint_undoes_only_its_block(db: Database) -> None:
    def refused(connection: Connection) -> None:
        with savepoint(connection):
            store.add_feed(connection, "account:undone", MESSAGE_ID)
            raise RuntimeError("refused")

    def jobs(connection: Connection) -> None:
        with savepoint(connection):
            store.add_feed(connection, "account:kept", MESSAGE_ID)
            with connection.begin_nested():  # SQLAlchemy's own savepoints nest inside
                store.add_feed(connection, "account:kept", MESSAGE_ID)
        with pytest.raises(RuntimeError):
            refused(connection)
        values = _stored_message_values(connection)
        with pytest.raises(IntegrityError), savepoint(connection):  # PostgreSQL must recover
            store_messages._Q_INSERT_MESSAGE.execute(connection, values)
        store.add_feed(connection, "account:after", MESSAGE_ID)

    db.write(jobs)

    def count(audience: str) -> int:
        feed = {"p_audience": audience, "p_after": 0, "p_limit": 10}
        return len(db.read(lambda c: store_messages._Q_FEED_AFTER.rows(c, feed)))

    assert (count("account:kept"), count("account:undone"), count("account:after")) == (2, 0, 1)


def _stored_message_values(connection: Connection) -> dict[str, Any]:
    row = store.message(connection, MESSAGE_ID)
    return {name: getattr(row, name) for name in row._fields if name != "seq"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_sqlite_read_is_one_transaction_begun_on_the_driver(db: Database) -> None:
    feed = {"p_audience": "account:snapshot", "p_after": 0, "p_limit": 10}

    def read_around_a_write(connection: Connection) -> tuple[int, int, int]:
        before = len(store_messages._Q_FEED_AFTER.rows(connection, feed))
        db.write(lambda c: store.add_feed(c, "account:snapshot", MESSAGE_ID))
        # SQLAlchemy's own execution inside the read joins the same transaction.
        through_sqlalchemy = connection.execute(select(accounts.c.id)).all()
        return (
            before,
            len(store_messages._Q_FEED_AFTER.rows(connection, feed)),
            len(through_sqlalchemy),
        )

    assert db.read(read_around_a_write) == (0, 0, 1)  # the write is not seen mid-read
    assert len(db.read(lambda c: store_messages._Q_FEED_AFTER.rows(c, feed))) == 1

    def fail(connection: Connection) -> None:
        store_messages._Q_FEED_AFTER.rows(connection, feed)
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        db.read(fail)
    db.write(lambda c: store.add_feed(c, "account:snapshot", MESSAGE_ID))
    # The failed read ended.
    assert len(db.read(lambda c: store_messages._Q_FEED_AFTER.rows(c, feed))) == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_sqlite_write_takes_the_write_lock_when_it_begins(db: Database) -> None:
    path = make_url(db.url).database
    assert path is not None

    def try_another_writer(_connection: Connection) -> str:
        other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            return str(exc)
        finally:
            other.close()
        return "not locked"

    assert db.write(try_another_writer) == "database is locked"  # before any statement ran
    assert try_another_writer(None) == "not locked"  # type: ignore[arg-type]  # and released
