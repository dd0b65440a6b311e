"""Every page of the web app in every language: WCAG 2.1 AA by axe-core, and a screenshot.

axe-core (pinned in clients/web/app/package.json) runs in Chromium on each page as a
relative reaches it; any violation fails the test, naming the rule and the page.
Screenshots go to test-output/screenshots/<language>/. Also: right to left for Arabic,
no sideways scrolling on a 360 px phone with text at 200 %, and sign-up by keyboard alone.
"""

from __future__ import annotations

import pytest

from sealpost._internal.stack import Stack
from tests.browser.conftest import LANGUAGES, Tab
from tests.browser.test_journey import PASSPHRASE, TIMEOUT, sign_up

pytestmark = pytest.mark.integration


def check(tab: Tab, name: str) -> list[str]:
    """Violations on the page as it is now, after its screenshot is taken."""
    tab.page.wait_for_load_state("networkidle")
    tab.screenshot(name)
    return [f"{tab.language} {name}: {v}" for v in tab.axe_violations()]


@pytest.mark.parametrize("tab", LANGUAGES, indirect=True)
def test_every_page_meets_wcag_aa_in_every_language(tab: Tab, web_stack: Stack) -> None:
    page = tab.open("/")
    page.wait_for_selector('[data-test="signup-form"]', timeout=TIMEOUT)
    direction = page.evaluate("[document.documentElement.lang, document.documentElement.dir]")
    assert direction == [tab.language, "rtl" if tab.language == "ar" else "ltr"]
    found = check(tab, "sign-up")
    page.click('[data-test="signup-submit"]')  # empty: errors tied to the fields
    assert page.get_attribute('[data-test="signup-name"]', "aria-invalid") == "true"
    found += check(tab, "sign-up-errors")
    sign_up(page, "Relative " + tab.language)
    page.fill('[data-test="contact-request-id"]', "d-a11y-" + tab.language)
    page.click('[data-test="contact-request-submit"]')
    page.wait_for_selector('[data-test="contact"]', timeout=TIMEOUT)
    found += check(tab, "contacts")
    page.click('[data-test="contact"] a')
    page.wait_for_selector("main h1", timeout=TIMEOUT)
    found += check(tab, "contact")
    page.click('[data-test="notice-link"]')
    page.wait_for_selector('[data-test="notice-text"]', timeout=TIMEOUT)
    found += check(tab, "notice")
    page.click('[data-test="nav-account"]')
    page.wait_for_selector('[data-test="device-list"]', timeout=TIMEOUT)
    found += check(tab, "account")
    # Its sections in their other states: a link code shown, a revocation to confirm with
    # this device's warning, and an address refused at its field.
    page.click('[data-test="link-create"]')
    page.wait_for_selector('[data-test="link-code"]', timeout=TIMEOUT)
    page.click('[data-test="device"][data-this="true"] [data-test="device-revoke"]')
    page.fill('[data-test="notify-email"]', "not-an-address")
    page.click('[data-test="notify-save"]')
    page.wait_for_selector('[data-test="notify-email"][aria-invalid="true"]', timeout=TIMEOUT)
    found += check(tab, "account-devices")
    page.click('[data-test="sign-out"]')
    page.wait_for_selector('[data-test="unlock-form"]', timeout=TIMEOUT)
    found += check(tab, "unlock")
    assert found == []
    # The one refusal provoked: the malformed address (400, INVALID_ARGUMENT).
    assert [e for e in tab.errors if "status of 400 " not in e] == []


def test_a_phone_with_text_at_twice_the_size_needs_no_sideways_scrolling(tab: Tab) -> None:
    tab.page.set_viewport_size({"width": 360, "height": 800})
    page = tab.open("/")
    page.wait_for_selector('[data-test="signup-form"]', timeout=TIMEOUT)
    page.evaluate("document.documentElement.style.fontSize = '200%'")
    tab.screenshot("phone-200-percent")
    wider = page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    assert wider is False


def test_sign_up_works_with_the_keyboard_alone(tab: Tab) -> None:
    page = tab.open("/")
    page.wait_for_selector('[data-test="signup-form"]', timeout=TIMEOUT)
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.getAttribute('data-test')")
        reached.append(focused)
        if focused == "signup-name":
            break
    assert reached[-1] == "signup-name", reached
    # Focus is visible: the focused field draws an outline.
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    page.keyboard.type("Jan de Vries")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSPHRASE)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSPHRASE)
    page.keyboard.press("Enter")
    page.wait_for_selector('[data-test="contact-request-form"]', timeout=TIMEOUT)


def test_the_check_finds_a_violation_when_there_is_one(tab: Tab) -> None:
    page = tab.open("/")
    page.wait_for_selector('[data-test="signup-form"]', timeout=TIMEOUT)
    page.evaluate(
        "() => { const i = document.createElement('input'); document.querySelector('main')"
        ".appendChild(i); }"
    )
    assert any(v.startswith("label:") for v in tab.axe_violations())
