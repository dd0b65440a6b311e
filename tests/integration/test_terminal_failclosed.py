"""Fail closed (SPEC P2): key server sealed or stopped mid-intake; malformed mail (P10).

These tests run their own OpenBao (sealed, stopped, restarted) and their own gateway
on SQLite, with the intake loop following the stream on a thread.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from sealpost._internal.stack import (
    BaseStack,
    Stack,
    approve_all,
    bootstrap_openbao,
    setup_institutions,
)
from sealpost.clients._grpc import ClientError
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.clients.terminal.client import Escrow, TerminalClient
from sealpost.clients.terminal.intake import (
    CollectingReporter,
    IntakeLoop,
    IntakeSummary,
    MemoryStateStore,
)
from sealpost.clients.terminal.profile import INTAKE_RETRY, escrow_with
from sealpost.crypto import _sodium
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.envelope import Part
from sealpost.crypto.logentry import LogAction, decode_event
from sealpost.escrow.bootstrap import BootstrapSettings, KeyServerBootstrap
from sealpost.escrow.client import EscrowClient, KeyServerConfig
from sealpost.gateway.storage.schema import log_leaves
from sealpost.v1 import common_pb2, envelope_pb2, relative_pb2, terminal_pb2
from tests.integration.test_terminal_intake import FAST, message_rows, send_many, verified_lawyer

pytestmark = pytest.mark.integration

A = "pi-closed"
RELEASED = common_pb2.MESSAGE_STATE_RELEASED
ACCEPTED = common_pb2.MESSAGE_STATE_ACCEPTED
REJECTED = common_pb2.MESSAGE_STATE_REJECTED


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what this module tests does not depend on the database."""
    return f"sqlite:///{tmp_path / 'closed.db'}"


class SwappableEscrow:
    """The terminal's escrow step, whose key-server client can be replaced (a new token)."""

    def __init__(self, escrow: Escrow) -> None:
        self.current = escrow

    def __call__(self, items: Sequence[tuple[bytes, bytes]]) -> list[envelope_pb2.EscrowBlob]:
        return self.current(items)


def fast_escrow(stack: Stack, institution: str) -> tuple[Escrow, EscrowClient]:
    """An encrypt-only terminal token and a client that gives up quickly (the loop waits)."""
    admin = KeyServerBootstrap(
        KeyServerConfig(stack.openbao.address),
        stack.openbao.root_token,
        BootstrapSettings(prefix=stack.prefix),
    )
    try:
        token = admin.create_terminal_token(institution).token
    finally:
        admin.close()
    client = EscrowClient(
        KeyServerConfig(stack.openbao.address, timeout=2.0),
        token,
        key=BootstrapSettings(prefix=stack.prefix).escrow_key,
        retry=INTAKE_RETRY,
    )
    return escrow_with(client), client


class LoopThread:
    """The intake loop following the stream on a thread; errors are kept for the test."""

    def __init__(self, loop: IntakeLoop) -> None:
        self.loop = loop
        self.error: BaseException | None = None
        self.summary: IntakeSummary | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.summary = self.loop.run()
        except BaseException as exc:  # handed to the test
            self.error = exc

    def __enter__(self) -> LoopThread:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.loop.stop()
        self.thread.join(15)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def states(stack: BaseStack, ids: Sequence[bytes]) -> set[int]:
    rows = message_rows(stack)
    return {int(rows[m].state) for m in ids}


def event_counts(stack: Stack) -> collections.Counter[tuple[LogAction, str]]:
    """(action, message id hex) -> how often the transparency log records it."""
    engine = sa.create_engine(stack.gateway.database_url)
    try:
        with engine.connect() as connection:
            leaves = [bytes(r.leaf) for r in connection.execute(sa.select(log_leaves.c.leaf))]
    finally:
        engine.dispose()
    counts: collections.Counter[tuple[LogAction, str]] = collections.Counter()
    for leaf in leaves:
        event = decode_event(leaf)
        for kind, value in event.subjects:
            if kind == "message":
                counts[(event.action, value)] += 1
    return counts


def _people(stack: Stack) -> tuple[TerminalClient, RelativeClient, RelativeClient]:
    admin, terminals = setup_institutions(stack, [("d-1", A, "regular")])
    relative = stack.relative("Zus")
    relative.request_contact("d-1")
    lawyer = verified_lawyer(stack, admin, ["d-1"])
    approve_all(admin, A)
    return terminals[A], relative, lawyer


def _exactly_once(stack: Stack, ids: Sequence[bytes], *, escrowed: bool) -> None:
    counts = event_counts(stack)
    for message_id in ids:
        assert counts[(LogAction.MESSAGE_RELEASED, message_id.hex())] == 1
        assert counts[(LogAction.MESSAGE_ESCROWED, message_id.hex())] == (1 if escrowed else 0)


