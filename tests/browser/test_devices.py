"""Devices and notices in the web app, in headless Chromium, against the real stack.

A laptop signs up and makes a link code; a phone (another browser profile) signs up with
it and joins the same account; the phone lists both devices, each verified in the
browser, and revokes the laptop, which can then no longer sign in. And the notices by
e-mail: an address saved, shown back by the gateway, refused when malformed, and removed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Final

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from sealpost._internal.stack import Stack
from tests.browser.conftest import APP, Tab
from tests.browser.test_journey import PASSPHRASE, TIMEOUT, sign_up

pytestmark = pytest.mark.integration

NL: Final = json.loads((APP / "messages" / "nl.json").read_text(encoding="utf-8"))
#: Sixteen base32 characters in groups of four (docs/protocol.md 6.1.1).
CODE: Final = re.compile(r"^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$")


@pytest.fixture
def phone(browser: Browser, web_stack: Stack) -> Iterator[Tab]:
    """A second device: another browser profile, with its own IndexedDB and keys."""
    context = browser.new_context(locale="nl", timezone_id="Europe/Amsterdam")
    opened = Tab(context, web_stack.gateway.web_url, "nl")
    try:
        yield opened
    finally:
        context.close()


def open_account(page: Page) -> None:
    page.click('[data-test="nav-account"]')
    page.wait_for_selector('[data-test="device-list"]', timeout=TIMEOUT)


def unexpected(errors: list[str], *refusals: int) -> list[str]:
    """What went wrong on a page, but for the gateway's refusals the test provoked."""
    said = tuple(f"status of {status} " for status in refusals)
    return [e for e in errors if not ("Failed to load resource" in e and any(s in e for s in said))]


def start_again(page: Page) -> None:
    """A fresh start of the app (its keys out of memory) at the unlock page."""
    page.evaluate("location.hash = '#/'")
    page.reload()
    page.wait_for_selector('[data-test="unlock-form"]', timeout=TIMEOUT)


def sign_in_again(page: Page) -> None:
    start_again(page)
    page.fill('[data-test="unlock-passphrase"]', PASSPHRASE)
    page.click('[data-test="unlock-submit"]')
    page.wait_for_selector('[data-test="contact-request-form"]', timeout=TIMEOUT)


def device(page: Page, key_id: str) -> Locator:
    return page.locator(f'[data-test="device"][data-key-id="{key_id}"]')


