"""Key server sealed or stopped: bounded retries, then unavailable; back after unseal (P2)."""

from __future__ import annotations

import secrets
import time

import pytest

from sealpost._internal.devservers import OpenBaoDevServer
from sealpost.escrow.bootstrap import KeyServerBootstrap
from sealpost.escrow.client import (
    EscrowClient,
    KeyServerConfig,
    RetryPolicy,
    health,
)
from sealpost.escrow.errors import KeyServerUnavailableError
from sealpost.escrow.identity import StaffRole, login_staff

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
FAST = RetryPolicy(max_attempts=4, initial_delay=0.01, max_delay=0.05, max_elapsed=5.0)


class Sleeps:
    """Records the backoff delays while really sleeping them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        time.sleep(seconds)


def test_sealed_server_is_unavailable_after_bounded_retries_then_recovers(
    fresh_openbao: OpenBaoDevServer,
) -> None:
    config = KeyServerConfig(fresh_openbao.address)
    admin = KeyServerBootstrap(config, fresh_openbao.root_token)
    admin.run()
    admin.create_staff_user("screener-sealed", PASSWORD, [StaffRole.SCREENER], ["pi-a"])
    terminal_token = admin.create_terminal_token("pi-a").token
    screener_token = login_staff(config, "screener-sealed", PASSWORD).token
    admin.close()
    sleeps = Sleeps()
    mid, dek = secrets.token_bytes(16), secrets.token_bytes(32)
    with EscrowClient(config, terminal_token, retry=FAST, sleep=sleeps) as terminal:
        escrowed = terminal.escrow(mid, dek)
        fresh_openbao.seal()
        assert health(config).sealed
        with pytest.raises(KeyServerUnavailableError, match="sealed") as info:
            terminal.escrow(secrets.token_bytes(16), secrets.token_bytes(32))
        assert info.value.status == 503
        assert len(sleeps.delays) == FAST.max_attempts - 1
        assert terminal.health().sealed

        fresh_openbao.unseal()
        assert health(config).ready
        again = terminal.escrow(secrets.token_bytes(16), secrets.token_bytes(32))
        assert again.key_version == 1
    with EscrowClient(config, screener_token, retry=FAST) as screener:
        assert screener.decrypt(mid, escrowed.ciphertext) == dek


def test_sealed_during_decrypt_is_unavailable(fresh_openbao: OpenBaoDevServer) -> None:
    config = KeyServerConfig(fresh_openbao.address)
    fresh_openbao.seal()
    with (
        EscrowClient(config, fresh_openbao.root_token, retry=FAST, sleep=lambda _s: None) as c,
        pytest.raises(KeyServerUnavailableError),
    ):
        c.decrypt(secrets.token_bytes(16), "vault:v1:QUJDRA==")


def test_stopped_server_is_unavailable(fresh_openbao: OpenBaoDevServer) -> None:
    config = KeyServerConfig(fresh_openbao.address, timeout=2.0)
    sleeps = Sleeps()
    with EscrowClient(config, fresh_openbao.root_token, retry=FAST, sleep=sleeps) as client:
        assert client.health().ready
        fresh_openbao.stop()
        with pytest.raises(KeyServerUnavailableError, match="cannot connect") as info:
            client.escrow(secrets.token_bytes(16), secrets.token_bytes(32))
        assert info.value.status is None
        assert len(sleeps.delays) == FAST.max_attempts - 1
    with pytest.raises(KeyServerUnavailableError):
        health(config)
