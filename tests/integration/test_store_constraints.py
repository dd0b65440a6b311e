"""A constraint the database enforces comes out of the store as the gateway's own error.

Services never see SQLAlchemy's IntegrityError: the store function that inserts
raises AlreadyExists. Where it may happen in a transaction that goes on (a
registration, an institution), the insert runs in a savepoint, so on PostgreSQL,
which refuses every statement after a failed one, the transaction still commits.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, select

from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.gateway import store
from sealpost.gateway.errors import AlreadyExists
from sealpost.gateway.storage.database import Database
from sealpost.gateway.storage.schema import accounts, institutions, key_records
from sealpost.v1 import keys_pb2

pytestmark = pytest.mark.integration

NOW = 1_767_225_600_000
DEVICE = VerifiedKey(
    id=b"k" * 32,
    purpose=keys_pb2.KEY_PURPOSE_RELATIVE_DEVICE,
    subject="acct-1",
    encryption_key=b"e" * 32,
    signing_key=b"s" * 32,
    not_before=0,
    not_after=2**40,
    issuer_key_id=b"d" * 32,
)


def test_a_key_record_stored_twice_is_refused_and_the_transaction_goes_on(db: Database) -> None:
    def register_twice(connection: Connection) -> str:
        store.add_key_record(connection, DEVICE, b"record", NOW)
        with pytest.raises(AlreadyExists, match="this device key is registered already"):
            store.add_key_record(connection, DEVICE, b"record", NOW)
        return store.create_account(connection, "Anna", NOW)  # the transaction goes on

    account_id = db.write(register_twice)
    assert db.read(lambda c: c.execute(select(key_records.c.id)).scalars().all()) == [DEVICE.id]
    assert db.read(lambda c: c.execute(select(accounts.c.id)).scalars().all()) == [account_id]
    assert db.read(lambda c: store.latest_record(c, DEVICE.purpose, DEVICE.subject)) == b"record"


def test_an_institution_created_twice_is_refused_and_the_first_kept(db: Database) -> None:
    def create_twice(connection: Connection) -> None:
        store.create_institution(connection, "pi-a", "PI A", NOW)
        with pytest.raises(AlreadyExists, match="'pi-a' exists already"):
            store.create_institution(connection, "pi-a", "PI B", NOW)

    db.write(create_twice)
    assert db.read(lambda c: c.execute(select(institutions.c.name)).scalars().all()) == ["PI A"]
