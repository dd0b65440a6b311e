"""The log's end is witnessed (SPEC P13), against a real gateway on SQLite and PostgreSQL.

The gateway signs a head whenever the log has grown; terminals and auditors keep the
newest head they saw, check each new one against it and cosign it; the gateway checks
every cosignature it is handed. Then the operator rolls the log back in the database,
as a rogue operator with a backup would, and every witness notices.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from sealpost._internal.devservers import OpenBaoDevServer
from sealpost._internal.stack import Stack, setup_institutions, start_gateway
from sealpost.clients._grpc import bearer
from sealpost.clients.staff import StaffClient
from sealpost.clients.terminal.client import TerminalClient
from sealpost.clients.terminal.intake import CollectingReporter, IntakeLoop
from sealpost.clients.terminal.witness import STATE_NAME, for_terminal
from sealpost.clients.witness import GatewayLog, MemoryWitnessStore, Witness, WitnessKey
from sealpost.crypto import cosignature, keyrecords
from sealpost.crypto.errors import ForkError, RollbackError
from sealpost.crypto.keys import PrivateKeys, SigningSeed
from sealpost.escrow.bootstrap import BootstrapResult
from sealpost.v1 import admin_pb2, audit_pb2, audit_pb2_grpc, keys_pb2, log_pb2

pytestmark = pytest.mark.integration

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
INTERVAL = 0.5
#: An auditor's own witness key, configured at the gateway (--witness-keys).
AUDITOR_KEYS = PrivateKeys.generate()
AUDITOR_KEY_ID = cosignature.witness_key_id(AUDITOR_KEYS.signing_key)
A, B = "pi-witness-a", "pi-witness-b"


@pytest.fixture
def witnessed(
    tmp_path: Path, openbao: OpenBaoDevServer, keyserver: BootstrapResult, database_url: str
) -> Iterator[Stack]:
    """A gateway signing every half second that accepts the auditor's witness key."""
    gateway = start_gateway(
        tmp_path / "gateway",
        openbao,
        keyserver,
        database_url,
        {
            "SEALPOST_HEAD_INTERVAL_SECONDS": str(INTERVAL),
            "SEALPOST_WITNESS_KEYS": f"audit-office={AUDITOR_KEYS.signing_key.hex()}",
        },
    )
    stack = Stack(openbao, keyserver, gateway)
    try:
        yield stack
    finally:
        stack.close()
        gateway.stop()


def query(url: str, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql), params or {}).all())
    finally:
        engine.dispose()


