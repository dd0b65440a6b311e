"""The relatives' web app in a real browser: Chromium from the operating system, by Playwright.

Nothing here downloads a browser: Playwright drives the system's Chromium (``make
browser-deps`` installs it), headless. The app is the one ``make web-app`` built,
served by a real gateway with a real OpenBao. Chromium trusts exactly the gateway's
TLS key (``--ignore-certificate-errors-spki-list``), so the page is a secure context
as it is for a relative, and the Content-Security-Policy is enforced as served.

Screenshots of every page in every language go to ``test-output/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

    from sealpost._internal.devservers import OpenBaoDevServer
    from sealpost._internal.stack import Stack
    from sealpost.escrow.bootstrap import BootstrapResult

ROOT: Final = Path(__file__).resolve().parents[2]
APP: Final = ROOT / "clients" / "web" / "app"
AXE: Final = APP / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS: Final = ROOT / "test-output" / "screenshots"
#: The languages of the app, Dutch first (its default).
LANGUAGES: Final = ("nl", "en", "ar", "tr", "pl")
#: What axe-core checks: WCAG 2.1 level A and AA.
WCAG_AA: Final = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync API, per module: it runs an event loop in this thread while open,
    and tests after it (asyncio.run) need the thread's loop stopped again."""
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        pytest.fail("Playwright for Python is missing: make venv installs it (.[dev])")
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def built_app() -> Path:
    """The built web app; the run stops, saying how to build it, without one."""
    dist = APP / "dist"
    if not (dist / "index.html").is_file():
        pytest.fail(f"the web app is not built in {dist}: run make web-app")
    return dist


@pytest.fixture(scope="module")
def web_stack(
    tmp_path_factory: pytest.TempPathFactory,
    openbao: OpenBaoDevServer,
    keyserver: BootstrapResult,
    built_app: Path,
) -> Iterator[Stack]:
    """OpenBao, a gateway on SQLite serving the built app, and actor factories."""
    from sealpost._internal.stack import running_stack  # noqa: PLC0415

    work = tmp_path_factory.mktemp("web-stack")
    with running_stack(
        work / "gateway",
        openbao,
        keyserver,
        f"sqlite:///{work / 'sealpost.db'}",
        {"SEALPOST_WEB_APP": str(built_app)},
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright, web_stack: Stack) -> Iterator[Browser]:
    """Headless Chromium trusting exactly the gateway's TLS key."""
    from sealpost._internal.browser import NoBrowserError, launch  # noqa: PLC0415

    try:
        launched = launch(
            playwright, (web_stack.gateway.state_dir / "tls" / "server.pem").read_bytes()
        )
    except NoBrowserError as exc:
        pytest.fail(str(exc))
    try:
        yield launched
    finally:
        launched.close()


class Tab:
    """One page of the app in a fresh browser profile, collecting what went wrong."""

    def __init__(self, context: BrowserContext, base_url: str, language: str) -> None:
        self.context = context
        self.base_url = base_url
        self.language = language
        self.page: Page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def open(self, path: str = "/") -> Page:
        self.page.goto(self.base_url + path)
        return self.page

    def screenshot(self, name: str) -> Path:
        """A full-page screenshot under test-output/screenshots/<language>/."""
        folder = SCREENSHOTS / self.language
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def axe_violations(self) -> list[str]:
        """What axe-core (WCAG 2.1 A and AA) finds on the page as it is now.

        axe is evaluated through the DevTools protocol, which the page's
        Content-Security-Policy does not govern; the page itself stays under it.
        """
        if not AXE.is_file():
            pytest.fail(f"axe-core is missing ({AXE}): run make web-app")
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
        result = self.page.evaluate(
            "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
            ".violations.map(v => v.id + ': ' + v.help + ' (' + v.nodes.length + ')')",
            WCAG_AA,
        )
        return list(result)


@pytest.fixture
def tab(browser: Browser, web_stack: Stack, request: pytest.FixtureRequest) -> Iterator[Tab]:
    """A fresh profile (no keys, no history) in the language the test names, Dutch by default."""
    language = getattr(request, "param", "nl")
    context = browser.new_context(locale=language, timezone_id="Europe/Amsterdam")
    opened = Tab(context, web_stack.gateway.web_url, language)
    try:
        yield opened
    finally:
        context.close()
