"""Small files that must never be half written: state and key files of the client programs."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Final

#: How often a lock that is waited for is tried again.
_LOCK_POLL_SECONDS: Final = 0.05


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, fsync of the folder.

    Readers see the old file or the new one, never a mixture; the file has exactly
    ``mode`` (owner-only by default, whatever the umask) before anything is written into it.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class FileLock:
    """An exclusive lock (flock) on a lock file, held until ``release`` or the ``with`` ends.

    The lock belongs to the open file, so it is let go when the process ends, however
    it ends: a crashed program never leaves a lock behind.
    """

    def __init__(self, fd: int) -> None:
        """Use ``acquire``."""
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path, *, wait: float | None = None) -> FileLock:
        """Lock ``path`` (created owner-only if missing).

        ``wait``: None waits as long as it takes; otherwise BlockingIOError once ``wait``
        seconds have passed without the lock (0: a single try). OSError if the lock file
        cannot be opened.
        """
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if wait is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
                return cls(fd)
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(_LOCK_POLL_SECONDS)
                else:
                    return cls(fd)
        except BaseException:
            os.close(fd)
            raise

    @property
    def held(self) -> bool:
        """True until released."""
        return self._fd is not None

    def release(self) -> None:
        """Let go of the lock (again: nothing happens)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        """Hold the lock for a ``with`` block."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Release."""
        self.release()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created owner-only), waiting for it if need be."""
    with FileLock.acquire(path):
        yield
