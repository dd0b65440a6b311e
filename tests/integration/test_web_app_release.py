"""The web app a gateway serves is a release recorded in its log, and checkable by anyone.

A real gateway process serves a built app (a small one made here); ``sealpost audit
webapp`` fetches it over HTTPS and proves its release into the newest signed head through
the public log calls. A bundle changed on its way to the browser is found.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sealpost import cli as sealpost_cli
from sealpost._internal.devservers import GatewayProcess, OpenBaoDevServer, gateway_directory_pin
from sealpost._internal.stack import running_stack
from sealpost.clients._grpc import Endpoint, bearer
from sealpost.clients.audit.webapp import Fetch, Served, WebAppReport, check_webapp, https_fetch
from sealpost.clients.witness import GatewayLog
from sealpost.crypto.keyrecords import DirectoryPin
from sealpost.escrow.bootstrap import BootstrapResult

SCRIPT = b"document.body.dataset.ready = 'yes';\n"
STYLE = b"body { font-family: sans-serif; }\n"


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def build_app(folder: Path, *, script: bytes = SCRIPT, version: str = "1.0.0") -> Path:
    """A built app as the app's build writes one: hashed names, SRI, no inline code."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    js = f"app-{hashlib.sha256(script).hexdigest()[:8]}.js"
    (folder / js).write_bytes(script)
    (folder / "app.css").write_bytes(STYLE)
    (folder / "version.txt").write_text(version + "\n")
    (folder / "index.html").write_text(
        "<!doctype html><html lang=nl><head><meta charset=utf-8><title>Sealpost</title>"
        f'<link rel=stylesheet href="/app.css" integrity="{_sri(STYLE)}" crossorigin=anonymous>'
        f'<script type=module src="/{js}" integrity="{_sri(script)}" crossorigin=anonymous>'
        "</script></head><body></body></html>"
    )
    return folder


@pytest.fixture
def served(
    tmp_path: Path, openbao: OpenBaoDevServer, keyserver: BootstrapResult
) -> Iterator[tuple[GatewayProcess, Path, str]]:
    """A gateway serving a built app, and an auditor's identity token."""
    app = build_app(tmp_path / "dist")
    database = f"sqlite:///{tmp_path / 'sealpost.db'}"
    env = {"SEALPOST_WEB_APP": str(app)}
    with running_stack(tmp_path / "gw", openbao, keyserver, database, env) as stack:
        _name, token = stack.staff_token(["auditor"], ["*"])
        yield stack.gateway, app, token


def check(gateway: GatewayProcess, token: str, fetch: Fetch | None = None) -> WebAppReport:
    """The auditor's check, once the release's entry is in a signed head."""
    pin = gateway_directory_pin(gateway.state_dir)
    channel = Endpoint(gateway.address, gateway.ca_pem).channel()
    try:
        log = GatewayLog(lambda: channel, DirectoryPin(pin), metadata=bearer(token))
        fetch = fetch or https_fetch(gateway.web_url, gateway.ca_pem)
        deadline = time.monotonic() + 30
        while True:
            report = check_webapp(fetch, log, pin)
            waiting = any("not yet in the newest signed head" in p for p in report.problems)
            if not waiting or time.monotonic() > deadline:
                return report
            time.sleep(0.5)
    finally:
        channel.close()


def release_log(gateway: GatewayProcess) -> dict[str, Any]:
    answer = https_fetch(gateway.web_url, gateway.ca_pem)("/release-log.json")
    assert answer.status == 200
    found: dict[str, Any] = json.loads(answer.body)
    return found


def audit_cli(
    gateway: GatewayProcess, token: str, pin: bytes, tmp_path: Path
) -> tuple[int, dict[str, Any]]:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(gateway.ca_pem)
    env: dict[str, str | None] = dict.fromkeys(k for k in os.environ if k.startswith("SEALPOST_"))
    env["SEALPOST_STAFF_TOKEN"] = token
    done = CliRunner(env=env).invoke(
        sealpost_cli.app,
        [
            "audit",
            "webapp",
            gateway.web_url,
            "--gateway",
            gateway.address,
            "--ca-file",
            str(ca),
            "--directory-key",
            pin.hex(),
            "--json",
        ],
    )
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception
    return done.exit_code, json.loads(done.stdout) if done.stdout.strip() else {}


