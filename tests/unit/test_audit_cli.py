"""``sealpost audit`` commands on a migrated SQLite database with a synthetic log (no servers).

Leaves are written with the gateway's own log code (translog.append, sign_head) and
grant events built with the pure leaf encoding, the way ReviewService writes them;
the key server's audit log is synthetic JSON lines shaped like OpenBao's.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import insert
from typer.testing import CliRunner

from sealpost import cli as sealpost_cli
from sealpost import i18n
from sealpost.clients.audit import database
from sealpost.crypto import _sodium
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.logentry import LogAction, LogEvent
from sealpost.gateway import translog
from sealpost.gateway.storage.database import create_database_engine, migrate
from sealpost.gateway.storage.schema import institutions

T0 = datetime(2026, 5, 4, 10, 0, 0, tzinfo=UTC)
CAROL = "3604a92c-e8e0-8dc7-8813-6ce695fe15d6"
M1, M2 = bytes(range(16)), bytes(range(16, 32))
HMAC = "hmac-sha256:1451f2a5ef3095da57861cf5f7fc8c040a14e5988da2326cd3b3e32523742298"
LOG_KEYS = PrivateKeys(x25519_secret=bytes(32), ed25519_seed=bytes(range(100, 132)))
LOG_PUBLIC = _sodium.ed25519_public_from_seed(LOG_KEYS.ed25519_seed).hex()
LOG_KEY_ID = _sodium.sha256(b"log key record")


def ms(seconds: float) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


def event(action: LogAction, at: float, actor: str = "gateway", **kw: Any) -> LogEvent:
    return LogEvent(action=action, actor=actor, time_ms=ms(at), **kw)


def grant(at: float, message: bytes, number: int) -> LogEvent:
    return event(
        LogAction.REVIEW_GRANTED,
        at,
        "staff:carol",
        subjects=[("message", message.hex()), ("grant", f"gr-{number}"), ("detainee", "d-1")],
        extra={"legal_basis": "LEGAL_BASIS_SCREENING_ORDER", "key_server_entity": CAROL},
    )


@pytest.fixture(scope="module")
def gateway_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated gateway database: 14 leaves, a grant for M1 (leaf 10), heads at 6, 11, 14.

    M1 entered the screening queue (leaf 9) before its grant, so the grant's basis holds.
    """
    path = tmp_path_factory.mktemp("audit-cli") / "sealpost.db"
    engine = create_database_engine(f"sqlite:///{path}")
    migrate(engine)
    admin = [
        event(LogAction.INSTITUTION_CREATED, i, "staff:root", subjects=[("institution", f"pi-{i}")])
        for i in range(9)
    ]
    admin.append(event(LogAction.MESSAGE_QUEUED, 19, subjects=[("message", M1.hex())]))
    with engine.begin() as connection:
        connection.execute(
            insert(institutions).values(
                id="pi-zuid", name="PI Zuid — Ĳsselmonde", created_at_ms=ms(0)
            )
        )
        translog.append(connection, admin[:6])
        translog.sign_head(connection, LOG_KEYS, LOG_KEY_ID, ms(6))
        translog.append(connection, [*admin[6:], grant(20, M1, 1)])
        translog.sign_head(connection, LOG_KEYS, LOG_KEY_ID, ms(21))
        translog.append(connection, [event(LogAction.ADMIN_ACTION, 30 + i) for i in range(3)])
        translog.sign_head(connection, LOG_KEYS, LOG_KEY_ID, ms(40))
    engine.dispose()
    return path


@pytest.fixture
def db(gateway_db: Path, tmp_path: Path) -> str:
    """A private copy of the database, free to tamper with."""
    copy = tmp_path / "copy.db"
    shutil.copy(gateway_db, copy)
    return f"sqlite:///{copy}"


