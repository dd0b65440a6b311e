"""Backups and retention must not undo each other (docs/operations.md, section 11).

A key-server snapshot holds every escrow key version that existed when it was taken.
Restoring one taken before a version was retired brings that version back, and with it
every message it protected. So snapshots are kept no longer than the retention period,
and ``sealpost admin retention --snapshots DIR`` refuses to retire while an older one
exists. Pure: reads file times only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def too_old(folders: Iterable[Path], cutoff_s: int) -> list[Path]:
    """Files in ``folders`` (not below them) last written before ``cutoff_s``, sorted.

    A folder that does not exist is an error (OSError): a mistyped path must not pass
    the check silently.
    """
    found: list[Path] = []
    for folder in folders:
        for path in sorted(Path(folder).iterdir()):
            if path.is_file() and path.stat().st_mtime < cutoff_s:
                found.append(path)
    return found