def test_a_second_device_joins_with_a_code_and_revokes_the_first(tab: Tab, phone: Tab) -> None:
    laptop = tab.open("/")
    sign_up(laptop, "Laptop")
    open_account(laptop)
    own = laptop.locator('[data-test="device"][data-this="true"]')
    expect(own).to_have_count(1)
    laptop_key = own.get_attribute("data-key-id")
    assert laptop_key
    assert re.fullmatch(r"[0-9a-f]{64}", laptop_key)
    laptop.click('[data-test="link-create"]')
    shown = laptop.locator('[data-test="link-code"]')
    expect(shown).to_be_visible(timeout=TIMEOUT)
    code = shown.inner_text().strip()
    assert CODE.match(code), code
    expect(laptop.locator('[data-test="link-expires"]')).to_contain_text(":")
    tab.screenshot("devices-01-link-code")

    # The phone: a wrong code is the gateway's one answer, at the field; the right one joins.
    page = phone.open("/")
    page.wait_for_selector('[data-test="signup-form"]', timeout=TIMEOUT)
    page.fill('[data-test="signup-name"]', "Telefoon")
    page.fill('[data-test="signup-passphrase"]', PASSPHRASE)
    page.fill('[data-test="signup-passphrase-again"]', PASSPHRASE)
    page.check('[data-test="signup-link-toggle"]')
    field = page.locator('[data-test="signup-link-code"]')
    expect(field).to_be_visible()
    field.fill("AAAA-BBBB-CCCC-DDDD")
    page.click('[data-test="signup-submit"]')
    expect(field).to_have_attribute("aria-invalid", "true", timeout=TIMEOUT)
    expect(page.locator("#signup-link-code-error")).to_have_text(NL["error.linkCode"])
    assert "signup-link-code-error" in (field.get_attribute("aria-describedby") or "")
    phone.screenshot("devices-02-wrong-code")
    field.fill(code.lower().replace("-", " "))  # case, spaces and dashes do not count
    page.click('[data-test="signup-submit"]')
    page.wait_for_selector('[data-test="contact-request-form"]', timeout=TIMEOUT)

    # Both devices are listed on the phone, verified against the pinned directory.
    open_account(page)
    items = page.locator('[data-test="device"]')
    expect(items).to_have_count(2, timeout=TIMEOUT)
    on_phone = device(page, laptop_key)
    expect(on_phone).to_have_attribute("data-this", "false")
    expect(on_phone).to_have_attribute("data-revoked", "false")
    expect(page.locator('[data-test="device"][data-this="true"]')).to_have_attribute(
        "data-revoked", "false"
    )
    phone.screenshot("devices-03-listed")

    # Revoke the laptop from the phone, after a confirmation.
    on_phone.locator('[data-test="device-revoke"]').click()
    confirm = on_phone.locator('[data-test="device-revoke-confirm"]')
    expect(confirm).to_be_focused()
    expect(on_phone).to_contain_text(NL["account.revokeConfirmText"])
    phone.screenshot("devices-04-revoke-confirm")
    confirm.click()
    expect(device(page, laptop_key)).to_have_attribute("data-revoked", "true", timeout=TIMEOUT)
    expect(device(page, laptop_key).locator('[data-test="device-revoke"]')).to_have_count(0)
    phone.screenshot("devices-05-revoked")

    # The laptop's open session is refused by the gateway; signing in again is refused too,
    # and it is told that its device was revoked.
    laptop.click('[data-test="nav-contacts"]')
    expect(laptop.locator('[data-test="error"]')).to_be_visible(timeout=TIMEOUT)
    start_again(laptop)
    laptop.fill('[data-test="unlock-passphrase"]', PASSPHRASE)
    laptop.click('[data-test="unlock-submit"]')
    expect(laptop.locator("#unlock-pass-error")).to_have_text(
        NL["error.deviceRevoked"], timeout=TIMEOUT
    )
    expect(laptop.locator('[data-test="nav-account"]')).to_have_count(0)
    tab.screenshot("devices-06-revoked-unlock")
    assert unexpected(tab.errors, 401) == []
    assert unexpected(phone.errors, 403) == []


def test_notices_are_saved_shown_refused_when_malformed_and_removed(tab: Tab) -> None:
    page = tab.open("/")
    sign_up(page, "Fatima")
    open_account(page)
    current = page.locator('[data-test="notify-current"]')
    expect(current).to_have_text(NL["account.notifyNone"], timeout=TIMEOUT)
    assert page.input_value('[data-test="notify-language"]') == "nl"  # the app's language

    # A malformed address is the field's error, tied to it.
    email = page.locator('[data-test="notify-email"]')
    email.fill("niet-een-adres")
    page.click('[data-test="notify-save"]')
    expect(email).to_have_attribute("aria-invalid", "true", timeout=TIMEOUT)
    expect(page.locator("#notify-email-error")).to_have_text(NL["error.email"])
    assert "notify-email-error" in (email.get_attribute("aria-describedby") or "")
    expect(email).to_be_focused()
    tab.screenshot("notices-01-malformed")
    expect(current).to_have_text(NL["account.notifyNone"])

    # Saved, then shown back from GetNotifications, also after signing in again.
    email.fill("fatima@example.nl")
    page.select_option('[data-test="notify-language"]', "ar")
    page.click('[data-test="notify-save"]')
    expect(current).to_contain_text("fatima@example.nl", timeout=TIMEOUT)
    expect(current).to_contain_text("العربية")
    expect(email).not_to_have_attribute("aria-invalid", "true")
    tab.screenshot("notices-02-saved")
    sign_in_again(page)
    open_account(page)
    expect(current).to_contain_text("fatima@example.nl", timeout=TIMEOUT)
    assert page.input_value('[data-test="notify-email"]') == "fatima@example.nl"
    assert page.input_value('[data-test="notify-language"]') == "ar"

    # Removed: the gateway has no address any more.
    page.click('[data-test="notify-remove"]')
    expect(current).to_have_text(NL["account.notifyNone"], timeout=TIMEOUT)
    assert page.input_value('[data-test="notify-email"]') == ""
    sign_in_again(page)
    open_account(page)
    expect(current).to_have_text(NL["account.notifyNone"], timeout=TIMEOUT)
    tab.screenshot("notices-03-removed")
    assert unexpected(tab.errors, 400) == []
