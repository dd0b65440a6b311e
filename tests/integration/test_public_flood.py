"""Unauthenticated calls are bounded: a flood leaves the database and the log bounded.

Before, 100 RegisterDevice calls made 100 accounts and 100 permanent log leaves in
1.3 s, and 300 CreateChallenge calls for made-up keys wrote 300 durable rows in 0.6 s.
Now registration and sign-in are limited per client address and overall (answered
RESOURCE_EXHAUSTED with a retry hint), challenges for keys that cannot sign in are
never stored, and a relative who is signed in keeps sending through the flood.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from sealpost._internal.devservers import OpenBaoDevServer
from sealpost._internal.stack import Stack, approve_all, setup_institutions, start_gateway
from sealpost.clients._grpc import ClientError
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.escrow.bootstrap import BootstrapResult
from sealpost.v1 import relative_pb2, relative_pb2_grpc

pytestmark = pytest.mark.integration

A = "pi-noord"
REGISTER = "3/min,6/min"
SIGN_IN = "20/min,40/min"


@pytest.fixture
def limited(
    tmp_path: Path, openbao: OpenBaoDevServer, keyserver: BootstrapResult
) -> Iterator[Stack]:
    gateway = start_gateway(
        tmp_path / "gateway",
        openbao,
        keyserver,
        f"sqlite:///{tmp_path / 'sealpost.db'}",
        extra_env={"SEALPOST_REGISTER_LIMIT": REGISTER, "SEALPOST_SIGN_IN_LIMIT": SIGN_IN},
    )
    stack = Stack(openbao, keyserver, gateway)
    yield stack
    stack.close()
    gateway.stop()


#: Counting rows in each table the flood could grow.
_COUNTS = sa.text(
    "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM key_records), "
    "(SELECT count(*) FROM challenges), (SELECT count(*) FROM log_leaves)"
)


def _counts(stack: Stack) -> dict[str, int]:
    engine = sa.create_engine(stack.gateway.database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(_COUNTS).one()
    finally:
        engine.dispose()
    return dict(zip(("accounts", "key_records", "challenges", "log_leaves"), row, strict=True))


def test_an_unauthenticated_flood_stays_bounded_while_relatives_send(limited: Stack) -> None:
    stack = limited
    admin, _terminals = setup_institutions(stack, [("d-1", A, "regular")])
    sender = stack.relative("Ingelogd")  # signs in before the flood: 1 of the 3 registrations
    sender.request_contact("d-1")
    approve_all(admin, A)
    before = _counts(stack)
    outcomes: Counter[str] = Counter()
    hints: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + 4.0

    def register() -> None:
        while time.monotonic() < stop:
            client = RelativeClient(stack.endpoint, stack.pin)
            try:
                client.register("Spam")
                result = "registered"
            except ClientError as exc:
                result = exc.code.name
            finally:
                client.close()
            with lock:
                outcomes[f"register {result}"] += 1

    def challenge() -> None:
        channel = stack.endpoint.channel()
        stub = relative_pb2_grpc.RelativeServiceStub(channel)
        try:
            while time.monotonic() < stop:
                request = relative_pb2.CreateChallengeRequest(key_id=secrets.token_bytes(32))
                try:
                    stub.CreateChallenge(request, timeout=10)
                    result = "OK"
                except grpc.RpcError as exc:
                    result = exc.code().name
                    trailers = exc.trailing_metadata() or ()
                    for item in trailers:
                        if item.key == "retry-after-seconds":
                            with lock:
                                hints.append(float(item.value))
                with lock:
                    outcomes[f"challenge {result}"] += 1
        finally:
            channel.close()

    flood = [threading.Thread(target=register) for _ in range(3)]
    flood += [threading.Thread(target=challenge) for _ in range(3)]
    for thread in flood:
        thread.start()
    sent = [sender.send("d-1", f"nog steeds hier {n}") for n in range(10)]
    for thread in flood:
        thread.join()
    after = _counts(stack)

    # The flood was answered, mostly with RESOURCE_EXHAUSTED and a hint when to retry.
    assert outcomes["register RESOURCE_EXHAUSTED"] > 10, outcomes
    assert outcomes["challenge RESOURCE_EXHAUSTED"] > 10, outcomes
    assert hints
    assert all(0 < hint <= 60 for hint in hints)
    # Bounded: at most the registrations the limit lets through (3 in a burst, then one
    # every 20 s; one was the sender's), and no challenge row for a made-up key.
    registered = outcomes["register registered"]
    assert registered <= 2
    assert after["accounts"] - before["accounts"] == registered
    assert after["challenges"] == before["challenges"]
    # Each registration is one key-publication leaf; the sends add theirs (an acceptance
    # each). Nothing else grew the log.
    assert after["log_leaves"] - before["log_leaves"] == registered + len(sent)
    # The relative who was signed in sent through the flood.
    assert len(sent) == 10
    assert all(receipt.leaf_index >= 0 for receipt in sent)
