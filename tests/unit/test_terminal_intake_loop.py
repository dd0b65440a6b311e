"""The intake loop's batching, cursor and fail-closed logic, against plain fakes (no network)."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import grpc
import pytest

from sealpost.clients._grpc import ClientError
from sealpost.clients.terminal.client import Intake, TerminalClient, Trust
from sealpost.clients.terminal.errors import NoMailboxKeyError, TerminalRevokedError
from sealpost.clients.terminal.intake import (
    BatchReport,
    CollectingReporter,
    IntakeLoop,
    IntakeSettings,
    IntakeState,
    MemoryStateStore,
)
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.envelope import Part
from sealpost.crypto.errors import DecryptionError, EnvelopeError, KeyRecordError
from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.crypto.keys import PrivateKeys
from sealpost.escrow.errors import KeyServerUnavailableError, PermissionDeniedError
from sealpost.v1 import common_pb2, envelope_pb2, keys_pb2, terminal_pb2

ACCEPTED = common_pb2.MESSAGE_STATE_ACCEPTED
RELEASED = common_pb2.MESSAGE_STATE_RELEASED
NOW_MS = 1_800_000_000_000
QUICK = IntakeSettings(
    window_seconds=0.0, poll_seconds=0.01, backoff_initial=0.01, backoff_max=0.04
)

_KEYS = PrivateKeys(b"\x01" * 32, b"\x02" * 32)
_MAILBOX = VerifiedKey(
    id=b"\x03" * 32,
    purpose=keys_pb2.KEY_PURPOSE_MAILBOX,
    subject="d-1",
    encryption_key=_KEYS.encryption_key,
    signing_key=_KEYS.signing_key,
    not_before=0,
    not_after=NOW_MS // 1000 + 3600,
    issuer_key_id=b"\x04" * 32,
)


class FakeCall:
    """A StreamIntake call over a fixed list; a following one then waits until cancelled."""

    def __init__(self, items: list[terminal_pb2.StreamIntakeResponse], follow: bool) -> None:
        self.items = items
        self.follow = follow
        self.cancelled = threading.Event()

    def __iter__(self) -> Iterator[terminal_pb2.StreamIntakeResponse]:
        yield from self.items
        if self.follow:
            self.cancelled.wait(10)

    def cancel(self) -> bool:
        self.cancelled.set()
        return True


class FakeGateway:
    """The terminal-facing gateway: a feed of messages that stay ACCEPTED until submitted."""

    def __init__(self) -> None:
        self.feed: list[terminal_pb2.StreamIntakeResponse] = []
        self.state: dict[bytes, int] = {}
        self.privileged: set[bytes] = set()
        self.broken: dict[bytes, Exception] = {}
        self.no_key: set[bytes] = set()
        self.refuse: set[bytes] = set()
        self.submitted: collections.Counter[bytes] = collections.Counter()
        self.stream_error: ClientError | None = None
        self.submit_errors: list[ClientError] = []
        self.rejected: dict[bytes, int] = {}
        self.reject_errors: list[ClientError] = []

    def add(self, count: int, *, privileged: bool = False) -> list[bytes]:
        ids = []
        for _ in range(count):
            envelope = crypto_envelope.seal_envelope(
                [Part("text/plain; charset=utf-8", b"x")],
                sender_keys=_KEYS,
                sender_key_id=b"\x05" * 32,
                recipients=[_MAILBOX],
                now_ms=NOW_MS,
            )
            message_id = crypto_envelope.parse_header(envelope.header).message_id
            self.feed.append(
                terminal_pb2.StreamIntakeResponse(
                    cursor=str(len(self.feed) + 1),
                    envelope=envelope,
                    detainee_id="d-1",
                    privileged=privileged,
                    accepted_at_ms=NOW_MS,
                )
            )
            self.state[message_id] = ACCEPTED
            if privileged:
                self.privileged.add(message_id)
            ids.append(message_id)
        return ids

    @property
    def accepted(self) -> set[bytes]:
        return {m for m, s in self.state.items() if s == ACCEPTED}


class FakeClient:
    """The parts of TerminalClient the loop uses, over a FakeGateway."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self.streams: list[str] = []
        self.housekeeping = 0

    def open_intake_stream(self, after_cursor: str = "", *, follow: bool = False) -> FakeCall:
        if self.gateway.stream_error is not None:
            raise self.gateway.stream_error
        self.streams.append(after_cursor)
        after = int(after_cursor or 0)
        return FakeCall(
            [
                item
                for item in self.gateway.feed
                if int(item.cursor) > after and self.gateway.state[_id(item)] == ACCEPTED
            ],
            follow,
        )

    def directory(self) -> Trust:
        return _MAILBOX, []

    def to_intake(self, item: terminal_pb2.StreamIntakeResponse, trust: Trust) -> Intake:
        return Intake(
            item.cursor,
            _id(item),
            item.detainee_id,
            item.envelope,
            _MAILBOX,
            "Sender",
            item.privileged,
            item.accepted_at_ms,
        )

    def open_dek(self, item: Intake, *, reload: bool = True) -> bytes:
        if item.message_id in self.gateway.broken:
            raise self.gateway.broken[item.message_id]
        if item.message_id in self.gateway.no_key:
            raise NoMailboxKeyError()
        return b"\x07" * 32

    def submit_escrow(
        self, submissions: Sequence[terminal_pb2.EscrowSubmission]
    ) -> dict[bytes, int]:
        if self.gateway.submit_errors:
            raise self.gateway.submit_errors.pop(0)
        for submission in submissions:
            privileged = submission.message_id in self.gateway.privileged
            # The gateway's rule (SPEC P2, P4): escrow exactly for the non-privileged.
            if submission.HasField("escrow") == privileged:
                raise ClientError(grpc.StatusCode.INVALID_ARGUMENT, "escrow mismatch")
            if submission.message_id in self.gateway.refuse:
                raise ClientError(grpc.StatusCode.PERMISSION_DENIED, "another institution's")
        results = {}
        for submission in submissions:
            if self.gateway.state[submission.message_id] == ACCEPTED:
                self.gateway.submitted[submission.message_id] += 1
                self.gateway.state[submission.message_id] = RELEASED
            results[submission.message_id] = self.gateway.state[submission.message_id]
        return results

    def reject_messages(
        self, rejections: Sequence[terminal_pb2.RejectedMessage]
    ) -> dict[bytes, int]:
        if self.gateway.reject_errors:
            raise self.gateway.reject_errors.pop(0)
        for rejected in rejections:
            self.gateway.rejected[rejected.message_id] = rejected.reason
            self.gateway.state[rejected.message_id] = common_pb2.MESSAGE_STATE_REJECTED
        return {r.message_id: common_pb2.MESSAGE_STATE_REJECTED for r in rejections}

    def hand_over(self) -> int:
        self.housekeeping += 1
        return 0

    def provision_missing_mailboxes(self) -> list[str]:
        return []


