"""Apply one mutant at a time, run its tests, restore the file whatever happens.

The source is changed in place, because the tests start gateway processes that import
it from the repository. Before a file is changed its original bytes go to a journal
(``.mutants-journal.json`` at the top of the repository); the file is restored in a
``finally`` (after a failure, Ctrl-C or SIGTERM too), and a run that was killed outright
leaves the journal behind, from which the next run restores the file before anything
else. Compiled bytecode is never written for a mutant (PYTHONDONTWRITEBYTECODE) and the
file's cached bytecode is removed on both sides, so no test ever runs stale code.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Final, Literal

REPO_ROOT: Final = Path(__file__).resolve().parent.parent.parent
JOURNAL: Final = REPO_ROOT / ".mutants-journal.json"
#: Longest a mutant's tests may run before the mutant counts as an error.
TIMEOUT_SECONDS: Final = 900

Outcome = Literal["killed", "survived", "error"]


@dataclass(frozen=True)
class Mutant:
    """One deliberate break of one security check."""

    #: Short unique name, e.g. ``token-mac-unchecked``.
    name: str
    #: The file, relative to the top of the repository.
    path: str
    #: Text that occurs exactly once in the file ...
    original: str
    #: ... and what it becomes.
    replacement: str
    #: The SPEC property (P1-P16, or a SPEC section) the broken check protects.
    breaks: str
    #: What the broken code lets through, in a sentence.
    effect: str
    #: Pytest node ids or files that must fail with the mutant applied.
    tests: tuple[str, ...]

    def source(self, root: Path = REPO_ROOT) -> Path:
        """The mutated file's path."""
        return root / self.path

    def apply_to(self, text: str) -> str:
        """``text`` with the mutant applied; ValueError unless the original occurs once."""
        count = text.count(self.original)
        if count != 1:
            raise ValueError(
                f"{self.name}: the original text occurs {count} times in {self.path}, not once"
            )
        return text.replace(self.original, self.replacement)


@dataclass(frozen=True)
class Result:
    """What running one mutant's tests showed."""

    mutant: Mutant
    outcome: Outcome
    seconds: float
    #: The first failing test (killed), or why the run is an error.
    detail: str = ""


# --------------------------------------------------------------------------- files


def _drop_bytecode(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        Path(importlib.util.cache_from_source(str(path))).unlink()


def _write_journal(journal: Path, name: str, original: bytes) -> None:
    document = {
        "path": name,
        "sha256": hashlib.sha256(original).hexdigest(),
        "original": base64.b64encode(original).decode(),
    }
    tmp = journal.with_suffix(".tmp")
    tmp.write_text(json.dumps(document))
    tmp.replace(journal)


def recover(root: Path = REPO_ROOT, journal: Path = JOURNAL) -> str | None:
    """Restore a file a killed run left mutated; returns its path, or None if none was."""
    if not journal.exists():
        return None
    document = json.loads(journal.read_text())
    original = base64.b64decode(document["original"])
    if hashlib.sha256(original).hexdigest() != document["sha256"]:
        raise RuntimeError(f"{journal} is damaged; restore {document['path']} with git")
    path = root / document["path"]
    path.write_bytes(original)
    _drop_bytecode(path)
    journal.unlink()
    return str(document["path"])


@contextlib.contextmanager
def applied(mutant: Mutant, root: Path = REPO_ROOT, journal: Path = JOURNAL) -> Iterator[None]:
    """The mutant in place for the duration of the block; the original back afterwards."""
    if journal.exists():
        raise RuntimeError(f"{journal} exists: another run is mutating, or one was killed")
    path = mutant.source(root)
    original = path.read_bytes()
    mutated = mutant.apply_to(original.decode("utf-8")).encode("utf-8")
    _write_journal(journal, mutant.path, original)
    try:
        path.write_bytes(mutated)
        _drop_bytecode(path)
        yield
    finally:
        path.write_bytes(original)
        _drop_bytecode(path)
        journal.unlink(missing_ok=True)
    if path.read_bytes() != original:  # pragma: no cover - a write that did not stick
        raise RuntimeError(f"{mutant.path} was not restored; restore it with git")


# --------------------------------------------------------------------------- running tests

#: pytest's summary line of a failure: "FAILED <node id> - <message>".
_FAILED = re.compile(r"^(?:FAILED|ERROR) (.+?)(?: - |$)", re.MULTILINE)


def _pytest(tests: Sequence[str], *, stop_at_first: bool) -> tuple[int, str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=line"]
    if stop_at_first:
        command.append("-x")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    completed = subprocess.run(
        [*command, *tests],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    return completed.returncode, completed.stdout + completed.stderr


def run_mutant(mutant: Mutant) -> Result:
    """Apply ``mutant``, run its tests (stopping at the first failure), restore the file.

    Killed when pytest reports failing tests (exit code 1); survived when every test
    passes; any other exit (collection error, no tests, timeout) is an error.
    """
    started = time.monotonic()
    try:
        with applied(mutant):
            code, output = _pytest(mutant.tests, stop_at_first=True)
    except subprocess.TimeoutExpired:
        return Result(mutant, "error", time.monotonic() - started, "timed out")
    seconds = time.monotonic() - started
    if code == 1:
        failed = _FAILED.search(output)
        return Result(mutant, "killed", seconds, failed.group(1) if failed else "")
    if code == 0:
        return Result(mutant, "survived", seconds)
    tail = output.strip().splitlines()[-1:] or [""]
    return Result(mutant, "error", seconds, f"pytest exit code {code}: {tail[0]}")


def baseline(mutants: Sequence[Mutant]) -> tuple[bool, str, float]:
    """Run every test the mutants name once, unmutated: they must all pass first.

    Otherwise a broken environment would make every mutant look killed.
    """
    tests = list(dict.fromkeys(t for m in mutants for t in m.tests))
    started = time.monotonic()
    code, output = _pytest(tests, stop_at_first=False)
    return code == 0, output, time.monotonic() - started


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C does, so the mutated file is restored."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
