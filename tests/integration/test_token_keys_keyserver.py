"""The session-token key in a real OpenBao: created once, rotated once, read only by the gateway.

The module bootstraps a name prefix of its own on the session's server and uses a token
with the gateway policy, as a gateway would; each test starts without the secret.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import hvac
import pytest

from sealpost._internal.devservers import OpenBaoDevServer
from sealpost.escrow._transport import Connection, KeyServerConfig, RetryPolicy
from sealpost.escrow.bootstrap import (
    GATEWAY_SECRETS_MAX_VERSIONS,
    BootstrapSettings,
    KeyServerBootstrap,
)
from sealpost.escrow.client import EscrowClient
from sealpost.escrow.errors import (
    KeyServerUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    UnexpectedResponseError,
)
from sealpost.escrow.identity import StaffRole, login_staff
from sealpost.gateway import auth
from sealpost.gateway.auth import TokenKeySource
from sealpost.gateway.errors import Unauthenticated, Unavailable
from sealpost.gateway.tokenkeys import DEFAULT_PATH, KeyServerTokenKeys

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
DAY = timedelta(days=1)
FAST = RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.01, max_elapsed=2.0)


@dataclass
class Clock:
    """The real time plus an offset that a test moves forward."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Kit:
    server: OpenBaoDevServer
    config: KeyServerConfig
    settings: BootstrapSettings
    admin: KeyServerBootstrap
    gateway_token: str
    screener_token: str
    root: hvac.Client
    connections: list[Connection] = field(default_factory=list)

    @property
    def mount(self) -> str:
        return self.settings.gateway_secrets_mount

    def connect(self, token: str | None = None) -> Connection:
        conn = Connection(self.config, token or self.gateway_token, retry=FAST)
        self.connections.append(conn)
        return conn

    def gateway(self, clock: Callable[[], float] = time.time, **kwargs: Any) -> KeyServerTokenKeys:
        return KeyServerTokenKeys(self.connect(), self.mount, clock=clock, **kwargs)

    def metadata(self) -> dict[str, Any]:
        answer = self.root.adapter.get(f"/v1/{self.mount}/metadata/{DEFAULT_PATH}")
        data: dict[str, Any] = answer["data"]
        return data

    def stored(self, version: int) -> dict[str, Any]:
        answer = self.root.adapter.get(
            f"/v1/{self.mount}/data/{DEFAULT_PATH}", params={"version": version}
        )
        data: dict[str, Any] = answer["data"]["data"]
        return data

    def store(self, value: dict[str, Any]) -> None:
        """Write a version by hand, as someone with more rights than the gateway could."""
        current = self.metadata()["current_version"]
        self.root.adapter.post(
            f"/v1/{self.mount}/data/{DEFAULT_PATH}",
            json={"options": {"cas": current}, "data": value},
        )


@pytest.fixture(scope="module")
def module_kit(openbao: OpenBaoDevServer) -> Iterator[Kit]:
    settings = BootstrapSettings(prefix=f"tk{secrets.token_hex(4)}")
    config = KeyServerConfig(openbao.address)
    admin = KeyServerBootstrap(config, openbao.root_token, settings)
    admin.run()
    screener = f"screener-{settings.prefix}"
    admin.create_staff_user(screener, PASSWORD, [StaffRole.SCREENER], ["pi-a"])
    yield Kit(
        server=openbao,
        config=config,
        settings=settings,
        admin=admin,
        gateway_token=admin.create_gateway_token().token,
        screener_token=login_staff(config, screener, PASSWORD).token,
        root=hvac.Client(url=openbao.address, token=openbao.root_token),
    )
    admin.close()


@pytest.fixture
def kit(module_kit: Kit) -> Iterator[Kit]:
    """The module's kit, without the secret (every version and its metadata removed)."""
    module_kit.root.adapter.delete(f"/v1/{module_kit.mount}/metadata/{DEFAULT_PATH}")
    yield module_kit
    for conn in module_kit.connections:
        conn.close()
    module_kit.connections.clear()


def session(minutes: int = 15) -> auth.SessionToken:
    expires = int(time.time() * 1000) + minutes * 60 * 1000
    return auth.SessionToken(f"acct-{secrets.token_hex(4)}", secrets.token_bytes(32), expires)


def verifies(source: TokenKeySource, token: str) -> bool:
    try:
        auth.verify_session_token(source.token_keys(), token, int(time.time() * 1000))
    except Unauthenticated:
        return False
    return True


