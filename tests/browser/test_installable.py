"""The web app is installable as a progressive web app: Chromium finds nothing against it."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Playwright

from sealpost._internal.browser import launch_profile
from sealpost._internal.stack import Stack
from tests.browser.test_journey import TIMEOUT

pytestmark = pytest.mark.integration


def test_chromium_can_install_the_app(
    playwright: Playwright, web_stack: Stack, tmp_path: Path
) -> None:
    server = (web_stack.gateway.state_dir / "tls" / "server.pem").read_bytes()
    context = launch_profile(playwright, server, tmp_path / "profile")
    try:
        page = context.new_page()
        page.goto(web_stack.gateway.web_url + "/")
        page.wait_for_selector('[data-test="signup-form"]', timeout=TIMEOUT)
        devtools = context.new_cdp_session(page)
        manifest = devtools.send("Page.getAppManifest")
        assert manifest["errors"] == []
        assert manifest["url"].endswith("/manifest.webmanifest")
        assert devtools.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    finally:
        context.close()
