"""The intake loop: take in new messages, escrow their data keys in batches, report (SPEC 3.3).

The gateway is the queue. Messages stay ACCEPTED there until this terminal submits
them, and StreamIntake from a cursor yields only what is still ACCEPTED. So the loop
keeps one persisted cursor that never passes a message it has not submitted
(clients/terminal/cursor.py holds that rule): after a crash, or once the key server is
back, streaming again from that cursor yields exactly the backlog, with nothing lost
and nothing taken twice (the gateway ignores a second submission of a message already
taken in).

Fail closed (SPEC P2): when the key server is sealed, stopped or refuses, no
non-privileged message is submitted (the gateway refuses those without escrow, so
none is delivered); the loop keeps serving privileged mail, which carries no escrow,
and probes the key server with exponential backoff. Envelopes that do not verify are
reported as malformed by id and skipped (SPEC P10); they never stop the loop.

Witness (SPEC P13): every ``witness_seconds`` the loop has the terminal's witness
(clients/terminal/witness.py) check the gateway's newest tree head against the newest
one it has seen, and cosign it. A fork or a rollback of the log stops the loop with
``LogWitnessError``: the gateway shows another history than before, and people must
look before this terminal takes anything more in. A gateway that cannot be asked only
delays the check.

Plaintext: only for triage. The loop opens data keys and holds them for one escrow call.
With ``triage`` (clients/terminal/triage.py) it keeps the data keys of the messages the
gateway then put in the screening queue until their sealed summaries are handed in, and
the triage step decrypts those messages in memory; nothing else is decrypted here, and
the keys and plaintext are dropped when the batch is done.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, Protocol

import grpc

from sealpost._internal.logs import get_logger
from sealpost.clients._grpc import ClientError
from sealpost.clients.terminal.client import (
    SUBMIT_BATCH,
    Escrow,
    Intake,
    IntakeCall,
    TerminalClient,
    Trust,
    wall_clock_ms,
)
from sealpost.clients.terminal.cursor import IntakeCursor
from sealpost.clients.terminal.errors import (
    LogWitnessError,
    NoMailboxKeyError,
    TerminalError,
    TerminalRevokedError,
)
from sealpost.clients.witness import Witness, WitnessStateError
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.errors import CryptoError, DecryptionError, KeyRecordError
from sealpost.escrow.errors import EscrowError, KeyServerUnavailableError, PermissionDeniedError
from sealpost.i18n import _, _n
from sealpost.v1 import common_pb2, terminal_pb2

if TYPE_CHECKING:
    from sealpost.clients.terminal.triage import TriageOutcome

_log = get_logger("sealpost.terminal.intake")

#: gRPC codes after which the same call may succeed later (the gateway restarting, busy).
TRANSIENT_CODES: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)
#: gRPC codes with which the gateway refuses one submission (not the terminal as a whole).
_REFUSAL_CODES: Final = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
    }
)
_DELIVERABLE: Final = frozenset(
    {common_pb2.MESSAGE_STATE_RELEASED, common_pb2.MESSAGE_STATE_DELIVERED}
)


@dataclass
class IntakeState:
    """What the loop persists: where to resume, and which messages were malformed."""

    #: Resume point: every message before it has been submitted (or is known malformed).
    cursor: str = ""
    #: Message id (hex) -> why it was skipped; ids and reasons only, never content.
    malformed: dict[str, str] = field(default_factory=dict)
    #: Messages this terminal has submitted, all time.
    taken_in: int = 0
    updated_at_ms: int = 0


class StateStore(Protocol):
    """Where the intake state lives (a file beside the profile; memory in tests)."""

    def load(self) -> IntakeState:
        """The saved state, or a fresh one."""
        ...

    def save(self, state: IntakeState) -> None:
        """Persist ``state`` durably before returning."""
        ...


class MemoryStateStore:
    """A StateStore in memory."""

    def __init__(self, state: IntakeState | None = None) -> None:
        """Start from ``state`` (a fresh one by default)."""
        self.state = state or IntakeState()
        self.saves = 0

    def load(self) -> IntakeState:
        """A copy of the stored state."""
        return IntakeState(
            self.state.cursor,
            dict(self.state.malformed),
            self.state.taken_in,
            self.state.updated_at_ms,
        )

    def save(self, state: IntakeState) -> None:
        """Keep a copy."""
        self.state = IntakeState(
            state.cursor, dict(state.malformed), state.taken_in, state.updated_at_ms
        )
        self.saves += 1


@dataclass(frozen=True)
class IntakeSettings:
    """Batching, waiting and backoff of the intake loop."""

    #: Messages per batch; at most SubmitEscrow's (and the key server's) 200.
    batch_size: int = SUBMIT_BATCH
    #: After the first message of a batch, how long to wait for more before processing.
    window_seconds: float = 0.25
    #: How often an idle loop wakes to look at its timers and at a stop request.
    poll_seconds: float = 0.5
    #: Backoff while the key server or the gateway is unavailable: first and longest wait.
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    #: How often messages waiting for a mailbox key (a handover) are tried again.
    rescan_seconds: float = 30.0
    #: How often handovers and mailboxes for newly held detainees are looked after.
    housekeeping_seconds: float = 60.0
    #: How often the key-server token is renewed (well within its 24-hour period).
    renew_seconds: float = 3600.0
    #: Streamed messages read ahead of processing.
    read_ahead: int = 2 * SUBMIT_BATCH
    #: How often the gateway's newest tree head is checked and cosigned (SPEC P13).
    witness_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= SUBMIT_BATCH:
            raise ValueError(f"batch_size must be between 1 and {SUBMIT_BATCH}")
        if min(self.window_seconds, self.poll_seconds, self.backoff_initial) < 0:
            raise ValueError("durations must not be negative")
        if self.witness_seconds <= 0:
            raise ValueError("witness_seconds must be positive")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be at least backoff_initial")


KeyServerStatus = Literal["ok", "unavailable", "refused", "failing", "not asked"]


@dataclass
class BatchReport:
    """Counts for one batch (never content)."""

    received: int = 0
    #: Reported to the gateway and moved on by its policy.
    submitted: int = 0
    escrowed: int = 0
    privileged: int = 0
    released: int = 0
    #: Of those released, the privileged ones (no escrow, never screened).
    released_privileged: int = 0
    queued: int = 0
    rejected: int = 0
    malformed: int = 0
    #: Skipped because they were reported malformed before.
    known_malformed: int = 0
    #: Waiting for a mailbox key (a handover from the previous institution).
    waiting_for_mailbox: int = 0
    #: Waiting for the key server (not submitted: fail closed).
    waiting_for_key_server: int = 0
    #: Refused by the gateway one by one (recorded as malformed).
    refused: int = 0
    #: Queued messages whose sealed triage summary was handed in.
    triaged: int = 0
    seconds: float = 0.0
    key_server: KeyServerStatus = "not asked"

    @property
    def outstanding(self) -> int:
        """Messages of this batch still to be submitted later."""
        return self.waiting_for_mailbox + self.waiting_for_key_server

    def line(self) -> str:
        """One line for people, in the staff language."""
        parts = [
            _("{count} received", count=self.received),
            _(
                "{count} taken in ({escrowed} escrowed, {privileged} privileged)",
                count=self.submitted,
                escrowed=self.escrowed,
                privileged=self.privileged,
            ),
            _(
                "{released} released, {queued} queued for screening",
                released=self.released,
                queued=self.queued,
            ),
        ]
        if self.triaged:
            parts.append(_("{count} triaged for screeners", count=self.triaged))
        if self.rejected:
            parts.append(_("{count} rejected by policy", count=self.rejected))
        if self.waiting_for_key_server:
            parts.append(
                _n(
                    "{count} waits for the key server",
                    "{count} wait for the key server",
                    self.waiting_for_key_server,
                )
            )
        if self.waiting_for_mailbox:
            parts.append(
                _n(
                    "{count} waits for a mailbox key",
                    "{count} wait for a mailbox key",
                    self.waiting_for_mailbox,
                )
            )
        if self.malformed or self.refused:
            parts.append(_("{count} malformed", count=self.malformed + self.refused))
        if self.known_malformed:
            parts.append(_("{count} known malformed skipped", count=self.known_malformed))
        return _(
            "batch: {counts}; {seconds:.2f} s",
            counts=", ".join(parts),
            seconds=self.seconds,
        )

    def to_json(self) -> dict[str, object]:
        """The counts as a JSON object."""
        return {
            "event": "batch",
            "received": self.received,
            "submitted": self.submitted,
            "escrowed": self.escrowed,
            "privileged": self.privileged,
            "released": self.released,
            "queued": self.queued,
            "triaged": self.triaged,
            "rejected": self.rejected,
            "malformed": self.malformed + self.refused,
            "knownMalformed": self.known_malformed,
            "waitingForMailbox": self.waiting_for_mailbox,
            "waitingForKeyServer": self.waiting_for_key_server,
            "keyServer": self.key_server,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class IntakeSummary:
    """Totals of a run; the waiting counts are those of the last pass over the backlog."""

    batches: int = 0
    received: int = 0
    submitted: int = 0
    escrowed: int = 0
    privileged: int = 0
    released: int = 0
    queued: int = 0
    triaged: int = 0
    malformed: int = 0
    waiting_for_mailbox: int = 0
    waiting_for_key_server: int = 0
    handovers: int = 0
    mailboxes_provisioned: int = 0
    #: Tree heads this terminal checked and cosigned as a witness (SPEC P13).
    heads_cosigned: int = 0
    #: The size of the newest tree head the witness has seen (0: none checked).
    witnessed_size: int = 0
    seconds: float = 0.0

    @property
    def drained(self) -> bool:
        """Nothing is left waiting."""
        return self.waiting_for_mailbox == 0 and self.waiting_for_key_server == 0

    def add(self, report: BatchReport) -> None:
        """Count one batch in."""
        self.batches += 1
        self.received += report.received
        self.submitted += report.submitted
        self.escrowed += report.escrowed
        self.privileged += report.privileged
        self.released += report.released
        self.queued += report.queued
        self.triaged += report.triaged
        self.malformed += report.malformed + report.refused

    def line(self) -> str:
        """One line for people, in the staff language."""
        parts = [
            _n(
                "intake: {taken} taken in ({escrowed} escrowed, {privileged} privileged) in "
                "{count} batch",
                "intake: {taken} taken in ({escrowed} escrowed, {privileged} privileged) in "
                "{count} batches",
                self.batches,
                taken=self.submitted,
                escrowed=self.escrowed,
                privileged=self.privileged,
            ),
            _(
                "{released} released, {queued} queued",
                released=self.released,
                queued=self.queued,
            ),
            _("{count} malformed", count=self.malformed),
        ]
        if self.triaged:
            parts.append(_("{count} triaged for screeners", count=self.triaged))
        if not self.drained:
            parts.append(
                _(
                    "still waiting: {key_server} for the key server, {mailbox} for a mailbox key",
                    key_server=self.waiting_for_key_server,
                    mailbox=self.waiting_for_mailbox,
                )
            )
        if self.witnessed_size:
            parts.append(
                _n(
                    "witnessed the log up to size {size} ({count} head cosigned)",
                    "witnessed the log up to size {size} ({count} heads cosigned)",
                    self.heads_cosigned,
                    size=self.witnessed_size,
                )
            )
        return "; ".join(parts)

    def to_json(self) -> dict[str, object]:
        """The totals as a JSON object."""
        return {
            "event": "summary",
            "batches": self.batches,
            "received": self.received,
            "submitted": self.submitted,
            "escrowed": self.escrowed,
            "privileged": self.privileged,
            "released": self.released,
            "queued": self.queued,
            "triaged": self.triaged,
            "malformed": self.malformed,
            "waitingForMailbox": self.waiting_for_mailbox,
            "waitingForKeyServer": self.waiting_for_key_server,
            "handovers": self.handovers,
            "mailboxesProvisioned": self.mailboxes_provisioned,
            "headsCosigned": self.heads_cosigned,
            "witnessedSize": self.witnessed_size,
            "drained": self.drained,
            "seconds": round(self.seconds, 3),
        }


class Reporter(Protocol):
    """Receives progress: one report per batch, and notices (counts and ids only)."""

    def batch(self, report: BatchReport) -> None:
        """A batch was processed."""
        ...

    def notice(self, kind: str, text: str) -> None:
        """Something an operator should know (the key server is down, a malformed message)."""
        ...


class CollectingReporter:
    """A Reporter that keeps everything (tests, and callers that summarise themselves)."""

    def __init__(self) -> None:
        """Start empty."""
        self.batches: list[BatchReport] = []
        self.notices: list[tuple[str, str]] = []

    def batch(self, report: BatchReport) -> None:
        """Keep the report."""
        self.batches.append(report)

    def notice(self, kind: str, text: str) -> None:
        """Keep the notice."""
        self.notices.append((kind, text))


_Entry = (
    tuple[Literal["item"], terminal_pb2.StreamIntakeResponse]
    | tuple[Literal["end"], None]
    | tuple[Literal["error"], ClientError]
)


class _Reader:
    """Reads a StreamIntake call on a thread into a bounded queue, so batches can time out."""

    def __init__(self, call: IntakeCall, read_ahead: int) -> None:
        self._call = call
        self._queue: queue.Queue[_Entry] = queue.Queue(maxsize=max(1, read_ahead))
        self._closed = threading.Event()
        self._last: _Entry | None = None
        self._thread = threading.Thread(target=self._run, name="sealpost-intake", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._call:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except grpc.RpcError as exc:
            if not self._closed.is_set():
                self._put(("error", ClientError.of(exc)))

    def _put(self, entry: _Entry) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(entry, timeout=0.2)
            except queue.Full:
                continue
            return True
        return False

    def take(
        self, size: int, first_wait: float, window: float
    ) -> tuple[list[terminal_pb2.StreamIntakeResponse], bool]:
        """Up to ``size`` items and whether the stream ended; ClientError if it failed.

        Waits up to ``first_wait`` for the first item, then up to ``window`` for more.
        """
        items: list[terminal_pb2.StreamIntakeResponse] = []
        if self._last is not None:
            return items, self._finish(self._last)
        deadline = time.monotonic() + first_wait
        while len(items) < size:
            timeout = deadline - time.monotonic()
            try:
                entry = (
                    self._queue.get(timeout=max(0.0, timeout))
                    if timeout > 0
                    else (self._queue.get_nowait())
                )
            except queue.Empty:
                return items, False
            if entry[0] != "item":
                self._last = entry
                if items:
                    return items, False
                return items, self._finish(entry)
            items.append(entry[1])
            if len(items) == 1:
                deadline = time.monotonic() + window
        return items, False

    @staticmethod
    def _finish(entry: _Entry) -> bool:
        if entry[0] == "error":
            raise entry[1]
        return True

    def close(self) -> None:
        """Hang up and let the reading thread end."""
        self._closed.set()
        self._call.cancel()
        self._thread.join(timeout=5)


class IntakeLoop:
    """Follows StreamIntake for one institution: open, verify, escrow, submit, report."""

    def __init__(
        self,
        client: TerminalClient,
        escrow: Escrow,
        store: StateStore,
        *,
        settings: IntakeSettings = IntakeSettings(),
        reporter: Reporter | None = None,
        renew: Callable[[], object] | None = None,
        witness: Witness | None = None,
        triage: Callable[[Sequence[tuple[Intake, bytes]]], TriageOutcome] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        """Take in with ``client``, escrow through ``escrow``, keep the cursor in ``store``.

        ``renew`` keeps the key-server token alive (``EscrowClient.renew_self``); it is
        called at the first housekeeping and then every ``settings.renew_seconds``.
        ``witness`` checks and cosigns the gateway's newest head every
        ``settings.witness_seconds`` (clients/terminal/witness.py ``for_terminal``).
        ``triage`` gets the messages each batch put in the screening queue, with their data
        keys (clients/terminal/triage.py ``IntakeTriage``).
        """
        self.client = client
        self.triage = triage
        self.witness = witness
        self._next_witness = 0.0
        self.escrow = escrow
        self.renew = renew
        self._next_renewal = 0.0
        self.store = store
        self.settings = settings
        self.reporter: Reporter = reporter or CollectingReporter()
        self._clock = clock
        self._rand = rand
        self._stop = threading.Event()
        self.state = IntakeState()
        self.summary = IntakeSummary()
        # Where to resume; held while something read from the current stream waits.
        self._cursor = IntakeCursor()
        self._waiting_for_mailbox = False
        self._degraded = False
        self._key_backoff = 0.0
        self._next_probe = 0.0
        self._gateway_backoff = 0.0
        self._next_rescan = 0.0
        self._next_housekeeping = 0.0
        self._pass_mailbox = 0
        self._pass_key_server = 0

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and return (thread-safe)."""
        self._stop.set()

    @property
    def waiting_for_key_server(self) -> bool:
        """True while escrow fails and non-privileged messages wait."""
        return self._degraded

    # ----------------------------------------------------------------- the two modes

    def run_once(self, max_wait: float | None = 60.0) -> IntakeSummary:
        """Drain what is there now and return.

        While the key server is unavailable, waits with backoff and tries again, for at
        most ``max_wait`` seconds (None: until it is back or ``stop`` is called); what
        still waits then stays ACCEPTED at the gateway and is counted in the summary.
        A gateway that cannot be reached is tried as long, then its error is raised
        (ClientError, UNAVAILABLE): nothing was taken in that could be counted.
        """
        started = self._clock()
        deadline = None if max_wait is None else started + max_wait
        self._load()
        self._housekeeping()
        self._witness_round()
        while True:
            self._pass_mailbox = self._pass_key_server = 0
            try:
                self._one_pass()
            except ClientError as exc:
                delay = self._gateway_failed(exc)
                if self._past(deadline, delay):
                    self._finish(started)
                    raise
                if self._stop.wait(delay):
                    break
                continue
            self._gateway_backoff = 0.0
            if not self._cursor.held or not self._degraded or self._stop.is_set():
                break
            delay = max(0.0, self._next_probe - self._clock())
            if self._past(deadline, delay) or self._stop.wait(delay):
                break
            self._degraded = False  # the next pass escrows its first batch again: the probe
        self._witness_round()
        self._finish(started)
        return self.summary

    def run(self) -> IntakeSummary:
        """Follow new messages until ``stop`` is called; returns the totals."""
        started = self._clock()
        self._load()
        self._housekeeping()
        reader: _Reader | None = None
        try:
            while not self._stop.is_set():
                try:
                    reader = self._follow_step(reader)
                    self._gateway_backoff = 0.0
                except ClientError as exc:
                    delay = self._gateway_failed(exc)
                    if reader is not None:
                        reader.close()
                        reader = None
                    self._stop.wait(delay)
        finally:
            if reader is not None:
                reader.close()
            self._finish(started)
        return self.summary

    # ----------------------------------------------------------------- passes and probes

    def _follow_step(self, reader: _Reader | None) -> _Reader | None:
        """One turn of the following loop; returns the stream to go on with (None: reopen)."""
        if reader is None:
            reader = self._reader(self._cursor, follow=True)
        now = self._clock()
        if now >= self._next_housekeeping:
            self._housekeeping()
        if now >= self._next_witness:
            self._witness_round()
        if self._degraded and now >= self._next_probe:
            if self._probe():  # the key server is back: stream the backlog again
                reader.close()
                return None
            return reader
        rescan_due = self._cursor.held and self._waiting_for_mailbox and now >= self._next_rescan
        if rescan_due and not self._degraded:  # perhaps the handover came: try those again
            reader.close()
            self._waiting_for_mailbox = False
            return None
        items, ended = reader.take(
            self.settings.batch_size, self.settings.poll_seconds, self.settings.window_seconds
        )
        if items:
            self._take_main(items)
        if ended:  # the gateway closed a following stream (shutting down): resume soon
            reader.close()
            self._stop.wait(self.settings.poll_seconds)
            return None
        return reader

    def _reader(self, position: IntakeCursor, *, follow: bool) -> _Reader:
        """A fresh stream from ``position``'s cursor."""
        call = self.client.open_intake_stream(position.new_stream(), follow=follow)
        return _Reader(call, self.settings.read_ahead)

    def _one_pass(self) -> None:
        reader = self._reader(self._cursor, follow=False)
        try:
            while not self._stop.is_set():
                items, ended = reader.take(
                    self.settings.batch_size, 60.0, max(1.0, self.settings.window_seconds)
                )
                if items:
                    self._take_main(items)
                if ended:
                    return
        finally:
            reader.close()

    def _probe(self) -> bool:
        """Try the oldest waiting batch again; True when the key server took it.

        The probe reads a stream of its own from the cursor; once the key server takes
        its first batch, that stream's position replaces the one followed so far (which
        the caller drops, to stream again from there).
        """
        probe = IntakeCursor(self._cursor.cursor)
        reader = self._reader(probe, follow=False)
        try:
            items, _ended = reader.take(
                self.settings.batch_size, 60.0, max(1.0, self.settings.window_seconds)
            )
        finally:
            reader.close()
        if not items:
            self._degraded = False  # nothing waits any more: the next batch tries escrow itself
            return True
        report = self._process(items, escrow_now=True)
        if report.waiting_for_key_server:
            self._save()
            return False
        probe.batch_done(items[-1].cursor, waiting=report.outstanding)
        self._cursor = probe
        self._save()
        self._degraded = False
        return True

    def _take_main(self, items: list[terminal_pb2.StreamIntakeResponse]) -> None:
        report = self._process(items, escrow_now=not self._degraded)
        self._pass_mailbox += report.waiting_for_mailbox
        self._pass_key_server += report.waiting_for_key_server
        if report.outstanding and not self._cursor.held:
            self._next_rescan = self._clock() + self.settings.rescan_seconds
        self._waiting_for_mailbox |= report.waiting_for_mailbox > 0
        self._cursor.batch_done(items[-1].cursor, waiting=report.outstanding)
        self._save()

    def _load(self) -> None:
        self.state = self.store.load()
        self._cursor = IntakeCursor(self.state.cursor)

    def _save(self) -> None:
        """Persist the state, with the cursor as far as the rule lets it go."""
        self.state.cursor = self._cursor.cursor
        self.state.updated_at_ms = wall_clock_ms()
        self.store.save(self.state)

    # ----------------------------------------------------------------- one batch

    def _process(
        self, raws: list[terminal_pb2.StreamIntakeResponse], *, escrow_now: bool
    ) -> BatchReport:
        """Open, verify and escrow a batch, then submit what may go.

        The caller saves the intake state (and moves the cursor) after this returns, that
        is after the submission: a crash before re-takes the batch.
        """
        started = self._clock()
        report = BatchReport(received=len(raws))
        trust = self._trust() if raws else None
        reloaded = False
        privileged: list[terminal_pb2.EscrowSubmission] = []
        rejections: list[tuple[str, str, terminal_pb2.RejectedMessage]] = []
        deks: list[tuple[bytes, bytes]] = []
        opened: dict[bytes, Intake] = {}
        for raw in raws:
            message_hex = _message_hex(raw)
            if message_hex in self.state.malformed:
                report.known_malformed += 1
                continue
            try:
                assert trust is not None
                item = self.client.to_intake(raw, trust)
                if not item.privileged and not escrow_now:
                    report.waiting_for_key_server += 1  # not even opened: nothing to escrow with
                    continue
                dek = self.client.open_dek(item, reload=not reloaded)
            except NoMailboxKeyError:
                reloaded = True
                report.waiting_for_mailbox += 1
                continue
            except CryptoError as exc:
                report.malformed += 1
                self._does_not_verify(raw, message_hex, exc, rejections)
                continue
            if item.privileged:
                del dek  # SPEC P4: privileged mail is never escrowed
                privileged.append(terminal_pb2.EscrowSubmission(message_id=item.message_id))
            else:
                deks.append((item.message_id, dek))
                if self.triage is not None:
                    opened[item.message_id] = item
        escrowed = self._escrow(deks, report)
        keys = dict(deks) if self.triage is not None else {}
        deks.clear()  # the data keys: held no longer than the escrow call, or triage
        results = self._submit(privileged + escrowed, report)
        self._reject(rejections)
        report.triaged = self._triage(results, opened, keys)
        report.privileged = len(privileged)
        report.escrowed = len([s for s in escrowed if s.message_id in results])
        _count(report, results, {s.message_id for s in privileged})
        self.state.taken_in += report.submitted
        report.seconds = self._clock() - started
        self.summary.add(report)
        self.reporter.batch(report)
        _log.info(
            "intake batch",
            count=report.received,
            batch_size=report.submitted,
            status=report.key_server,
            duration_ms=int(report.seconds * 1000),
        )
        return report

    def _triage(
        self, results: dict[bytes, int], opened: dict[bytes, Intake], keys: dict[bytes, bytes]
    ) -> int:
        """Hand the messages the gateway queued for a screener to triage; drop the keys."""
        if self.triage is None:
            return 0
        queued = [
            (opened[m], keys[m])
            for m, state in results.items()
            if state == common_pb2.MESSAGE_STATE_QUEUED and m in opened
        ]
        try:
            return self.triage(queued).sealed
        finally:
            queued.clear()
            keys.clear()
            opened.clear()

    def _trust(self) -> Trust:
        """The directory, verified against the pin.

        A failure here is the gateway's, not a message's: it stops the loop instead of
        marking messages malformed.
        """
        try:
            return self.client.directory()
        except CryptoError as exc:
            raise TerminalError(
                _(
                    "the gateway's directory does not verify against the pinned key: {why}",
                    why=exc.explain(),
                )
            ) from exc

    def _escrow(
        self, deks: list[tuple[bytes, bytes]], report: BatchReport
    ) -> list[terminal_pb2.EscrowSubmission]:
        if not deks:
            return []
        try:
            blobs = self.escrow(deks)
        except EscrowError as exc:
            report.waiting_for_key_server += len(deks)
            report.key_server = self._key_server_failed(exc)
            return []
        report.key_server = "ok"
        if self._key_backoff:
            self.reporter.notice("key-server", _("the key server is back; taking in the backlog"))
        self._degraded = False
        self._key_backoff = 0.0
        return [
            terminal_pb2.EscrowSubmission(message_id=message_id, escrow=blob)
            for (message_id, _dek), blob in zip(deks, blobs, strict=True)
        ]

    def _submit(
        self, submissions: list[terminal_pb2.EscrowSubmission], report: BatchReport
    ) -> dict[bytes, int]:
        if not submissions:
            return {}
        try:
            return self.client.submit_escrow(submissions)
        except ClientError as exc:
            if exc.code not in _REFUSAL_CODES:
                raise
        # One refused submission fails the whole (transactional) call: find it alone.
        results: dict[bytes, int] = {}
        for submission in submissions:
            try:
                results.update(self.client.submit_escrow([submission]))
            except ClientError as exc:
                if exc.code not in _REFUSAL_CODES:
                    raise
                self._malformed(submission.message_id.hex(), "", f"refused ({exc.code.name})")
                report.refused += 1
        return results

    def _does_not_verify(
        self,
        raw: terminal_pb2.StreamIntakeResponse,
        message_hex: str,
        error: CryptoError,
        rejections: list[tuple[str, str, terminal_pb2.RejectedMessage]],
    ) -> None:
        """A message that does not verify or open: to be rejected at the gateway."""
        rejected = _rejection(message_hex, error)
        if rejected is None:  # no message id to name: skipped here only
            self._malformed(message_hex, raw.detainee_id, type(error).__name__)
        else:
            rejections.append((raw.detainee_id, type(error).__name__, rejected))

    def _reject(self, rejections: list[tuple[str, str, terminal_pb2.RejectedMessage]]) -> None:
        """Tell the gateway which messages cannot be taken in, so none waits for ever.

        Recorded as malformed here only once the gateway has the rejection (or refused
        it): if the gateway is unreachable the batch is taken again, and so is this.
        """
        if not rejections:
            return
        try:
            self.client.reject_messages([rejected for _d, _w, rejected in rejections])
        except ClientError as exc:
            if exc.code not in _REFUSAL_CODES:
                raise
            self.reporter.notice(
                "malformed",
                _(
                    "the gateway refused the rejections: {reason} ({code})",
                    reason=exc.message,
                    code=exc.code.name,
                ),
            )
        for detainee_id, why, rejected in rejections:
            self._malformed(rejected.message_id.hex(), detainee_id, why)

    # ----------------------------------------------------------------- trouble

    def _malformed(self, message_hex: str, detainee_id: str, reason: str) -> None:
        self.state.malformed[message_hex] = reason
        self.reporter.notice(
            "malformed",
            _(
                "message {message} for detainee {detainee} is malformed ({reason}); rejected",
                message=message_hex,
                detainee=detainee_id,
                reason=reason,
            )
            if detainee_id
            else _(
                "message {message} is malformed ({reason}); rejected",
                message=message_hex,
                reason=reason,
            ),
        )
        _log.warning("malformed message skipped", message_id=message_hex, reason=reason)

    def _key_server_failed(self, exc: EscrowError) -> KeyServerStatus:
        status: KeyServerStatus
        if isinstance(exc, KeyServerUnavailableError):
            status, what = (
                "unavailable",
                _("the key server is unavailable (sealed, stopped or overloaded)"),
            )
        elif isinstance(exc, PermissionDeniedError):
            status, what = (
                "refused",
                _("the key server refuses this terminal's token (revoked or expired?)"),
            )
        else:
            status, what = "failing", _("the key server fails ({error})", error=type(exc).__name__)
        self._key_backoff = (
            self.settings.backoff_initial
            if self._key_backoff == 0
            else min(self.settings.backoff_max, 2 * self._key_backoff)
        )
        self._degraded = True
        delay = self._key_backoff * (0.5 + self._rand() / 2)
        self._next_probe = self._clock() + delay
        self.reporter.notice(
            "key-server",
            _(
                "{problem}; non-privileged messages wait (fail closed), privileged mail still "
                "goes; next try in {delay:.1f} s",
                problem=what,
                delay=delay,
            ),
        )
        _log.warning("key server unavailable; intake waits", error_type=type(exc).__name__)
        return status

    def _gateway_failed(self, exc: ClientError) -> float:
        """Raise when the terminal itself is refused; otherwise the delay before retrying."""
        if exc.code == grpc.StatusCode.UNAUTHENTICATED:
            raise TerminalRevokedError(exc.message) from exc
        if exc.code not in TRANSIENT_CODES:
            raise TerminalError(
                _(
                    "the gateway refuses intake: {reason} ({code})",
                    reason=exc.message,
                    code=exc.code.name,
                )
            )
        self._gateway_backoff = min(
            self.settings.backoff_max, max(self.settings.backoff_initial, 2 * self._gateway_backoff)
        )
        delay = self._gateway_backoff * (0.5 + self._rand() / 2)
        self.reporter.notice(
            "gateway", _("cannot reach the gateway now; trying again in {delay:.1f} s", delay=delay)
        )
        return delay

    def _housekeeping(self) -> None:
        """Renew the key-server token; hand over mailboxes; provision mailboxes for new ones."""
        self._next_housekeeping = self._clock() + self.settings.housekeeping_seconds
        if self.renew is not None and self._clock() >= self._next_renewal:
            try:
                self.renew()
            except EscrowError as exc:
                # Escrow itself fails closed if the token is gone; this only warns early.
                self.reporter.notice(
                    "token", _("renewing the key-server token failed: {why}", why=exc.explain())
                )
            else:
                self._next_renewal = self._clock() + self.settings.renew_seconds
        for name, words, action in (
            ("handover", _("handing over mailboxes"), self.client.hand_over),
            (
                "mailboxes",
                _("making mailbox keys"),
                lambda: len(self.client.provision_missing_mailboxes()),
            ),
        ):
            try:
                count = action()
            except ClientError as exc:
                if exc.code == grpc.StatusCode.UNAUTHENTICATED:
                    raise TerminalRevokedError(exc.message) from exc
                self.reporter.notice(
                    name,
                    _(
                        "{task} failed: {reason} ({code})",
                        task=words,
                        reason=exc.message,
                        code=exc.code.name,
                    ),
                )
                continue
            except CryptoError as exc:
                self.reporter.notice(
                    name, _("{task} failed: {reason}", task=words, reason=exc.explain())
                )
                continue
            if not count:
                continue
            if name == "handover":
                self.summary.handovers += count
                self.reporter.notice(
                    name,
                    _n(
                        "handed over the mailbox of {count} detainee",
                        "handed over the mailboxes of {count} detainees",
                        count,
                    ),
                )
            else:
                self.summary.mailboxes_provisioned += count
                self.reporter.notice(
                    name,
                    _n(
                        "made a mailbox key for {count} detainee",
                        "made mailbox keys for {count} detainees",
                        count,
                    ),
                )

    def _witness_round(self) -> None:
        """Check the gateway's newest tree head against the newest seen, and cosign it.

        A fork, a rollback or a head the pinned directory's log key did not sign stops
        the loop (LogWitnessError); a gateway that cannot be asked only delays the check.
        """
        self._next_witness = self._clock() + self.settings.witness_seconds
        if self.witness is None:
            return
        try:
            observation = self.witness.witness()
        except ClientError as exc:
            if exc.code == grpc.StatusCode.UNAUTHENTICATED:
                raise TerminalRevokedError(exc.message) from exc
            self.reporter.notice(
                "witness",
                _(
                    "cannot check the gateway's newest tree head: {reason} ({code}); trying "
                    "again in {seconds:.0f} s",
                    reason=exc.message,
                    code=exc.code.name,
                    seconds=self.settings.witness_seconds,
                ),
            )
            return
        except CryptoError as exc:
            _log.warning("log witness refused a tree head", error_type=type(exc).__name__)
            self.reporter.notice(
                "witness", _("the gateway's log does not check out: {why}", why=exc.explain())
            )
            raise LogWitnessError(exc.explain()) from exc
        except WitnessStateError as exc:
            raise TerminalError(
                _("the witness state cannot be used: {why}", why=exc.explain())
            ) from exc
        self.summary.witnessed_size = observation.head.tree_size
        if observation.cosigned:
            self.summary.heads_cosigned += 1
        if observation.submit_error is not None:
            self.reporter.notice(
                "witness",
                _(
                    "the gateway did not take the cosignature of the head of size {size}: {reason}",
                    size=observation.head.tree_size,
                    reason=observation.submit_error,
                ),
            )

    def _past(self, deadline: float | None, delay: float) -> bool:
        return deadline is not None and self._clock() + delay > deadline

    def _finish(self, started: float) -> None:
        self.summary.waiting_for_mailbox = self._pass_mailbox
        self.summary.waiting_for_key_server = self._pass_key_server
        self.summary.seconds = self._clock() - started


