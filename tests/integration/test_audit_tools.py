"""``sealpost audit`` against a real gateway's database and a real OpenBao's audit log.

The log is made by a running gateway; then rows are tampered with directly in
SQL (as a rogue operator would) and ``sealpost audit verify`` must name the
problem and the leaf index. ``reconcile`` must flag a decrypt a screener makes
directly at the key server, bypassing the gateway's grant (SPEC P6, P7).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from sealpost import cli as sealpost_cli
from sealpost._internal.devservers import gateway_directory_pin
from sealpost._internal.stack import (
    Stack,
    approve_all,
    screening_order,
    setup_institutions,
)
from sealpost.clients.staff import StaffClient
from sealpost.crypto import _sodium, merkle
from sealpost.crypto.keys import SigningSeed
from sealpost.crypto.logentry import LogEvent, decode_event, encode_event, sign_tree_head
from sealpost.escrow._transport import KeyServerConfig
from sealpost.escrow.bootstrap import BootstrapSettings, KeyServerBootstrap
from sealpost.escrow.client import EscrowClient
from sealpost.escrow.errors import PermissionDeniedError
from sealpost.v1 import audit_pb2, common_pb2, envelope_pb2, log_pb2

pytestmark = pytest.mark.integration

A = "pi-noord"
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass(frozen=True)
class Result:
    """What a command printed and how it exited."""

    returncode: int
    stdout: str
    stderr: str


def entry_point(*args: str) -> Result:
    """``sealpost audit ...`` through the installed entry point, in a clean environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
    done = subprocess.run(
        [sys.executable, "-m", "sealpost", "audit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def audit(*args: str) -> Result:
    """The same command line in this process (the entry point's own Typer app), for speed."""
    done = CliRunner(env=dict.fromkeys(k for k in os.environ if k.startswith("SEALPOST_"))).invoke(
        sealpost_cli.app, ["audit", *args]
    )
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return Result(done.exit_code, done.stdout, done.stderr)


def as_json(result: Result) -> Any:
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"not JSON (exit {result.returncode}): {result.stdout}\n{result.stderr}")


def keys_document(stack: Stack) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((stack.gateway.state_dir / "gateway-keys.json").read_text())
    return data


def log_seed(stack: Stack) -> bytes:
    return bytes.fromhex(keys_document(stack)["log"]["ed25519_seed"])


def log_key_hex(stack: Stack) -> str:
    return _sodium.ed25519_public_from_seed(log_seed(stack)).hex()


def fresh_head(staff: StaffClient) -> int:
    reply = staff.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))
    return int(log_pb2.TreeHead.FromString(reply.tree_head.tree_head).tree_size)


def populate(stack: Stack, messages: int = 6) -> tuple[StaffClient, list[int]]:
    """A small but real log: institution, detainees, contacts, messages, several signed heads."""
    admin, terminals = setup_institutions(stack, [("d-1", A, "regular"), ("d-2", A, "regular")])
    heads = [fresh_head(admin)]
    relative = stack.relative("Samira")
    relative.request_contact("d-1")
    relative.request_contact("d-2")
    approve_all(admin, A)
    heads.append(fresh_head(admin))
    for n in range(messages):
        relative.send("d-1" if n % 2 else "d-2", f"bericht {n}")
        if n % 3 == 2:
            heads.append(fresh_head(admin))
    terminals[A].take_in(terminals[A].intake(), stack.escrow_for(A))
    heads.append(fresh_head(admin))
    return admin, heads


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    assert database
    return Path(database)


def snapshot(url: str, target: Path) -> str:
    """A consistent copy of a live SQLite database (the backup API), as a URL."""
    source = sqlite3.connect(sqlite_path(url))
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    return f"sqlite:///{target}"


def execute(url: str, *statements: tuple[str, dict[str, Any]]) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for sql, params in statements:
                connection.execute(text(sql), params)
    finally:
        engine.dispose()


def query(url: str, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params or {}).all())
    finally:
        engine.dispose()


