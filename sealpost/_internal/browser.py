"""Headless Chromium from the operating system, for the browser tests, the benchmark and the demo.

Playwright drives the system's Chromium (``make browser-deps`` installs it); nothing
downloads a browser. Chromium trusts exactly the gateway's TLS key
(``--ignore-certificate-errors-spki-list``), so the app runs as a secure context under
the policy it is served with.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Browser, BrowserContext, Playwright

#: What to run when Chromium is missing.
INSTALL: Final = "make browser-deps (or: sudo apt-get install chromium fonts-dejavu-core)"


class NoBrowserError(RuntimeError):
    """No Chromium, or no Playwright, on this machine."""


def chromium_path() -> str:
    """The system's Chromium (or ``SEALPOST_CHROMIUM``); NoBrowserError without one."""
    found = os.environ.get("SEALPOST_CHROMIUM") or shutil.which("chromium")
    if not found:
        raise NoBrowserError(f"Chromium from the system's packages is needed: {INSTALL}")
    return found


def spki_pin(certificate_pem: bytes) -> str:
    """The base64 SHA-256 of a certificate's public key, as Chromium's SPKI list takes it."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _arguments(server_certificate_pem: bytes) -> list[str]:
    args = [f"--ignore-certificate-errors-spki-list={spki_pin(server_certificate_pem)}"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    return args


def launch(playwright: Playwright, server_certificate_pem: bytes) -> Browser:
    """Headless Chromium trusting exactly the gateway's TLS key (incognito-like contexts)."""
    return playwright.chromium.launch(
        executable_path=chromium_path(), args=_arguments(server_certificate_pem)
    )


def launch_profile(
    playwright: Playwright, server_certificate_pem: bytes, folder: Path
) -> BrowserContext:
    """The same, with a profile kept in ``folder``, as a person's browser has.

    Installing a web app needs one: an incognito-like context cannot.
    """
    return playwright.chromium.launch_persistent_context(
        str(folder), executable_path=chromium_path(), args=_arguments(server_certificate_pem)
    )
