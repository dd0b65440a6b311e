"""A national day: 12,000 detainees x 30 messages flow send -> intake -> delivery (SPEC 6).

Everything runs on this machine, as the spec asks: a real OpenBao dev server, the
gateway as its own process (SQLite, the embedded default; env
SEALPOST_BENCH_DATABASE=postgresql for an embedded PostgreSQL, or sqlite,postgresql for
a day on each), and in this process
the simulated families' devices and the institutions' terminals:

- senders: ``SENDERS`` threads seal each message with the relative SDK (1 KiB of text,
  sealed to the detainee's verified mailbox key) and send it (SendMessage);
- intake: one ``IntakeLoop`` per institution, the terminal's own loop (StreamIntake,
  open the data key, escrow in batches against OpenBao, SubmitEscrow);
- delivery: one desk thread per institution lists released messages (ListDeliveries)
  and acknowledges them a page at a time (AcknowledgeDeliveries), as a desk does once
  the detainees have them; bodies are not decrypted here (the desk does that when a detainee reads).

Setup (institutions, detainees with mailbox keys, relatives, approved contacts) is
not timed. The clock runs from the first send to the last acknowledgement. Each
relative writes to ``DETAINEES_PER_RELATIVE`` detainees, and the gateway's per-account
flood guard is raised, because the day is compressed into minutes. Every detainee is
in the regular regime, so nothing waits for a screener.

Reported: the time, the end-to-end rate and the time the full day takes at that rate;
the gateway's peak resident memory (VmHWM, over setup and run) and its largest
VmRSS during the run; CPU seconds of the gateway, OpenBao and the simulated clients;
the load average. The gateway's CPU per message has a target of its own (at most 1.5 ms
on SQLite, 2 ms on PostgreSQL), and the day's time is also given as it would be with the
clients on other machines: the gateway's CPU over the full day, spread over this
machine's cores. ``--quick`` runs 3,600 messages. A run that has not finished by
its deadline (env SEALPOST_BENCH_DAY_DEADLINE_S, default 5,400 s for the full
day) stops and reports what it measured, with the extrapolated time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from bench import Result
from bench.processes import cpu_seconds, family, status_kb
from bench.profiling import profiled
from sealpost._internal.devservers import OpenBaoDevServer, PostgresServer
from sealpost._internal.logs import configure as configure_logs
from sealpost._internal.stack import (
    Stack,
    approve_all,
    bootstrap_openbao,
    setup_institutions,
    start_gateway,
)
from sealpost.clients._grpc import ClientError, bearer
from sealpost.clients.relative.sdk import Contact, RelativeClient
from sealpost.clients.staff import StaffClient
from sealpost.clients.terminal.client import TerminalClient
from sealpost.clients.terminal.desk import delivery_reference
from sealpost.clients.terminal.intake import IntakeLoop, MemoryStateStore
from sealpost.v1 import relative_pb2, relative_pb2_grpc

NAME = "national_day"
PER_DETAINEE = 30
DETAINEES_PER_RELATIVE = 10
DETAINEES_PER_INSTITUTION = 1000
SENDERS = 8
BODY = "Dag lieverd, alles goed hier. " * 35  # about 1 KiB
TARGET_SECONDS = 600.0
TARGET_RSS_MB = 300.0
#: The gateway's CPU per message end to end (send, intake, escrow hand-in, delivery), ms.
TARGET_CPU_MS = {"sqlite": 1.5, "postgresql": 2.0}
#: Gateway worker processes (``--workers``); env SEALPOST_BENCH_WORKERS overrides.
DEFAULT_WORKERS = 1
_PAGE = 500


def _progress(text: str) -> None:
    print(f"national_day: {text}", file=sys.stderr, flush=True)


def _loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- setup


@dataclass
class Day:
    """The actors of the day and who writes to whom."""

    institutions: list[str]
    terminals: dict[str, TerminalClient]
    admins: dict[str, StaffClient]
    relatives: list[RelativeClient]
    #: (relative index, contact) for every correspondence.
    pairs: list[tuple[int, Contact]] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)


def _setup(stack: Stack, detainees: int, institutions: int) -> Day:
    names = [f"pi-{i:02d}" for i in range(institutions)]
    held = {
        name: [f"d-{name}-{j:05d}" for j in range(j0, detainees, institutions)]
        for j0, name in enumerate(names)
    }
    _progress(f"setup: {institutions} institutions, {detainees:,} detainees with mailboxes ...")

    def institution(name: str) -> tuple[str, StaffClient, TerminalClient]:
        admin, terminals = setup_institutions(stack, [(d, name, "regular") for d in held[name]])
        return name, admin, terminals[name]

    with ThreadPoolExecutor(max_workers=min(8, institutions)) as pool:
        made = list(pool.map(institution, names))
    day = Day(
        institutions=names,
        terminals={name: terminal for name, _a, terminal in made},
        admins={name: admin for name, admin, _t in made},
        relatives=[],
    )
    relatives = max(1, detainees // DETAINEES_PER_RELATIVE)
    _progress(f"setup: {relatives:,} relatives, {detainees:,} contacts ...")
    every = [d for name in names for d in held[name]]
    with ThreadPoolExecutor(max_workers=8) as pool:
        day.relatives = list(pool.map(lambda i: _relative(stack, i), range(relatives)))

        def request(i: int) -> None:
            client = day.relatives[i]
            for detainee in every[i::relatives]:
                client.request_contact(detainee)

        list(pool.map(request, range(relatives)))

        def approve(name: str) -> int:
            total = 0
            while count := approve_all(day.admins[name], name):
                total += count
            return total

        approved = sum(pool.map(approve, names))
        assert approved == detainees, (approved, detainees)

        def contacts(i: int) -> list[tuple[int, Contact]]:
            return [(i, c) for c in day.relatives[i].contacts()]

        day.pairs = [pair for chunk in pool.map(contacts, range(relatives)) for pair in chunk]
    assert len(day.pairs) == detainees
    assert all(c.mailbox is not None for _i, c in day.pairs)
    day.expected = {name: len(held[name]) * PER_DETAINEE for name in names}
    return day


def _relative(stack: Stack, index: int) -> RelativeClient:
    client = stack.relative(f"Family {index}")
    client.show_notice = lambda _text: None  # the notice is shown once per device; not here
    client.notice_shown = True
    return client


# --------------------------------------------------------------------------- the day


@dataclass
class Counters:
    """Progress of the day, shared by the threads."""

    sent: int = 0
    delivered: int = 0
    send_errors: int = 0
    first_send: float = 0.0
    last_send: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _sender(stack: Stack, day: Day, slot: int, counters: Counters, stop: threading.Event) -> None:
    """Seal and send every message of this slot's relatives, detainee by detainee, 30 rounds."""
    mine = [(i, c) for i, c in day.pairs if i % SENDERS == slot]
    channel = stack.endpoint.channel()
    stub = relative_pb2_grpc.RelativeServiceStub(channel)
    try:
        for _round in range(PER_DETAINEE):
            for index, contact in mine:
                if stop.is_set():
                    return
                client = day.relatives[index]
                request = client.seal(contact, BODY)
                _send(stub, client, request, counters)
    finally:
        channel.close()