def leaf_at(url: str, index: int) -> bytes:
    ((leaf,),) = query(url, "SELECT leaf FROM log_leaves WHERE idx = :i", {"i": index})
    return bytes(leaf)


def altered(leaf: bytes) -> bytes:
    """The same event with another actor: still a canonical leaf, so only the tree shows it."""
    event = decode_event(leaf)
    return encode_event(
        LogEvent(
            action=event.action,
            actor="staff:mallory",
            time_ms=event.time_ms,
            subjects=event.subjects,
            extra=event.extra,
        )
    )


def renumber(url: str, start: int, shift: int) -> list[tuple[str, dict[str, Any]]]:
    """Statements moving leaves idx >= start by ``shift`` (two steps: the key is unique)."""
    return [
        ("UPDATE log_leaves SET idx = -(idx + :s) - 1 WHERE idx >= :a", {"s": shift, "a": start}),
        ("UPDATE log_leaves SET idx = -idx - 1 WHERE idx < 0", {}),
    ]


# --------------------------------------------------------------------------- verify


@dataclass
class Case:
    name: str
    tamper: Callable[[str, Stack], None]
    kind: str
    index: int | None
    exact: bool = True
    extra_args: Sequence[str] = ()


K = 9  # a leaf well inside the part covered by signed heads


def _update(url: str, _stack: Stack) -> None:
    execute(
        url,
        ("UPDATE log_leaves SET leaf = :l WHERE idx = :i", {"l": altered(leaf_at(url, K)), "i": K}),
    )


def _garbage(url: str, _stack: Stack) -> None:
    execute(url, ("UPDATE log_leaves SET leaf = :l WHERE idx = :i", {"l": b"\x01\x99", "i": K}))


def _delete(url: str, _stack: Stack) -> None:
    execute(url, ("DELETE FROM log_leaves WHERE idx = :i", {"i": K}))


def _delete_renumbered(url: str, _stack: Stack) -> None:
    execute(url, ("DELETE FROM log_leaves WHERE idx = :i", {"i": K}), *renumber(url, K + 1, -1))


def _insert(url: str, _stack: Stack) -> None:
    forged = altered(leaf_at(url, K))
    execute(
        url,
        *renumber(url, K, 1),
        ("INSERT INTO log_leaves (idx, leaf) VALUES (:i, :l)", {"i": K, "l": forged}),
    )


def _swap(url: str, _stack: Stack) -> None:
    a, b = leaf_at(url, K), leaf_at(url, K + 4)
    execute(
        url,
        ("UPDATE log_leaves SET leaf = :l WHERE idx = :i", {"l": b, "i": K}),
        ("UPDATE log_leaves SET leaf = :l WHERE idx = :i", {"l": a, "i": K + 4}),
    )


def _truncate(url: str, _stack: Stack) -> None:
    (count,) = query(url, "SELECT COUNT(*) FROM log_leaves")[0]
    execute(url, ("DELETE FROM log_leaves WHERE idx >= :i", {"i": count - 3}))


def _fork(url: str, stack: Stack) -> None:
    """Another root for an existing size, validly signed with the (stolen) log key."""
    size, signed = query(url, "SELECT tree_size, signed FROM tree_heads ORDER BY id LIMIT 1")[0]
    head = log_pb2.TreeHead.FromString(log_pb2.SignedTreeHead.FromString(signed).tree_head)
    other = sign_tree_head(
        size,
        secrets.token_bytes(32),
        head.timestamp_ms + 1,
        head.log_key_id,
        SigningSeed(log_seed(stack)),
    )
    execute(
        url,
        (
            "INSERT INTO tree_heads (tree_size, root_hash, timestamp_ms, signed) "
            "VALUES (:s, :r, :t, :b)",
            {
                "s": size,
                "r": log_pb2.TreeHead.FromString(other.tree_head).root_hash,
                "t": head.timestamp_ms + 1,
                "b": other.SerializeToString(deterministic=True),
            },
        ),
    )


