"""A relative's whole journey in the web app, in headless Chromium, against the real stack.

Sign up, ask for contact, approved with the administrator's tools, acknowledge the
review notice, send Arabic text with a photo and a PDF, the institution's terminal
takes it in and the desk opens it, the status becomes delivered, a reply is read in the
browser; and the app served is the release the log records.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from sealpost._internal.stack import Stack, approve_all, screening_order, setup_institutions
from sealpost.clients.terminal.desk import DeliveryDesk
from sealpost.clients.terminal.intake import IntakeLoop, MemoryStateStore
from sealpost.clients.terminal.reply import send_reply
from sealpost.v1 import admin_pb2, common_pb2
from tests.browser.conftest import APP, Tab
from tests.integration.test_terminal_desk import png
from tests.integration.test_terminal_intake import FAST

pytestmark = pytest.mark.integration

INSTITUTION = "pi-web"
DETAINEE = "d-web-1"
PASSPHRASE = "een lange zin voor de sleutels van dit apparaat"
TEXT = "مرحبا يا أبي — tot zondag!"
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
TIMEOUT = 30_000


def sign_up(page: Page, name: str) -> None:
    page.wait_for_selector('[data-test="signup-form"]', timeout=TIMEOUT)
    page.fill('[data-test="signup-name"]', name)
    page.fill('[data-test="signup-passphrase"]', PASSPHRASE)
    page.fill('[data-test="signup-passphrase-again"]', PASSPHRASE)
    page.click('[data-test="signup-submit"]')
    page.wait_for_selector('[data-test="contact-request-form"]', timeout=TIMEOUT)


def test_the_whole_journey_in_the_browser(tab: Tab, web_stack: Stack, tmp_path: Path) -> None:
    admin, terminals = setup_institutions(web_stack, [(DETAINEE, INSTITUTION, "regular")])
    terminal = terminals[INSTITUTION]
    page = tab.open("/")
    tab.screenshot("01-sign-up")
    sign_up(page, "فاطمة العمراني")

    # Ask for contact: the same words for a waiting request as for an unknown id.
    page.fill('[data-test="contact-request-id"]', DETAINEE)
    page.fill('[data-test="contact-request-relationship"]', "dochter")
    page.click('[data-test="contact-request-submit"]')
    contact = page.locator(f'[data-test="contact"][data-detainee="{DETAINEE}"]')
    expect(contact).to_have_attribute("data-status", "REQUESTED", timeout=TIMEOUT)
    tab.screenshot("02-contacts")
    assert approve_all(admin, INSTITUTION)
    page.reload()
    page.wait_for_selector('[data-test="unlock-form"]', timeout=TIMEOUT)
    page.fill('[data-test="unlock-passphrase"]', PASSPHRASE)
    page.click('[data-test="unlock-submit"]')
    expect(contact).to_have_attribute("data-status", "APPROVED", timeout=TIMEOUT)

    # The review notice must be acknowledged before the first message.
    contact.locator("a").first.click()
    page.wait_for_selector('[data-test="notice-acknowledge"]', timeout=TIMEOUT)
    tab.screenshot("03-notice")
    page.click('[data-test="notice-acknowledge"]')

    photo = tmp_path / "foto-familie.png"
    photo.write_bytes(png())
    letter = tmp_path / "brief.pdf"
    letter.write_bytes(PDF)
    page.fill('[data-test="compose-text"]', TEXT)
    page.set_input_files('[data-test="compose-files"]', [str(photo), str(letter)])
    expect(page.locator('[data-test="compose-file-list"]')).to_contain_text("foto-familie.png")
    tab.screenshot("04-write")
    page.click('[data-test="send"]')
    sent = page.locator('[data-test="message"]').first
    expect(sent.locator('[data-test="message-proof"]')).to_have_attribute(
        "data-proven", "true", timeout=TIMEOUT
    )
    message_id = sent.get_attribute("data-message")
    assert message_id

    # The institution takes it in; the desk opens exactly what was written and prints it.
    IntakeLoop(
        terminal, web_stack.escrow_for(INSTITUTION), MemoryStateStore(), settings=FAST
    ).run_once()
    opened = DeliveryDesk(terminal, INSTITUTION).open(bytes.fromhex(message_id))
    assert opened.text == TEXT
    assert sorted(a.filename for a in opened.attachments) == ["brief.pdf", "foto-familie.png"]
    slip = tmp_path / "slip.pdf"
    printed = DeliveryDesk(terminal, INSTITUTION).print_pdf(bytes.fromhex(message_id), slip)
    assert slip.read_bytes().startswith(b"%PDF-")
    assert printed.reference

    # A reply, read in the browser, and the message shown as delivered.
    account_id = terminal.contacts(DETAINEE)[0].account_id
    drawing = tmp_path / "tekening.png"
    drawing.write_bytes(png((200, 30, 30)))
    escrow = web_stack.escrow_for(INSTITUTION)
    send_reply(terminal, DETAINEE, account_id, "شكرا يا ابنتي", escrow, [drawing])
    page.click('[data-test="refresh"]')
    reply = page.locator('[data-test="inbox-item"]').first
    expect(reply).to_contain_text("شكرا يا ابنتي", timeout=TIMEOUT)
    expect(reply.locator('[data-test="attachment"]')).to_have_attribute("download", "tekening.png")
    expect(sent.locator('[data-test="message-status"]')).to_have_attribute(
        "data-status", "DELIVERED", timeout=TIMEOUT
    )
    tab.screenshot("05-reply")
    assert tab.errors == []


def catalogue(language: str) -> dict[str, str]:
    """The app's words in one language (clients/web/app/messages)."""
    words: dict[str, str] = json.loads(
        (APP / "messages" / f"{language}.json").read_text(encoding="utf-8")
    )
    return words