def _send(
    stub: relative_pb2_grpc.RelativeServiceStub,
    client: RelativeClient,
    request: relative_pb2.SendMessageRequest,
    counters: Counters,
) -> None:
    for attempt in range(5):
        try:
            stub.SendMessage(request, metadata=bearer(client.token), timeout=120)
            break
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAUTHENTICATED:
                client.login()  # the session ran out (15 minutes): sign in again
            elif code == grpc.StatusCode.ALREADY_EXISTS and attempt:
                break  # an earlier attempt was accepted after all
            elif code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
    else:
        with counters.lock:
            counters.send_errors += 1
        return
    now = time.perf_counter()
    with counters.lock:
        counters.sent += 1
        counters.first_send = counters.first_send or now
        counters.last_send = now


def _desk(
    terminal: TerminalClient,
    institution: str,
    expected: int,
    counters: Counters,
    stop: threading.Event,
) -> None:
    """Acknowledge every released message of the institution until all expected are done."""
    done = 0
    while done < expected and not stop.is_set():
        page = list(itertools.islice(terminal.all_deliveries(), _PAGE))
        if not page:
            stop.wait(0.2)
            continue
        when = dt.datetime.now(dt.UTC)
        slips = [(d.message_id, delivery_reference(institution, d.message_id, when)) for d in page]
        try:
            terminal.acknowledge_many(slips)
        except ClientError:
            continue  # transient: they stay released and are listed again
        done += len(slips)
        with counters.lock:
            counters.delivered += len(slips)


@dataclass
class Sample:
    """Resource use at one moment of the run."""

    at: float
    gateway_cpu: float
    gateway_system_cpu: float
    openbao_cpu: float
    clients_cpu: float


def _sample(stack: Stack, gateway: list[int]) -> Sample:
    assert stack.openbao.pid is not None
    return Sample(
        time.perf_counter(),
        sum(cpu_seconds(pid) for pid in gateway),
        sum(cpu_seconds(pid, system_only=True) for pid in gateway),
        cpu_seconds(stack.openbao.pid),
        time.process_time(),
    )