def test_sealed_key_server_holds_mail_back_and_the_backlog_drains_after_unseal(
    own_stack: Stack,
) -> None:
    stack = own_stack
    terminal, relative, lawyer = _people(stack)
    escrow, escrow_client = fast_escrow(stack, A)
    store = MemoryStateStore()
    reporter = CollectingReporter()
    loop = IntakeLoop(terminal, escrow, store, settings=FAST, reporter=reporter)
    with LoopThread(loop):
        before = send_many([relative], ["d-1"], 5, prefix="before")
        wait_until(lambda: states(stack, before) == {RELEASED})

        stack.openbao.seal()
        held = send_many([relative], ["d-1"], 30, prefix="held")
        privileged = send_many([lawyer], ["d-1"], 3, prefix="privileged")
        # Privileged mail carries no escrow: it still goes while the key server is sealed.
        wait_until(lambda: states(stack, privileged) == {RELEASED})
        wait_until(lambda: sum(k == "key-server" for k, _ in reporter.notices) >= 2)
        assert loop.waiting_for_key_server
        assert states(stack, held) == {ACCEPTED}
        rows = message_rows(stack)
        assert all(rows[m].escrow is None for m in held)
        deliverable = {d.message_id for d in terminal.all_deliveries()}
        assert deliverable == set(before) | set(privileged)
        assert not deliverable & set(held)

        stack.openbao.unseal()
        wait_until(lambda: states(stack, held) == {RELEASED})
        wait_until(lambda: not loop.waiting_for_key_server)
    escrow_client.close()

    # Nothing lost, nothing taken in twice.
    _exactly_once(stack, [*before, *held], escrowed=True)
    _exactly_once(stack, privileged, escrowed=False)
    delivered = [d.message_id for d in terminal.all_deliveries()]
    assert sorted(delivered) == sorted([*before, *held, *privileged])
    again = IntakeLoop(terminal, escrow, store, settings=FAST).run_once(max_wait=5)
    assert again.received == 0


def test_stopped_key_server_holds_mail_back_until_it_returns(own_stack: Stack) -> None:
    stack = own_stack
    terminal, relative, lawyer = _people(stack)
    first, first_client = fast_escrow(stack, A)
    escrow = SwappableEscrow(first)
    store = MemoryStateStore()
    reporter = CollectingReporter()
    loop = IntakeLoop(terminal, escrow, store, settings=FAST, reporter=reporter)
    with LoopThread(loop):
        before = send_many([relative], ["d-1"], 3, prefix="before")
        wait_until(lambda: states(stack, before) == {RELEASED})

        stack.openbao.stop()
        held = send_many([relative], ["d-1"], 20, prefix="held")
        privileged = send_many([lawyer], ["d-1"], 2, prefix="privileged")
        wait_until(lambda: states(stack, privileged) == {RELEASED})
        wait_until(lambda: sum(k == "key-server" for k, _ in reporter.notices) >= 2)
        assert states(stack, held) == {ACCEPTED}
        assert not {d.message_id for d in terminal.all_deliveries()} & set(held)

        # Back on the same address. A dev server restarts empty: bootstrap it again and give
        # the terminal a new token (escrow made before the restart went with the old server).
        stack.openbao.start()
        bootstrap_openbao(stack.openbao)
        # Wait until the loop has tried the old token on the restarted server (a batch it
        # reports as refused), then check that the refusal let nothing through.
        seen = len(reporter.batches)
        wait_until(lambda: any(b.key_server == "refused" for b in reporter.batches[seen:]))
        assert states(stack, held) == {ACCEPTED}  # the old token is refused: still closed
        escrow.current, second_client = fast_escrow(stack, A)
        wait_until(lambda: states(stack, held) == {RELEASED})
    first_client.close()
    second_client.close()
    _exactly_once(stack, [*before, *held], escrowed=True)
    _exactly_once(stack, privileged, escrowed=False)
    assert any("refuses this terminal's token" in text for _k, text in reporter.notices)