def test_the_served_app_is_proven_to_be_the_release_the_log_records(
    served: Any, tmp_path: Path
) -> None:
    gateway, _app, token = served
    report = check(gateway, token)
    assert report.ok, report.problems
    assert report.app_version == "1.0.0"
    assert report.files == 4  # index.html, the script, the style, deployment.json
    assert report.leaf_index == release_log(gateway)["leafIndex"]
    pin = gateway_directory_pin(gateway.state_dir)
    code, result = audit_cli(gateway, token, pin, tmp_path)
    assert code == 0, result
    assert result["ok"]
    assert result["leaf_index"] == report.leaf_index


def test_the_page_carries_the_policy_and_the_app_pins_the_directory_key(served: Any) -> None:
    gateway, _app, _token = served
    fetch = https_fetch(gateway.web_url, gateway.ca_pem)
    page = fetch("/")
    assert page.status == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in policy
    assert "unsafe-inline" not in policy
    deployment = json.loads(fetch("/deployment.json").body)
    assert deployment["directoryPin"] == gateway_directory_pin(gateway.state_dir).hex()
    assert fetch("/version.txt").status == 404


def tampering(fetch: Fetch, path: str, change: Any) -> Fetch:
    def changed(asked: str) -> Served:
        answer = fetch(asked)
        return replace(answer, body=change(answer.body)) if asked == path else answer

    return changed


def test_a_changed_bundle_is_found(served: Any) -> None:
    gateway, app, token = served
    honest = https_fetch(gateway.web_url, gateway.ca_pem)
    script = next(p.name for p in app.iterdir() if p.suffix == ".js")
    report = check(gateway, token, tampering(honest, f"/{script}", lambda b: b + b"steal();"))
    assert not report.ok
    assert f"/{script} is not the file the release lists" in report.problems


def test_a_rewritten_manifest_is_not_the_release_the_log_records(served: Any) -> None:
    gateway, _app, token = served
    honest = https_fetch(gateway.web_url, gateway.ca_pem)
    manifest = honest("/release.json").body
    document = json.loads(manifest)
    document["app_version"] = "1.0.1"
    rewritten = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    report = check(gateway, token, tampering(honest, "/release.json", lambda _b: rewritten))
    assert any("not the gateway's record of this release" in p for p in report.problems)


def test_a_release_log_naming_another_entry_is_found(served: Any) -> None:
    gateway, _app, token = served
    honest = https_fetch(gateway.web_url, gateway.ca_pem)

    def other_entry(body: bytes) -> bytes:
        named = json.loads(body)
        named["leafIndex"] = 0
        return json.dumps(named).encode()

    report = check(gateway, token, tampering(honest, "/release-log.json", other_entry))
    assert any("not proven in the log" in p for p in report.problems), report.problems


def test_a_page_that_loads_a_script_outside_the_release_is_found(served: Any) -> None:
    gateway, app, token = served
    honest = https_fetch(gateway.web_url, gateway.ca_pem)
    index = (app / "index.html").read_bytes()
    injected = index.replace(b"</head>", b"<script>steal()</script></head>")
    report = check(gateway, token, tampering(honest, "/index.html", lambda _b: injected))
    assert "/index.html is not the file the release lists" in report.problems


def test_a_restart_records_a_release_once_and_a_new_build_anew(served: Any) -> None:
    gateway, app, token = served
    first = release_log(gateway)["leafIndex"]
    gateway.stop()
    gateway.start()
    assert release_log(gateway)["leafIndex"] == first
    build_app(app, script=b"document.title = 'v2';\n", version="1.1.0")
    gateway.stop()
    gateway.start()
    second = release_log(gateway)
    assert second["leafIndex"] > first
    assert second["appVersion"] == "1.1.0"
    report = check(gateway, token)
    assert report.ok, report.problems
    assert report.app_version == "1.1.0"


def test_a_gateway_whose_directory_another_key_signed_cannot_be_checked(
    served: Any, tmp_path: Path
) -> None:
    gateway, _app, token = served
    code, _result = audit_cli(gateway, token, bytes(range(32)), tmp_path)
    assert code == 2