def _run_day(stack: Stack, day: Day, total: int, deadline_s: float, label: str) -> dict[str, float]:
    counters = Counters()
    stop = threading.Event()
    loops = {
        name: IntakeLoop(day.terminals[name], stack.escrow_for(name), MemoryStateStore())
        for name in day.institutions
    }
    threads = [
        threading.Thread(target=loop.run, name=f"intake-{name}", daemon=True)
        for name, loop in loops.items()
    ]
    threads += [
        threading.Thread(
            target=_desk,
            args=(day.terminals[name], name, day.expected[name], counters, stop),
            name=f"desk-{name}",
            daemon=True,
        )
        for name in day.institutions
    ]
    senders = [
        threading.Thread(
            target=_sender,
            args=(stack, day, slot, counters, stop),
            name=f"send-{slot}",
            daemon=True,
        )
        for slot in range(SENDERS)
    ]
    gateway_pid = stack.gateway.process.pid
    with profiled(gateway_pid, label):
        figures = _timed(stack, loops, counters, threads + senders, total, deadline_s)
    stop.set()
    for loop in loops.values():
        loop.stop()
    for thread in threads + senders:
        thread.join(30)
    return figures


def _timed(
    stack: Stack,
    loops: dict[str, IntakeLoop],
    counters: Counters,
    threads: list[threading.Thread],
    total: int,
    deadline_s: float,
) -> dict[str, float]:
    """Start the threads and follow the day until all is delivered or the deadline."""
    gateway = family(stack.gateway.process.pid)
    peak_rss = 0
    before = _sample(stack, gateway)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    taken_in_at = 0.0
    last_report = started
    while True:
        time.sleep(0.5)
        now = time.perf_counter()
        peak_rss = max(peak_rss, sum(status_kb(pid, "VmRSS") for pid in gateway))
        taken = sum(loop.summary.submitted for loop in loops.values())
        if not taken_in_at and taken >= total:
            taken_in_at = now
        if now - last_report >= 15:
            last_report = now
            _progress(
                f"{now - started:5.0f} s: sent {counters.sent:,}, taken in {taken:,}, "
                f"delivered {counters.delivered:,}; gateway RSS {peak_rss / 1024:.0f} MB; "
                f"load {_loadavg()}"
            )
        if counters.delivered >= total or now - started > deadline_s:
            break
    finished = time.perf_counter()
    after = _sample(stack, gateway)
    elapsed = finished - started
    return {
        "elapsed": elapsed,
        "delivered": counters.delivered,
        "sent": counters.sent,
        "taken": sum(loop.summary.submitted for loop in loops.values()),
        "send_errors": counters.send_errors,
        "send_seconds": counters.last_send - (counters.first_send or started),
        "intake_seconds": (taken_in_at - started) if taken_in_at else 0.0,
        "rss_peak_run_kb": peak_rss,
        "hwm_kb": sum(status_kb(pid, "VmHWM") for pid in gateway),
        "hwm_largest_kb": max(status_kb(pid, "VmHWM") for pid in gateway),
        "processes": len(gateway),
        "gateway_cpu": after.gateway_cpu - before.gateway_cpu,
        "gateway_system_cpu": after.gateway_system_cpu - before.gateway_system_cpu,
        "openbao_cpu": after.openbao_cpu - before.openbao_cpu,
        "clients_cpu": after.clients_cpu - before.clients_cpu,
    }


# --------------------------------------------------------------------------- run


