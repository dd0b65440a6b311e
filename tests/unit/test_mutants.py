"""The mutant list stays true to the code: every original text is still there, exactly once.

When a check is rewritten, its mutant must be rewritten with it; otherwise ``make
mutants`` would stop proving anything about that check, and nobody would notice.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.mutants.catalogue import MUTANTS
from tests.mutants.runner import Mutant, applied, recover

BY_NAME = {m.name: m for m in MUTANTS}

#: The checks the list must cover, by file (docs/security-checks.md).
REQUIRED_FILES = {
    "gateway/auth.py",
    "gateway/authz.py",
    "gateway/states.py",
    "gateway/policy.py",
    "gateway/services/terminal.py",
    "gateway/services/common.py",
    "crypto/envelope.py",
    "crypto/logentry.py",
    "crypto/merkle.py",
    "crypto/cosignature.py",
    "clients/relative/receipts.py",
    "clients/terminal/client.py",
    "clients/audit/replay.py",
    "clients/audit/reconcile.py",
    "clients/witness.py",
}


def test_mutant_names_are_unique() -> None:
    assert len(BY_NAME) == len(MUTANTS)


def test_the_required_checks_are_covered() -> None:
    assert {m.path for m in MUTANTS} >= REQUIRED_FILES


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_the_original_text_is_in_its_file_exactly_once(name: str) -> None:
    mutant = BY_NAME[name]
    text = mutant.source().read_text(encoding="utf-8")
    assert text.count(mutant.original) == 1, (
        f"{mutant.path} changed: rewrite mutant {name} in tests/mutants/catalogue.py "
        "to break the check as it reads now"
    )


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_the_mutant_is_valid_python_that_differs(name: str) -> None:
    mutant = BY_NAME[name]
    text = mutant.source().read_text(encoding="utf-8")
    mutated = mutant.apply_to(text)
    assert mutated != text
    compile(mutated, mutant.path, "exec")


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_the_mutant_names_a_property_and_tests_that_exist(name: str) -> None:
    mutant = BY_NAME[name]
    assert re.fullmatch(
        r"(P([1-9]|1[0-6])|SPEC \d(\.\d)?)(, (P([1-9]|1[0-6])|SPEC \d))*", (mutant.breaks)
    )
    assert mutant.effect.endswith(".")
    assert mutant.tests
    for test in mutant.tests:
        assert (REPO_ROOT / test.split("::")[0]).is_file(), test


PROBE = Mutant(
    name="probe",
    path="module.py",
    original="CHECKED = True\n",
    replacement="CHECKED = False\n",
    breaks="P1",
    effect="Nothing.",
    tests=(),
)


def test_a_mutant_is_undone_even_when_the_run_fails(tmp_path: Path) -> None:
    """The runner restores the file, byte for byte, when the block raises."""
    module = tmp_path / "module.py"
    module.write_bytes(b"# probe\nCHECKED = True\n")
    journal = tmp_path / "journal.json"
    seen: list[bytes] = []

    def run() -> None:
        with applied(PROBE, tmp_path, journal):
            seen.append(module.read_bytes())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run()
    assert seen == [b"# probe\nCHECKED = False\n"]
    assert module.read_bytes() == b"# probe\nCHECKED = True\n"
    assert not journal.exists()


KILLED_MID_RUN = """
import os, signal, sys
from pathlib import Path
from tests.unit.test_mutants import PROBE
from tests.mutants.runner import applied
root = Path(sys.argv[1])
with applied(PROBE, root, root / "journal.json"):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_file_left_mutated_by_a_killed_run_is_restored(tmp_path: Path) -> None:
    """A run killed outright leaves its journal; the next run restores the file from it."""
    module = tmp_path / "module.py"
    module.write_bytes(b"CHECKED = True\n")
    journal = tmp_path / "journal.json"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_RUN, str(tmp_path)], cwd=REPO_ROOT, check=False
    )
    assert killed.returncode == -signal.SIGKILL
    assert module.read_bytes() == b"CHECKED = False\n"
    with pytest.raises(RuntimeError, match="another run"), applied(PROBE, tmp_path, journal):
        pass
    assert recover(tmp_path, journal) == "module.py"
    assert module.read_bytes() == b"CHECKED = True\n"
    assert not journal.exists()
    assert recover(tmp_path, journal) is None
