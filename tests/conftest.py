"""Shared fixtures: real servers on loopback, started per test session and always stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sealpost._internal.devservers import GatewayProcess, OpenBaoDevServer

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoDevServer]:
    """A real OpenBao dev server (in memory, file audit device) for the whole session."""
    server = OpenBaoDevServer(tmp_path_factory.mktemp("openbao"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_openbao(tmp_path: Path) -> Iterator[OpenBaoDevServer]:
    """An OpenBao dev server of the test's own, for tests that stop, seal or break it."""
    server = OpenBaoDevServer(tmp_path / "openbao")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """The gateway as its own process on a free loopback port."""
    process = GatewayProcess(tmp_path / "gateway")
    process.start()
    try:
        yield process
    finally:
        process.stop()