def run(quick: bool) -> list[Result]:
    """Set up the country, run the day, report time, memory and CPU."""
    configure_logs("warning")
    total = 3_600 if quick else 12_000 * PER_DETAINEE
    detainees = total // PER_DETAINEE
    institutions = max(1, min(12, detainees // DETAINEES_PER_INSTITUTION)) if not quick else 4
    deadline = float(os.environ.get("SEALPOST_BENCH_DAY_DEADLINE_S", "900" if quick else "5400"))
    workers = int(os.environ.get("SEALPOST_BENCH_WORKERS", str(DEFAULT_WORKERS)))
    databases = os.environ.get("SEALPOST_BENCH_DATABASE", "sqlite").split(",")
    unknown = sorted(set(databases) - set(TARGET_CPU_MS))
    if unknown:
        raise SystemExit(f"SEALPOST_BENCH_DATABASE: sqlite and/or postgresql, not {unknown}")
    results: list[Result] = []
    for database in databases:
        day = _day(total, detainees, institutions, deadline, workers, database)
        results += [dataclasses.replace(r, metric=f"{database}: {r.metric}") for r in day]
    return results


def _day(
    total: int, detainees: int, institutions: int, deadline: float, workers: int, database: str
) -> list[Result]:
    """One day's run with the gateway on ``database``."""
    with tempfile.TemporaryDirectory(prefix="sealpost-bench-day-") as tmp:
        root = Path(tmp)
        postgres = PostgresServer() if database == "postgresql" else None
        if postgres is not None:
            postgres.start()
            url = postgres.create_database("day")
        else:
            url = f"sqlite:///{root / 'day.db'}"
        openbao = OpenBaoDevServer(root / "openbao")
        openbao.start()
        try:
            keyserver = bootstrap_openbao(openbao)
            gateway = start_gateway(
                root / "gateway",
                openbao,
                keyserver,
                url,
                extra_env={
                    "SEALPOST_SEND_RATE_PER_MINUTE": "1000000",
                    "SEALPOST_LOG_LEVEL": "warning",
                    "SEALPOST_WORKERS": str(workers),
                },
            )
            stack = Stack(openbao, keyserver, gateway)
            try:
                setup_started = time.perf_counter()
                day = _setup(stack, detainees, institutions)
                setup_seconds = time.perf_counter() - setup_started
                _progress(f"setup took {setup_seconds:.0f} s; the day starts (load {_loadavg()})")
                load_before = _loadavg()
                figures = _run_day(stack, day, total, deadline, f"national-day-{database}")
                load_after = _loadavg()
            finally:
                stack.close()
                gateway.stop()
        finally:
            openbao.stop()
            if postgres is not None:
                postgres.stop()
                postgres.remove()
    return _results(total, figures, setup_seconds, workers, database, (load_before, load_after))


def _results(
    total: int,
    f: dict[str, float],
    setup_seconds: float,
    workers: int,
    database: str,
    load: tuple[str, str],
) -> list[Result]:
    delivered = int(f["delivered"])
    rate = delivered / f["elapsed"] if f["elapsed"] else 0.0
    full_day = 12_000 * PER_DETAINEE
    finished = delivered >= total
    label = f"{total:,} messages" + ("" if finished else f", stopped at {delivered:,}")
    per_message = 1000 / delivered if delivered else 0.0
    needed = full_day / TARGET_SECONDS
    rows = [
        Result(
            NAME,
            f"setup (not timed), gateway with {workers} worker(s)",
            setup_seconds,
            "s",
        ),
        Result(
            NAME,
            f"send -> intake -> delivered, {label}, load {load[0]} -> {load[1]}",
            f["elapsed"],
            "s",
            target=f"< {TARGET_SECONDS:.0f} s for {full_day:,}" if total == full_day else "",
        ),
        Result(
            NAME,
            "end-to-end rate (delivered / time)",
            rate,
            "messages/s",
            needed,
            "rate a full day needs",
            f">= {needed:,.0f} messages/s",
        ),
        Result(
            NAME,
            f"full day ({full_day:,}) at this rate",
            full_day / rate if rate else float("inf"),
            "s",
            target=f"< {TARGET_SECONDS:.0f} s",
        ),
        Result(NAME, "all sent after", f["send_seconds"], "s")
        if f["sent"] >= total
        else Result(NAME, "sent when stopped", f["sent"], "messages"),
        Result(NAME, "all taken in (escrowed) after", f["intake_seconds"], "s")
        if f["intake_seconds"]
        else Result(NAME, "taken in (escrowed) when stopped", f["taken"], "messages"),
        Result(NAME, "send errors (gave up after retries)", f["send_errors"], "messages"),
        Result(
            NAME,
            f"gateway peak RSS (VmHWM, setup and run), {int(f['processes'])} process(es) together",
            f["hwm_kb"] / 1024,
            "MB",
            target=f"< {TARGET_RSS_MB:.0f} MB",
        ),
        Result(NAME, "gateway peak RSS of its largest process", f["hwm_largest_kb"] / 1024, "MB"),
        Result(NAME, "gateway largest VmRSS during the run", f["rss_peak_run_kb"] / 1024, "MB"),
        Result(
            NAME,
            "gateway CPU per message",
            f["gateway_cpu"] * per_message,
            "ms",
            target=f"<= {TARGET_CPU_MS[database]} ms",
        ),
        Result(
            NAME,
            "of which in the kernel (system time)",
            f["gateway_system_cpu"] * per_message,
            "ms",
        ),
        Result(
            NAME,
            f"full day ({full_day:,}) with the clients on other machines",
            f["gateway_cpu"] * per_message / 1000 * full_day / (os.cpu_count() or 1),
            "s",
            target=f"< {TARGET_SECONDS:.0f} s",
        ),
        Result(NAME, "OpenBao CPU per message", f["openbao_cpu"] * per_message, "ms"),
        Result(
            NAME,
            "simulated families and terminals CPU per message",
            f["clients_cpu"] * per_message,
            "ms",
        ),
    ]
    return rows