def execute(url: str, *statements: tuple[str, dict[str, Any]]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for sql, params in statements:
                connection.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def log_size(url: str) -> int:
    return int(query(url, "SELECT COUNT(*) FROM log_leaves")[0][0])


def head_sizes(url: str) -> list[int]:
    return [int(r[0]) for r in query(url, "SELECT tree_size FROM tree_heads ORDER BY id")]


def grow(admin: StaffClient, count: int, prefix: str) -> None:
    """Append ``count`` leaves: one institution each."""
    for n in range(count):
        admin.call(
            "admin",
            "CreateInstitution",
            admin_pb2.CreateInstitutionRequest(
                institution_id=f"{prefix}-{n}", name=f"{prefix} {n}"
            ),
        )


def head_size(head: log_pb2.SignedTreeHead) -> int:
    return int(log_pb2.TreeHead.FromString(head.tree_head).tree_size)


def wait_for_head(url: str, size: int, timeout: float = 10.0) -> float:
    """Seconds until a stored head covers ``size`` leaves."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if max(head_sizes(url), default=0) >= size:
            return time.monotonic() - started
        time.sleep(0.05)
    pytest.fail(f"no head covered {size} leaves within {timeout} s")


def auditor_witness(stack: Stack, store: MemoryWitnessStore | None = None) -> Witness:
    """The auditor's witness: a staff token, the pinned directory, its own key."""
    _name, token = stack.staff_token(["auditor"], ["*"])
    channel = stack.endpoint.channel()
    log = GatewayLog(lambda: channel, stack.pin, metadata=bearer(token))
    return Witness(
        log, store or MemoryWitnessStore(), WitnessKey(AUDITOR_KEY_ID, AUDITOR_KEYS.ed25519_seed)
    )


# --------------------------------------------------------------------------- signing


def test_heads_are_signed_whenever_the_log_grows_and_only_then(witnessed: Stack) -> None:
    url = witnessed.gateway.database_url
    admin = witnessed.staff(["administrator"], ["*"])
    grow(admin, 3, "grow")
    size = log_size(url)
    waited = wait_for_head(url, size)
    assert waited <= INTERVAL + 1.5, f"a head covered the new leaves only after {waited:.1f} s"
    assert max(head_sizes(url)) == size
    # Nothing grows: nothing is signed, however long one waits.
    heads = head_sizes(url)
    time.sleep(4 * INTERVAL)
    assert head_sizes(url) == heads
    # One more leaf: one more head, of exactly the new size, and never two of one size.
    grow(admin, 1, "again")
    wait_for_head(url, size + 1)
    time.sleep(2 * INTERVAL)
    after = head_sizes(url)
    assert after[len(heads) :] == [size + 1]
    assert len(set(after)) == len(after)


@SQLITE
def test_a_stopped_gateway_signs_what_it_appended(witnessed: Stack) -> None:
    url = witnessed.gateway.database_url
    admin = witnessed.staff(["administrator"], ["*"])
    wait_for_head(url, log_size(url))
    grow(admin, 1, "last")
    witnessed.gateway.stop()  # within the interval of the append, most likely
    assert max(head_sizes(url)) == log_size(url)


# --------------------------------------------------------------------------- cosignatures


def test_terminal_and_auditor_cosign_and_anyone_can_read_it(
    witnessed: Stack, tmp_path: Path
) -> None:
    _admin, terminals = setup_institutions(witnessed, [("d-w-1", A, "regular")])
    terminal = terminals[A]
    url = witnessed.gateway.database_url
    wait_for_head(url, log_size(url))
    witness = for_terminal(terminal, tmp_path / "profile")
    observation = witness.witness()
    assert observation.stored
    assert observation.cosigned
    assert observation.submit_error is None
    assert (tmp_path / "profile" / STATE_NAME).stat().st_mode & 0o777 == 0o600
    assert witness.newest == observation.head
    # The same head again: nothing to store, nothing to cosign.
    again = witness.witness()
    assert not again.stored
    assert again.head == observation.head

    auditor = auditor_witness(witnessed)
    assert auditor.witness().cosigned

    # A relative reads the cosignatures and checks them against the directory it pins.
    relative = witnessed.relative("Reads cosignatures")
    stub = audit_pb2_grpc.AuditServiceStub(witnessed.endpoint.channel())
    reply = stub.GetCosignatures(
        audit_pb2.GetCosignaturesRequest(min_tree_size=observation.head.tree_size),
        metadata=bearer(relative.token),
        timeout=30,
    )
    cosigned = {
        c.witness_key_id: (h.tree_head, c) for h in reply.tree_heads for c in h.cosignatures
    }
    assert set(cosigned) == {terminal.institution_key_id, AUDITOR_KEY_ID}
    head, by_terminal = cosigned[terminal.institution_key_id]
    directory, revocations = terminal.directory()
    (record,) = terminal.key_records([terminal.institution_key_id]).values()
    institution = keyrecords.verify_key_record(
        record,
        directory,
        now_ms=by_terminal.cosigned_at_ms,
        revocations=revocations,
        purpose=keys_pb2.KEY_PURPOSE_INSTITUTION,
    )
    assert institution.subject == A
    cosignature.verify_cosignature(
        by_terminal,
        head.tree_head,
        witness_key_id=institution.id,
        public_key=institution.signing_key,
    )
    head, by_auditor = cosigned[AUDITOR_KEY_ID]
    cosignature.verify_cosignature(
        by_auditor,
        head.tree_head,
        witness_key_id=AUDITOR_KEY_ID,
        public_key=AUDITOR_KEYS.signing_key,
    )
    # GetTreeHead carries the cosignatures of the newest head once the log stops growing.
    newest = stub.GetTreeHead(audit_pb2.GetTreeHeadRequest(), metadata=bearer(relative.token))
    if newest.tree_head == observation_head(witness):
        assert {c.witness_key_id for c in newest.cosignatures} >= {terminal.institution_key_id}
    count = query(url, "SELECT COUNT(*) FROM cosignatures")[0][0]
    assert count == 2


def observation_head(witness: Witness) -> log_pb2.SignedTreeHead:
    state = witness.store.load()
    assert state is not None
    return state.head


def _submit(
    channel: grpc.Channel,
    head: log_pb2.SignedTreeHead,
    cosig: log_pb2.Cosignature,
    metadata: Any = (),
) -> grpc.StatusCode:
    stub = audit_pb2_grpc.AuditServiceStub(channel)
    try:
        stub.SubmitCosignature(
            audit_pb2.SubmitCosignatureRequest(tree_head=head, cosignature=cosig),
            metadata=metadata,
            timeout=30,
        )
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _cosign(
    terminal: TerminalClient, head: log_pb2.SignedTreeHead, at_ms: int
) -> log_pb2.Cosignature:
    return cosignature.cosign(
        head.tree_head,
        witness_key_id=terminal.institution_key_id,
        cosigned_at_ms=at_ms,
        seed=terminal.institution_keys.ed25519_seed,
    )


@SQLITE
def test_the_gateway_checks_every_cosignature(witnessed: Stack) -> None:
    admin, terminals = setup_institutions(
        witnessed, [("d-w-2", A, "regular"), ("d-w-3", B, "regular")]
    )
    url = witnessed.gateway.database_url
    wait_for_head(url, log_size(url))
    terminal, other = terminals[A], terminals[B]
    older = admin.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest()).tree_head
    grow(admin, 2, "checks")
    wait_for_head(url, log_size(url))
    newest = admin.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest()).tree_head
    assert head_size(older) < head_size(newest)
    now = int(time.time() * 1000)
    channel = terminal.channel

    # Another institution's key, a broken signature, a head the gateway never signed.
    assert (
        _submit(channel, newest, _cosign(other, newest, now)) == grpc.StatusCode.PERMISSION_DENIED
    )
    broken = _cosign(terminal, newest, now)
    broken.signature = bytes(64)
    assert _submit(channel, newest, broken) == grpc.StatusCode.INVALID_ARGUMENT
    forged = log_pb2.SignedTreeHead()
    forged.CopyFrom(newest)
    head = log_pb2.TreeHead.FromString(newest.tree_head)
    head.root_hash = bytes(32)
    forged.tree_head = head.SerializeToString(deterministic=True)
    assert _submit(channel, forged, _cosign(terminal, forged, now)) == grpc.StatusCode.NOT_FOUND
    # A cosigning time far in the future, or long before the head was signed.
    assert (
        _submit(channel, newest, _cosign(terminal, newest, now + 3_600_000))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        _submit(channel, newest, _cosign(terminal, newest, 1)) == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert query(url, "SELECT COUNT(*) FROM cosignatures")[0][0] == 0

    # The newest head: taken once; again is ALREADY_EXISTS; an older one afterwards is a
    # regression of this witness.
    assert _submit(channel, newest, _cosign(terminal, newest, now)) == grpc.StatusCode.OK
    assert (
        _submit(channel, newest, _cosign(terminal, newest, now)) == grpc.StatusCode.ALREADY_EXISTS
    )
    assert (
        _submit(channel, older, _cosign(terminal, older, now))
        == grpc.StatusCode.FAILED_PRECONDITION
    )

    # Callers who are not witnesses, and an auditor with a key the gateway was not given.
    relative = witnessed.relative("Not a witness")
    public = witnessed.endpoint.channel()
    assert (
        _submit(public, newest, _cosign(terminal, newest, now), bearer(relative.token))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    stranger = PrivateKeys.generate()
    stranger_id = cosignature.witness_key_id(stranger.signing_key)
    unknown = cosignature.cosign(
        newest.tree_head, witness_key_id=stranger_id, cosigned_at_ms=now, seed=stranger.ed25519_seed
    )
    _name, token = witnessed.staff_token(["auditor"], ["*"])
    assert _submit(public, newest, unknown, bearer(token)) == grpc.StatusCode.PERMISSION_DENIED
    # A terminal may not use the auditor's key either, even with a valid signature.
    by_auditor = cosignature.cosign(
        newest.tree_head,
        witness_key_id=AUDITOR_KEY_ID,
        cosigned_at_ms=now,
        seed=AUDITOR_KEYS.ed25519_seed,
    )
    assert _submit(channel, newest, by_auditor) == grpc.StatusCode.PERMISSION_DENIED
    assert _submit(public, newest, by_auditor, bearer(token)) == grpc.StatusCode.OK
    assert query(url, "SELECT COUNT(*) FROM cosignatures")[0][0] == 2


# --------------------------------------------------------------------------- rollback


def roll_back(url: str, size: int) -> None:
    """What a rogue operator with database access does: the log back to ``size`` leaves."""
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


@SQLITE
def test_a_cosigned_head_cannot_be_rolled_back_unnoticed(witnessed: Stack, tmp_path: Path) -> None:
    admin, terminals = setup_institutions(witnessed, [("d-w-4", A, "regular")])
    url = witnessed.gateway.database_url
    grow(admin, 6, "before")
    seen = log_size(url)
    wait_for_head(url, seen)
    terminal = for_terminal(terminals[A], tmp_path / "terminal")
    auditor = auditor_witness(witnessed)
    assert terminal.witness().cosigned
    assert auditor.witness().cosigned
    witnessed_head = observation_head(terminal)
    witnessed_size = log_pb2.TreeHead.FromString(witnessed_head.tree_head).tree_size
    assert witnessed_size == seen

    # The operator stops the gateway, cuts the last leaves and every head above them, and
    # starts it again: the stored log now looks complete and consistent.
    witnessed.gateway.stop()
    roll_back(url, seen - 4)
    witnessed.gateway.start()
    with pytest.raises(RollbackError, match="rolled back"):
        terminal.witness()
    with pytest.raises(RollbackError):
        auditor.witness()

    # New events take the log past the old size: another history under the same key.
    admin = witnessed.staff(["administrator"], ["*"])
    grow(admin, 8, "after")
    wait_for_head(url, log_size(url))
    assert log_size(url) > seen
    with pytest.raises(ForkError):
        terminal.witness()
    with pytest.raises(ForkError):
        auditor.witness()
    # The head a release would be proven with is refused too, and the witness still holds
    # the head it saw: restarting the terminal changes nothing.
    newest = admin.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest()).tree_head
    with pytest.raises(ForkError):
        terminal.observe(newest)
    restarted = for_terminal(terminals[A], tmp_path / "terminal")
    assert observation_head(restarted) == witnessed_head
    with pytest.raises(ForkError):
        restarted.witness()


@SQLITE
def test_the_intake_loop_witnesses_every_round_and_stops_on_a_rollback(
    witnessed: Stack, tmp_path: Path
) -> None:
    from sealpost.clients.terminal.errors import LogWitnessError  # noqa: PLC0415
    from sealpost.clients.terminal.intake import MemoryStateStore  # noqa: PLC0415

    admin, terminals = setup_institutions(witnessed, [("d-w-5", A, "regular")])
    url = witnessed.gateway.database_url
    wait_for_head(url, log_size(url))
    client = terminals[A]
    reporter = CollectingReporter()
    loop = IntakeLoop(
        client,
        witnessed.escrow_for(A),
        MemoryStateStore(),
        reporter=reporter,
        witness=for_terminal(client, tmp_path / "terminal"),
    )
    summary = loop.run_once(max_wait=5)
    assert summary.heads_cosigned >= 1
    assert summary.witnessed_size == log_size(url)
    assert "witnessed the log up to size" in summary.line()

    grow(admin, 2, "more")
    wait_for_head(url, log_size(url))
    witnessed.gateway.stop()
    roll_back(url, summary.witnessed_size - 2)
    witnessed.gateway.start()
    with pytest.raises(LogWitnessError) as stopped:
        IntakeLoop(
            client,
            witnessed.escrow_for(A),
            MemoryStateStore(),
            reporter=reporter,
            witness=for_terminal(client, tmp_path / "terminal"),
        ).run_once(max_wait=5)
    assert "witness-state.json" in stopped.value.explain()
    assert any(kind == "witness" for kind, _ in reporter.notices)


def test_a_witness_refuses_a_head_the_pinned_directory_does_not_vouch_for(
    witnessed: Stack,
) -> None:
    """A head signed by a key the pinned directory never published is not a head at all."""
    from sealpost.crypto import logentry  # noqa: PLC0415
    from sealpost.crypto.errors import CryptoError  # noqa: PLC0415

    admin = witnessed.staff(["administrator"], ["*"])
    head = admin.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True)).tree_head
    signed = log_pb2.TreeHead.FromString(head.tree_head)
    impostor = logentry.sign_tree_head(
        signed.tree_size,
        signed.root_hash,
        signed.timestamp_ms,
        signed.log_key_id,
        PrivateKeys.generate(),
    )
    witness = auditor_witness(witnessed)
    with pytest.raises(CryptoError):
        witness.observe(impostor)
    assert witness.newest is None
    assert witness.observe(head).tree_size == signed.tree_size
    # Signed by the real log key, but dated before its record was valid (a stolen key
    # signing "old" heads): refused, although the key is known and cached by now.
    keys = json.loads((witnessed.gateway.state_dir / "gateway-keys.json").read_text())
    backdated = logentry.sign_tree_head(
        signed.tree_size,
        signed.root_hash,
        1_000,
        signed.log_key_id,
        SigningSeed(bytes.fromhex(keys["log"]["ed25519_seed"])),
    )
    with pytest.raises(CryptoError, match="validity"):
        witness.observe(backdated)


