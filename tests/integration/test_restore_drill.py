"""The restore drill: back up, send more, restore, and see the gap from every side.

On PostgreSQL (pg_dump and pg_restore from the same binaries) with an OpenBao of its
own: two messages are taken in and the database is backed up; two more are sent (their
relative holds receipts), taken in and witnessed by the terminal, and a screener opens
one under a logged grant. Then the database is lost and restored from the backup, and
the gateway started on it again. The rollback shows everywhere, as it must:

- the terminal's witness refuses the gateway's head, smaller than one it witnessed;
- `sealpost audit verify`, with the auditor's state file from before, reports it;
- the relative holds a receipt signed by the log for a message the gateway no longer
  knows, in a head larger than the gateway's newest;
- `sealpost audit reconcile` finds the screener's decrypt at the key server without
  a grant in the (restored) log.

And a database backup alone opens nothing: no data key is anywhere in it (every
32-byte run of every value is tried against each message's key commitment), and the
message text is not in it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from sealpost._internal.devservers import PostgresServer, _postgres_bin
from sealpost._internal.stack import Stack, approve_all, screening_order, setup_institutions
from sealpost.clients.scripted_day import audit_devices
from sealpost.clients.terminal.errors import LogWitnessError
from sealpost.clients.terminal.intake import IntakeLoop, MemoryStateStore
from sealpost.clients.terminal.witness import for_terminal
from sealpost.crypto import envelope as crypto_envelope
from sealpost.gateway.storage import schema
from sealpost.gateway.storage.database import create_database_engine
from sealpost.v1 import envelope_pb2
from tests.integration.test_state_follows_log import log_key
from tests.programs import sealpost

pytestmark = pytest.mark.integration

A = "pi-herstel"
BEFORE = ("Eerste brief: de sleutel ligt bij tante.", "Tweede brief.")
AFTER = ("Derde brief, na de back-up.", "Vierde brief, na de back-up.")


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _audit(*args: str) -> tuple[int, dict[str, object]]:
    done = sealpost("audit", *args, "--json", "-q")
    return done.returncode, json.loads(done.stdout or "{}")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_restored_database_is_a_rollback_everyone_sees(
    own_stack: Stack, database_url: str, postgres: PostgresServer, tmp_path: Path
) -> None:
    stack = own_stack
    admin, terminals = setup_institutions(stack, [("d-herstel", A, "regular")])
    north = terminals[A]
    screening_order(admin, "d-herstel")
    relative = stack.relative("Iris")
    relative.request_contact("d-herstel")
    approve_all(admin, A)
    witness = for_terminal(north, tmp_path / "terminal")
    escrow = stack.escrow_for(A)

    def take_in() -> None:
        IntakeLoop(north, escrow, MemoryStateStore(), witness=witness).run_once(max_wait=30)
        witness.witness()

    for text in BEFORE:
        relative.send("d-herstel", text)
    take_in()
    key = log_key(stack)
    state_file = tmp_path / "audit-state.json"
    code, _result = _audit(
        "verify", "--database-url", database_url, "--log-key", key, "--state-file", str(state_file)
    )
    assert code == 0

    backup = tmp_path / "sealpost.dump"
    subprocess.run(
        [str(_postgres_bin() / "pg_dump"), "-Fc", "-f", str(backup), _libpq(database_url)],
        check=True,
        timeout=120,
    )

    # After the backup: two more letters, taken in and witnessed; a screener opens one.
    later = [relative.send("d-herstel", text) for text in AFTER]
    take_in()
    witnessed = witness.witness().head.tree_size
    screener = stack.reviewer(["screener"], [A])
    screener.open(later[0].message_id)
    code, _result = _audit(
        "verify", "--database-url", database_url, "--log-key", key, "--state-file", str(state_file)
    )
    assert code == 0

    # The disaster: the database is restored from the backup, the gateway started on it.
    restored = postgres.create_database("restored_drill")
    subprocess.run(
        [str(_postgres_bin() / "pg_restore"), "--no-owner", "-d", _libpq(restored), str(backup)],
        check=True,
        timeout=120,
    )
    stack.gateway.stop()
    stack.gateway.database_url = restored
    stack.gateway.start()

    # The terminal's witness refuses the smaller head: intake stops, loudly.
    with pytest.raises(LogWitnessError):
        IntakeLoop(north, escrow, MemoryStateStore(), witness=witness).run_once(max_wait=10)

    # The auditor's verify, holding the heads it saw before, reports the rollback.
    code, result = _audit(
        "verify", "--database-url", restored, "--log-key", key, "--state-file", str(state_file)
    )
    assert code != 0
    assert "rollback" in json.dumps(result).lower()

    # The relative's receipt is signed evidence of a message the gateway no longer has.
    newest = witness.log.newest_head()
    from sealpost.v1 import log_pb2  # noqa: PLC0415

    size_now = log_pb2.TreeHead.FromString(newest.tree_head).tree_size
    assert later[1].tree_size > size_now
    assert later[1].leaf_index >= size_now
    assert witnessed > size_now

    # Reconcile finds the screener's decrypt without a grant in the restored log.
    done = sealpost(
        "audit", "reconcile", "--database-url", restored, *audit_devices(stack),
        "--directory-key", stack.pin.signing_key.hex(),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert later[0].message_id.hex() in done.stdout


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_database_backup_alone_opens_no_message(stack: Stack, database_url: str) -> None:
    admin, terminals = setup_institutions(stack, [("d-kopie", A, "regular")])
    screening_order(admin, "d-kopie")
    relative = stack.relative("Iris")
    relative.request_contact("d-kopie")
    approve_all(admin, A)
    for text in BEFORE:
        relative.send("d-kopie", text)
    terminals[A].take_in(terminals[A].intake(), stack.escrow_for(A))

    # Everything the database holds (what any backup of it holds), value by value.
    engine = create_database_engine(database_url)
    metadata = MetaData()
    metadata.reflect(engine)
    values: list[bytes] = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        values.append(bytes(value))
                    elif isinstance(value, str):
                        values.append(value.encode("utf-8"))
        envelopes = [
            envelope_pb2.Envelope.FromString(bytes(e))
            for e in connection.execute(select(schema.messages.c.envelope)).scalars()
        ]
    engine.dispose()
    assert len(envelopes) == len(BEFORE)
    for text in BEFORE:
        assert not any(text.encode("utf-8") in v for v in values)
    headers = [crypto_envelope.parse_header(e.header) for e in envelopes]
    tried, opened = 0, 0
    for value in values:
        for start in range(max(0, len(value) - 31)):
            window = value[start : start + 32]
            for header in headers:
                tried += 1
                commitment = crypto_envelope.key_commitment(window, header.message_id)
                opened += commitment == header.key_commitment
    assert tried > 10_000
    assert opened == 0
    # The check would have found one: the data key a screener recovers under a grant.
    review = stack.reviewer(["screener"], [A]).open(headers[0].message_id)
    assert crypto_envelope.key_commitment(review.dek, headers[0].message_id) == (
        headers[0].key_commitment
    )
