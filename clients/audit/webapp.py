"""Check the web app a gateway serves against its transparency log (``sealpost audit webapp``).

A browser runs whatever code the server hands it, so the code must be the code the log
names. This fetches what a gateway serves, as a browser would, and checks that:

- the release manifest (``/release.json``) is recorded in the log: the leaf the gateway
  names (``/release-log.json``) is an ADMIN_ACTION ``web_app_release`` with the
  manifest's digest, by the gateway, proven by an inclusion proof into the newest tree
  head signed by the log key the pinned directory vouches for;
- every file the manifest lists is served exactly as listed, ``/`` is ``/index.html``,
  and ``/deployment.json`` pins the directory key the auditor pinned;
- every script and style ``index.html`` loads is a listed file carrying a Subresource
  Integrity digest that matches it, no script is inline, and the pages carry the
  Content-Security-Policy that lets nothing else run.

What it cannot see: a gateway that serves other code to other visitors. The app shows
the version and log entry of the code it runs (docs/web.md), so a visitor can compare.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from sealpost.crypto import logentry, webrelease
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.logentry import LogAction, VerifiedTreeHead

#: The Content-Security-Policy every page of the app must carry (gateway/webapp.py).
from sealpost.gateway.webapp import (
    CONTENT_SECURITY_POLICY,
    DEPLOYMENT_PATH,
    INDEX_PATH,
    MANIFEST_PATH,
    RELEASE_LOG_PATH,
)
from sealpost.v1 import log_pb2

#: The largest answer read from the gateway (a release file is smaller).
MAX_ANSWER_BYTES: Final = webrelease.MAX_FILE_BYTES + 1
GATEWAY_ACTOR: Final = "gateway"


@dataclass(frozen=True)
class Served:
    """One answer of the gateway: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


Fetch = Callable[[str], Served]


class ReleaseLog(Protocol):
    """The log calls the check needs (clients.witness.GatewayLog provides them)."""

    def newest_head(self) -> log_pb2.SignedTreeHead: ...

    def verify_head(self, head: log_pb2.SignedTreeHead) -> VerifiedTreeHead: ...

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> log_pb2.InclusionProof: ...


