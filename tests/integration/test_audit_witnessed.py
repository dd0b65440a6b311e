"""``sealpost audit verify`` finds what happens at the log's end (SPEC P13), on a real gateway.

Each test is one attack by an operator with write access to the database, made on a
copy of a real gateway's SQLite database, as in test_audit_tools.py. Before the log's
end was witnessed, ``verify`` passed every one of them (exit 0, at most a note): leaves
after the newest signed head were not attested by anything, and nothing outside the
database remembered a head. Now each is caught by the unsigned-tail rule, by the head
the last verification kept (the state file), by a head pinned with ``--since-head``, or
by a witness's cosignature.

The gateway here signs only every 60 s on its own, so that a test can take a copy with
leaves not yet in a head, the way an operator who holds the signer back would leave it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sealpost import cli as sealpost_cli
from sealpost._internal.devservers import OpenBaoDevServer, gateway_directory_pin
from sealpost._internal.stack import Stack, setup_institutions, start_gateway
from sealpost.clients.staff import StaffClient
from sealpost.clients.terminal.client import TerminalClient
from sealpost.clients.terminal.witness import STATE_NAME, for_terminal
from sealpost.crypto import _sodium, merkle
from sealpost.crypto.keys import SigningSeed
from sealpost.crypto.logentry import (
    LogEvent,
    decode_event,
    encode_event,
    leaf_time_ms,
    sign_tree_head,
)
from sealpost.escrow.bootstrap import BootstrapResult
from sealpost.v1 import admin_pb2, audit_pb2, log_pb2
from tests.integration.test_audit_tools import execute, query, snapshot

pytestmark = pytest.mark.integration

A = "pi-end"
#: The auditor's default limit for leaves outside every signed head, and a margin.
MAX_UNSIGNED_S = 15.0
STALE_AFTER_S = MAX_UNSIGNED_S + 1.5


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def audit(*args: str) -> Run:
    """``sealpost audit ...`` in this process, without any SEALPOST_* setting."""
    done = CliRunner(env=dict.fromkeys(k for k in os.environ if k.startswith("SEALPOST_"))).invoke(
        sealpost_cli.app, ["audit", *args]
    )
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return Run(done.exit_code, done.stdout, done.stderr)


@dataclass
class Scene:
    """A running gateway, its log key, and copies of its database at two moments."""

    stack: Stack
    admin: StaffClient
    terminal: TerminalClient
    log_key: str
    log_seed: bytes
    #: Every leaf in a signed head.
    signed_db: Path
    #: Leaves after the newest head, logged at least STALE_AFTER_S ago.
    tail_db: Path

    @property
    def directory_key(self) -> str:
        return gateway_directory_pin(self.stack.gateway.state_dir).hex()

    def copy(self, source: Path, tmp_path: Path, name: str) -> str:
        target = tmp_path / name
        shutil.copy(source, target)
        return f"sqlite:///{target}"

    def verify(self, url: str, *args: str) -> Run:
        return audit("verify", "--database-url", url, "--log-key", self.log_key, "-q", *args)


def fresh_head(staff: StaffClient) -> None:
    staff.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))


def grow(admin: StaffClient, count: int, prefix: str) -> None:
    for n in range(count):
        admin.call(
            "admin",
            "CreateInstitution",
            admin_pb2.CreateInstitutionRequest(institution_id=f"{prefix}-{n}", name=prefix),
        )


def sizes(url: str) -> tuple[int, int]:
    """(leaves, the largest size a stored head covers)."""
    leaves = int(query(url, "SELECT COUNT(*) FROM log_leaves")[0][0])
    covered = int(query(url, "SELECT COALESCE(MAX(tree_size), 0) FROM tree_heads")[0][0])
    return leaves, covered


def copy_with_tail(scene_stack: Stack, admin: StaffClient, target: Path, prefix: str) -> str:
    """Grow the live log and copy it before the gateway's own signer covers the new leaves."""
    url = scene_stack.gateway.database_url
    for attempt in range(3):
        fresh_head(admin)
        grow(admin, 3, f"{prefix}-{attempt}")
        copy = snapshot(url, target)
        leaves, covered = sizes(copy)
        if leaves - covered >= 3:
            return copy
    pytest.fail("the gateway's signer covered the new leaves every time")


