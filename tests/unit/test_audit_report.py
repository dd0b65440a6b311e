"""The audit report's figures and its Markdown and PDF renderings (read back with pypdf)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader

from sealpost.clients.audit import pdf
from sealpost.clients.audit.document import Block, Bullets, Heading, Paragraph, Table, to_markdown
from sealpost.clients.audit.report import (
    Anomaly,
    ComplaintRelease,
    InstitutionReport,
    Officer,
    Period,
    Retrospective,
    Volume,
    Waits,
    Withholdings,
    blocks,
    duration,
)

NOW = datetime(2026, 4, 1, 8, 30, tzinfo=UTC)


def sample(anomalies: list[Anomaly] | None) -> InstitutionReport:
    return InstitutionReport(
        institution_id="pi-vught",
        institution_name="PI Vught",
        period=Period(date(2026, 3, 1), date(2026, 3, 31)),
        generated_at=NOW,
        volumes=[
            Volume("inbound (to detainees)", 120, 5, 30, 100, 3, 1, 2),
            Volume("outbound (from detainees)", 40, 2, 10, 35, 1, 0, 0),
        ],
        decided_waits=Waits.of([60, 3600, 7200, 90_000]),
        open_waits=Waits.of([300, 600]),
        verdicts={"released": 36, "withheld": 4},
        withhold_reasons={"public order": 3, "victim protection": 1},
        officers=[Officer("jansen", 25, 22, 3, 1), Officer("el-idrissi", 15, 14, 1, 0)],
        retrospective=[
            Retrospective(
                "rr-1",
                "d-77",
                "jansen",
                "approved",
                "de vries",
                "OM 2026/0412",
                "2026-03-04 09:00",
                "2026-01-01 to 2026-02-28",
            )
        ],
        anomalies=anomalies,
        reconciled="key-server audit log from 2026-03-01 00:00:00 to 2026-03-31 23:59:59 UTC",
        refused_decrypts=2,
        log_integrity="Verified: 5000 log entries; the stored entries reproduce all 40 signed "
        "tree heads (up to size 5000); no fork.",
    )


ANOMALY = Anomaly(
    "decrypt without a grant",
    "2026-03-12 14:03:22",
    "9c8eecfc6e1961e4917bf51a18efaefe",
    "userpass-mallory (07794ed7)",
    "no grant for this message [audit.log:118]",
)


def test_period_bounds_whole_utc_days() -> None:
    period = Period(date(2026, 3, 1), date(2026, 3, 31))
    assert period.start_ms == int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)
    assert period.end_ms == int(datetime(2026, 4, 1, tzinfo=UTC).timestamp() * 1000)
    assert period.contains(period.start_ms)
    assert not period.contains(period.end_ms)
    with pytest.raises(ValueError, match="ends before"):
        Period(date(2026, 3, 2), date(2026, 3, 1))


def test_waits_use_nearest_rank() -> None:
    waits = Waits.of([float(s) for s in range(1, 11)])
    assert (waits.count, waits.median, waits.p90, waits.longest) == (10, 5.0, 9.0, 10.0)
    assert Waits.of([]) == Waits(0, None, None, None)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (45, "45 s"),
        (600, "10 min"),
        (3 * 3600 + 300, "3 h 05 min"),
        (2 * 86400 + 4 * 3600, "2 d 4 h"),
    ],
)
def test_durations_read_naturally(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_totals_add_up() -> None:
    total = sample(None).total
    assert (total.messages, total.privileged, total.screened, total.waiting) == (160, 7, 40, 2)


def test_markdown_shows_every_section() -> None:
    markdown = to_markdown(blocks(sample([ANOMALY])))
    assert markdown.startswith("# Sealpost audit report: PI Vught (pi-vught)\n")
    for line in (
        "| Messages accepted | 160 |",
        "| Screened (entered the screening queue) | 40 of 153 (26.1%) |",
        "| Verdicts | 36 released, 4 withheld |",
        "| Review grants | 40 |",
        "| Anomalies | 1 (1 decrypt without a grant) |",
        "| decrypt without a grant | 1 |",
        "| Transparency log | Verified |",
        "| all | 160 | 7 | 40 | 135 | 4 | 1 | 2 |",
        "| decided | 4 | 1 h 00 min | 1 d 1 h | 1 d 1 h |",
        "| withheld: public order | 3 |",
        "| jansen | 25 | 22 | 3 | 1 |",
        "| rr-1 | d-77 | jansen | approved | de vries | OM 2026/0412 | 2026-03-04 09:00 | "
        "2026-01-01 to 2026-02-28 |",
        "- 2026-03-12 14:03:22 UTC, decrypt without a grant: message "
        "9c8eecfc6e1961e4917bf51a18efaefe; userpass-mallory (07794ed7); no grant for this "
        "message [audit.log:118]",
        "The key server refused 2 decrypt request(s)",
    ):
        assert line in markdown, line


def test_markdown_says_what_was_not_checked() -> None:
    empty = sample(None)
    empty.officers, empty.retrospective, empty.verdicts, empty.withhold_reasons = [], [], {}, {}
    markdown = to_markdown(blocks(empty))
    assert "Not checked: no key-server audit log was given" in markdown
    assert "| Anomalies | not checked (no key-server audit log given) |" in markdown
    assert "No officer opened a message of this institution in the period." in markdown
    assert "No verdicts were recorded in the period." in markdown
    clean = to_markdown(blocks(sample([])))
    assert "None found: every decrypt matches a grant within its time and legal basis" in clean
    assert "| Anomalies | 0 |" in clean


def test_the_new_finding_kinds_are_counted() -> None:
    anomalies = [
        ANOMALY,
        Anomaly("decrypt outside its grant", "2026-03-12 15:00:00", "9c8e", "carol", "late"),
        Anomaly("key-server change not recorded", "2026-03-13 10:00:00", "policy p", "root", "x"),
        Anomaly("key-server change not recorded", "2026-03-13 10:00:01", "policy q", "root", "x"),
        Anomaly("escrow of a privileged message", "2026-03-14 10:00:00", "ab", "terminal", "y"),
        Anomaly("audit devices disagree", "2026-03-15 10:00:00", "decrypt", "a", "missing"),
    ]
    report = sample(anomalies)
    assert report.anomaly_counts == {
        "key-server change not recorded": 2,
        "decrypt without a grant": 1,
        "decrypt outside its grant": 1,
        "escrow of a privileged message": 1,
        "audit devices disagree": 1,
    }
    assert report.to_dict()["anomaly_counts"] == report.anomaly_counts
    markdown = to_markdown(blocks(report))
    assert (
        "| Anomalies | 6 (2 key-server change not recorded, 1 decrypt without a grant," in markdown
    )
    assert "| key-server change not recorded | 2 |" in markdown
    assert "| audit devices disagree | 1 |" in markdown


def test_markdown_escapes_table_cells() -> None:
    markdown = to_markdown([Table(("a",), (("x|y\nz",),))])
    assert "| x\\|y z |" in markdown


def _pdf_text(path: Path) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(path).pages)


def test_pdf_carries_the_same_content(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    pdf.to_pdf(blocks(sample([ANOMALY])), path, title="Sealpost audit report pi-vught", created=NOW)
    reader = PdfReader(path)
    assert reader.metadata is not None
    assert reader.metadata.title == "Sealpost audit report pi-vught"
    text = _pdf_text(path)
    for needle in (
        "Sealpost audit report: PI Vught (pi-vught)",
        "Messages accepted",
        "160",
        "jansen",
        "el-idrissi",
        "OM 2026/0412",
        "9c8eecfc6e1961e4917bf51a18efaefe",
        "page 1",
    ):
        assert needle in text, needle


def test_pdf_without_a_unicode_font_marks_what_it_cannot_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf, "find_fonts", lambda _blocks, _font: pdf.Fonts(None))
    content: list[Block] = [
        Heading(1, "Rapport: Ĳsselmonde — مرحبا"),
        Paragraph("ok"),
        Bullets(("één",)),
    ]
    path = tmp_path / "plain.pdf"
    pdf.to_pdf(content, path, title="t", created=NOW)
    text = _pdf_text(path)
    assert "<U+0132>sselmonde <U+2014> <U+0645>" in text
    assert "één" in text


def test_pdf_font_choice(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        pdf.find_fonts([], tmp_path / "missing.ttf")
    chosen = pdf.find_fonts([Paragraph("hello")])
    if chosen.main is not None:
        assert chosen.main.is_file()
        # CJK is loaded only for CJK text.
        assert all("CJK" not in p.name for p in chosen.fallbacks)


def test_withholdings_per_reason_and_institution_and_complaint_releases() -> None:
    report = sample(None)
    report.withholdings = [
        Withholdings("pi-vught", "public order", 3, 1),
        Withholdings("pi-vught", "victim protection", 1, 0),
    ]
    report.complaint_releases = [
        ComplaintRelease(
            "2026-03-20 10:00:00", "9c8eecfc6e1961e4917bf51a18efaefe", "jansen",
            "BC 2026/1234", "public order",
        )
    ]  # fmt: skip
    markdown = to_markdown(blocks(report))
    for line in (
        "## Withholdings and complaints",
        "| Institution | Reason category | Withheld | Released after a complaint |",
        "| pi-vught | public order | 3 | 1 |",
        "| pi-vught | victim protection | 1 | 0 |",
        "| Released after a complaint | 1 |",
        "- 2026-03-20 10:00:00 UTC: message 9c8eecfc6e1961e4917bf51a18efaefe (public order) "
        "released by jansen after complaint BC 2026/1234",
    ):
        assert line in markdown, line
    data = report.to_dict()
    assert data["withholdings"][0] == {
        "institution": "pi-vught",
        "reason": "public order",
        "withheld": 3,
        "released_after_complaint": 1,
    }
    assert data["complaint_releases"][0]["complaint_reference"] == "BC 2026/1234"

    report.withholdings, report.complaint_releases = [], []
    markdown = to_markdown(blocks(report))
    assert "No message was withheld or released after a complaint in the period." in markdown
    assert "| Released after a complaint | 0 |" in markdown
