"""Reliability under faults (SPEC section 4, P10): crashes, database restarts, competing terminals.

Each test is bounded in time and traffic and runs on loopback only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from sealpost._internal.devservers import PostgresServer, gateway_health
from sealpost._internal.stack import Stack, approve_all, setup_institutions
from sealpost.clients._grpc import ClientError
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.logentry import LogAction, decode_event
from sealpost.gateway.storage.schema import log_leaves, messages
from sealpost.v1 import common_pb2, relative_pb2

pytestmark = [pytest.mark.integration, pytest.mark.slow]

A = "pi-faults"
SENDERS = 8
PER_SENDER = 25


#: The crash comes once this many sends are acknowledged (of SENDERS * PER_SENDER).
KILL_AFTER_ACKS = SENDERS * PER_SENDER // 5


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(0.05)


def _health(stack: Stack) -> str:
    return gateway_health(stack.gateway.address, stack.gateway.ca_pem)


def _message_ids(url: str) -> list[bytes]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.select(messages.c.message_id)).scalars())
    finally:
        engine.dispose()


def _senders(stack: Stack) -> list[RelativeClient]:
    admin, _terminals = setup_institutions(stack, [("d-load", A, "regular")])
    senders = [stack.relative(f"sender {i}") for i in range(SENDERS)]
    for sender in senders:
        sender.request_contact("d-load")
    approve_all(admin, A)
    return senders


def _sealed(senders: list[RelativeClient]) -> dict[int, list[relative_pb2.SendMessageRequest]]:
    return {
        i: [sender.seal("d-load", f"bericht {i}.{n} " + "x" * 1000) for n in range(PER_SENDER)]
        for i, sender in enumerate(senders)
    }


def _send_all(
    senders: list[RelativeClient],
    sealed: dict[int, list[relative_pb2.SendMessageRequest]],
    acked: set[bytes],
    stop_on_error: bool,
) -> None:
    lock = threading.Lock()

    def run(i: int) -> None:
        for request in sealed[i]:
            try:
                receipt = senders[i].send_sealed(request)
            except ClientError:
                if stop_on_error:
                    return
                continue
            with lock:
                acked.add(receipt.message_id)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)


def test_acknowledged_sends_survive_a_crash_and_resends_never_duplicate(stack: Stack) -> None:
    senders = _senders(stack)
    sealed = _sealed(senders)
    acked: set[bytes] = set()
    sending = threading.Thread(target=_send_all, args=(senders, sealed, acked, True))
    sending.start()
    # Mid-stream, at a known point: once a fifth of the sends are acknowledged.
    _wait_for(lambda: len(acked) >= KILL_AFTER_ACKS, "acknowledged sends before the crash")
    stack.gateway.kill()  # kill -9: no shutdown, no flush beyond what was committed
    sending.join(120)
    assert not sending.is_alive()
    before_restart = set(acked)
    # The crash came while sends were still under way: some were never acknowledged.
    assert KILL_AFTER_ACKS <= len(before_restart) < SENDERS * PER_SENDER

    stack.gateway.start()
    stored = _message_ids(stack.gateway.database_url)
    assert len(stored) == len(set(stored))  # exactly once
    assert before_restart <= set(stored)  # nothing acknowledged was lost

    # Resend every envelope by its id: nothing is stored twice.
    outcomes: list[grpc.StatusCode] = []
    for i, requests in sealed.items():
        for request in requests:
            try:
                senders[i].send_sealed(request)
                outcomes.append(grpc.StatusCode.OK)
            except ClientError as exc:
                outcomes.append(exc.code)
    assert set(outcomes) <= {grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS}
    assert outcomes.count(grpc.StatusCode.ALREADY_EXISTS) >= len(before_restart)
    final = _message_ids(stack.gateway.database_url)
    assert len(final) == len(set(final)) == SENDERS * PER_SENDER


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_database_restart_under_load(stack: Stack, postgres: PostgresServer) -> None:
    senders = _senders(stack)
    sealed = _sealed(senders)
    acked: set[bytes] = set()
    first_half = {i: requests[: PER_SENDER // 2] for i, requests in sealed.items()}
    second_half = {i: requests[PER_SENDER // 2 :] for i, requests in sealed.items()}
    _send_all(senders, first_half, acked, stop_on_error=False)
    assert len(acked) == SENDERS * (PER_SENDER // 2)

    postgres.stop()
    try:
        _wait_for(lambda: _health(stack) == "NOT_SERVING", "the gateway to report NOT_SERVING")
        with pytest.raises(ClientError) as down:
            senders[0].send_sealed(second_half[0][0])
        assert down.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        postgres.start()

    _wait_for(lambda: _health(stack) == "SERVING", "the gateway to report SERVING again")
    _send_all(senders, second_half, acked, stop_on_error=False)
    stored = _message_ids(stack.gateway.database_url)
    assert acked <= set(stored)
    assert len(stored) == len(set(stored)) == SENDERS * PER_SENDER


def test_two_terminals_taking_in_the_same_stream_do_not_escrow_twice(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-twin", A, "regular")])
    first = terminals[A]
    second = stack.terminal(admin, A, register_key=False)
    second.institution_keys = first.institution_keys
    second.institution_key_id = first.institution_key_id
    relative = stack.relative()
    relative.request_contact("d-twin")
    approve_all(admin, A)
    for n in range(30):
        relative.send("d-twin", f"tweeling {n}")
    results: list[dict[bytes, int]] = []
    errors: list[BaseException] = []

    def take_in(terminal: Any) -> None:
        try:
            items = terminal.intake()
            results.append(terminal.take_in(items, stack.escrow_for(A)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take_in, args=(t,)) for t in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(results) == 2
    for outcome in results:
        assert set(outcome.values()) == {common_pb2.MESSAGE_STATE_RELEASED}

    engine = sa.create_engine(stack.gateway.database_url)
    with engine.connect() as connection:
        leaves = connection.execute(sa.select(log_leaves.c.leaf)).scalars().all()
    engine.dispose()
    escrowed = [decode_event(leaf) for leaf in leaves]
    escrowed_ids = [e.message_id() for e in escrowed if e.action is LogAction.MESSAGE_ESCROWED]
    assert len(escrowed_ids) == 30
    assert len(set(escrowed_ids)) == 30
    deliveries = first.deliveries("d-twin")
    assert len(deliveries) == 30
    header_ids = {crypto_envelope.parse_header(d.envelope.header).message_id for d in deliveries}
    assert len(header_ids) == 30
