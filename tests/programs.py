"""The ``sealpost`` program run as a person runs it, and the staff language for one test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sealpost import i18n


def sealpost(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m sealpost ARGS`` in a clean environment without a Dutch locale.

    No SEALPOST_* variable is inherited and the locale is C, so only ``--language`` chooses
    the language; wide columns keep help texts on one line.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", LANGUAGE="", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "sealpost", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@contextmanager
def staff_language(language: str) -> Iterator[None]:
    """Speak ``language`` in this process's staff programs, then English again."""
    i18n.use_staff_language(language)
    try:
        yield
    finally:
        i18n.use_staff_language(i18n.SOURCE_LANGUAGE)
