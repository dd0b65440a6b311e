"""The auditor's check of a served web app (clients/audit/webapp.py), over plain fakes.

The fake log holds one leaf, the release's, and proves it as a one-leaf tree; the real
log and a real gateway are in tests/integration/test_web_app_release.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable

from sealpost.clients.audit.webapp import Served, WebAppReport, check_webapp
from sealpost.crypto import merkle, webrelease
from sealpost.crypto.logentry import LogAction, LogEvent, VerifiedTreeHead, encode_event
from sealpost.gateway.webapp import CONTENT_SECURITY_POLICY
from sealpost.v1 import log_pb2

PIN = bytes(range(32))
SCRIPT = b"start();"
STYLE = b"body{}"


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def page(*, script_sri: str | None = None, extra: str = "") -> bytes:
    return (
        f'<link rel="stylesheet" href="/app.css" integrity="{sri(STYLE)}">'
        f'<script src="/app.js" integrity="{script_sri or sri(SCRIPT)}"></script>{extra}'
    ).encode()


class OneLeafLog:
    """A log whose only entry is ``leaf``; its head is taken as verified."""

    def __init__(self, leaf: bytes) -> None:
        self.leaf = leaf

    def newest_head(self) -> log_pb2.SignedTreeHead:
        return log_pb2.SignedTreeHead()

    def verify_head(self, head: log_pb2.SignedTreeHead) -> VerifiedTreeHead:
        return VerifiedTreeHead(1, 1, merkle.leaf_hash(self.leaf), 1, b"k" * 32)

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> log_pb2.InclusionProof:
        return log_pb2.InclusionProof(leaf_index=leaf_index, tree_size=tree_size)


def serve(
    index: bytes | None = None,
    *,
    pin: bytes = PIN,
    policy: str = CONTENT_SECURITY_POLICY,
    root: bytes | None = None,
    actor: str = "gateway",
) -> tuple[Callable[[str], Served], OneLeafLog]:
    """A served release of ``index`` and its files, and a log recording it."""
    files = {
        "/index.html": index if index is not None else page(),
        "/app.js": SCRIPT,
        "/app.css": STYLE,
        "/deployment.json": json.dumps({"directoryPin": pin.hex()}).encode(),
    }
    manifest = webrelease.build_manifest("2.0.0", files)
    leaf = encode_event(
        LogEvent(
            action=LogAction.ADMIN_ACTION,
            actor=actor,
            time_ms=1,
            subjects=[("web_app", "2.0.0")],
            extra={
                "operation": webrelease.OPERATION,
                webrelease.DIGEST_FIELD: webrelease.release_digest(manifest).hex(),
            },
        )
    )
    answers = {
        **files,
        "/": root if root is not None else files["/index.html"],
        "/release.json": manifest,
        "/release-log.json": json.dumps({"leafIndex": 0, "leaf": leaf.hex()}).encode(),
    }

    def fetch(path: str) -> Served:
        if path not in answers:
            return Served(404, {}, b"")
        headers = {"content-security-policy": policy} if path.endswith((".html", "/")) else {}
        return Served(200, headers, answers[path])

    return fetch, OneLeafLog(leaf)


def checked(**kwargs: object) -> WebAppReport:
    fetch, log = serve(**kwargs)  # type: ignore[arg-type]
    return check_webapp(fetch, log, PIN)


def test_an_honest_release_is_clean() -> None:
    report = checked()
    assert report.ok, report.problems
    assert (report.app_version, report.leaf_index, report.files) == ("2.0.0", 0, 4)


def test_a_script_without_a_matching_integrity_digest_is_found() -> None:
    report = checked(index=page(script_sri=sri(b"another script")))
    assert report.problems == ["the script /app.js has no matching Subresource Integrity"]


def test_inline_script_and_scripts_from_elsewhere_are_found() -> None:
    report = checked(index=page(extra="<script>steal()</script>"))
    assert report.problems == ["index.html holds inline script"]
    report = checked(index=page(extra='<script src="https://cdn.example/x.js"></script>'))
    assert report.problems == [
        "index.html loads 'https://cdn.example/x.js', which the release does not list"
    ]


def test_a_page_without_the_policy_is_found() -> None:
    report = checked(policy="default-src *")
    assert report.problems == ["/index.html is served without the app's Content-Security-Policy"]


def test_an_app_pinning_another_directory_key_is_found() -> None:
    report = checked(pin=bytes(32))
    assert report.problems == ["the app pins another directory key than the one you pinned"]


def test_a_root_page_other_than_the_release_is_found() -> None:
    report = checked(root=b"<script src=/evil.js></script>")
    assert report.problems == ["/ is not the release's index.html"]


def test_a_release_someone_else_logged_is_not_the_gateways_record() -> None:
    report = checked(actor="staff:mallory")
    assert report.problems == ["the log leaf named is not the gateway's record of this release"]


def test_a_release_proven_into_another_tree_is_found() -> None:
    fetch, log = serve()
    log.leaf = b"another leaf"
    report = check_webapp(fetch, log, PIN)
    assert len(report.problems) == 1
    assert report.problems[0].startswith("the release is not proven in the log")