def _forged_head(url: str, _stack: Stack) -> None:
    """A head row with another root and a signature nobody could make."""
    size, signed = query(url, "SELECT tree_size, signed FROM tree_heads ORDER BY id LIMIT 1")[0]
    sth = log_pb2.SignedTreeHead.FromString(signed)
    head = log_pb2.TreeHead.FromString(sth.tree_head)
    head.root_hash = secrets.token_bytes(32)
    forged = log_pb2.SignedTreeHead(
        tree_head=head.SerializeToString(deterministic=True), signature=sth.signature
    )
    execute(
        url,
        (
            "INSERT INTO tree_heads (tree_size, root_hash, timestamp_ms, signed) "
            "VALUES (:s, :r, :t, :b)",
            {
                "s": size,
                "r": head.root_hash,
                "t": head.timestamp_ms,
                "b": forged.SerializeToString(),
            },
        ),
    )


def _replaced_head(url: str, _stack: Stack) -> None:
    """The last head's signed bytes replaced by the first head's: the row no longer agrees."""
    ((first,),) = query(url, "SELECT signed FROM tree_heads ORDER BY id LIMIT 1")
    ((last,),) = query(url, "SELECT id FROM tree_heads ORDER BY id DESC LIMIT 1")
    execute(url, ("UPDATE tree_heads SET signed = :b WHERE id = :i", {"b": first, "i": last}))


def _leaf_and_cache(url: str, _stack: Stack) -> None:
    """The leaf and its cached hash both changed: the cache no longer authenticates."""
    forged = altered(leaf_at(url, K))
    execute(
        url,
        ("UPDATE log_leaves SET leaf = :l WHERE idx = :i", {"l": forged, "i": K}),
        (
            "UPDATE log_nodes SET hash = :h WHERE level = 0 AND idx = :i",
            {"h": merkle.leaf_hash(forged), "i": K},
        ),
    )


CASES = [
    Case("modified leaf", _update, "leaf-modified", K),
    Case("malformed leaf", _garbage, "leaf-malformed", K),
    Case("deleted leaf row", _delete, "leaf-missing", K),
    Case("deleted and renumbered leaf", _delete_renumbered, "leaf-deleted", K),
    Case("inserted leaf", _insert, "leaf-inserted", K),
    Case("swapped leaves", _swap, "leaves-reordered", K),
    Case(
        "modified leaf, no node cache", _update, "leaves-changed", None, False, ["--no-node-cache"]
    ),
    Case("modified leaf and node cache", _leaf_and_cache, "leaves-changed", None, False),
    Case("truncated log", _truncate, "log-truncated", None),
    Case("forked head", _fork, "fork", None),
    Case("forged head", _forged_head, "head-invalid", None),
    Case("replaced head", _replaced_head, "head-row-mismatch", None),
]


@SQLITE
def test_verify_clean_log_then_every_tampering(stack: Stack, tmp_path: Path) -> None:
    _admin, sizes = populate(stack)
    url = stack.gateway.database_url
    key = log_key_hex(stack)

    clean = entry_point("verify", "--database-url", url, "--log-key", key)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "OK: the stored leaves reproduce every signed head" in clean.stdout
    assert "signed heads" in clean.stderr  # progress on stderr
    report = as_json(audit("verify", "--database-url", url, "--log-key", key, "--json", "-q"))
    assert report["ok"] is True
    assert report["attested_size"] == max(sizes)
    assert report["valid_head_count"] >= len(sizes)  # receipts sign heads too
    assert any(s > K + 4 for s in sizes)  # the leaves tampered with are covered by a head

    for number, case in enumerate(CASES):
        copy = snapshot(url, tmp_path / f"case-{number}.db")
        case.tamper(copy, stack)
        run = entry_point if number == 0 else audit  # once through the installed command
        result = run("verify", "--database-url", copy, "--log-key", key, *case.extra_args)
        assert result.returncode == 1, (case.name, result.stdout, result.stderr)
        assert "FAIL" in result.stdout, case.name
        data = as_json(
            audit(
                "verify", "--database-url", copy, "--log-key", key, "--json", "-q", *case.extra_args
            )
        )
        assert data["ok"] is False, case.name
        first = data["findings"][0]
        kinds = [f["kind"] for f in data["findings"]]
        assert case.kind in kinds, (case.name, data["findings"])
        if case.index is not None:
            assert data["first_bad_index"] == case.index, (case.name, data["findings"])
            assert first["exact"] is True, case.name
            assert f"first bad leaf index {case.index}" in result.stdout, case.name
        if case.kind == "leaves-changed":
            # Bounded, not singled out: the range must still hold the leaf.
            assert first["kind"] == "leaves-changed", (case.name, first)
            assert first["start"] <= K < first["end"], (case.name, first)
    # Reading left the original database untouched and clean.
    assert audit("verify", "--database-url", url, "--log-key", key, "-q").returncode == 0


