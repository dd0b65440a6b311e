"""A relative who uses the web app, in headless Chromium: the scripted day's browser part.

The same pages a person uses, driven through their stable ``data-test`` hooks
(docs/web.md); the browser is the system's Chromium (sealpost._internal.browser).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from playwright.sync_api import Page

#: How long one step in the page may take, in milliseconds.
STEP_MS: Final = 60_000


class WebRelative:
    """One relative's browser tab on the gateway's web app."""

    def __init__(self, page: Page, url: str, passphrase: str) -> None:
        self.page = page
        self.url = url
        self.passphrase = passphrase

    def _wait(self, selector: str) -> None:
        self.page.wait_for_selector(selector, timeout=STEP_MS)

    def sign_up(self, name: str) -> None:
        """Open the app and sign up: keys made in the browser, sealed under the passphrase."""
        self.page.goto(self.url + "/")
        self._wait('[data-test="signup-form"]')
        self.page.fill('[data-test="signup-name"]', name)
        self.page.fill('[data-test="signup-passphrase"]', self.passphrase)
        self.page.fill('[data-test="signup-passphrase-again"]', self.passphrase)
        self.page.click('[data-test="signup-submit"]')
        self._wait('[data-test="contact-request-form"]')

    def ask_contact(self, detainee_id: str, relationship: str) -> None:
        """Ask for contact with the id the detainee gave."""
        self.page.fill('[data-test="contact-request-id"]', detainee_id)
        self.page.fill('[data-test="contact-request-relationship"]', relationship)
        self.page.click('[data-test="contact-request-submit"]')
        self._wait(f'[data-test="contact"][data-detainee="{detainee_id}"]')

    def write(self, detainee_id: str, text: str) -> str:
        """Open the (approved) contact, acknowledge the notice, send; the message id (hex)."""
        self.page.reload()
        self._wait('[data-test="unlock-form"]')
        self.page.fill('[data-test="unlock-passphrase"]', self.passphrase)
        self.page.click('[data-test="unlock-submit"]')
        contact = f'[data-test="contact"][data-detainee="{detainee_id}"][data-status="APPROVED"]'
        self._wait(contact)
        self.page.click(contact + " a")
        self._wait('[data-test="notice-acknowledge"]')
        self.page.click('[data-test="notice-acknowledge"]')
        self.page.fill('[data-test="compose-text"]', text)
        self.page.click('[data-test="send"]')
        self._wait('[data-test="message"] [data-test="message-proof"][data-proven="true"]')
        found = self.page.get_attribute('[data-test="message"]', "data-message")
        return found or ""

    def reads_delivered(self) -> bool:
        """Whether, after a refresh, the page shows the newest sent message as delivered."""
        from playwright.sync_api import TimeoutError as PageTimeout  # noqa: PLC0415

        self.page.click('[data-test="refresh"]')
        try:
            self._wait('[data-test="message-status"][data-status="DELIVERED"]')
        except PageTimeout:
            return False
        return True


@contextlib.contextmanager
def web_relative(url: str, server_certificate_pem: bytes, passphrase: str) -> Iterator[WebRelative]:
    """A fresh browser profile on the app at ``url``; NoBrowserError without Chromium."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    from sealpost._internal.browser import launch  # noqa: PLC0415

    with sync_playwright() as playwright:
        browser = launch(playwright, server_certificate_pem)
        try:
            context = browser.new_context(locale="nl-NL", timezone_id="Europe/Amsterdam")
            yield WebRelative(context.new_page(), url, passphrase)
        finally:
            browser.close()
