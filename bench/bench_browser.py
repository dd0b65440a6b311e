"""The web app in Chromium: its bundle's size, and sealing and sending a 2 MiB photo.

Bundle: the compressed size of the built app's script without libsodium's WebAssembly
(clients/web/app/dist/build.json), against the 250 KB budget. Sending: the app in
headless Chromium (the system's, through Playwright) against a real OpenBao and gateway
(SQLite), from the click on Send until the page shows the receipt proven in the log;
the reference is the Python SDK's ``send`` of the same photo to the same gateway, in
the same run. SPEC 6 asks for under a second. Needs ``make web-app`` and Chromium
(``make browser-deps``).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Result

DIST = Path(__file__).resolve().parent.parent / "clients" / "web" / "app" / "dist"
INSTITUTION = "bench-browser"
DETAINEE = "bench-browser-d"
PASSPHRASE = "a bench passphrase that is long enough"  # noqa: S105 - a throwaway account
MIB = 1024 * 1024
BUDGET_KB = 250


def _photo(folder: Path) -> Path:
    """A 2 MiB file the app and the terminal take for a JPEG photo."""
    from sealpost.crypto import _sodium  # noqa: PLC0415

    path = folder / "foto.jpg"
    start = b"\xff\xd8\xff\xe0"
    path.write_bytes(start + _sodium.random_bytes(2 * MIB - len(start)))
    return path


def _chromium_medians_ms(runs: int) -> tuple[float, float]:
    """(Chromium app, Python SDK) medians of sealing, sending and proving the photo."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    from sealpost._internal.browser import NoBrowserError, launch  # noqa: PLC0415
    from sealpost._internal.devservers import OpenBaoDevServer  # noqa: PLC0415
    from sealpost._internal.stack import (  # noqa: PLC0415
        approve_all,
        bootstrap_openbao,
        running_stack,
        setup_institutions,
    )
    from sealpost.crypto.envelope import Part  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp:
        work = Path(tmp)
        photo = _photo(work)
        with OpenBaoDevServer(work / "bao") as bao:
            keyserver = bootstrap_openbao(bao)
            with running_stack(
                work / "gateway",
                bao,
                keyserver,
                f"sqlite:///{work / 'bench.db'}",
                {"SEALPOST_WEB_APP": str(DIST), "SEALPOST_SEND_RATE_PER_MINUTE": "100000"},
            ) as stack:
                gateway = stack.gateway
                admin, _terminals = setup_institutions(stack, [(DETAINEE, INSTITUTION, "regular")])
                server = (gateway.state_dir / "tls" / "server.pem").read_bytes()
                with sync_playwright() as playwright:
                    try:
                        browser = launch(playwright, server)
                    except NoBrowserError as exc:
                        raise SystemExit(f"bench browser: {exc}") from None
                    page = browser.new_page()
                    browser_ms = _in_the_app(page, gateway.web_url, admin, photo, runs)
                    browser.close()
                relative = stack.relative("Bench Python")
                relative.request_contact(DETAINEE)
                approve_all(admin, INSTITUTION)
                part = Part("image/jpeg", photo.read_bytes(), "foto.jpg")
                times = []
                for run in range(runs + 1):
                    started = time.perf_counter()
                    relative.send(DETAINEE, "Zondag.", [part])
                    if run:
                        times.append((time.perf_counter() - started) * 1000)
                python_ms = sorted(times)[len(times) // 2]
    return browser_ms, python_ms


def _in_the_app(page: Any, url: str, admin: Any, photo: Path, runs: int) -> float:
    """Sign up, get the contact approved, then time each send of the photo to its proof."""
    from sealpost._internal.stack import approve_all  # noqa: PLC0415

    timeout = 60_000
    page.goto(url + "/")
    page.wait_for_selector('[data-test="signup-form"]', timeout=timeout)
    page.fill('[data-test="signup-name"]', "Bench")
    page.fill('[data-test="signup-passphrase"]', PASSPHRASE)
    page.fill('[data-test="signup-passphrase-again"]', PASSPHRASE)
    page.click('[data-test="signup-submit"]')
    page.wait_for_selector('[data-test="contact-request-form"]', timeout=timeout)
    page.fill('[data-test="contact-request-id"]', DETAINEE)
    page.click('[data-test="contact-request-submit"]')
    page.wait_for_selector('[data-test="contact"]', timeout=timeout)
    approve_all(admin, INSTITUTION)
    page.reload()
    page.wait_for_selector('[data-test="unlock-form"]', timeout=timeout)
    page.fill('[data-test="unlock-passphrase"]', PASSPHRASE)
    page.click('[data-test="unlock-submit"]')
    page.wait_for_selector('[data-test="contact"][data-status="APPROVED"]', timeout=timeout)
    page.click('[data-test="contact"] a')
    page.wait_for_selector('[data-test="notice-acknowledge"]', timeout=timeout)
    page.click('[data-test="notice-acknowledge"]')
    times = []
    for run in range(runs + 1):
        page.wait_for_selector('[data-test="compose-text"]', timeout=timeout)
        page.fill('[data-test="compose-text"]', f"Zondag {run}.")
        page.set_input_files('[data-test="compose-files"]', [str(photo)])
        proven = '[data-test="message"] [data-test="message-proof"][data-proven="true"]'
        before = page.locator(proven).count()
        started = time.perf_counter()
        page.click('[data-test="send"]')
        page.wait_for_function(
            "([selector, n]) => document.querySelectorAll(selector).length > n",
            arg=[proven, before],
            timeout=timeout,
        )
        if run:  # the first warms up
            times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[len(times) // 2]


def run(quick: bool) -> list[Result]:
    """The bundle's size and the median send of a 2 MiB photo from the app in Chromium."""
    build = DIST / "build.json"
    if not build.is_file():
        raise SystemExit(f"{build} is missing: run make web-app")
    sizes: dict[str, Any] = json.loads(build.read_text())
    browser_ms, python_ms = _chromium_medians_ms(3 if quick else 7)
    return [
        Result(
            "browser",
            "web app script, gzip, without libsodium",
            sizes["gzipWithoutSodium"] / 1024,
            "KB",
            reference=sizes["gzip"] / 1024,
            reference_label="with libsodium's WebAssembly",
            target=f"under {BUDGET_KB} KB",
        ),
        Result(
            "browser",
            "seal + send + prove 2 MiB photo, web app in Chromium",
            browser_ms,
            "ms",
            reference=python_ms,
            reference_label="Python SDK send over gRPC, same gateway",
            target="under 1,000 ms (SPEC 6)",
        ),
    ]
