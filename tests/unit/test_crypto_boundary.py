"""crypto/'s private modules stay private: ruff refuses them outside crypto/ (STYLE 5).

The rule is ruff's banned-api (TID251) in pyproject.toml; `make lint` and
tests/integration/test_lint.py run ruff over the whole tree, so a new import of a private
crypto module (or of PyNaCl) anywhere but crypto/, tests/ and bench/ fails them.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

RUFF = Path(sys.executable).parent / "ruff"
PRIVATE_IMPORTS = (
    "from sealpost.crypto import _sodium",
    "from sealpost.crypto._sodium import random_bytes",
    "import sealpost.crypto._framing",
    "from sealpost.crypto import _wire, keys",
    "import nacl.utils",
)


def _banned() -> dict[str, object]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    banned: dict[str, object] = config["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-api"]
    return banned


def _ruff(where: str, line: str) -> subprocess.CompletedProcess[str]:
    """Lint one probe file, as if it stood at ``where``, for banned imports only."""
    return subprocess.run(
        [str(RUFF), "check", "--no-cache", "--select", "TID251", "--stdin-filename", where, "-"],
        input=f'"""Probe."""\n\n{line}\n',
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_private_crypto_module_and_pynacl_are_banned() -> None:
    private = {f"sealpost.crypto.{p.stem}" for p in (REPO_ROOT / "crypto").glob("_*.py")}
    private.discard("sealpost.crypto.__init__")
    assert "sealpost.crypto._sodium" in private
    assert private | {"nacl"} <= set(_banned())


@pytest.mark.parametrize(
    "where", ["gateway/probe.py", "escrow/probe.py", "clients/probe.py", "sealpost/probe.py"]
)
@pytest.mark.parametrize("line", PRIVATE_IMPORTS)
def test_ruff_refuses_a_private_crypto_import_outside_crypto(where: str, line: str) -> None:
    result = _ruff(where, line)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TID251" in result.stdout


@pytest.mark.parametrize("where", ["crypto/probe.py", "tests/unit/probe.py", "bench/probe.py"])
def test_crypto_itself_tests_and_benchmarks_may_use_them(where: str) -> None:
    for line in PRIVATE_IMPORTS:
        result = _ruff(where, line)
        assert result.returncode == 0, result.stdout + result.stderr