@pytest.fixture(scope="module")
def scene(
    tmp_path_factory: pytest.TempPathFactory, openbao: OpenBaoDevServer, keyserver: BootstrapResult
) -> Iterator[Scene]:
    workdir = tmp_path_factory.mktemp("audit-end")
    gateway = start_gateway(
        workdir / "gateway",
        openbao,
        keyserver,
        f"sqlite:///{workdir / 'sealpost.db'}",
        {"SEALPOST_HEAD_INTERVAL_SECONDS": "60"},
    )
    stack = Stack(openbao, keyserver, gateway)
    try:
        admin, terminals = setup_institutions(stack, [("d-end-1", A, "regular")])
        grow(admin, 5, "early")
        fresh_head(admin)
        grow(admin, 4, "middle")
        fresh_head(admin)
        keys = json.loads((gateway.state_dir / "gateway-keys.json").read_text())
        seed = bytes.fromhex(keys["log"]["ed25519_seed"])
        signed = snapshot(gateway.database_url, workdir / "signed.db")
        assert sizes(signed)[0] == sizes(signed)[1]
        tail = copy_with_tail(stack, admin, workdir / "tail.db", "tail")
        tail_started = time.monotonic()
        scene = Scene(
            stack,
            admin,
            terminals[A],
            _sodium.ed25519_public_from_seed(seed).hex(),
            seed,
            Path(signed.removeprefix("sqlite:///")),
            Path(tail.removeprefix("sqlite:///")),
        )
        time.sleep(max(0.0, STALE_AFTER_S - (time.monotonic() - tail_started)))
        yield scene
    finally:
        stack.close()
        gateway.stop()


def leaf_at(url: str, index: int) -> bytes:
    ((leaf,),) = query(url, "SELECT leaf FROM log_leaves WHERE idx = :i", {"i": index})
    return bytes(leaf)


def altered(leaf: bytes, actor: str = "staff:mallory") -> bytes:
    event = decode_event(leaf)
    return encode_event(
        LogEvent(
            action=event.action,
            actor=actor,
            time_ms=event.time_ms,
            subjects=event.subjects,
            extra=event.extra,
        )
    )


def roll_back(url: str, size: int) -> None:
    """The log cut back to ``size`` leaves, with every head and cosignature above them."""
    execute(
        url,
        (
            "DELETE FROM cosignatures WHERE head_id IN "
            "(SELECT id FROM tree_heads WHERE tree_size > :m)",
            {"m": size},
        ),
        ("DELETE FROM tree_heads WHERE tree_size > :m", {"m": size}),
        ("DELETE FROM log_leaves WHERE idx >= :m", {"m": size}),
        ("DELETE FROM log_nodes WHERE (idx + 1) * (1 << level) > :m", {"m": size}),
        ("UPDATE gateway_state SET value = :m WHERE name = 'log_size'", {"m": size}),
    )


def default_state_file(scene: Scene) -> Path:
    return (
        Path(os.environ["XDG_STATE_HOME"]) / "sealpost" / "audit" / f"log-{scene.log_key[:16]}.json"
    )


def kinds(run: Run) -> list[str]:
    return [f["kind"] for f in run.json()["findings"]]


# --------------------------------------------------------------------------- after the last head


def test_a_changed_leaf_after_the_last_head_is_found(scene: Scene, tmp_path: Path) -> None:
    url = scene.copy(scene.tail_db, tmp_path, "changed.db")
    leaves, covered = sizes(url)
    execute(
        url,
        (
            "UPDATE log_leaves SET leaf = :l WHERE idx = :i",
            {"l": altered(leaf_at(url, covered + 1)), "i": covered + 1},
        ),
    )
    run = scene.verify(url, "--json")
    assert run.code == 1, run.stdout + run.stderr
    assert kinds(run) == ["unsigned-tail"]
    assert run.json()["first_bad_index"] == covered
    assert run.json()["unsigned_tail"]["stale"] is True
    assert run.json()["verified_head"] is None
    text = scene.verify(url)
    assert f"FAIL: first bad leaf index {covered}: unsigned-tail" in text.stdout
    del leaves


def test_a_deleted_leaf_after_the_last_head_is_found(scene: Scene, tmp_path: Path) -> None:
    url = scene.copy(scene.tail_db, tmp_path, "deleted.db")
    leaves, covered = sizes(url)
    execute(url, ("DELETE FROM log_leaves WHERE idx = :i", {"i": leaves - 1}))
    run = scene.verify(url, "--json")
    assert run.code == 1, run.stdout + run.stderr
    assert kinds(run) == ["unsigned-tail"]
    assert run.json()["first_bad_index"] == covered


def test_leaves_added_after_the_last_head_are_found(scene: Scene, tmp_path: Path) -> None:
    url = scene.copy(scene.signed_db, tmp_path, "added.db")
    leaves, covered = sizes(url)
    assert leaves == covered
    forged = altered(leaf_at(url, 3))  # an old event, re-dated nothing: its own old time
    assert leaf_time_ms(forged) is not None
    execute(url, ("INSERT INTO log_leaves (idx, leaf) VALUES (:i, :l)", {"i": leaves, "l": forged}))
    run = scene.verify(url, "--json")
    assert run.code == 1, run.stdout + run.stderr
    assert kinds(run) == ["unsigned-tail"]
    assert run.json()["first_bad_index"] == leaves


