"""SPEC P12 against a real gateway: the tables that decide access and delivery follow the log.

A day is played through the real API (OpenBao, gateway, SQLite or PostgreSQL). Then
the database is changed by hand, as an operator could, in each of the ways an outside
attack found unseen: a message under a screening order set to RELEASED, the privileged
flag, grants, screening orders and messages deleted, a contact approved, a forged
privileged correspondent, a detainee moved. `sealpost audit verify` must name the
table, the row and the log entry each time; the terminal must refuse to deliver a
message whose release the log does not prove.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from sealpost import cli as sealpost_cli
from sealpost._internal.stack import Stack, approve_all, screening_order, setup_institutions
from sealpost.clients.terminal.client import TerminalClient
from sealpost.clients.terminal.desk import DeliveryDesk
from sealpost.clients.terminal.errors import UnprovenReleaseError
from sealpost.v1 import admin_pb2, common_pb2

pytestmark = pytest.mark.integration

A, B = "pi-noord", "pi-zuid"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass(frozen=True)
class Day:
    """What the played day left, by name."""

    queued: bytes
    released: bytes
    privileged: bytes
    reply: bytes
    moved: bytes
    lawyer: str
    relative: str
    pending_contact: str
    north: TerminalClient
    south: TerminalClient


def play_day(stack: Stack) -> Day:
    """Screening, release by a screener, privileged mail, a reply, a transfer, a pending contact."""
    admin, terminals = setup_institutions(
        stack, [("d-1", A, "regular"), ("d-2", A, "regular"), ("d-9", B, "regular")]
    )
    north, south = terminals[A], terminals[B]
    screening_order(admin, "d-1")
    relative = stack.relative("Fatima")
    lawyer = stack.relative("Mr. de Vries")
    for client, detainee in ((relative, "d-1"), (relative, "d-2"), (lawyer, "d-1")):
        client.request_contact(detainee)
    approve_all(admin, A)
    admin.call(
        "admin",
        "VerifyCorrespondent",
        admin_pb2.VerifyCorrespondentRequest(
            account_id=lawyer.account_id, kind="lawyer", evidence_reference="NOvA 7"
        ),
    )
    pending_contact = stack.relative("Onbekend")
    pending_contact.request_contact("d-2")

    screened = relative.send("d-1", "Lieve jongen, tot zondag")
    queued = relative.send("d-1", "Nog een bericht")
    released = relative.send("d-2", "Gefeliciteerd")
    privileged = lawyer.send("d-1", "Vertrouwelijk")
    escrow = stack.escrow_for(A)
    north.take_in(north.intake(), escrow)

    screener = stack.reviewer(["screener"], [A])
    screener.open(screened.message_id)
    screener.verdict(screened.message_id, common_pb2.VERDICT_RELEASE)
    desk = DeliveryDesk(north, A)
    for item in desk.pending():
        north.acknowledge(item.message_id, f"{A}-{item.message_id.hex()[:8]}")
    reply = north.reply("d-2", relative.account_id, "Dank je wel", escrow)

    moving = relative.send("d-2", "Onderweg")
    admin.call(
        "admin",
        "TransferDetainee",
        admin_pb2.TransferDetaineeRequest(detainee_id="d-2", to_institution_id=B),
    )
    north.hand_over()
    south.load_mailboxes()
    south.take_in(south.intake(), stack.escrow_for(B))
    return Day(
        queued=queued.message_id,
        released=released.message_id,
        privileged=privileged.message_id,
        reply=reply.message_id,
        moved=moving.message_id,
        lawyer=lawyer.account_id,
        relative=relative.account_id,
        pending_contact=pending_contact.account_id,
        north=north,
        south=south,
    )


def verify(database_url: str, log_key: str) -> tuple[int, dict[str, Any]]:
    """`sealpost audit verify --json`: the exit code and the state part of the result."""
    done = CliRunner(env=dict.fromkeys(k for k in os.environ if k.startswith("SEALPOST_"))).invoke(
        sealpost_cli.app,
        ["audit", "verify", "--database-url", database_url, "--log-key", log_key, "-q", "--json"],
    )
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    result = json.loads(done.stdout)
    assert result["ok"], result["findings"]  # the log itself is intact in every case here
    return done.exit_code, result["state"]


def log_key(stack: Stack) -> str:
    keys = json.loads((stack.gateway.state_dir / "gateway-keys.json").read_text())
    from sealpost.crypto import _sodium  # noqa: PLC0415 - the test reads the key file itself

    return _sodium.ed25519_public_from_seed(bytes.fromhex(keys["log"]["ed25519_seed"])).hex()


def sqlite_path(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite:///"))


def tampered_copy(database_url: str, tmp_path: Path, statements: list[Statement]) -> str:
    """A consistent copy of the live SQLite database, with ``statements`` applied."""
    copy = tmp_path / "tampered.db"
    copy.unlink(missing_ok=True)
    with sqlite3.connect(sqlite_path(database_url)) as source, sqlite3.connect(copy) as target:
        source.backup(target)
        for statement, parameters in statements:
            changed = target.execute(statement, parameters).rowcount
            assert changed, f"the tampering changed nothing: {statement}"
    return f"sqlite:///{copy}"


Statement = tuple[str, tuple[object, ...]]
#: (name, SQL given the day, (table, finding kind, column or "", row given the day)).
Tamper = tuple[str, Callable[[Day], list[Statement]], tuple[str, str, str, Callable[[Day], str]]]
TAMPERINGS: list[Tamper] = [
    (
        "queued message set to RELEASED (screening skipped)",
        lambda d: [("UPDATE messages SET state = 4 WHERE message_id = ?", (d.queued,))],
        ("messages", "column-differs", "state", lambda d: d.queued.hex()),
    ),
    (
        "privileged flag set on ordinary mail",
        lambda d: [("UPDATE messages SET privileged = 1 WHERE message_id = ?", (d.released,))],
        ("messages", "column-differs", "privileged", lambda d: d.released.hex()),
    ),
    (
        "privileged flag taken off a lawyer's message",
        lambda d: [("UPDATE messages SET privileged = 0 WHERE message_id = ?", (d.privileged,))],
        ("messages", "column-differs", "privileged", lambda d: d.privileged.hex()),
    ),
    (
        "grant deleted",
        lambda d: [("DELETE FROM grants", ())],
        ("grants", "row-missing", "", lambda d: ""),
    ),
    (
        "screening order deleted",
        lambda d: [("DELETE FROM screening_orders", ())],
        ("screening_orders", "row-missing", "", lambda d: ""),
    ),
    (
        "screening order ended early by hand",
        lambda d: [("UPDATE screening_orders SET ended_early_at_ms = 1", ())],
        ("screening_orders", "column-differs", "ended_early_at_ms", lambda d: ""),
    ),
    (
        "message deleted",
        lambda d: [("DELETE FROM messages WHERE message_id = ?", (d.queued,))],
        ("messages", "row-missing", "", lambda d: d.queued.hex()),
    ),
    (
        "pending contact set to approved",
        lambda d: [("UPDATE contacts SET status = 2 WHERE account_id = ?", (d.pending_contact,))],
        ("contacts", "row-unlogged", "", lambda d: ""),
    ),
    (
        "forged privileged correspondent",
        lambda d: [
            (
                "INSERT INTO correspondents (account_id, kind, evidence_reference, verified_by, "
                "verified_at_ms) VALUES (?, 'lawyer', 'x', 'staff:nobody', 1)",
                (d.relative,),
            )
        ],
        ("correspondents", "row-unlogged", "", lambda d: d.relative),
    ),
    (
        "correspondent revoked by hand",
        lambda d: [
            ("UPDATE correspondents SET revoked_at_ms = 1 WHERE account_id = ?", (d.lawyer,))
        ],
        ("correspondents", "column-differs", "revoked_at_ms", lambda d: d.lawyer),
    ),
    (
        "detainee moved to another institution",
        lambda d: [("UPDATE detainees SET institution_id = ? WHERE id = 'd-1'", (B,))],
        ("detainees", "column-differs", "institution_id", lambda d: "d-1"),
    ),
    (
        "detainee put in another regime",
        lambda d: [("UPDATE detainees SET regime = 'ebi' WHERE id = 'd-1'", ())],
        ("detainees", "column-differs", "regime", lambda d: "d-1"),
    ),
    (
        "regime policy changed",
        lambda d: [("UPDATE regimes SET policy = 3 WHERE name = 'ebi'", ())],
        ("regimes", "column-differs", "policy", lambda d: "ebi"),
    ),
    (
        "terminal moved to another institution",
        lambda d: [("UPDATE terminals SET institution_id = ? WHERE institution_id = ?", (B, A))],
        ("terminals", "column-differs", "institution_id", lambda d: ""),
    ),
    (
        "forged terminal",
        lambda d: [
            (
                "INSERT INTO terminals (id, institution_id, fingerprint, certificate, "
                "issued_at_ms, expires_at_ms) VALUES ('term-forged', ?, 'ff', 'x', 1, 1e13)",
                (A,),
            )
        ],
        ("terminals", "row-unlogged", "", lambda d: "term-forged"),
    ),
    (
        "escrow blob swapped",
        lambda d: [
            (
                "UPDATE messages SET escrow = (SELECT escrow FROM messages WHERE message_id = ?) "
                "WHERE message_id = ?",
                (d.released, d.queued),
            )
        ],
        ("messages", "column-differs", "escrow_digest", lambda d: d.queued.hex()),
    ),
    (
        "staff member given another role",
        lambda d: [("UPDATE staff_members SET roles = 'administrator,screener'", ())],
        ("staff_members", "column-differs", "roles", lambda d: ""),
    ),
    (
        "release entry pointed elsewhere",
        lambda d: [
            ("UPDATE messages SET release_log_index = 0 WHERE message_id = ?", (d.released,))
        ],
        ("messages", "column-differs", "release_log_index", lambda d: d.released.hex()),
    ),
    (
        "mailbox key given to another institution",
        lambda d: [("UPDATE mailbox_keys SET institution_id = ? WHERE detainee_id = 'd-1'", (B,))],
        ("mailbox_keys", "row-unlogged", "", lambda d: ""),
    ),
    (
        "device key moved to another account",
        lambda d: [
            ("UPDATE key_records SET subject = 'acct-forged' WHERE subject = ?", (d.relative,))
        ],
        ("key_records", "column-differs", "subject", lambda d: ""),
    ),
]


@pytest.fixture
def played(stack: Stack) -> Day:
    return play_day(stack)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_played_day_follows_its_log(stack: Stack, played: Day, database_url: str) -> None:
    code, state = verify(stack.gateway.database_url, log_key(stack))
    assert state["findings"] == []
    assert code == 0
    assert state["ok"]
    # Every kind of row the day made was compared.
    for table in (
        "messages",
        "grants",
        "screening_orders",
        "contacts",
        "correspondents",
        "handovers",
        "mailbox_keys",
        "staff_members",
        "terminals",
    ):
        assert state["rows"][table] > 0, table


@SQLITE
def test_each_hand_edit_of_the_tables_is_found(
    stack: Stack, played: Day, database_url: str, tmp_path: Path
) -> None:
    key = log_key(stack)
    missed = []
    for name, statements, (table, kind, column, row) in TAMPERINGS:
        url = tampered_copy(stack.gateway.database_url, tmp_path, statements(played))
        code, state = verify(url, key)
        wanted = [
            f
            for f in state["findings"]
            if f["table"] == table
            and f["kind"] == kind
            and (not column or f["column"] == column)
            and (not row(played) or f["row"] == row(played))
        ]
        if code != 1 or not wanted:
            missed.append((name, code, state["findings"]))
        elif kind != "row-unlogged":
            assert all(isinstance(f["index"], int) for f in wanted), name
    assert missed == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_screening_skipped_in_postgresql_is_found(
    stack: Stack, played: Day, database_url: str
) -> None:
    engine = create_engine(
        stack.gateway.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE messages SET state = 4 WHERE message_id = :id"), {"id": played.queued}
        )
    engine.dispose()
    code, state = verify(stack.gateway.database_url, log_key(stack))
    assert code == 1
    (finding,) = state["findings"]
    assert (finding["table"], finding["row"], finding["column"]) == (
        "messages",
        played.queued.hex(),
        "state",
    )
    assert finding["database"] == "released"
    assert finding["log"] == "queued"


@SQLITE
def test_the_terminal_refuses_a_release_the_log_does_not_prove(
    stack: Stack, played: Day, database_url: str
) -> None:
    terminal = played.north
    with sqlite3.connect(sqlite_path(stack.gateway.database_url)) as live:
        # Screening skipped: the database says RELEASED; the log still says QUEUED.
        live.execute("UPDATE messages SET state = 4 WHERE message_id = ?", (played.queued,))
    desk = DeliveryDesk(terminal, A)
    assert played.queued not in {item.message_id for item in desk.pending()}
    assert [r.message_id for r in desk.unproven] == [played.queued]
    assert "no release entry" in desk.unproven[0].reason
    with pytest.raises(UnprovenReleaseError) as refused:
        desk.open(played.queued)
    assert played.queued.hex() in refused.value.explain()
    assert played.queued not in {d.message_id for d in terminal.all_deliveries()}

    # Pointing the message at another message's release entry does not help.
    with sqlite3.connect(sqlite_path(stack.gateway.database_url)) as live:
        index = live.execute(
            "SELECT release_log_index FROM messages WHERE release_log_index IS NOT NULL"
        ).fetchone()[0]
        live.execute(
            "UPDATE messages SET release_log_index = ? WHERE message_id = ?",
            (index, played.queued),
        )
    desk.pending()
    assert [r.message_id for r in desk.unproven] == [played.queued]
    assert "about another message" in desk.unproven[0].reason


@SQLITE
def test_the_desk_checks_each_release_head_with_the_terminals_witness(
    stack: Stack, played: Day, database_url: str, tmp_path: Path
) -> None:
    from sealpost.clients.terminal.witness import STATE_NAME, for_terminal  # noqa: PLC0415
    from sealpost.crypto.errors import ForkError  # noqa: PLC0415

    witness = for_terminal(played.south, tmp_path)
    desk = DeliveryDesk(played.south, B, observe=witness.observe)
    assert [item.message_id for item in desk.pending()] == [played.moved]
    assert desk.unproven == []
    assert (tmp_path / STATE_NAME).exists()  # the head that proved the releases is kept

    def forked(_head: object) -> None:
        raise ForkError("another history than the one this terminal witnessed")

    refusing = DeliveryDesk(played.south, B, observe=forked)  # type: ignore[arg-type]
    assert refusing.pending() == []
    assert refusing.unproven
    assert all("another history" in r.reason for r in refusing.unproven)