@dataclass
class Out:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def audit(*args: str) -> Out:
    result = CliRunner().invoke(sealpost_cli.app, ["audit", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Out(result.exit_code, result.stdout, result.stderr)


def audit_lines(path: Path, *decrypts: tuple[float, bytes, str]) -> Path:
    """An OpenBao-shaped audit log with one request and one response per decrypt."""
    out = []
    for number, (at, message, entity) in enumerate(decrypts):
        for kind in ("request", "response"):
            entry: dict[str, Any] = {
                "time": (T0 + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "type": kind,
                "auth": {"display_name": "userpass-carol", "entity_id": entity},
                "request": {
                    "id": f"r{number}",
                    "path": "sealpost-transit/decrypt/sealpost-escrow",
                    "data": {"ciphertext": HMAC, "context": base64.b64encode(message).decode()},
                },
            }
            if kind == "response":
                entry["response"] = {"data": {"plaintext": HMAC}}
            out.append(json.dumps(entry))
    path.write_text("\n".join(out) + "\n")
    return path


# --------------------------------------------------------------------------- verify


def test_verify_clean_then_modified(db: str) -> None:
    # A synthetic log of arbitrary events: its Merkle tree is checked here; the state it
    # would recompute is tested against real gateways (test_state_follows_log.py).
    clean = audit("verify", "--database-url", db, "--log-key", LOG_PUBLIC, "--no-state-check")
    assert clean.code == 0, clean.stdout + clean.stderr
    assert "14 leaves, 3 signed heads (3 valid), attested up to size 14" in clean.stdout
    assert "no log key record carries the pinned log key" in clean.stderr
    path = db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE log_leaves SET leaf = X'0102' WHERE idx = 7")
    data = audit("verify", "--database-url", db, "--log-key", LOG_PUBLIC, "--json", "-q").json()
    assert data["ok"] is False
    assert data["first_bad_index"] == 7
    assert [f["kind"] for f in data["findings"]][:2] == ["leaf-malformed", "leaf-modified"]
    assert data["findings"][1]["located_by"] == "signed head and authenticated node cache"
    text = audit("verify", "--database-url", db, "--log-key", LOG_PUBLIC, "-q")
    assert text.code == 1
    assert text.stdout.splitlines()[1].startswith(
        "FAIL: first bad leaf index 7: leaf-malformed, located by leaf decoding"
    )


def test_a_finding_in_dutch(db: str) -> None:
    path = db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE log_leaves SET leaf = X'0102' WHERE idx = 7")
    i18n.use_staff_language("nl")
    try:
        text = audit("verify", "--database-url", db, "--log-key", LOG_PUBLIC, "-q")
        data = audit("verify", "--database-url", db, "--log-key", LOG_PUBLIC, "-q", "--json")
    finally:
        i18n.use_staff_language("en")
    assert text.code == 1
    lines = text.stdout.splitlines()
    assert lines[0] == ("14 bladen, 3 ondertekende boomkoppen (3 geldig), bevestigd tot grootte 6")
    assert lines[1].startswith(
        "FOUT: index van het eerste foute blad 7: leaf-malformed, gelokaliseerd via leaf decoding"
    )
    # JSON is for scripts: its values stay as they are in every language.
    assert data.json()["findings"][1]["located_by"] == "signed head and authenticated node cache"


def test_verify_opens_the_database_read_only(db: str) -> None:
    with database.connect(db) as connection, pytest.raises(Exception, match="readonly"):
        connection.exec_driver_sql("DELETE FROM log_leaves")
    done = audit("verify", "--database-url", db, "--log-key", LOG_PUBLIC, "-q", "--json").json()
    # The log is intact; the synthetic events do not make a consistent state, and saying
    # so (rather than failing to run) shows the state check, too, could read everything.
    assert done["ok"] is True
    assert done["state"]["events"] == 14


def test_read_only_node_store_refuses_writes(db: str) -> None:
    with database.connect(db) as connection:
        nodes = database.ReadOnlyNodes(connection)
        assert len(nodes.get_many([(0, 0), (3, 0)])[1]) == 32
        with pytest.raises(KeyError):
            nodes.get_many([(0, 999)])
        with pytest.raises(PermissionError):
            nodes.put_many([])


def test_verify_refuses_bad_input(db: str, tmp_path: Path) -> None:
    assert audit("verify", "--database-url", db, "--log-key", "ab").code == 2
    unsupported = audit("verify", "--database-url", "mysql://x/y", "--log-key", LOG_PUBLIC)
    assert unsupported.code == 2
    assert "unsupported database" in unsupported.stderr
    assert audit("verify", "--help").code == 0


# --------------------------------------------------------------------------- reconcile


def test_reconcile_matches_and_flags(db: str, tmp_path: Path) -> None:
    log = audit_lines(tmp_path / "audit.log", (21, M1, CAROL), (25, M2, CAROL))
    result = audit(
        "reconcile", "--database-url", db, "--audit-log", str(log), "--log-key", LOG_PUBLIC
    )
    assert result.code == 1
    assert "2 decrypts: 1 matched, 1 without a grant, 0 refused" in result.stdout
    assert M2.hex() in result.stdout
    assert "no grant for this message" in result.stdout
    data = audit(
        "reconcile",
        "--database-url",
        db,
        "--audit-log",
        str(log),
        "--log-key",
        LOG_PUBLIC,
        "--json",
    ).json()
    assert data["log_verified"] is True
    assert [m["message_id"] for m in data["matched"]] == [M1.hex()]
    assert data["matched"][0]["grant"]["log_index"] == 10
    assert data["matched"][0]["grant"]["signed_at"] == (T0 + timedelta(seconds=21)).isoformat()
    assert [(u["message_id"], u["reason"]) for u in data["unmatched"]] == [
        (M2.hex(), "no grant for this message")
    ]


def test_reconcile_clean_and_unused_grants(db: str, tmp_path: Path) -> None:
    used = audit_lines(tmp_path / "used.log", (22, M1, CAROL))
    ok = audit("reconcile", "--database-url", db, "--audit-log", str(used), "--log-key", LOG_PUBLIC)
    assert ok.code == 0, ok.stdout
    assert "OK: reconciliation clean" in ok.stdout
    # Only another message is decrypted in the period: the grant for M1 goes unused.
    unused = audit_lines(tmp_path / "unused.log", (15, M2, "other"), (30, M2, "other"))
    data = audit(
        "reconcile", "--database-url", db, "--audit-log", str(unused), "--json", "-q"
    ).json()
    assert [g["grant_id"] for g in data["unused_grants"]] == ["gr-1"]
    assert data["log_verified"] is None
    only_unused = audit_lines(tmp_path / "only.log", (15, M1, "x"), (30, M1, "x"))
    strict = audit("reconcile", "--database-url", db, "--audit-log", str(only_unused))
    assert strict.code == 1
    assert "GRANTS NEVER USED" in strict.stdout
    assert "not verified" in strict.stderr


def test_reconcile_allows_unused_grants_on_request(db: str, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(
        "\n".join(
            json.dumps(
                {
                    "time": (T0 + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "type": "request",
                    "auth": {"display_name": "token-terminal-pi-zuid"},
                    "request": {
                        "id": f"e{s}",
                        "path": "sealpost-transit/encrypt/sealpost-escrow",
                        "data": {"plaintext": HMAC, "context": "AAAA"},
                    },
                }
            )
            for s in (1, 50)
        )
    )
    args = ("reconcile", "--database-url", db, "--audit-log", str(log), "-q")
    assert audit(*args).code == 1
    assert audit(*args, "--allow-unused-grants").code == 0


def test_reconcile_refuses_a_tampered_log(db: str, tmp_path: Path) -> None:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as connection:
        connection.execute("DELETE FROM log_leaves WHERE idx = 3")
    log = audit_lines(tmp_path / "audit.log", (21, M1, CAROL))
    result = audit(
        "reconcile", "--database-url", db, "--audit-log", str(log), "--log-key", LOG_PUBLIC
    )
    assert result.code == 1
    assert "grants cannot be trusted" in result.stdout
    assert "leaf-missing" in result.stdout


def test_reconcile_reports_unreadable_audit_logs(db: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.log"
    broken.write_text("{not json\n")
    result = audit("reconcile", "--database-url", db, "--audit-log", str(broken))
    assert result.code == 2
    assert "line 1" in result.stderr
    missing = audit("reconcile", "--database-url", db, "--audit-log", str(tmp_path / "nope.log"))
    assert missing.code == 2


# --------------------------------------------------------------------------- report


def test_report_for_a_quiet_period(db: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = audit(
        "report",
        "--database-url",
        db,
        "--institution",
        "pi-zuid",
        "--from",
        "2026-05-01",
        "--to",
        "2026-05-31",
        "--out-dir",
        str(out),
        "--log-key",
        LOG_PUBLIC,
        "--json",
        "-q",
    )
    assert result.code == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["institution_name"] == "PI Zuid — Ĳsselmonde"
    assert data["anomalies"] is None
    markdown = (out / "report.md").read_text()
    assert "# Sealpost audit report: PI Zuid — Ĳsselmonde (pi-zuid)" in markdown
    assert "Not checked: no key-server audit log was given" in markdown
    assert "Verified: 14 log entries" in markdown
    text = " ".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)
    assert "PI Zuid" in text
    assert "2026-05-01 to 2026-05-31" in text
    # Time to a decision: one institution, nobody decided, so no total row and no screener.
    assert "Time to a decision" in " ".join(text.split())
    assert data["decisions"]["institutions"] == [
        {
            "institution": "pi-zuid",
            "verdicts": 0,
            "median_s": None,
            "p90_s": None,
            "undecided": 0,
            "oldest_undecided_s": None,
        }
    ]
    assert (data["decisions"]["national"], data["decisions"]["screeners"]) == (None, [])
    assert "| pi-zuid | 0 | - | - | 0 | - |" in markdown
    assert "| all institutions |" not in markdown


def test_report_on_several_institutions_totals_them(db: str, tmp_path: Path) -> None:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as connection:
        connection.execute(
            "INSERT INTO institutions (id, name, created_at_ms) VALUES ('pi-noord', 'PI Noord', 0)"
        )
    out = tmp_path / "out"
    result = audit(
        *("report", "--database-url", db, "--institution", "pi-zuid"),
        *("--institution", "pi-noord", "--from", "2026-05-01", "--to", "2026-05-31"),
        *("--out-dir", str(out), "--json", "-q"),
    )
    assert result.code == 0, result.stdout + result.stderr
    data = result.json()
    assert data["institutions"] == {"pi-zuid": "PI Zuid — Ĳsselmonde", "pi-noord": "PI Noord"}
    decisions = data["decisions"]
    assert [row["institution"] for row in decisions["institutions"]] == ["pi-zuid", "pi-noord"]
    assert decisions["national"]["institution"] == "*"
    assert decisions["national"]["verdicts"] == 0
    markdown = (out / "report.md").read_text()
    assert markdown.startswith(
        "# Sealpost audit report: PI Zuid — Ĳsselmonde (pi-zuid), PI Noord (pi-noord)\n"
    )
    assert "| all institutions | 0 | - | - | 0 | - |" in markdown
    # One institution unknown among several: refused, no report on the others alone.
    unknown = audit(
        *("report", "--database-url", db, "--institution", "pi-zuid"),
        *("--institution", "pi-nowhere", "--from", "2026-05-01", "--to", "2026-05-31"),
        *("--out-dir", str(tmp_path / "refused")),
    )
    assert unknown.code == 2
    assert "no institution 'pi-nowhere'" in unknown.stderr
    assert not (tmp_path / "refused" / "report.md").exists()


def test_report_in_dutch(db: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    i18n.use_staff_language("nl")
    try:
        result = audit(
            "report",
            "--database-url",
            db,
            "--institution",
            "pi-zuid",
            "--from",
            "2026-05-01",
            "--to",
            "2026-05-31",
            "--out-dir",
            str(out),
            "--log-key",
            LOG_PUBLIC,
            "-q",
        )
    finally:
        i18n.use_staff_language("en")
    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("rapport voor pi-zuid, 2026-05-01 tot en met 2026-05-31 (UTC)")
    markdown = (out / "report.md").read_text()
    assert "# Sealpost-auditrapport: PI Zuid — Ĳsselmonde (pi-zuid)" in markdown
    assert "Periode: 1 mei 2026 tot en met 31 mei 2026 (UTC)." in markdown
    assert "## Samenvatting" in markdown
    assert "Niet gecontroleerd: er is geen auditlog van de sleutelserver opgegeven" in markdown
    assert "Geverifieerd: 14 logregels" in markdown
    text = " ".join(
        " ".join(page.extract_text().split()) for page in PdfReader(out / "report.pdf").pages
    )
    for needle in ("Samenvatting", "Aanvaarde berichten", "1 mei 2026", "Transparantielog"):
        assert needle in text, needle


def test_report_refuses_bad_input(db: str, tmp_path: Path) -> None:
    base = ("report", "--database-url", db, "--out-dir", str(tmp_path))
    unknown = audit(
        *base, "--institution", "pi-nowhere", "--from", "2026-05-01", "--to", "2026-05-02"
    )
    assert unknown.code == 2
    assert "no institution 'pi-nowhere'" in unknown.stderr
    backwards = audit(
        *base, "--institution", "pi-zuid", "--from", "2026-05-02", "--to", "2026-05-01"
    )
    assert backwards.code == 2
    assert audit(*base, "--institution", "pi-zuid", "--from", "May", "--to", "2026-05-01").code == 2


def test_reconcile_compares_devices_and_reads_rotated_parts_as_one(db: str, tmp_path: Path) -> None:
    both = audit_lines(tmp_path / "a.log", (21, M1, CAROL), (22, M1, CAROL))
    lines = both.read_text().splitlines(keepends=True)
    mirror = tmp_path / "b.log"
    mirror.write_text("".join(lines[:2]))  # the second decrypt is missing from the mirror
    compared = audit(
        "reconcile", "--database-url", db, "--audit-log", str(both), "--audit-log", str(mirror)
    )
    assert compared.code == 1
    assert "AUDIT DEVICES DISAGREE" in compared.stdout
    assert "audit devices a.log, b.log: 2 differences" in compared.stdout
    data = audit(
        "reconcile",
        "--database-url",
        db,
        "--audit-log",
        str(both),
        "--audit-log",
        str(mirror),
        "--json",
        "-q",
    ).json()
    assert [m["missing_from"] for m in data["devices"]["missing"]] == [["b.log"], ["b.log"]]
    assert len(data["matched"]) == 2  # each request once, not once per device
    # The same two files as rotated parts of one device: read together, nothing to compare.
    older, newer = tmp_path / "a.log.1", tmp_path / "a.log.2"
    older.write_text("".join(lines[:2]))
    newer.write_text("".join(lines[2:]))
    parts = audit(
        "reconcile",
        "--database-url",
        db,
        "--audit-log",
        f"primary={older}",
        "--audit-log",
        f"primary={newer}",
        "--json",
        "-q",
    )
    assert parts.code == 0, parts.stdout
    assert parts.json()["devices"]["compared"] is False
    assert len(parts.json()["matched"]) == 2