def test_a_young_tail_is_only_a_note(scene: Scene, tmp_path: Path) -> None:
    url = copy_with_tail(scene.stack, scene.admin, tmp_path / "young.db", "young")
    run = scene.verify(url, "--json", "--no-state")
    assert run.code == 0, run.stdout + run.stderr
    assert run.json()["unsigned_tail"]["stale"] is False
    assert "within the 15 s limit" in run.json()["notes"][0]
    # With a tighter limit the same tail is a finding.
    time.sleep(1.1)
    tight = scene.verify(url, "--json", "--no-state", "--max-unsigned-seconds", "1")
    assert tight.code == 1
    assert kinds(tight) == ["unsigned-tail"]


# --------------------------------------------------------------------------- the state file


def test_deleting_the_last_leaves_and_the_heads_above_them_is_found(
    scene: Scene, tmp_path: Path
) -> None:
    url = scene.copy(scene.signed_db, tmp_path, "cut.db")
    first = scene.verify(url)
    assert first.code == 0, first.stdout + first.stderr
    kept = sizes(url)[1]
    # Back to an older head: the leaves above it go, and every head above them.
    heads = sorted({int(s) for (s,) in query(url, "SELECT tree_size FROM tree_heads")})
    cut = heads[-2]
    roll_back(url, cut)
    assert sizes(url) == (cut, cut)
    run = scene.verify(url, "--json")
    assert run.code == 1, run.stdout + run.stderr
    assert "rollback" in kinds(run)
    finding = run.json()["findings"][0]
    assert (finding["kind"], finding["start"], finding["exact"]) == ("rollback", cut, True)
    # The documented default: $XDG_STATE_HOME/sealpost/audit/log-<16 hex digits>.json,
    # owner-only, still holding the head of the first, clean run.
    state_file = default_state_file(scene)
    assert state_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(state_file.read_text())["tree_size"] == kept
    assert str(state_file) in finding["detail"]
    # A failed verification keeps the old state: the next run still refuses.
    assert scene.verify(url).code == 1
    # Without the state the cut log looks whole: this is what the state file is for. (The
    # tables then still hold rows of the cut events, which the state check finds; left
    # out here to show the log check alone.)
    assert scene.verify(url, "--no-state", "--no-state-check").code == 0


def test_truncating_leaves_an_earlier_verification_saw_is_found(
    scene: Scene, tmp_path: Path
) -> None:
    url = copy_with_tail(scene.stack, scene.admin, tmp_path / "seen.db", "seen")
    first = scene.verify(url)
    assert first.code == 0, first.stdout + first.stderr
    leaves, covered = sizes(url)
    # The leaves no head covered yet are dropped before anyone signs them.
    execute(url, ("DELETE FROM log_leaves WHERE idx >= :c", {"c": covered}))
    run = scene.verify(url, "--json")
    assert run.code == 1, run.stdout + run.stderr
    assert kinds(run) == ["rollback"]
    assert run.json()["findings"][0]["start"] == covered
    assert f"saw {leaves} leaves" in run.json()["findings"][0]["detail"]


# --------------------------------------------------------------------------- pinned and witnessed