class FakeEscrow:
    """The key server: available, down, or refusing; records what it escrowed."""

    def __init__(self, *, failures: int = 0, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or KeyServerUnavailableError("transit batch encrypt: sealed")
        self.calls: list[int] = []

    def __call__(self, items: Sequence[tuple[bytes, bytes]]) -> list[envelope_pb2.EscrowBlob]:
        self.calls.append(len(items))
        if self.failures:
            self.failures -= 1
            raise self.error
        return [
            envelope_pb2.EscrowBlob(
                version=1, message_id=m, ciphertext="vault:v1:QUJD", key_version=1
            )
            for m, _dek in items
        ]


def _id(item: terminal_pb2.StreamIntakeResponse) -> bytes:
    return crypto_envelope.parse_header(item.envelope.header).message_id


def _loop(
    gateway: FakeGateway,
    escrow: FakeEscrow,
    store: MemoryStateStore | None = None,
    settings: IntakeSettings = QUICK,
) -> tuple[IntakeLoop, FakeClient, MemoryStateStore, CollectingReporter]:
    client = FakeClient(gateway)
    store = store or MemoryStateStore()
    reporter = CollectingReporter()
    loop = IntakeLoop(
        cast(TerminalClient, client), escrow, store, settings=settings, reporter=reporter
    )
    return loop, client, store, reporter


def test_batches_of_at_most_200_and_the_cursor_after_each_submission() -> None:
    gateway = FakeGateway()
    ids = gateway.add(430)
    escrow = FakeEscrow()
    loop, client, store, reporter = _loop(gateway, escrow)
    summary = loop.run_once()
    assert [b.received for b in reporter.batches] == [200, 200, 30]
    assert escrow.calls == [200, 200, 30]
    assert summary.submitted == summary.escrowed == summary.released == 430
    assert summary.drained
    assert store.state.cursor == "430"
    assert store.state.taken_in == 430
    assert store.saves == 3  # once per batch, after its submission
    assert gateway.accepted == set()
    assert all(gateway.submitted[m] == 1 for m in ids)
    assert client.housekeeping == 1


def test_key_server_down_holds_non_privileged_and_still_sends_privileged() -> None:
    gateway = FakeGateway()
    normal = gateway.add(5)
    privileged = gateway.add(3, privileged=True)
    escrow = FakeEscrow(failures=1_000)
    loop, _client, store, reporter = _loop(gateway, escrow)
    summary = loop.run_once(max_wait=0.1)
    assert not summary.drained
    assert summary.waiting_for_key_server == 5
    assert summary.privileged == 3
    assert gateway.accepted == set(normal)  # fail closed: none of them went without escrow
    assert all(gateway.submitted[m] == 1 for m in privileged)
    assert store.state.cursor == ""  # the cursor never passes a message still waiting
    assert loop.waiting_for_key_server
    notices = [text for kind, text in reporter.notices if kind == "key-server"]
    assert notices
    assert "fail closed" in notices[0]

    # The key server is back: the backlog drains, nothing twice, nothing lost.
    escrow.failures = 0
    loop, _client, store, _reporter = _loop(gateway, escrow, store)
    again = loop.run_once(max_wait=1)
    assert again.drained
    assert again.escrowed == 5
    assert gateway.accepted == set()
    assert all(count == 1 for count in gateway.submitted.values())
    assert store.state.cursor == "5"  # the last message the backlog pass took in


def test_run_once_waits_with_backoff_until_the_key_server_returns() -> None:
    gateway = FakeGateway()
    gateway.add(3)
    escrow = FakeEscrow(failures=3)
    loop, _client, _store, reporter = _loop(gateway, escrow)
    summary = loop.run_once(max_wait=5)
    assert summary.drained
    assert escrow.calls == [3, 3, 3, 3]
    delays = [
        float(text.rsplit("in ", 1)[1].split(" ")[0])
        for kind, text in reporter.notices
        if kind == "key-server" and "next try" in text
    ]
    assert len(delays) == 3
    assert all(0 <= d <= QUICK.backoff_max for d in delays)
    assert reporter.notices[-1] == ("key-server", "the key server is back; taking in the backlog")
    assert gateway.accepted == set()


def test_a_refusing_key_server_is_also_fail_closed() -> None:
    gateway = FakeGateway()
    gateway.add(2)
    escrow = FakeEscrow(failures=100, error=PermissionDeniedError("transit encrypt: denied"))
    loop, _client, _store, reporter = _loop(gateway, escrow)
    summary = loop.run_once(max_wait=0.05)
    assert summary.waiting_for_key_server == 2
    assert len(gateway.accepted) == 2
    assert any("refuses this terminal's token" in text for _k, text in reporter.notices)


def test_a_crash_after_submission_retakes_the_batch_without_loss_or_duplicates() -> None:
    gateway = FakeGateway()
    ids = gateway.add(250)

    class CrashingStore(MemoryStateStore):
        def save(self, state: IntakeState) -> None:
            raise OSError("power lost")

    loop, _client, _store, _reporter = _loop(gateway, FakeEscrow(), CrashingStore())
    with pytest.raises(OSError, match="power lost"):
        loop.run_once()
    assert len(gateway.accepted) == 50  # the first batch went through, then the crash
    store = MemoryStateStore()  # nothing was persisted: start from the old cursor
    loop, client, store, _reporter = _loop(gateway, FakeEscrow(), store)
    summary = loop.run_once()
    assert client.streams == [""]
    assert summary.submitted == 50
    assert gateway.accepted == set()
    assert all(gateway.submitted[m] == 1 for m in ids)


def test_malformed_messages_are_rejected_at_the_gateway_once() -> None:
    gateway = FakeGateway()
    good = gateway.add(2)
    bad = gateway.add(3)
    more = gateway.add(1)
    gateway.broken[bad[0]] = DecryptionError("cannot open")
    gateway.broken[bad[1]] = EnvelopeError("data key does not match the key commitment")
    gateway.broken[bad[2]] = KeyRecordError("sender record revoked")
    loop, _client, store, reporter = _loop(gateway, FakeEscrow())
    summary = loop.run_once()
    assert summary.malformed == 3
    assert summary.submitted == 3
    assert summary.drained
    assert store.state.cursor == "6"  # a malformed message does not hold the cursor
    assert store.state.malformed == {
        bad[0].hex(): "DecryptionError",
        bad[1].hex(): "EnvelopeError",
        bad[2].hex(): "KeyRecordError",
    }
    # The gateway knows: none of them waits as ACCEPTED for ever; the reasons travel.
    assert gateway.accepted == set()
    assert gateway.rejected == {
        bad[0]: terminal_pb2.REJECT_REASON_DOES_NOT_OPEN,
        bad[1]: terminal_pb2.REJECT_REASON_MALFORMED_ENVELOPE,
        bad[2]: terminal_pb2.REJECT_REASON_SENDER_KEY_INVALID,
    }
    assert {m for m in gateway.state if gateway.submitted[m]} == set(good + more)
    assert [k for k, _ in reporter.notices] == ["malformed"] * 3


def test_a_refused_rejection_is_remembered_and_skipped_afterwards() -> None:
    gateway = FakeGateway()
    (bad,) = gateway.add(1)
    gateway.broken[bad] = DecryptionError("cannot open")
    gateway.reject_errors = [ClientError(grpc.StatusCode.FAILED_PRECONDITION, "taken in")]
    loop, _client, store, reporter = _loop(gateway, FakeEscrow())
    assert loop.run_once().malformed == 1
    assert gateway.rejected == {}
    assert store.state.malformed == {bad.hex(): "DecryptionError"}
    assert "refused the rejections" in reporter.notices[0][1]

    store.state.cursor = ""
    loop, _client, store, reporter = _loop(gateway, FakeEscrow(), store)
    again = loop.run_once()
    assert again.malformed == 0
    assert reporter.batches[0].known_malformed == 1
    assert reporter.notices == []


def test_a_rejection_lost_to_a_gateway_outage_is_made_again() -> None:
    gateway = FakeGateway()
    (bad,) = gateway.add(1)
    gateway.broken[bad] = DecryptionError("cannot open")
    gateway.reject_errors = [ClientError(grpc.StatusCode.UNAVAILABLE, "restarting")]
    loop, _client, store, _reporter = _loop(gateway, FakeEscrow())
    assert loop.run_once().drained
    assert gateway.rejected == {bad: terminal_pb2.REJECT_REASON_DOES_NOT_OPEN}
    assert store.state.malformed == {bad.hex(): "DecryptionError"}


def test_messages_without_a_mailbox_key_wait_and_hold_the_cursor() -> None:
    gateway = FakeGateway()
    first = gateway.add(1)
    waiting = gateway.add(1)
    after = gateway.add(2)
    gateway.no_key.add(waiting[0])
    loop, _client, store, _reporter = _loop(gateway, FakeEscrow())
    summary = loop.run_once()
    assert summary.waiting_for_mailbox == 1
    assert not summary.drained
    assert gateway.accepted == set(waiting)
    assert store.state.cursor == ""  # the batch held a waiting message
    assert gateway.submitted[first[0]] == gateway.submitted[after[0]] == 1

    gateway.no_key.clear()  # the handover arrived
    loop, _client, store, _reporter = _loop(gateway, FakeEscrow(), store)
    assert loop.run_once().drained
    assert gateway.accepted == set()
    # The stream from the held cursor yields only what is still to do; everything up to
    # the last message taken in is done.
    assert store.state.cursor == "2"


def test_following_retries_messages_waiting_for_a_handover() -> None:
    gateway = FakeGateway()
    first = gateway.add(1)
    waiting = gateway.add(1)
    gateway.no_key.add(waiting[0])
    settings = IntakeSettings(
        window_seconds=0.0, poll_seconds=0.01, backoff_initial=0.01, rescan_seconds=0.05
    )
    loop, client, store, _reporter = _loop(gateway, FakeEscrow(), settings=settings)
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        _wait(lambda: gateway.accepted == set(waiting))
        assert store.state.cursor == ""
        gateway.no_key.clear()  # the previous institution handed the mailbox key over
        _wait(lambda: gateway.accepted == set())
    finally:
        loop.stop()
        thread.join(5)
    assert not thread.is_alive()
    assert gateway.submitted[first[0]] == gateway.submitted[waiting[0]] == 1
    assert store.state.cursor == "2"
    assert len(client.streams) >= 2  # streamed again from the held cursor


def _wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_one_refused_submission_does_not_stop_the_others() -> None:
    gateway = FakeGateway()
    ids = gateway.add(4)
    gateway.refuse.add(ids[2])
    loop, _client, store, reporter = _loop(gateway, FakeEscrow())
    summary = loop.run_once()
    assert summary.submitted == 3
    assert summary.malformed == 1
    assert gateway.accepted == {ids[2]}
    assert store.state.malformed == {ids[2].hex(): "refused (PERMISSION_DENIED)"}
    assert store.state.cursor == "4"
    assert reporter.batches[0].refused == 1


def test_a_revoked_terminal_stops_the_loop() -> None:
    gateway = FakeGateway()
    gateway.add(1)
    gateway.stream_error = ClientError(grpc.StatusCode.UNAUTHENTICATED, "certificate revoked")
    loop, _client, _store, _reporter = _loop(gateway, FakeEscrow())
    with pytest.raises(TerminalRevokedError):
        loop.run_once()


def test_the_key_server_token_is_renewed_hourly_and_a_failure_only_warns() -> None:
    gateway = FakeGateway()
    now = [0.0]
    renewals: list[float] = []

    def renew() -> int:
        renewals.append(now[0])
        if len(renewals) == 2:
            raise KeyServerUnavailableError("token renew-self: sealed")
        return 86400

    client = FakeClient(gateway)
    reporter = CollectingReporter()
    loop = IntakeLoop(
        cast(TerminalClient, client),
        FakeEscrow(),
        MemoryStateStore(),
        settings=QUICK,
        reporter=reporter,
        renew=renew,
        clock=lambda: now[0],
    )
    for moment in (0.0, 60.0, 3600.0, 3660.0, 3720.0):
        now[0] = moment
        loop._housekeeping()
    # Renewed at the start; due again after an hour; the failed try is retried next time.
    assert renewals == [0.0, 3600.0, 3660.0]
    assert [kind for kind, _text in reporter.notices].count("token") == 1


def test_a_gateway_outage_is_retried() -> None:
    gateway = FakeGateway()
    gateway.add(3)
    gateway.submit_errors = [ClientError(grpc.StatusCode.UNAVAILABLE, "connection refused")]
    loop, client, store, reporter = _loop(gateway, FakeEscrow())
    summary = loop.run_once(max_wait=5)
    assert summary.drained
    assert gateway.accepted == set()
    assert client.streams == ["", ""]
    assert store.state.cursor == "3"
    assert [k for k, _ in reporter.notices] == ["gateway"]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        IntakeSettings(batch_size=201)
    with pytest.raises(ValueError, match="batch_size"):
        IntakeSettings(batch_size=0)
    with pytest.raises(ValueError, match="backoff_max"):
        IntakeSettings(backoff_initial=5, backoff_max=1)


def test_reports_carry_counts_only() -> None:
    report = BatchReport(received=3, submitted=2, escrowed=1, privileged=1, released=2)
    assert report.line().startswith("batch: 3 received, 2 taken in (1 escrowed, 1 privileged)")
    assert set(report.to_json()) >= {"received", "submitted", "keyServer", "seconds"}


def test_run_once_gives_up_on_a_gateway_that_stays_down() -> None:
    gateway = FakeGateway()
    gateway.add(2)
    gateway.stream_error = ClientError(grpc.StatusCode.UNAVAILABLE, "connection refused")
    loop, _client, store, reporter = _loop(gateway, FakeEscrow())
    with pytest.raises(ClientError) as raised:
        loop.run_once(max_wait=0.05)
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert gateway.accepted == set(gateway.state)  # nothing taken in, nothing lost
    assert store.state.cursor == ""
    assert reporter.notices
    assert all(kind == "gateway" for kind, _ in reporter.notices)
