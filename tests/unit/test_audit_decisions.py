"""Time to a decision in the audit report: from constructed log entries to exact figures.

Each history is a log as the gateway writes it (intake, acceptance, queueing, verdict)
with the times chosen, so every median and 90th percentile (nearest rank) is known in
advance. Refusals: verdicts outside the period, or at an institution outside the
report's scope, count nowhere, not even in the all-institutions row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from pypdf import PdfReader

from sealpost.clients.audit import pdf
from sealpost.clients.audit.decisions import (
    Decisions,
    InstitutionDecisions,
    ScreenerDecisions,
    decision_times,
)
from sealpost.clients.audit.document import to_markdown
from sealpost.clients.audit.report import InstitutionReport, Period, Waits, blocks, title
from sealpost.crypto.logentry import LogAction, LogEvent
from sealpost.gateway.principals import ALL_INSTITUTIONS

A = LogAction
MIN = 60_000
DAY = 24 * 60 * MIN
#: The period: 1 to 31 March 2026 (UTC), both included.
PERIOD = Period(date(2026, 3, 1), date(2026, 3, 31))
START, END = PERIOD.start_ms, PERIOD.end_ms
#: A report made well after the period: the queue is measured at the period's end.
LATER = END + 10 * DAY


@dataclass
class Log:
    """Log entries in index order, each at the time given."""

    events: list[LogEvent] = field(default_factory=list)
    detainees: dict[str, str] = field(default_factory=dict)
    count: int = 0

    def add(self, action: LogAction, at: int, actor: str, subjects: list[tuple[str, str]],
            **extra: str) -> None:  # fmt: skip
        self.events.append(
            LogEvent(action=action, actor=actor, time_ms=at, subjects=subjects, extra=extra)
        )

    def intake(self, detainee: str, institution: str, at: int = START - 30 * DAY) -> None:
        self.add(A.DETAINEE_INTAKE, at, "staff:admin",
                 [("detainee", detainee), ("institution", institution)])  # fmt: skip

    def transfer(self, detainee: str, to: str, at: int) -> None:
        self.add(A.DETAINEE_TRANSFERRED, at, "staff:admin",
                 [("detainee", detainee), ("institution_to", to)])  # fmt: skip

    def queue(self, detainee: str, at: int) -> str:
        """A message accepted a minute before ``at`` and queued at ``at``; its id."""
        self.count += 1
        message = f"{self.count:032x}"
        subjects = [("message", message), ("detainee", detainee)]
        self.add(A.MESSAGE_ACCEPTED, at - MIN, "relative:acct-1", [*subjects, ("account", "a")],
                 direction="inbound", privileged="false", envelope_digest="ee" * 32)  # fmt: skip
        self.add(A.MESSAGE_ESCROWED, at, "terminal:t-1", subjects, escrow_digest="aa" * 32)
        self.add(A.MESSAGE_QUEUED, at, "terminal:t-1", subjects)
        return message

    def verdict(self, message: str, detainee: str, at: int, who: str, *,
                release: bool = True) -> None:  # fmt: skip
        subjects = [("message", message), ("detainee", detainee)]
        self.add(A.REVIEW_GRANTED, at - 1, f"staff:{who}",
                 [*subjects, ("grant", f"gr-{message}")],
                 legal_basis="LEGAL_BASIS_SCREENING_ORDER")  # fmt: skip
        verdict = "VERDICT_RELEASE" if release else "VERDICT_WITHHOLD"
        self.add(A.VERDICT_RECORDED, at, f"staff:{who}", subjects, verdict=verdict)
        self.add(A.MESSAGE_RELEASED if release else A.MESSAGE_WITHHELD, at, f"staff:{who}",
                 subjects)  # fmt: skip

    def decided(self, detainee: str, queued: int, minutes: int, who: str) -> str:
        """A message queued at ``queued`` and decided ``minutes`` later by ``who``."""
        message = self.queue(detainee, queued)
        self.verdict(message, detainee, queued + minutes * MIN, who)
        return message

    def measure(self, *scope: str, now: int = LATER) -> Decisions:
        # The gateway appends in time order; a history built out of order is sorted first.
        ordered = sorted(self.events, key=lambda e: e.time_ms)
        return decision_times(enumerate(ordered), scope, START, END, now)


def test_median_and_90th_percentile_per_institution_and_per_screener() -> None:
    log = Log()
    log.intake("d-1", "pi-a")
    # Ten verdicts taking 1 to 10 minutes; jansen takes the odd ones, de-vries the even.
    for minutes in range(1, 11):
        who = "jansen" if minutes % 2 else "de-vries"
        log.decided("d-1", START + minutes * DAY, minutes, who)
    found = log.measure("pi-a")
    assert found.institutions == (InstitutionDecisions("pi-a", 10, 300.0, 540.0, 0, None),)
    assert found.national is None  # one institution: no all-institutions row
    assert found.screeners == (
        ScreenerDecisions("de-vries", "pi-a", 5, 360.0, 600.0),
        ScreenerDecisions("jansen", "pi-a", 5, 300.0, 540.0),
    )
    assert found.measured_at_ms == END


def test_nearest_rank_on_an_uneven_count_matches_the_waiting_times() -> None:
    log = Log()
    log.intake("d-1", "pi-a")
    waits = [7, 1, 30, 2, 2, 90, 15]  # minutes, in the order decided
    for n, minutes in enumerate(waits):
        log.decided("d-1", START + n * DAY, minutes, "jansen")
    (row,) = log.measure("pi-a").institutions
    expected = Waits.of([m * 60.0 for m in waits])
    assert (row.verdicts, row.median_s, row.p90_s) == (7, expected.median, expected.p90)
    assert (row.median_s, row.p90_s) == (7 * 60.0, 90 * 60.0)


def test_only_verdicts_recorded_in_the_period_count_from_whenever_the_message_was_queued() -> None:
    log = Log()
    log.intake("d-1", "pi-a")
    log.decided("d-1", START - DAY, 60, "jansen")  # decided the day before: not counted
    log.decided("d-1", START - 2 * 60 * MIN, 180, "jansen")  # queued before, decided inside
    log.decided("d-1", END - 10 * MIN, 10, "jansen")  # decided at the first ms after: no
    log.decided("d-1", END - 10 * MIN, 9, "jansen")  # a minute before the end: counted
    (row,) = log.measure("pi-a").institutions
    assert (row.verdicts, row.median_s, row.p90_s) == (2, 9 * 60.0, 180 * 60.0)


def test_the_oldest_undecided_message_is_measured_at_the_end_of_the_period_or_now() -> None:
    log = Log()
    log.intake("d-1", "pi-a")
    log.queue("d-1", START - 5 * DAY)  # waiting since before the period: counts
    late = log.queue("d-1", END - DAY)
    log.verdict(late, "d-1", END + DAY, "jansen")  # decided only after the period
    rejected = log.queue("d-1", START + DAY)
    log.add(A.MESSAGE_REJECTED, START + 2 * DAY, "staff:admin",
            [("message", rejected), ("detainee", "d-1")])  # fmt: skip
    log.queue("d-1", END + 2 * DAY)  # queued after the period: not in its queue
    (row,) = log.measure("pi-a").institutions
    assert (row.verdicts, row.undecided) == (0, 2)
    assert row.oldest_undecided_s == (END - (START - 5 * DAY)) / 1000
    # Made during the period, the report measures the queue at its own time.
    now = START + 10 * DAY
    (during,) = log.measure("pi-a", now=now).institutions
    assert (during.undecided, during.oldest_undecided_s) == (1, 15 * DAY / 1000)
    # Nothing undecided: no oldest waiting time.
    empty = Log()
    empty.intake("d-1", "pi-a")
    assert empty.measure("pi-a").institutions == (InstitutionDecisions("pi-a"),)


def test_other_institutions_are_never_counted_not_even_in_the_total() -> None:
    log = Log()
    for detainee, institution in (("d-a", "pi-a"), ("d-b", "pi-b"), ("d-c", "pi-c")):
        log.intake(detainee, institution)
    log.decided("d-a", START + DAY, 10, "jansen")
    log.decided("d-a", START + 2 * DAY, 20, "jansen")
    log.decided("d-b", START + DAY, 40, "bakker")
    # A screener with national scope decides at pi-a and at pi-c (outside the report).
    log.decided("d-a", START + 3 * DAY, 30, "national")
    for n in range(5):
        log.decided("d-c", START + n * DAY, 1000, "national")
    log.queue("d-c", START - 20 * DAY)  # pi-c's old undecided message
    log.queue("d-b", END - DAY)

    found = log.measure("pi-a", "pi-b")
    assert [r.institution for r in found.institutions] == ["pi-a", "pi-b"]
    a, b = found.institutions
    assert (a.verdicts, a.median_s, a.p90_s, a.undecided) == (3, 1200.0, 1800.0, 0)
    assert (b.verdicts, b.median_s, b.undecided, b.oldest_undecided_s) == (
        1, 2400.0, 1, DAY / 1000,
    )  # fmt: skip
    assert found.national == InstitutionDecisions(
        ALL_INSTITUTIONS, 4, 1200.0, 2400.0, 1, DAY / 1000
    )
    assert [(s.screener, s.institution, s.verdicts) for s in found.screeners] == [
        ("jansen", "pi-a", 2),
        ("national", "pi-a", 1),
        ("bakker", "pi-b", 1),
    ]
    # The same log for pi-c alone: only its own five, and its old message.
    (c,) = log.measure("pi-c").institutions
    assert (c.verdicts, c.median_s, c.undecided) == (5, 60_000.0, 1)
    # An institution the log does not know is an empty row, never another's figures.
    assert log.measure("pi-x").institutions == (InstitutionDecisions("pi-x"),)
    # Naming an institution twice does not make a second row or a total.
    twice = log.measure("pi-a", "pi-a")
    assert (len(twice.institutions), twice.national) == (1, None)


def test_a_transferred_message_counts_where_it_was_decided() -> None:
    log = Log()
    log.intake("d-1", "pi-a")
    waiting = log.queue("d-1", START + DAY)
    kept = log.queue("d-1", START + DAY + MIN)
    log.transfer("d-1", "pi-b", START + 2 * DAY)
    log.verdict(waiting, "d-1", START + 3 * DAY, "bakker")
    found = log.measure("pi-a", "pi-b")
    a, b = found.institutions
    assert (a.verdicts, a.undecided) == (0, 0)
    assert (b.verdicts, b.median_s, b.undecided) == (1, 2 * DAY / 1000, 1)
    assert b.oldest_undecided_s == (END - (START + DAY + MIN)) / 1000
    assert [(s.screener, s.institution) for s in found.screeners] == [("bakker", "pi-b")]
    del kept


def test_a_verdict_without_a_queue_entry_is_not_timed() -> None:
    log = Log()
    log.intake("d-1", "pi-a")
    message = log.queue("d-1", START + DAY)
    log.events = [e for e in log.events if e.action is not A.MESSAGE_QUEUED]
    log.verdict(message, "d-1", START + 2 * DAY, "jansen")
    assert log.measure("pi-a").institutions == (InstitutionDecisions("pi-a"),)


# --------------------------------------------------------------------------- in the report


def _report(decisions: Decisions, institutions: dict[str, str]) -> InstitutionReport:
    return InstitutionReport(
        institution_id=", ".join(institutions),
        institution_name=", ".join(institutions.values()),
        period=PERIOD,
        generated_at=datetime(2026, 4, 2, 8, 0, tzinfo=UTC),
        volumes=[],
        decided_waits=Waits.of([]),
        open_waits=Waits.of([]),
        verdicts={},
        withhold_reasons={},
        officers=[],
        retrospective=[],
        anomalies=None,
        decisions=decisions,
        institutions=institutions,
    )


def _two_institutions() -> Decisions:
    log = Log()
    log.intake("d-a", "pi-a")
    log.intake("d-b", "pi-b")
    for minutes in (10, 20, 30):
        log.decided("d-a", START + minutes * DAY // 10, minutes, "jansen")
    log.decided("d-b", START + DAY, 200, "bakker")
    log.queue("d-b", END - 2 * DAY - 3 * 60 * MIN)
    return log.measure("pi-a", "pi-b")


def test_markdown_pdf_and_json_show_the_section_with_the_all_institutions_row(
    tmp_path: Path,
) -> None:
    report = _report(_two_institutions(), {"pi-a": "PI A", "pi-b": "PI B"})
    assert title(report) == "Sealpost audit report: PI A (pi-a), PI B (pi-b)"
    markdown = to_markdown(blocks(report))
    for line in (
        "## Time to a decision",
        "| Institution | Verdicts | Median | 90th percentile | Still undecided | "
        "Oldest undecided |",
        "| pi-a | 3 | 20 min | 30 min | 0 | - |",
        "| pi-b | 1 | 3 h 20 min | 3 h 20 min | 1 | 2 d 3 h |",
        "| all institutions | 4 | 20 min | 3 h 20 min | 1 | 2 d 3 h |",
        "### Per screener",
        "| jansen | pi-a | 3 | 20 min | 30 min |",
        "| bakker | pi-b | 1 | 3 h 20 min | 3 h 20 min |",
        "without a verdict at Apr 1, 2026, 2:00",  # 00:00 UTC at the end of the period
        "AM (Dutch time: the end of the period",
    ):
        assert line in markdown, line
    data = report.to_dict()["decisions"]
    assert data["national"] == {
        "institution": "*",
        "verdicts": 4,
        "median_s": 1200.0,
        "p90_s": 12000.0,
        "undecided": 1,
        "oldest_undecided_s": 183600.0,
    }
    assert [s["screener"] for s in data["screeners"]] == ["jansen", "bakker"]
    assert data["measured_at"] == "2026-04-01T00:00:00+00:00"

    path = tmp_path / "report.pdf"
    pdf.to_pdf(blocks(report), path, title=title(report), created=report.generated_at)
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(path).pages)
    for needle in (
        "Time to a decision",
        "all institutions 4 20 min 3 h 20 min 1 2 d 3 h",
        "Per screener",
        "bakker pi-b 1 3 h 20 min 3 h 20 min",
    ):
        assert needle in text, needle


def test_one_institution_has_no_total_row_and_says_when_nobody_decided() -> None:
    log = Log()
    log.intake("d-1", "pi-a")
    report = _report(log.measure("pi-a"), {"pi-a": "PI A"})
    markdown = to_markdown(blocks(report))
    assert "| pi-a | 0 | - | - | 0 | - |" in markdown
    assert "all institutions" not in markdown
    assert "No screener recorded a verdict in the period." in markdown
