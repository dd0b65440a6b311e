"""Errors of the triage package.

SealpostError
└── TriageError
    └── FormatError              a stored triage report that cannot be read
        ├── UnknownVersionError  written by a newer Sealpost ("triage/v2", ...)
        └── OldVersionError      a format this version no longer reads
"""

from __future__ import annotations

from sealpost.errors import SealpostError


class TriageError(SealpostError):
    """Root of the triage errors."""


class FormatError(TriageError):
    """A stored report is not triage JSON of a version this code reads."""


class UnknownVersionError(FormatError):
    """A report of a future format: upgrade Sealpost to read it."""

    def __init__(self, found: str) -> None:
        super().__init__(f"triage report format {found!r} is newer than this Sealpost: upgrade")
        self.found = found


class OldVersionError(FormatError):
    """A report of a format older than any this code reads."""

    def __init__(self, found: str) -> None:
        super().__init__(f"triage report format {found!r} is no longer read")
        self.found = found