@SQLITE
def test_an_auditor_witnesses_from_the_command_line(witnessed: Stack, tmp_path: Path) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415

    from sealpost import cli as sealpost_cli  # noqa: PLC0415
    from sealpost._internal.devservers import gateway_directory_pin  # noqa: PLC0415
    from sealpost.clients.audit.witness import create_key, open_key  # noqa: PLC0415
    from sealpost.crypto.passphrase import KDF_INTERACTIVE  # noqa: PLC0415

    admin = witnessed.staff(["administrator"], ["*"])
    url = witnessed.gateway.database_url
    grow(admin, 4, "cli")
    wait_for_head(url, log_size(url))
    key_file = tmp_path / "auditor-witness.key"
    public = create_key(
        key_file, "correct horse battery", seed=AUDITOR_KEYS.ed25519_seed, kdf=KDF_INTERACTIVE
    )
    assert (public.public_key, public.key_id) == (AUDITOR_KEYS.signing_key, AUDITOR_KEY_ID)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert AUDITOR_KEYS.ed25519_seed.hex() not in key_file.read_text()
    assert open_key(key_file, "correct horse battery").key_id == AUDITOR_KEY_ID
    _name, token = witnessed.staff_token(["auditor"], ["*"])
    env = {"SEALPOST_STAFF_TOKEN": token, "SEALPOST_PASSPHRASE": "correct horse battery"}
    args = [
        "audit",
        "witness",
        "--directory-key",
        gateway_directory_pin(witnessed.gateway.state_dir).hex(),
        "--key-file",
        str(key_file),
        "--gateway",
        witnessed.gateway.address,
        "--ca-file",
        str(witnessed.gateway.state_dir / "tls" / "ca.pem"),
        "--json",
    ]
    runner = CliRunner(env=env)
    first = runner.invoke(sealpost_cli.app, args)
    assert first.exit_code == 0, first.stdout + first.stderr
    assert json.loads(first.stdout)["cosigned"] is True
    state = Path(json.loads(first.stdout)["stateFile"])
    assert state.stat().st_mode & 0o777 == 0o600
    cosigned = query(url, "SELECT witness_name FROM cosignatures WHERE witness_kind = 2")
    assert [r[0] for r in cosigned] == ["audit-office"]

    witnessed.gateway.stop()
    roll_back(url, log_size(url) - 2)
    witnessed.gateway.start()
    refused = runner.invoke(sealpost_cli.app, args)
    assert refused.exit_code == 1, refused.stdout + refused.stderr
    assert json.loads(refused.stdout)["kind"] == "rollback"
    wrong = CliRunner(env={**env, "SEALPOST_PASSPHRASE": "not the passphrase"})
    assert wrong.invoke(sealpost_cli.app, args).exit_code == 2

    # Making a key on the command line; never over an existing file.
    made = CliRunner(env=env).invoke(
        sealpost_cli.app, ["audit", "witness-key", "--out", str(tmp_path / "new.key"), "--json"]
    )
    assert made.exit_code == 0, made.stdout + made.stderr
    assert len(json.loads(made.stdout)["publicKey"]) == 64
    again = CliRunner(env=env).invoke(
        sealpost_cli.app, ["audit", "witness-key", "--out", str(tmp_path / "new.key")]
    )
    assert again.exit_code == 2
