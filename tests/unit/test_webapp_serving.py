"""The web app on the browser port (gateway/webapp.py): what is served, with which policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sealpost.crypto import webrelease
from sealpost.gateway import webapp
from tests.unit.test_web_gate import PATH, serve

PIN = bytes(range(32))
INDEX = b'<!doctype html><script src="/app-1.js" integrity="sha384-x"></script>'


def built(folder: Path) -> Path:
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_bytes(INDEX)
    (folder / "app-1.js").write_bytes(b"console.log('sealpost')")
    (folder / "assets" / "icon.svg").write_bytes(b"<svg/>")
    (folder / "version.txt").write_text("1.4.0\n")
    return folder


@pytest.fixture
def app(tmp_path: Path) -> webapp.WebApp:
    return webapp.load(built(tmp_path / "dist"), PIN)


def test_the_release_lists_every_file_and_the_deployment_pinning_the_directory_key(
    app: webapp.WebApp,
) -> None:
    release = webrelease.parse_manifest(app.manifest)
    assert release.app_version == "1.4.0"
    assert sorted(release.files) == [
        "/app-1.js",
        "/assets/icon.svg",
        "/deployment.json",
        "/index.html",
    ]
    deployment = json.loads(app.files["/deployment.json"])
    assert deployment == {"directoryPin": PIN.hex(), "version": "1.4.0"}
    assert app.digest == webrelease.release_digest(app.manifest)
    for path, data in app.files.items():
        webrelease.check_file(release, path, data)


def test_another_directory_key_is_another_release(tmp_path: Path, app: webapp.WebApp) -> None:
    other = webapp.load(built(tmp_path / "other"), bytes(32))
    assert other.digest != app.digest


def test_pages_are_served_with_the_content_security_policy(app: webapp.WebApp) -> None:
    status, headers, body, calls = serve("GET", "/", {}, app=app)
    assert (status, body, calls) == (200, INDEX, 0)
    assert headers["content-type"] == "text/html; charset=utf-8"
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self' 'wasm-unsafe-eval'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    status, headers, body, _ = serve("GET", "/app-1.js", {}, app=app)
    assert (status, body) == (200, b"console.log('sealpost')")
    assert headers["content-type"].startswith("text/javascript")


def test_head_answers_without_a_body(app: webapp.WebApp) -> None:
    status, headers, body, _ = serve("HEAD", "/index.html", {}, app=app)
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(len(INDEX))


def test_the_manifest_and_the_log_entry_are_served(app: webapp.WebApp) -> None:
    app.leaf_index, app.leaf = 41, b"leaf"
    status, _, body, _ = serve("GET", "/release.json", {}, app=app)
    assert (status, body) == (200, app.manifest)
    status, _, body, _ = serve("GET", "/release-log.json", {}, app=app)
    assert status == 200
    assert json.loads(body) == {
        "appVersion": "1.4.0",
        "leafIndex": 41,
        "leaf": b"leaf".hex(),
        "releaseDigest": app.digest.hex(),
    }


@pytest.mark.parametrize("path", ["/version.txt", "/missing.js", "/../index.html", "/assets"])
def test_nothing_else_is_served(app: webapp.WebApp, path: str) -> None:
    status, _, _, calls = serve("GET", path, {}, app=app)
    assert status in (404, 405)
    assert calls == 0


def test_without_an_app_no_page_is_served() -> None:
    status, _, _, _ = serve("GET", "/", {})
    assert status == 404


def test_the_apps_own_pages_may_call_the_api_and_other_pages_may_not(
    app: webapp.WebApp,
) -> None:
    host = {"host": "post.example.nl:50053"}
    same = {**host, "origin": "https://post.example.nl:50053"}
    status, headers, _, calls = serve("POST", PATH, same, app=app)
    assert (status, calls) == (200, 1)
    assert "access-control-allow-origin" not in headers
    for origin in ("http://post.example.nl:50053", "https://evil.example", "null"):
        status, _, _, calls = serve("POST", PATH, {**host, "origin": origin}, app=app)
        assert (status, calls) == (403, 0), origin


def test_a_build_with_a_file_the_gateway_writes_or_an_unknown_kind_is_refused(
    tmp_path: Path,
) -> None:
    folder = built(tmp_path / "a")
    (folder / "deployment.json").write_text("{}")
    with pytest.raises(webapp.WebAppError, match=r"deployment\.json"):
        webapp.load(folder, PIN)
    folder = built(tmp_path / "b")
    (folder / "run.sh").write_text("#!/bin/sh")
    with pytest.raises(webapp.WebAppError, match="no file of this kind"):
        webapp.load(folder, PIN)
    with pytest.raises(webapp.WebAppError, match=r"no index\.html"):
        webapp.load(tmp_path / "empty", PIN)


def test_links_and_hidden_files_are_not_served(tmp_path: Path) -> None:
    folder = built(tmp_path / "dist")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    (folder / "secret.txt").symlink_to(secret)
    (folder / ".env.json").write_text("{}")
    app = webapp.load(folder, PIN)
    assert "/secret.txt" not in app.files
    assert "/.env.json" not in app.files