def _count(report: BatchReport, results: dict[bytes, int], privileged: set[bytes]) -> None:
    """Count what the gateway did with each submitted message (``privileged``: their ids)."""
    report.submitted = len(results)
    for message_id, state in results.items():
        if state in _DELIVERABLE:
            report.released += 1
            report.released_privileged += message_id in privileged
        elif state == common_pb2.MESSAGE_STATE_QUEUED:
            report.queued += 1
        elif state == common_pb2.MESSAGE_STATE_REJECTED:
            report.rejected += 1


def _rejection(message_hex: str, error: CryptoError) -> terminal_pb2.RejectedMessage | None:
    """What to tell the gateway about a message that does not verify or open."""
    try:
        message_id = bytes.fromhex(message_hex)
    except ValueError:
        return None
    if len(message_id) != crypto_envelope.MESSAGE_ID_BYTES:
        return None
    if isinstance(error, KeyRecordError):
        reason = terminal_pb2.REJECT_REASON_SENDER_KEY_INVALID
    elif isinstance(error, DecryptionError):
        reason = terminal_pb2.REJECT_REASON_DOES_NOT_OPEN
    else:
        reason = terminal_pb2.REJECT_REASON_MALFORMED_ENVELOPE
    return terminal_pb2.RejectedMessage(message_id=message_id, reason=reason)


def _message_hex(raw: terminal_pb2.StreamIntakeResponse) -> str:
    """The message id of a streamed item, or its cursor when the header does not parse."""
    try:
        return crypto_envelope.parse_header(raw.envelope.header).message_id.hex()
    except CryptoError:
        return f"cursor-{raw.cursor}"