def test_a_withheld_message_says_why_only_where_the_regime_tells_it(
    tab: Tab, web_stack: Stack
) -> None:
    """Two messages withheld by a screener: one of a detainee whose regime tells relatives
    the reason, which shows its category and how to respond; one under a screening order in
    the default regime, which reads "not delivered", withheld after review, no details."""
    institution, told, quiet = "pi-web-reden", "d-web-told", "d-web-quiet"
    admin, terminals = setup_institutions(
        web_stack, [(told, institution, "regular"), (quiet, institution, "regular")]
    )
    admin.call(
        "admin",
        "SetRegime",
        admin_pb2.SetRegimeRequest(
            regime=admin_pb2.Regime(
                name="web-told",
                policy=common_pb2.REGIME_POLICY_SCREEN_ALL,
                tell_relatives_reason=True,
            )
        ),
    )
    admin.call(
        "admin",
        "SetDetaineeRegime",
        admin_pb2.SetDetaineeRegimeRequest(detainee_id=told, regime="web-told"),
    )
    screening_order(admin, quiet)

    page = tab.open("/")
    sign_up(page, "Samira")
    for detainee in (told, quiet):
        page.fill('[data-test="contact-request-id"]', detainee)
        page.click('[data-test="contact-request-submit"]')
        expect(page.locator(f'[data-test="contact"][data-detainee="{detainee}"]')).to_have_count(
            1, timeout=TIMEOUT
        )
    assert approve_all(admin, institution) == 2
    page.reload()
    page.wait_for_selector('[data-test="unlock-form"]', timeout=TIMEOUT)
    page.fill('[data-test="unlock-passphrase"]', PASSPHRASE)
    page.click('[data-test="unlock-submit"]')

    def open_contact(detainee: str) -> None:
        page.click('[data-test="nav-contacts"]')
        contact = page.locator(f'[data-test="contact"][data-detainee="{detainee}"]')
        expect(contact).to_have_attribute("data-status", "APPROVED", timeout=TIMEOUT)
        contact.locator("a").first.click()
        expect(page.locator('[data-test="contact-status"]')).to_be_visible(timeout=TIMEOUT)

    sent: dict[str, str] = {}
    for detainee in (told, quiet):
        open_contact(detainee)
        page.click('[data-test="notice-acknowledge"]')
        page.fill('[data-test="compose-text"]', f"Hallo {detainee}")
        page.click('[data-test="send"]')
        message = page.locator('[data-test="message"]').first
        expect(message.locator('[data-test="message-proof"]')).to_have_attribute(
            "data-proven", "true", timeout=TIMEOUT
        )
        found = message.get_attribute("data-message")
        assert found
        sent[detainee] = found

    # The institution takes both in; both wait for a screener, who withholds them.
    terminal = terminals[institution]
    terminal.take_in(terminal.intake(), web_stack.escrow_for(institution))
    screener = web_stack.reviewer(["screener"], [institution])
    note = "notitie voor het dossier"
    for message_id in sent.values():
        screener.open(bytes.fromhex(message_id))
        screener.verdict(
            bytes.fromhex(message_id),
            common_pb2.VERDICT_WITHHOLD,
            common_pb2.WITHHOLD_REASON_CRIME_PREVENTION,
            note,
        )

    categories = ("orderAndSecurity", "publicOrder", "crimePrevention", "victimProtection")

    def check(language: str) -> None:
        words = catalogue(language)
        open_contact(told)
        page.click('[data-test="refresh"]')
        message = page.locator(f'[data-test="message"][data-message="{sent[told]}"]')
        expect(message.locator('[data-test="message-status"]')).to_have_attribute(
            "data-status", "NOT_DELIVERED", timeout=TIMEOUT
        )
        expect(message.locator('[data-test="message-status"]')).to_have_text(
            words["message.status.notDelivered"]
        )
        withheld = message.locator('[data-test="message-withheld"]')
        expect(withheld).to_have_attribute("data-reason", "CRIME_PREVENTION")
        expect(withheld).to_contain_text(words["message.reason.crimePrevention"])
        expect(withheld).to_contain_text(words["message.withheld.respond"])
        expect(withheld).not_to_contain_text(words["message.withheld.noReason"])
        expect(withheld).not_to_contain_text(note)
        tab.screenshot(f"06-withheld-reason-{language}")

        open_contact(quiet)
        page.click('[data-test="refresh"]')
        message = page.locator(f'[data-test="message"][data-message="{sent[quiet]}"]')
        expect(message.locator('[data-test="message-status"]')).to_have_attribute(
            "data-status", "NOT_DELIVERED", timeout=TIMEOUT
        )
        withheld = message.locator('[data-test="message-withheld"]')
        expect(withheld).to_have_attribute("data-reason", "UNSPECIFIED")
        expect(withheld).to_contain_text(words["message.withheld.noReason"])
        expect(withheld).to_contain_text(words["message.withheld.ask"])
        for category in categories:
            expect(withheld).not_to_contain_text(words[f"message.reason.{category}"])
        expect(withheld).not_to_contain_text(words["message.withheld.respond"])
        tab.screenshot(f"07-withheld-default-{language}")

    check("nl")
    # The same in Arabic, right to left.
    page.select_option('[data-test="language"]', "ar")
    expect(page.locator("html")).to_have_attribute("dir", "rtl", timeout=TIMEOUT)
    check("ar")
    assert tab.errors == []


