"""A release of the relatives' web app: the files a gateway serves, named in the log.

A web client is only as trustworthy as the code the server hands it. The gateway serves
the app's files together with a manifest naming each file and its digest, and records
the manifest's digest in the transparency log (an ADMIN_ACTION, ``operation`` =
``web_app_release``). Anyone can then fetch what a gateway serves and check it against
the log (``sealpost audit webapp``). Manifest format, version 1, canonical JSON (keys
sorted, no spaces, ASCII)::

    {"app_version": "...", "files": [{"digest": "<hex>", "path": "/...", "size": n}, ...],
     "format": "sealpost-web-release", "version": 1}

    file digest    = SHA-256(LP(domain "sealpost/v1/web-app/file") || LP(path) || LP(bytes))
    release digest = SHA-256(LP(domain "sealpost/v1/web-app/release") || LP(manifest))

Files are listed by path, each once. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final, NamedTuple

from sealpost.crypto import domains
from sealpost.crypto._framing import framed_sha256
from sealpost.crypto.errors import FormatError, LimitError, VersionTooNewError, VersionTooOldError

MANIFEST_FORMAT: Final = "sealpost-web-release"
#: The manifest version this code writes and reads.
MANIFEST_VERSION: Final = 1
#: Limits on what a release may hold: a web app, not a file server.
MAX_FILES: Final = 256
MAX_FILE_BYTES: Final = 16 * 1024 * 1024
MAX_VERSION_BYTES: Final = 64
#: The ADMIN_ACTION operation that records a release, and its extra fields.
OPERATION: Final = "web_app_release"
DIGEST_FIELD: Final = "release_digest"
VERSION_FIELD: Final = "app_version"

_PATH: Final = re.compile(r"/(?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*[A-Za-z0-9_-][A-Za-z0-9._-]*\Z")
_VERSION: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]*\Z")
_HEX_DIGEST: Final = re.compile(r"[0-9a-f]{64}\Z")


class ReleaseFile(NamedTuple):
    """One file of a release: its digest and size."""

    digest: bytes
    size: int


class Release(NamedTuple):
    """A parsed manifest: the app's version and its files by path."""

    app_version: str
    files: Mapping[str, ReleaseFile]


def check_path(path: str) -> str:
    """``path`` if it is a plain absolute path of a release file; FormatError otherwise."""
    if len(path) > 256 or not _PATH.match(path) or "/." in path:
        raise FormatError(f"not a release file path: {path[:64]!r}")
    return path


def file_digest(path: str, data: bytes) -> bytes:
    """The digest of one file as served at ``path``."""
    return framed_sha256(domains.WEB_APP_FILE, [check_path(path).encode(), data])


def release_digest(manifest: bytes) -> bytes:
    """The digest the log records for a release: of its manifest's exact bytes."""
    return framed_sha256(domains.WEB_APP_RELEASE, [manifest])


def _check_version(app_version: str) -> str:
    if len(app_version) > MAX_VERSION_BYTES or not _VERSION.match(app_version):
        raise FormatError(f"not an app version: {app_version[:MAX_VERSION_BYTES]!r}")
    return app_version


def build_manifest(app_version: str, files: Mapping[str, bytes]) -> bytes:
    """The canonical manifest of ``files`` (path to content)."""
    if not files:
        raise FormatError("a release has at least one file")
    if len(files) > MAX_FILES:
        raise LimitError(f"a release holds at most {MAX_FILES} files")
    listed = []
    for path in sorted(files):
        data = files[path]
        if len(data) > MAX_FILE_BYTES:
            raise LimitError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
        listed.append({"digest": file_digest(path, data).hex(), "path": path, "size": len(data)})
    document = {
        "app_version": _check_version(app_version),
        "files": listed,
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
    }
    return _canonical(document)


def _canonical(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _parse_files(listed: list[object]) -> dict[str, ReleaseFile]:
    """The manifest's file entries, each checked, once each and in order of path."""
    if len(listed) > MAX_FILES:
        raise LimitError(f"a release holds at most {MAX_FILES} files")
    files: dict[str, ReleaseFile] = {}
    for item in listed:
        if not isinstance(item, dict) or set(item) != {"digest", "path", "size"}:
            raise FormatError("a manifest file entry does not have exactly its three fields")
        path, digest, size = item["path"], item["digest"], item["size"]
        if not isinstance(path, str) or not isinstance(digest, str) or type(size) is not int:
            raise FormatError("a manifest file entry is malformed")
        if not _HEX_DIGEST.match(digest) or not 0 <= size <= MAX_FILE_BYTES:
            raise FormatError(f"the digest or size of {path[:64]!r} is malformed")
        if files and path <= next(reversed(files)):
            raise FormatError("the manifest's files are not listed once each, by path")
        files[check_path(path)] = ReleaseFile(bytes.fromhex(digest), size)
    return files


def parse_manifest(data: bytes) -> Release:
    """The release ``data`` describes; FormatError unless it is a canonical manifest."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise FormatError("the manifest is not JSON") from None
    if not isinstance(document, dict) or set(document) != {
        "app_version",
        "files",
        "format",
        "version",
    }:
        raise FormatError("the manifest does not have exactly its four fields")
    if document["format"] != MANIFEST_FORMAT:
        raise FormatError("not a web app release manifest")
    version = document["version"]
    if type(version) is not int:
        raise FormatError("the manifest's version is not a number")
    if version < MANIFEST_VERSION:
        raise VersionTooOldError(f"manifest version {version} is no longer read")
    if version > MANIFEST_VERSION:
        raise VersionTooNewError(f"manifest version {version} is newer than this code")
    app_version = document["app_version"]
    listed = document["files"]
    if not isinstance(app_version, str) or not isinstance(listed, list) or not listed:
        raise FormatError("the manifest's version or files are malformed")
    release = Release(_check_version(app_version), _parse_files(listed))
    if _canonical(document) != data:
        raise FormatError("the manifest is not in canonical form")
    return release


def check_file(release: Release, path: str, data: bytes) -> None:
    """Nothing if ``data`` is the file ``release`` lists at ``path``; FormatError otherwise."""
    listed = release.files.get(path)
    if listed is None:
        raise FormatError(f"{path} is not in the release")
    if len(data) != listed.size or file_digest(path, data) != listed.digest:
        raise FormatError(f"{path} is not the file the release lists")