@SQLITE
def test_verify_specific_findings(stack: Stack, tmp_path: Path) -> None:
    populate(stack, messages=3)
    url = stack.gateway.database_url
    key = log_key_hex(stack)

    swapped = snapshot(url, tmp_path / "swap.db")
    _swap(swapped, stack)
    data = as_json(audit("verify", "--database-url", swapped, "--log-key", key, "--json", "-q"))
    (finding,) = [f for f in data["findings"] if f["kind"] == "leaves-reordered"]
    assert (finding["start"], finding["other_indices"]) == (K, [K + 4])

    forked = snapshot(url, tmp_path / "fork.db")
    _fork(forked, stack)
    data = as_json(audit("verify", "--database-url", forked, "--log-key", key, "--json", "-q"))
    fork = next(f for f in data["findings"] if f["kind"] == "fork")
    first_id = query(forked, "SELECT MIN(id) FROM tree_heads")[0][0]
    last_id = query(forked, "SELECT MAX(id) FROM tree_heads")[0][0]
    assert set(fork["head_ids"]) == {first_id, last_id}
    assert f"match head #{first_id}" in fork["detail"]

    truncated = snapshot(url, tmp_path / "truncated.db")
    _truncate(truncated, stack)
    data = as_json(audit("verify", "--database-url", truncated, "--log-key", key, "--json", "-q"))
    (count,) = query(truncated, "SELECT COUNT(*) FROM log_leaves")[0]
    assert data["findings"][0]["kind"] == "log-truncated"
    assert data["first_bad_index"] == count
    assert data["findings"][0]["exact"] is True


@SQLITE
def test_verify_key_pins_and_refusals(stack: Stack, tmp_path: Path) -> None:
    populate(stack, messages=2)
    url = stack.gateway.database_url
    directory = gateway_directory_pin(stack.gateway.state_dir).hex()
    assert (
        audit("verify", "--database-url", url, "--directory-key", directory, "-q").returncode == 0
    )
    both = audit(
        "verify",
        "--database-url",
        url,
        "--directory-key",
        directory,
        "--log-key",
        log_key_hex(stack),
    )
    assert both.returncode == 0, both.stdout + both.stderr

    # Another log key: every head is refused.
    wrong = _sodium.ed25519_public_from_seed(secrets.token_bytes(32)).hex()
    data = as_json(audit("verify", "--database-url", url, "--log-key", wrong, "--json", "-q"))
    assert data["ok"] is False
    assert {f["kind"] for f in data["findings"]} == {"head-invalid"}
    assert data["warnings"]
    # Another directory: nothing to trust, the check cannot run.
    other_directory = audit("verify", "--database-url", url, "--directory-key", wrong)
    assert other_directory.returncode == 2
    assert "directory" in other_directory.stderr

    # No pin, a malformed pin, a missing database: exit 2 with a clear line.
    no_pin = audit("verify", "--database-url", url)
    assert no_pin.returncode == 2
    assert "--log-key" in no_pin.stderr
    assert audit("verify", "--database-url", url, "--log-key", "xyz").returncode == 2
    missing = audit(
        "verify", "--database-url", f"sqlite:///{tmp_path / 'none.db'}", "--log-key", wrong
    )
    assert missing.returncode == 2
    assert "no database file" in missing.stderr
    not_sealpost = tmp_path / "empty.db"
    sqlite3.connect(not_sealpost).close()
    empty = audit("verify", "--database-url", f"sqlite:///{not_sealpost}", "--log-key", wrong)
    assert empty.returncode == 2
    assert "Sealpost database" in empty.stderr


