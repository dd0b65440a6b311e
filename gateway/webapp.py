"""The relatives' web app as the browser port serves it: a release named in the log.

The gateway reads the built app (``clients/web/app/dist``) once at start, adds the
deployment file that pins its directory key (``/deployment.json``), and serves those
files and nothing else, with a Content-Security-Policy that lets only them run. Their
manifest (``/release.json``, crypto/webrelease.py) is what the transparency log records,
so that ``sealpost audit webapp`` can check what a gateway serves against the log.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sealpost.crypto import webrelease
from sealpost.crypto.errors import CryptoError

#: Where the build puts the app (``make web-app``), and the gateway looks by default.
BUILT_APP: Final = Path(__file__).resolve().parents[1] / "clients" / "web" / "app" / "dist"
#: The file in the build naming the app's version (one line); absent: ``dev``.
VERSION_FILE: Final = "version.txt"
DEPLOYMENT_PATH: Final = "/deployment.json"
MANIFEST_PATH: Final = "/release.json"
RELEASE_LOG_PATH: Final = "/release-log.json"
INDEX_PATH: Final = "/index.html"

#: What a page of the app may load and run. libsodium runs as WebAssembly, which needs
#: 'wasm-unsafe-eval' (compiling WebAssembly) and nothing more: no inline script or
#: style, no eval, no other origin, no framing, no form posts.
CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    )
)

#: Content types by file name ending; a file of any other kind is not served.
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".wasm": "application/wasm",
    ".txt": "text/plain; charset=utf-8",
}


class WebAppError(Exception):
    """The built app cannot be served as it is."""


@dataclass
class WebApp:
    """The files served, their manifest and the release's digest."""

    app_version: str
    files: dict[str, bytes]
    manifest: bytes
    digest: bytes
    #: The log entry that records this release (its index and bytes), once recorded.
    leaf_index: int | None = field(default=None)
    leaf: bytes = field(default=b"", repr=False)

    def body(self, path: str) -> bytes | None:
        """What ``path`` (as ``served_path`` gives it) serves, or None for anything else."""
        if path == MANIFEST_PATH:
            return self.manifest
        if path == RELEASE_LOG_PATH:
            return self.release_log()
        return self.files.get(path)

    def release_log(self) -> bytes:
        """Where the log records this release, for the app to show and auditors to find."""
        return json.dumps(
            {
                "appVersion": self.app_version,
                "releaseDigest": self.digest.hex(),
                "leafIndex": self.leaf_index,
                "leaf": self.leaf.hex(),
            },
            sort_keys=True,
        ).encode()


def served_path(path: str) -> str:
    """The file a request path names: ``/`` is the app's index page."""
    return INDEX_PATH if path == "/" else path


def content_type(path: str) -> str | None:
    """The content type of a file served at ``path``, or None if it is not served."""
    return CONTENT_TYPES.get(os.path.splitext(path)[1].lower())


def deployment(directory_pin: bytes, app_version: str) -> bytes:
    """``/deployment.json``: the directory key this gateway's app pins, and its version."""
    document = {"directoryPin": directory_pin.hex(), "version": app_version}
    return (json.dumps(document, sort_keys=True, indent=2) + "\n").encode()


def load(folder: Path, directory_pin: bytes) -> WebApp:
    """Read the built app in ``folder`` and make its release; WebAppError if it cannot be."""
    if not (folder / INDEX_PATH.lstrip("/")).is_file():
        raise WebAppError(f"{folder} holds no index.html: build the app (make web-app)")
    version_file = folder / VERSION_FILE
    app_version = (
        version_file.read_text(encoding="utf-8").strip() if version_file.is_file() else "dev"
    )
    files: dict[str, bytes] = {}
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            local = Path(root) / name
            if name.startswith(".") or local.is_symlink() or name == VERSION_FILE:
                continue
            path = "/" + local.relative_to(folder).as_posix()
            if path in (DEPLOYMENT_PATH, MANIFEST_PATH, RELEASE_LOG_PATH):
                raise WebAppError(f"the build may not hold {path}: the gateway writes it")
            if content_type(path) is None:
                raise WebAppError(f"{path}: the gateway serves no file of this kind")
            files[path] = local.read_bytes()
    files[DEPLOYMENT_PATH] = deployment(directory_pin, app_version)
    try:
        manifest = webrelease.build_manifest(app_version, files)
    except CryptoError as exc:
        raise WebAppError(f"the app in {folder} cannot be released: {exc}") from None
    return WebApp(app_version, files, manifest, webrelease.release_digest(manifest))