def key_set(source: TokenKeySource) -> set[bytes | None]:
    keys = source.token_keys()
    return {keys.current, keys.previous}


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` in threads released at the same moment; their results, or their errors."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # handed to the test to assert on
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


# --- the mount ---------------------------------------------------------------------------------


def test_bootstrap_makes_a_kv2_mount_that_keeps_few_versions(kit: Kit) -> None:
    mounts = kit.root.sys.list_mounted_secrets_engines()["data"]
    assert mounts[f"{kit.mount}/"]["type"] == "kv"
    assert mounts[f"{kit.mount}/"]["options"]["version"] == "2"
    config = kit.root.adapter.get(f"/v1/{kit.mount}/config")["data"]
    assert config["max_versions"] == GATEWAY_SECRETS_MAX_VERSIONS == 5
    assert config["cas_required"] is True
    assert kit.admin.run().changes == ()


def test_old_versions_go_away(kit: Kit) -> None:
    gateway = kit.gateway()
    gateway.load()
    for _ in range(GATEWAY_SECRETS_MAX_VERSIONS + 1):
        gateway.rotate()
    meta = kit.metadata()
    assert meta["current_version"] == GATEWAY_SECRETS_MAX_VERSIONS + 2
    assert sorted(int(v) for v in meta["versions"]) == list(range(3, 8))
    with pytest.raises(hvac.exceptions.InvalidPath):
        kit.stored(1)


# --- load --------------------------------------------------------------------------------------


def test_first_load_creates_version_one(kit: Kit) -> None:
    gateway = kit.gateway()
    with pytest.raises(Unavailable, match="not loaded"):
        gateway.token_keys()
    status = gateway.load()
    assert (status.newest_version, status.issuing_version, status.written) == (1, 1, 1)
    stored = kit.stored(1)
    assert stored["format"] == 1
    keys = gateway.token_keys()
    assert keys.current == bytes.fromhex(stored["token_key"])
    assert len(keys.current) == 32
    assert keys.previous is None
    assert kit.metadata()["current_version"] == 1
    # A gateway started later reads the same key and writes nothing.
    later = kit.gateway()
    assert later.load().written == 0
    assert later.token_keys() == keys
    assert kit.metadata()["current_version"] == 1


def test_two_gateways_starting_together_end_with_one_key(kit: Kit) -> None:
    for _ in range(3):
        kit.root.adapter.delete(f"/v1/{kit.mount}/metadata/{DEFAULT_PATH}")
        first, second = kit.gateway(), kit.gateway()
        results = together(first.load, second.load)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert sum(r.written for r in results) == 1
        assert kit.metadata()["current_version"] == 1
        assert first.token_keys() == second.token_keys()
        token = auth.issue_session_token(first.token_keys(), session())
        assert verifies(second, token)


# --- rotation ----------------------------------------------------------------------------------


def test_a_token_verifies_after_one_rotation_and_not_after_two(kit: Kit) -> None:
    clock = Clock()
    gateway, other = kit.gateway(clock), kit.gateway(clock)
    gateway.load()
    other.load()
    token = auth.issue_session_token(gateway.token_keys(), session())
    assert verifies(other, token)

    rotated = gateway.rotate()
    assert (rotated.newest_version, rotated.written) == (2, 1)
    # The new key verifies at once but makes tokens only after the activation delay.
    assert rotated.issuing_version == 1
    other.refresh()
    assert verifies(gateway, token)
    assert verifies(other, token)
    clock.offset = gateway.activation_delay.total_seconds()
    assert gateway.refresh().issuing_version == 2
    made_with_new = auth.issue_session_token(gateway.token_keys(), session())
    assert verifies(other, made_with_new)
    assert gateway.token_keys().current == bytes.fromhex(kit.stored(2)["token_key"])

    gateway.rotate()
    other.refresh()
    assert not verifies(gateway, token)
    assert not verifies(other, token)
    assert verifies(other, made_with_new)


def test_rotation_that_revokes_issued_tokens(kit: Kit) -> None:
    gateway = kit.gateway()
    gateway.load()
    token = auth.issue_session_token(gateway.token_keys(), session())
    status = gateway.rotate(revoke_issued=True)
    assert (status.newest_version, status.written) == (3, 2)
    assert not verifies(gateway, token)
    # The key that makes tokens now is one of the two new ones.
    assert status.issuing_version == 2
    fresh = auth.issue_session_token(gateway.token_keys(), session())
    assert verifies(gateway, fresh)


def test_rotation_on_schedule_happens_only_when_due(kit: Kit) -> None:
    clock = Clock()
    gateway = kit.gateway(clock)
    gateway.load()
    clock.offset = DAY.total_seconds() - 120
    status = gateway.refresh()
    assert (status.newest_version, status.written) == (1, 0)
    assert kit.metadata()["current_version"] == 1
    clock.offset = DAY.total_seconds() + 1
    status = gateway.refresh()
    assert (status.newest_version, status.written) == (2, 1)
    assert kit.metadata()["current_version"] == 2
    # Version 2 was stored now (by the key server's clock): nothing is due until a day later.
    clock.offset = 60
    assert gateway.refresh().written == 0
    clock.offset = DAY.total_seconds() - 60
    assert gateway.refresh().written == 0
    assert kit.metadata()["current_version"] == 2
    clock.offset = DAY.total_seconds() + 60
    assert gateway.refresh().written == 1
    assert kit.metadata()["current_version"] == 3


def test_a_shorter_period_rotates_sooner(kit: Kit) -> None:
    clock = Clock()
    gateway = kit.gateway(clock, rotation_period=timedelta(hours=1))
    gateway.load()
    clock.offset = 3601
    assert gateway.refresh().newest_version == 2


def test_two_gateways_refreshing_when_due_write_one_version(kit: Kit) -> None:
    clock = Clock()
    racing, barrier = threading.Event(), threading.Barrier(2)

    def new_key() -> bytes:
        if racing.is_set():
            # Both have read version 1 as the newest before either writes. (Left to the
            # scheduler, one could finish first; the other, whose shifted clock makes any
            # version a day old, would then rightly rotate again.)
            barrier.wait(30)
        return secrets.token_bytes(32)

    first, second = kit.gateway(clock, new_key=new_key), kit.gateway(clock, new_key=new_key)
    first.load()
    second.load()
    racing.set()
    clock.offset = DAY.total_seconds() + 1
    results = together(first.refresh, second.refresh)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.written for r in results) == 1
    assert kit.metadata()["current_version"] == 2
    assert first.token_keys() == second.token_keys()


def test_a_gateway_that_loses_the_check_and_set_reads_the_winners_key(kit: Kit) -> None:
    clock = Clock()
    winner = kit.gateway()
    winner.load()

    def key_written_after_the_winner() -> bytes:
        # Runs after the loser read version 1 as newest, before it sends version 2.
        winner.rotate()
        return secrets.token_bytes(32)

    loser = kit.gateway(clock, new_key=key_written_after_the_winner)
    loser.load()
    clock.offset = DAY.total_seconds() + 1
    status = loser.refresh()
    assert (status.newest_version, status.written) == (2, 0)
    assert kit.metadata()["current_version"] == 2
    winner.refresh()
    # Both verify with versions 1 and 2 (which of them makes tokens depends on each clock).
    assert (
        key_set(loser)
        == key_set(winner)
        == {bytes.fromhex(kit.stored(v)["token_key"]) for v in (1, 2)}
    )


# --- who may read it ---------------------------------------------------------------------------


def test_the_gateway_token_reaches_only_its_secret(kit: Kit) -> None:
    KeyServerTokenKeys(kit.connect(), kit.mount).load()
    raw = hvac.Client(url=kit.server.address, token=kit.gateway_token)
    mount = kit.mount
    refused: list[Callable[[], Any]] = [
        lambda: raw.adapter.post(
            f"/v1/{mount}/data/other", json={"options": {"cas": 0}, "data": {"x": "1"}}
        ),
        lambda: raw.adapter.get(f"/v1/{mount}/data/other"),
        lambda: raw.adapter.list(f"/v1/{mount}/metadata"),
        lambda: raw.adapter.delete(f"/v1/{mount}/data/{DEFAULT_PATH}"),
        lambda: raw.adapter.delete(f"/v1/{mount}/metadata/{DEFAULT_PATH}"),
        lambda: raw.adapter.post(f"/v1/{mount}/metadata/{DEFAULT_PATH}", json={"max_versions": 1}),
        lambda: raw.adapter.post(f"/v1/{mount}/destroy/{DEFAULT_PATH}", json={"versions": [1]}),
        lambda: raw.adapter.post(f"/v1/{mount}/delete/{DEFAULT_PATH}", json={"versions": [1]}),
        lambda: raw.adapter.post(f"/v1/{mount}/config", json={"max_versions": 100}),
    ]
    for attempt in refused:
        with pytest.raises(hvac.exceptions.Forbidden):
            attempt()
    with pytest.raises(PermissionDeniedError):
        KeyServerTokenKeys(kit.connect(), kit.mount, path="other").load()
    with (
        EscrowClient(kit.config, kit.gateway_token, key=kit.settings.escrow_key) as escrow,
        pytest.raises(PermissionDeniedError),
    ):
        escrow.escrow(secrets.token_bytes(16), secrets.token_bytes(32))
    assert kit.metadata()["current_version"] == 1


def test_staff_cannot_read_the_session_token_key(kit: Kit) -> None:
    kit.gateway().load()
    screener = KeyServerTokenKeys(kit.connect(kit.screener_token), kit.mount)
    with pytest.raises(PermissionDeniedError):
        screener.load()
    raw = hvac.Client(url=kit.server.address, token=kit.screener_token)
    with pytest.raises(hvac.exceptions.Forbidden):
        raw.adapter.get(f"/v1/{kit.mount}/data/{DEFAULT_PATH}")


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"format": 1, "token_key": "not hex"}, "token_key is not hexadecimal"),
        ({"format": 1, "token_key": "00" * 31}, "token_key has 31 bytes, not 32"),
        ({"format": 1}, "no token_key"),
        ({"token_key": "00" * 32}, "format None is not 1"),
    ],
)
def test_a_malformed_stored_value_is_refused(kit: Kit, value: dict[str, Any], message: str) -> None:
    running = kit.gateway()
    running.load()
    token = auth.issue_session_token(running.token_keys(), session())
    kit.store(value)
    starting = kit.gateway()
    with pytest.raises(UnexpectedResponseError, match=message) as info:
        starting.load()
    assert f"{kit.mount}/{DEFAULT_PATH} version 2 is malformed" in str(info.value)
    # A gateway already running keeps the keys it has.
    before = running.token_keys()
    with pytest.raises(UnexpectedResponseError, match=message):
        running.refresh()
    assert running.token_keys() is before
    assert verifies(running, token)
    # One rotation by hand writes a good version 3, but version 2 is still the previous one;
    # after a second one the keys in use are both good.
    with pytest.raises(UnexpectedResponseError, match=message):
        running.rotate()
    assert kit.metadata()["current_version"] == 3
    assert running.token_keys() is before
    status = running.rotate()
    assert (status.newest_version, status.issuing_version) == (4, 3)
    assert not verifies(running, token)


def test_a_deleted_newest_version_is_refused_and_mended_by_a_rotation(kit: Kit) -> None:
    gateway = kit.gateway()
    gateway.load()
    kit.root.adapter.post(f"/v1/{kit.mount}/delete/{DEFAULT_PATH}", json={"versions": [1]})
    with pytest.raises(NotFoundError, match="version 1 is deleted: rotate"):
        kit.gateway().load()
    status = gateway.rotate()
    assert (status.newest_version, status.issuing_version) == (2, 2)
    assert gateway.token_keys().previous is None


def test_key_server_down_leaves_the_keys_in_memory(fresh_openbao: OpenBaoDevServer) -> None:
    settings = BootstrapSettings(prefix="down")
    config = KeyServerConfig(fresh_openbao.address, timeout=2.0)
    admin = KeyServerBootstrap(config, fresh_openbao.root_token, settings)
    admin.run()
    token = admin.create_gateway_token().token
    admin.close()
    conn = Connection(config, token, retry=FAST, sleep=lambda _s: None)
    gateway = KeyServerTokenKeys(conn, settings.gateway_secrets_mount)
    loaded = gateway.load()
    keys = gateway.token_keys()
    made = auth.issue_session_token(keys, session())

    fresh_openbao.stop()
    with pytest.raises(KeyServerUnavailableError):
        gateway.refresh()
    with pytest.raises(KeyServerUnavailableError):
        gateway.rotate()
    assert gateway.token_keys() is keys
    assert gateway.status() == loaded
    assert verifies(gateway, made)
    starting = KeyServerTokenKeys(conn, settings.gateway_secrets_mount)
    with pytest.raises(KeyServerUnavailableError):
        starting.load()
    with pytest.raises(Unavailable):
        starting.token_keys()
    conn.close()