def test_the_app_pins_the_gateways_directory_and_runs_under_its_policy(
    tab: Tab, web_stack: Stack
) -> None:
    page = tab.open("/")
    page.wait_for_selector('[data-test="signup-form"]', timeout=TIMEOUT)
    policy = page.evaluate("fetch('/').then(r => r.headers.get('content-security-policy'))")
    assert "script-src 'self' 'wasm-unsafe-eval'" in policy
    deployment = json.loads(page.evaluate("fetch('/deployment.json').then(r => r.text())"))
    from sealpost._internal.devservers import gateway_directory_pin  # noqa: PLC0415

    assert deployment["directoryPin"] == gateway_directory_pin(web_stack.gateway.state_dir).hex()
    # The app shows its version and the log entry that records it.
    recorded = json.loads(page.evaluate("fetch('/release-log.json').then(r => r.text())"))
    tab.open("/#/account")
    line = page.locator('[data-test="app-release"]')
    expect(line).to_contain_text(str(recorded["leafIndex"]), timeout=TIMEOUT)
    expect(line).to_contain_text(recorded["appVersion"])
    # An inline script injected into the page does not run.
    ran = page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__injected = true';
                   document.head.appendChild(s); return window.__injected === true; }"""
    )
    assert ran is False
    assert tab.errors == [] or all("Content Security Policy" in e for e in tab.errors)