def test_a_head_a_terminal_witnessed_pins_the_log(scene: Scene, tmp_path: Path) -> None:
    """The terminal's witness-state.json is a head file: a cut or rewritten log fails."""
    fresh_head(scene.admin)
    witness = for_terminal(scene.terminal, tmp_path / "terminal")
    assert witness.witness().cosigned
    witnessed = tmp_path / "terminal" / STATE_NAME
    url = snapshot(scene.stack.gateway.database_url, tmp_path / "pinned.db")
    clean = scene.verify(url, "--json", "--no-state", "--since-head", str(witnessed))
    assert clean.code == 0, clean.stdout + clean.stderr
    assert [p["consistent"] for p in clean.json()["pinned_heads"]] == [True]

    # Cut back to an older head, below the witnessed one: the database alone looks whole.
    size = witness.newest.tree_size if witness.newest else 0
    older = max(int(s) for (s,) in query(url, "SELECT tree_size FROM tree_heads") if s < size)
    roll_back(url, older)
    assert scene.verify(url, "--no-state", "--no-state-check").code == 0
    run = scene.verify(url, "--json", "--no-state", "--since-head", str(witnessed))
    assert run.code == 1, run.stdout + run.stderr
    assert kinds(run) == ["rollback"]
    assert run.json()["first_bad_index"] == older

    # Rewritten past the witnessed head and signed again with the log key (stolen, or
    # the operator's own): consistent in itself, but not with the witnessed head.
    url = snapshot(scene.stack.gateway.database_url, tmp_path / "rewritten.db")
    forged = [
        altered(bytes(leaf), "staff:rewritten")
        for (leaf,) in query(
            url, "SELECT leaf FROM log_leaves WHERE idx >= :m ORDER BY idx", {"m": size - 3}
        )
    ]
    kept = [
        bytes(leaf)
        for (leaf,) in query(
            url, "SELECT leaf FROM log_leaves WHERE idx < :m ORDER BY idx", {"m": size - 3}
        )
    ]
    history = kept + forged
    head = sign_tree_head(
        len(history),
        merkle.tree_hash(history),
        int(time.time() * 1000),
        log_pb2.TreeHead.FromString(witness_head(witnessed).tree_head).log_key_id,
        SigningSeed(scene.log_seed),
    )
    execute(
        url,
        ("DELETE FROM cosignatures", {}),
        ("DELETE FROM tree_heads WHERE tree_size > :m", {"m": size - 3}),
        ("DELETE FROM log_nodes", {}),
        *(
            ("UPDATE log_leaves SET leaf = :l WHERE idx = :i", {"l": leaf, "i": size - 3 + n})
            for n, leaf in enumerate(forged)
        ),
        (
            "INSERT INTO tree_heads (tree_size, root_hash, timestamp_ms, signed) "
            "VALUES (:s, :r, :t, :b)",
            {
                "s": len(history),
                "r": merkle.tree_hash(history),
                "t": log_pb2.TreeHead.FromString(head.tree_head).timestamp_ms,
                "b": head.SerializeToString(deterministic=True),
            },
        ),
    )
    # The rewritten events break the log's own rules (the state check says so); the log
    # check alone, without the witnessed head, sees a whole log.
    assert scene.verify(url, "--no-state", "--no-state-check").code == 0
    assert scene.verify(url, "--no-state").code == 1
    run = scene.verify(url, "--json", "--no-state", "--since-head", str(witnessed))
    assert run.code == 1, run.stdout + run.stderr
    (finding,) = run.json()["findings"]
    assert finding["start"] <= size - 3 < finding["end"]
    assert "held outside the database" in finding["detail"]


def witness_head(path: Path) -> log_pb2.SignedTreeHead:
    from sealpost.clients.witness import parse_head  # noqa: PLC0415

    return parse_head(path.read_bytes())


def test_the_auditor_checks_the_witnesses_cosignatures(scene: Scene, tmp_path: Path) -> None:
    fresh_head(scene.admin)
    witness = for_terminal(scene.terminal, tmp_path / "terminal")
    assert witness.witness().cosigned
    url = snapshot(scene.stack.gateway.database_url, tmp_path / "cosigned.db")
    run = audit(
        "verify", "--database-url", url, "--directory-key", scene.directory_key, "--json", "-q"
    )
    assert run.code == 0, run.stdout + run.stderr
    cosigned = run.json()["cosigned_heads"]
    assert cosigned
    assert cosigned[-1]["witnesses"] == [f"institution {A}"]
    # Only the log key pinned: institution keys cannot be trusted, so nothing is judged.
    unjudged = scene.verify(url, "--json", "--no-state")
    assert unjudged.json()["cosigned_heads"] == []
    assert unjudged.json()["unverified_cosignatures"] >= 1
    # A cosignature altered in the database is a finding.
    ((row_id, raw),) = query(
        url, "SELECT id, cosignature FROM cosignatures ORDER BY id DESC LIMIT 1"
    )
    cosig = log_pb2.Cosignature.FromString(raw)
    cosig.cosigned_at_ms += 1
    execute(
        url,
        (
            "UPDATE cosignatures SET cosignature = :c WHERE id = :i",
            {"c": cosig.SerializeToString(), "i": row_id},
        ),
    )
    tampered = audit(
        "verify",
        "--database-url",
        url,
        "--directory-key",
        scene.directory_key,
        "--json",
        "-q",
        "--no-state",
    )
    assert tampered.code == 1
    assert kinds(tampered) == ["cosignature-invalid"]


def test_bad_head_and_state_files_stop_the_check(scene: Scene, tmp_path: Path) -> None:
    url = scene.copy(scene.signed_db, tmp_path, "files.db")
    missing = scene.verify(url, "--since-head", str(tmp_path / "none.json"))
    assert missing.code == 2
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"format": "something"}')
    assert scene.verify(url, "--since-head", str(garbage)).code == 2
    damaged = tmp_path / "state.json"
    damaged.write_text("{")
    run = scene.verify(url, "--state-file", str(damaged))
    assert run.code == 2
    assert "audit state" in run.stderr