def test_verify_reads_each_database(stack: Stack) -> None:
    """The same verification on SQLite and on PostgreSQL, read only, and one tampering."""
    populate(stack, messages=3)
    url = stack.gateway.database_url
    key = log_key_hex(stack)
    assert audit("verify", "--database-url", url, "--log-key", key, "-q").returncode == 0
    (leaves,) = query(url, "SELECT COUNT(*) FROM log_leaves")[0]
    execute(
        url,
        ("UPDATE log_leaves SET leaf = :l WHERE idx = :i", {"l": altered(leaf_at(url, 4)), "i": 4}),
    )
    data = as_json(audit("verify", "--database-url", url, "--log-key", key, "--json", "-q"))
    assert data["leaf_count"] == leaves
    assert data["first_bad_index"] == 4
    assert data["findings"][0]["kind"] == "leaf-modified"


# --------------------------------------------------------------------------- reconcile and report


@SQLITE
def test_reconcile_flags_a_decrypt_made_directly_at_the_key_server(
    own_stack: Stack, tmp_path: Path
) -> None:
    stack = own_stack
    admin, terminals = setup_institutions(stack, [("d-watched", A, "regular")])
    stack.record_key_server_actions(admin)
    screening_order(admin, "d-watched", days=7, note="zaak 2026/077")
    relative = stack.relative("Yusuf")
    relative.request_contact("d-watched")
    approve_all(admin, A)
    sent = [relative.send("d-watched", f"bericht {n}") for n in range(3)]
    escrowed: dict[bytes, envelope_pb2.EscrowBlob] = {}
    escrow = stack.escrow_for(A)

    def keep(items: Sequence[tuple[bytes, bytes]]) -> list[envelope_pb2.EscrowBlob]:
        blobs = escrow(items)
        escrowed.update({b.message_id: b for b in blobs})
        return blobs

    states = terminals[A].take_in(terminals[A].intake(), keep)
    assert set(states.values()) == {common_pb2.MESSAGE_STATE_QUEUED}
    granted, bypassed, refused = (m.message_id for m in sent)

    # The lawful path: a logged grant, then the screener's own decrypt.
    screener = stack.reviewer(["screener"], [A])
    screener.open(granted)
    screener.verdict(granted, common_pb2.VERDICT_RELEASE)

    # The bypass: another screener asks the key server directly, with no grant.
    name, session, _token = stack.staff_login(["screener"], [A])
    key = BootstrapSettings(prefix=stack.prefix).escrow_key
    with EscrowClient(KeyServerConfig(stack.openbao.address), session.token, key=key) as direct:
        assert len(direct.decrypt(bypassed, escrowed[bypassed].ciphertext)) == 32
    # A terminal token may not decrypt at all: refused, and listed as information.
    admin_keys = KeyServerBootstrap(
        KeyServerConfig(stack.openbao.address),
        stack.openbao.root_token,
        BootstrapSettings(prefix=stack.prefix),
    )
    try:
        token = admin_keys.create_terminal_token(A)
    finally:
        admin_keys.close()
    with (
        EscrowClient(KeyServerConfig(stack.openbao.address), token.token, key=key) as terminal,
        pytest.raises(PermissionDeniedError),
    ):
        terminal.decrypt(refused, escrowed[refused].ciphertext)
    fresh_head(admin)

    url = stack.gateway.database_url
    log = str(stack.openbao.audit_log)
    pin = log_key_hex(stack)
    result = entry_point("reconcile", "--database-url", url, "--audit-log", log, "--log-key", pin)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DECRYPTS WITHOUT A GRANT" in result.stdout
    assert bypassed.hex() in result.stdout
    assert session.entity_id in result.stdout

    data = as_json(
        audit(
            "reconcile", "--database-url", url, "--audit-log", log, "--log-key", pin, "--json", "-q"
        )
    )
    assert data["clean"] is False
    assert data["log_verified"] is True
    assert data["require_signed_head"] is True
    (unmatched,) = data["unmatched"]
    assert unmatched["message_id"] == bypassed.hex()
    assert unmatched["entity_id"] == session.entity_id
    assert unmatched["display_name"] == f"userpass-{name}"
    assert unmatched["reason"] == "no grant for this message"
    (matched,) = data["matched"]
    assert matched["message_id"] == granted.hex()
    assert matched["grant"]["signed_at"] is not None
    assert matched["entity_id"] == matched["grant"]["key_server_entity"]
    assert [d["message_id"] for d in data["refused"]] == [refused.hex()]
    assert data["unused_grants"] == []

    # Without a pin the log is not verified first, and the tool says so; the finding stands.
    unpinned = audit("reconcile", "--database-url", url, "--audit-log", log, "--json", "-q")
    assert unpinned.returncode == 1
    assert "not verified" in unpinned.stderr
    assert [u["message_id"] for u in as_json(unpinned)["unmatched"]] == [bypassed.hex()]

    # An audit log that only holds the lawful decrypt reconciles clean.
    lawful = tmp_path / "lawful.log"
    lawful.write_text(
        "".join(
            line
            for line in Path(log).read_text().splitlines(keepends=True)
            if bypassed.hex() not in line and _context(bypassed) not in line
        )
    )
    clean = audit("reconcile", "--database-url", url, "--audit-log", str(lawful), "--log-key", pin)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "OK: reconciliation clean" in clean.stdout

    # The report: PDF text names the institution, the counts and the officers.
    today = dt.datetime.now(dt.UTC).date().isoformat()
    out = tmp_path / "report"
    made = entry_point(
        "report",
        "--database-url",
        url,
        "--institution",
        A,
        "--from",
        today,
        "--to",
        today,
        "--out-dir",
        str(out),
        "--audit-log",
        log,
        "--log-key",
        pin,
        "-q",
    )
    assert made.returncode == 0, made.stdout + made.stderr
    officer = _officer(url)
    markdown = (out / "report.md").read_text()
    pdf_text = "\n".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)
    for content in (markdown, pdf_text):
        words = " ".join(content.split())
        assert A in words
        assert "Messages accepted" in words
        assert officer in words
        assert bypassed.hex() in words
        assert "decrypt without a grant" in words
        assert "Transparency log Verified" in words.replace("#", "").replace("  ", " ")
    assert "| Messages accepted | 3 |" in markdown
    assert "| Review grants | 1 |" in markdown
    assert f"| {officer} | 1 | 1 | 0 | 0 |" in markdown
    # Time to a decision: the one verdict, by that officer; the other two still wait.
    assert "## Time to a decision" in markdown
    assert f"| {officer} | {A} | 1 |" in markdown
    assert re.search(rf"^\| {A} \| 1 \| [^|]+ \| [^|]+ \| 2 \| [^|]+ \|$", markdown, re.M)
    assert "Time to a decision" in " ".join(pdf_text.split())


def _context(message_id: bytes) -> str:
    return base64.b64encode(message_id).decode()


def _officer(url: str) -> str:
    leaves = [bytes(row[0]) for row in query(url, "SELECT leaf FROM log_leaves ORDER BY idx")]
    grants = [decode_event(b) for b in leaves if b[1:3] == b"\x02\x01"]
    (grant,) = grants
    return grant.actor.removeprefix("staff:")