def _broken(relative: RelativeClient, detainee: str, *, wrong_key: bool) -> bytes:
    """Send a correctly signed envelope whose data key for the mailbox does not open right.

    The gateway cannot see this (it holds no mailbox key); the terminal finds out.
    """
    contact = relative.contact(detainee)
    assert contact.mailbox is not None
    envelope = crypto_envelope.seal_envelope(
        [Part("text/plain; charset=utf-8", b"broken")],
        sender_keys=relative.keys,
        sender_key_id=relative.key_id,
        recipients=[contact.mailbox],
        now_ms=int(time.time() * 1000),
    )
    sealed = list(envelope.sealed_keys)
    for index, key in enumerate(sealed):
        if key.key_id == contact.mailbox.id:
            replacement = (
                _sodium.seal(contact.mailbox.encryption_key, secrets.token_bytes(32))
                if wrong_key
                else secrets.token_bytes(len(key.sealed_dek))
            )
            sealed[index] = envelope_pb2.SealedKey(key_id=key.key_id, sealed_dek=replacement)
    forged = crypto_envelope.sign_envelope(
        envelope.header, list(envelope.part_ciphertexts), sealed, relative.keys
    )
    receipt = relative.send_sealed(relative_pb2.SendMessageRequest(envelope=forged))
    return receipt.message_id


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_malformed_envelopes_are_reported_and_do_not_stop_intake(stack: Stack) -> None:
    terminal, relative, _lawyer = _people(stack)
    good_before = send_many([relative], ["d-1"], 3, prefix="good")
    garbage = _broken(relative, "d-1", wrong_key=False)
    wrong = _broken(relative, "d-1", wrong_key=True)
    good_after = send_many([relative], ["d-1"], 3, prefix="good")
    store = MemoryStateStore()
    reporter = CollectingReporter()
    summary = IntakeLoop(
        terminal, stack.escrow_for(A), store, settings=FAST, reporter=reporter
    ).run_once()
    assert summary.submitted == 6
    assert summary.malformed == 2
    assert summary.drained
    assert set(store.state.malformed) == {garbage.hex(), wrong.hex()}
    assert store.state.malformed[garbage.hex()] == "DecryptionError"
    assert store.state.malformed[wrong.hex()] == "EnvelopeError"
    assert [k for k, _ in reporter.notices].count("malformed") == 2
    assert all("broken" not in text for _k, text in reporter.notices)  # ids, never content
    assert states(stack, [*good_before, *good_after]) == {RELEASED}
    # Rejected at the gateway, with the reason logged; the sender hears "not delivered".
    assert states(stack, [garbage, wrong]) == {REJECTED}
    counts = event_counts(stack)
    assert counts[(LogAction.MESSAGE_REJECTED, garbage.hex())] == 1
    assert counts[(LogAction.MESSAGE_REJECTED, wrong.hex())] == 1
    assert relative.status(garbage) == common_pb2.DELIVERY_STATUS_NOT_DELIVERED
    # Nothing is left waiting: a rescan from the start finds nothing to report.
    store.state.cursor = ""
    reporter.notices.clear()
    again = IntakeLoop(terminal, stack.escrow_for(A), store, settings=FAST, reporter=reporter)
    assert again.run_once().malformed == 0
    assert reporter.notices == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rejections_are_checked_by_the_gateway(stack: Stack) -> None:
    admin, terminals = setup_institutions(
        stack, [("d-r", A, "regular"), ("d-o", "pi-other", "regular")]
    )
    relative = stack.relative("Neef")
    relative.request_contact("d-r")
    approve_all(admin, A)
    released = relative.send("d-r", "gewoon").message_id
    pending = relative.send("d-r", "nog niet binnen").message_id
    terminal, other = terminals[A], terminals["pi-other"]
    terminal.take_in(
        [i for i in terminal.intake() if i.message_id == released], stack.escrow_for(A)
    )

    def reject(
        client: TerminalClient, message_id: bytes, reason: terminal_pb2.RejectReason.ValueType
    ) -> dict[bytes, int]:
        rejected = terminal_pb2.RejectedMessage(message_id=message_id, reason=reason)
        return client.reject_messages([rejected])

    does_not_open = terminal_pb2.REJECT_REASON_DOES_NOT_OPEN
    with pytest.raises(ClientError) as foreign:
        reject(other, pending, does_not_open)
    assert foreign.value.code == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(ClientError) as no_reason:
        reject(terminal, pending, terminal_pb2.REJECT_REASON_UNSPECIFIED)
    assert no_reason.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(ClientError) as unknown:
        reject(terminal, secrets.token_bytes(16), does_not_open)
    assert unknown.value.code == grpc.StatusCode.NOT_FOUND
    # A message taken in already keeps its state; a pending one is rejected exactly once.
    assert reject(terminal, released, does_not_open) == {released: RELEASED}
    assert reject(terminal, pending, does_not_open) == {pending: REJECTED}
    assert reject(terminal, pending, does_not_open) == {pending: REJECTED}
    assert event_counts(stack)[(LogAction.MESSAGE_REJECTED, pending.hex())] == 1
    assert states(stack, [released, pending]) == {RELEASED, REJECTED}