@dataclass
class WebAppReport:
    """What the check found; ``ok`` when nothing."""

    app_version: str = ""
    release_digest: str = ""
    leaf_index: int | None = None
    tree_size: int | None = None
    files: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the served app is the release the log names, untouched."""
        return not self.problems


def https_fetch(base_url: str, ca_pem: bytes, *, timeout: float = 30) -> Fetch:
    """GET paths under ``base_url`` over TLS, trusting only ``ca_pem``; no redirects."""
    parts = urlsplit(base_url)
    if parts.scheme != "https" or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"not the address of a web app: {base_url!r} (https://host:port)")
    context = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    origin = f"https://{parts.netloc}"

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _NoRedirect()
    )

    def fetch(path: str) -> Served:
        request = urllib.request.Request(origin + path)  # noqa: S310 - https, checked above
        try:
            with opener.open(request, timeout=timeout) as answer:
                body = answer.read(MAX_ANSWER_BYTES)
                headers = {k.lower(): v for k, v in answer.headers.items()}
                return Served(answer.status, headers, body)
        except urllib.error.HTTPError as exc:
            return Served(exc.code, {k.lower(): v for k, v in exc.headers.items()}, b"")

    return fetch


class _Loads(HTMLParser):
    """The scripts and styles a page loads, and whether any script is inline."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str, str | None]] = []  # (tag, url, integrity)
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            src = found.get("src")
            if src is None:
                self._in_script_without_src = True
            else:
                self.loads.append((tag, src, found.get("integrity")))
        elif tag == "link" and (found.get("rel") or "").lower() in ("stylesheet", "modulepreload"):
            self.loads.append((tag, found.get("href") or "", found.get("integrity")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script_without_src = False

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def _check_index(index: bytes, files: Mapping[str, bytes], report: WebAppReport) -> None:
    page = _Loads()
    page.feed(index.decode("utf-8", errors="replace"))
    if page.inline_scripts:
        report.problems.append("index.html holds inline script")
    if not any(tag == "script" for tag, _, _ in page.loads):
        report.problems.append("index.html loads no script")
    for tag, url, integrity in page.loads:
        path = urlsplit(url).path if url.startswith("/") else "/" + url.lstrip("./")
        if urlsplit(url).netloc or path not in files:
            report.problems.append(f"index.html loads {url!r}, which the release does not list")
            continue
        if integrity is None or not hmac.compare_digest(integrity, _sri(files[path])):
            report.problems.append(f"the {tag} {path} has no matching Subresource Integrity")


def _check_entry(
    log: ReleaseLog, leaf: bytes, index: int, digest: bytes, report: WebAppReport
) -> None:
    try:
        event = logentry.decode_event(leaf)
    except CryptoError as exc:
        report.problems.append(f"the release's log leaf does not decode: {exc}")
        return
    if (
        event.action != LogAction.ADMIN_ACTION
        or event.actor != GATEWAY_ACTOR
        or event.extra.get("operation") != webrelease.OPERATION
        or event.extra.get(webrelease.DIGEST_FIELD) != digest.hex()
    ):
        report.problems.append("the log leaf named is not the gateway's record of this release")
        return
    head = log.verify_head(log.newest_head())
    report.tree_size = head.tree_size
    if index >= head.tree_size:
        report.problems.append(
            f"the release's entry {index} is not yet in the newest signed head "
            f"(size {head.tree_size}): check again in a minute"
        )
        return
    try:
        logentry.verify_entry_inclusion(
            leaf, index, log.inclusion_proof(index, head.tree_size), head
        )
    except CryptoError as exc:
        report.problems.append(f"the release is not proven in the log: {exc}")


def check_webapp(fetch: Fetch, log: ReleaseLog, directory_pin: bytes) -> WebAppReport:
    """Fetch the served app and check it against the log; problems go into the report."""
    report = WebAppReport()
    served = fetch(MANIFEST_PATH)
    if served.status != 200:
        report.problems.append(f"{MANIFEST_PATH} answers {served.status}: no release is served")
        return report
    manifest = served.body
    try:
        release = webrelease.parse_manifest(manifest)
    except CryptoError as exc:
        report.problems.append(f"{MANIFEST_PATH} is not a release manifest: {exc}")
        return report
    digest = webrelease.release_digest(manifest)
    report.app_version = release.app_version
    report.release_digest = digest.hex()
    _check_recorded(fetch, log, digest, report)
    files: dict[str, bytes] = {}
    for path in release.files:
        answer = fetch(path)
        if answer.status != 200:
            report.problems.append(f"{path} answers {answer.status}")
            continue
        try:
            webrelease.check_file(release, path, answer.body)
        except CryptoError:
            report.problems.append(f"{path} is not the file the release lists")
            continue
        files[path] = answer.body
        if path.endswith(".html") and answer.headers.get("content-security-policy") != (
            CONTENT_SECURITY_POLICY
        ):
            report.problems.append(f"{path} is served without the app's Content-Security-Policy")
    report.files = len(files)
    root = fetch("/")
    if INDEX_PATH in files and (root.status != 200 or root.body != files[INDEX_PATH]):
        report.problems.append("/ is not the release's index.html")
    if INDEX_PATH in files:
        _check_index(files[INDEX_PATH], files, report)
    else:
        report.problems.append("the release has no index.html")
    _check_deployment(files.get(DEPLOYMENT_PATH), directory_pin, report)
    return report


def _check_recorded(fetch: Fetch, log: ReleaseLog, digest: bytes, report: WebAppReport) -> None:
    served = fetch(RELEASE_LOG_PATH)
    try:
        named = json.loads(served.body) if served.status == 200 else None
        index = named["leafIndex"] if isinstance(named, dict) else None
        leaf = bytes.fromhex(named["leaf"]) if isinstance(named, dict) else b""
    except (ValueError, KeyError, TypeError):
        index, leaf = None, b""
    if type(index) is not int or index < 0 or not leaf:
        report.problems.append(f"{RELEASE_LOG_PATH} names no log entry: the release is unrecorded")
        return
    report.leaf_index = index
    _check_entry(log, leaf, index, digest, report)


def _check_deployment(deployment: bytes | None, pin: bytes, report: WebAppReport) -> None:
    if deployment is None:
        report.problems.append(f"the release has no {DEPLOYMENT_PATH}")
        return
    try:
        pinned = json.loads(deployment)["directoryPin"]
    except (ValueError, KeyError, TypeError):
        pinned = None
    if not isinstance(pinned, str) or not hmac.compare_digest(pinned, pin.hex()):
        report.problems.append("the app pins another directory key than the one you pinned")
