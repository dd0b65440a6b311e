"""Sealpost: an end-to-end encrypted messaging gateway with audited key escrow.

The parts live in the top-level folders of the repository and are imported
through this package: ``sealpost.crypto``, ``sealpost.escrow``,
``sealpost.gateway``, ``sealpost.clients``; the generated API is ``sealpost.v1``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sealpost")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"
