"""The project is lint-clean: ruff, mypy --strict and buf lint, as `make lint` runs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent


def _run(*command: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def test_ruff_check() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_lint() -> None:
    buf = REPO_ROOT / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        if shutil.which("npm") is None:
            pytest.skip(
                "npm is not installed: buf (proto lint) cannot run; `make lint` says so too"
            )
        install = _run(
            "npm", "install", "--no-package-lock", "--no-audit", "--no-fund", "--loglevel=error"
        )
        assert install.returncode == 0, install.stderr
    result = _run(str(buf), "lint", cwd=REPO_ROOT / "proto")
    assert result.returncode == 0, result.stdout + result.stderr
