"""``sealpost audit`` and ``sealpost gateway`` in Dutch: the report, the help, a finding, a setting.

In-process tests switch the staff language to Dutch and back to English afterwards; help
texts are built when the command modules load, so those run ``sealpost --language nl`` as
a process of its own, the way a person does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader

from sealpost.clients.audit import pdf
from sealpost.clients.audit.decisions import Decisions, InstitutionDecisions, ScreenerDecisions
from sealpost.clients.audit.document import to_markdown
from sealpost.clients.audit.report import (
    Anomaly,
    Coverage,
    InstitutionReport,
    LogCheck,
    Officer,
    Period,
    Volume,
    Waits,
    blocks,
    duration,
    title,
)
from sealpost.clients.audit.statecheck import StateReport
from sealpost.gateway.config import GatewayConfig
from sealpost.gateway.errors import ConfigError
from tests.programs import sealpost, staff_language

NOW = datetime(2026, 4, 1, 8, 30, tzinfo=UTC)


@pytest.fixture
def dutch() -> Iterator[None]:
    """Dutch for the test, English again afterwards."""
    with staff_language("nl"):
        yield


def sample() -> InstitutionReport:
    anomalies = [
        Anomaly(
            "decrypt without a grant",
            "2026-03-12 14:03:22",
            "9c8eecfc6e1961e4917bf51a18efaefe",
            "userpass-mallory (07794ed7)",
            "no grant for this message [audit.log:118]",
        )
    ]
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
        withhold_reasons={"public order": 3},
        officers=[Officer("jansen", 25, 22, 3, 1)],
        retrospective=[],
        anomalies=anomalies,
        reconciled="key-server audit log from 2026-03-01 00:00:00 to 2026-03-31 23:59:59 UTC",
        log_integrity="Verified: 5000 log entries; the stored entries reproduce all 40 signed "
        "tree heads (up to size 5000); no fork.",
        log_check=LogCheck("verified", 5000, 40, 5000),
        coverage=Coverage(
            datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 31, 21, 59, 59, tzinfo=UTC), 2.5
        ),
        decisions=Decisions(
            (
                InstitutionDecisions("pi-vught", 40, 3600.0, 7200.0, 2, 600.0),
                InstitutionDecisions("pi-zwolle", 10, 600.0, 900.0, 0, None),
            ),
            InstitutionDecisions("*", 50, 1800.0, 7200.0, 2, 600.0),
            (ScreenerDecisions("jansen", "pi-vught", 25, 1800.0, 5400.0),),
            int(datetime(2026, 4, 1, tzinfo=UTC).timestamp() * 1000),
        ),
    )


def test_the_report_in_dutch(dutch: None, tmp_path: Path) -> None:
    report = sample()
    content = blocks(report)
    markdown = to_markdown(content)
    assert markdown.startswith("# Sealpost-auditrapport: PI Vught (pi-vught)\n")
    for line in (
        "Periode: 1 maart 2026 tot en met 31 maart 2026 (UTC). Gemaakt op 1 apr 2026, 10:30 "
        "(Nederlandse tijd)",
        "## Samenvatting",
        "| Aanvaarde berichten | 160 |",
        "| Gecontroleerd (in de controlewachtrij gekomen) | 40 van 153 (26,1%) |",
        "| Beslissingen | 36 vrijgegeven, 4 tegengehouden |",
        "| Afwijkingen | 1 (1 ontsleuteling zonder toestemming) |",
        "| Transparantielog | Geverifieerd |",
        "| inkomend (naar gedetineerden) | 120 |",
        "| alle | 160 | 7 | 40 | 135 | 4 | 1 | 2 |",
        "| beslist | 4 | 1 u 00 min | 1 d 1 u | 1 d 1 u |",
        "| tegengehouden: openbare orde | 3 |",
        "## Tijd tot een beslissing",
        "Nog onbeslist: berichten zonder beslissing in de wachtrij op 1 apr 2026, 02:00 "
        "(Nederlandse tijd:",
        "| Inrichting | Beslissingen | Mediaan | 90e percentiel | Nog onbeslist | Oudste "
        "onbesliste |",
        "| pi-vught | 40 | 1 u 00 min | 2 u 00 min | 2 | 10 min |",
        "| alle inrichtingen | 50 | 30 min | 2 u 00 min | 2 | 10 min |",
        "### Per beoordelaar",
        "| jansen | pi-vught | 25 | 30 min | 1 u 30 min |",
        "## Beoordelingen per medewerker",
        "In de periode is geen verzoek achteraf ingediend of beslist.",
        "## Afwijkingen uit de afstemming",
        "Gecontroleerd tegen het auditlog van de sleutelserver van 1 mrt 2026, 01:00 tot "
        "31 mrt 2026, 23:59, klokmarge 2,5 s.",
        "- 2026-03-12 14:03:22 UTC, ontsleuteling zonder toestemming: bericht "
        "9c8eecfc6e1961e4917bf51a18efaefe",
        "Geverifieerd: 5000 logregels; de opgeslagen regels reproduceren alle 40 ondertekende "
        "boomkoppen (tot grootte 5000); geen splitsing.",
        "## Hoe u dit rapport leest",
    ):
        assert line in markdown, line
    assert "Summary" not in markdown

    path = tmp_path / "report.pdf"
    pdf.to_pdf(content, path, title=title(report), created=NOW)
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(path).pages)
    for needle in (
        "Sealpost-auditrapport: PI Vught (pi-vught)",
        "Samenvatting",
        "Aanvaarde berichten",
        "1 maart 2026 tot en met 31 maart 2026",
        "Transparantielog",
        "Tijd tot een beslissing",
        "alle inrichtingen",
        "pagina 1",
    ):
        assert needle in text, needle


def test_the_english_report_states_the_same_figures_in_english() -> None:
    markdown = to_markdown(blocks(sample()))
    assert "Period: March 1, 2026 to March 31, 2026 (UTC). Produced Apr 1, 2026, 10:30 AM" in (
        markdown.replace("\u202f", " ")
    )
    assert "| Transparency log | Verified |" in markdown
    assert "clock leeway 2.5 s." in markdown


def test_the_json_stays_english_whatever_the_language(dutch: None) -> None:
    data = sample().to_dict()
    assert data["volumes"][0]["direction"] == "inbound (to detainees)"
    assert data["log_integrity"].startswith("Verified: 5000 log entries")
    assert "log_check" not in data
    assert "coverage" not in data


def test_durations_in_dutch(dutch: None) -> None:
    assert duration(3 * 3600 + 300) == "3 u 05 min"
    assert duration(2 * 86400 + 4 * 3600) == "2 d 4 u"


def test_the_state_check_summary_in_dutch(dutch: None) -> None:
    report = StateReport(events=12, rows={"messages": 3})
    assert report.lines() == [
        "OK: 3 rijen in 1 tabellen volgen de 12 gebeurtenissen van het log, en het log houdt "
        "zich aan zijn regels."
    ]


def test_a_wrong_gateway_setting_in_dutch(dutch: None) -> None:
    with pytest.raises(ConfigError) as info:
        GatewayConfig.load({"port": "65536"}, {})
    assert info.value.problems == [
        "--port: verwacht een geheel getal van 0 tot 65535, gekregen '65536'"
    ]


def test_audit_help_in_dutch() -> None:
    done = sealpost("--language", "nl", "audit", "--help")
    assert done.returncode == 0, done.stderr
    words = " ".join(done.stdout.split())
    assert "Controleurs: verifieer het transparantielog" in words
    assert "Stem de auditapparaten van de sleutelserver af met het transparantielog." in words
    assert "Controleer het log via de API van de gateway" in words
    verify = sealpost("--language", "nl", "audit", "verify", "--help")
    assert verify.returncode == 0, verify.stderr
    assert "Werkprocessen die de bladen van grote logs decoderen." in " ".join(
        verify.stdout.split()
    )


def test_gateway_help_in_dutch() -> None:
    done = sealpost("--language", "nl", "gateway", "--help")
    assert done.returncode == 0, done.stderr
    words = " ".join(done.stdout.split())
    assert "Draai de Sealpost-gateway" in words
    assert "Werk het databaseschema bij tot de nieuwste revisie." in words
    serve = sealpost("--language", "nl", "gateway", "serve", "--help")
    assert "Adres om op te luisteren" in " ".join(serve.stdout.split())


def test_a_wrong_gateway_setting_in_dutch_from_the_program(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    bad = sealpost("--language", "nl", "gateway", "serve", "--port", "x", "--state-dir", state)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "sealpost gateway serve: ongeldige configuratie:" in bad.stderr
    assert "--port: verwacht een geheel getal van 0 tot 65535, gekregen 'x'" in bad.stderr
