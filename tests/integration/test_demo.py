"""`sealpost demo` plays the whole scripted day against real servers and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from sealpost.clients._grpc import ClientError
from sealpost.clients.scripted_day import DemoFailed, expect, refused
from sealpost.gateway.webapp import BUILT_APP


def test_the_scripted_day_holds_and_leaves_its_artefacts(tmp_path: Path) -> None:
    assert (BUILT_APP / "index.html").is_file(), "the day has a web app relative: make web-app"
    out = tmp_path / "demo-out"
    run = subprocess.run(
        [sys.executable, "-m", "sealpost", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert all(line.startswith("[demo] ") for line in lines), run.stdout
    assert "[demo] every expectation of the day held" in lines
    assert any("refused" in line and "privileged" in line for line in lines)
    assert any("reconcile caught it" in line for line in lines)
    assert any("and cosigned it" in line and "--since-head" in line for line in lines)
    assert any("Youssef used the web app in a browser" in line for line in lines), run.stdout

    assert len(list((out / "deliveries").glob("*.pdf"))) == 4
    assert (out / "report" / "report.pdf").read_bytes().startswith(b"%PDF-")
    caught = (out / "reconcile.txt").read_text()
    assert "WITHOUT A GRANT" in caught
    # The day's own key-server work is all recorded, and the two audit devices agree (P14).
    assert " recorded, 0 not; 0 escrows of privileged messages" in caught
    assert "openbao-audit.log.mirror: 0 differences" in caught
    (evidence,) = (out / "evidence").glob("*.json")
    assert evidence.stat().st_mode & 0o777 == 0o600  # it holds a data key: owner-only
    assert "article 36" in (out / "review-notice.txt").read_text()
    # The gateway never held what people wrote: not in its database, not in its log.
    for stored in (out / "sealpost.db", out / "gateway" / "gateway.log"):
        data = stored.read_bytes()
        for secret in ("het pakket komt dinsdag", "Vertrouwelijk", "mooie foto", "نراك يوم الأحد"):
            assert secret.encode() not in data, f"{secret!r} in {stored.name}"


def test_an_expectation_that_fails_names_itself() -> None:
    with pytest.raises(DemoFailed, match="expected: the queue is empty"):
        expect(False, "the queue is empty")
    expect(True, "never raised")


def test_a_refusal_must_come_with_the_expected_code() -> None:
    def refuse() -> None:
        raise ClientError(grpc.StatusCode.PERMISSION_DENIED, "privileged")

    assert refused(refuse, grpc.StatusCode.PERMISSION_DENIED, "opening") == "privileged"
    with pytest.raises(DemoFailed, match="with FAILED_PRECONDITION, not PERMISSION_DENIED"):
        refused(refuse, grpc.StatusCode.FAILED_PRECONDITION, "opening")
    with pytest.raises(DemoFailed, match="but it went through"):
        refused(lambda: None, grpc.StatusCode.PERMISSION_DENIED, "opening")
