"""The web app's release manifest (crypto/webrelease.py): canonical, strict, binding."""

from __future__ import annotations

import json

import pytest

from sealpost.crypto import domains, webrelease
from sealpost.crypto.errors import FormatError, LimitError, VersionTooNewError, VersionTooOldError

FILES = {
    "/index.html": b"<!doctype html><title>Sealpost</title>",
    "/app-1a2b.js": b"console.log(1)",
    "/assets/icon.svg": b"<svg/>",
}


def manifest() -> bytes:
    return webrelease.build_manifest("1.2.0", FILES)


def test_a_manifest_round_trips_and_lists_every_file_by_path() -> None:
    release = webrelease.parse_manifest(manifest())
    assert release.app_version == "1.2.0"
    assert list(release.files) == sorted(FILES)
    for path, data in FILES.items():
        assert release.files[path].size == len(data)
        webrelease.check_file(release, path, data)


def test_the_manifest_is_canonical_json_of_exactly_its_fields() -> None:
    document = json.loads(manifest())
    assert document["format"] == "sealpost-web-release"
    assert document["version"] == 1
    assert manifest() == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(FormatError, match="canonical"):
        webrelease.parse_manifest(json.dumps(document, sort_keys=True, indent=1).encode())


def test_a_changed_file_another_path_or_an_unlisted_file_is_refused() -> None:
    release = webrelease.parse_manifest(manifest())
    with pytest.raises(FormatError, match="not the file"):
        webrelease.check_file(release, "/app-1a2b.js", b"console.log(2)")
    with pytest.raises(FormatError, match="not the file"):
        webrelease.check_file(release, "/app-1a2b.js", FILES["/index.html"])
    with pytest.raises(FormatError, match="not in the release"):
        webrelease.check_file(release, "/evil.js", b"console.log(1)")


def test_a_file_digest_binds_its_path_and_the_domain() -> None:
    data = FILES["/app-1a2b.js"]
    assert webrelease.file_digest("/a.js", data) != webrelease.file_digest("/b.js", data)
    assert webrelease.release_digest(manifest()) != webrelease.file_digest("/a.js", manifest())
    assert domains.WEB_APP_FILE in domains.ALL
    assert domains.WEB_APP_RELEASE in domains.ALL


def _edited(**changes: object) -> bytes:
    document = json.loads(manifest())
    document.update(changes)
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def test_versions_outside_one_are_refused() -> None:
    with pytest.raises(VersionTooOldError):
        webrelease.parse_manifest(_edited(version=0))
    with pytest.raises(VersionTooNewError):
        webrelease.parse_manifest(_edited(version=2))
    with pytest.raises(FormatError):
        webrelease.parse_manifest(_edited(version="1"))


def test_a_file_listed_twice_or_out_of_order_is_refused() -> None:
    files = json.loads(manifest())["files"]
    with pytest.raises(FormatError, match="once each"):
        webrelease.parse_manifest(_edited(files=[files[0], *files]))
    with pytest.raises(FormatError, match="once each"):
        webrelease.parse_manifest(_edited(files=list(reversed(files))))


@pytest.mark.parametrize(
    "path",
    ["index.html", "/../etc/passwd", "/a/../b.js", "/.env", "/a//b.js", "/a b.js", "/", "/a/"],
)
def test_paths_are_plain_absolute_file_paths(path: str) -> None:
    with pytest.raises(FormatError):
        webrelease.build_manifest("1", {path: b"x"})


@pytest.mark.parametrize(
    "changes",
    [
        {"format": "something-else"},
        {"app_version": "1 2"},
        {"app_version": ""},
        {"files": []},
        {"extra": 1},
    ],
)
def test_malformed_manifests_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(FormatError):
        webrelease.parse_manifest(_edited(**changes))


def test_not_json_and_too_many_files_are_refused() -> None:
    with pytest.raises(FormatError):
        webrelease.parse_manifest(b"\xff")
    too_many = {f"/f{i:03}.js": b"" for i in range(webrelease.MAX_FILES + 1)}
    with pytest.raises(LimitError):
        webrelease.build_manifest("1", too_many)
