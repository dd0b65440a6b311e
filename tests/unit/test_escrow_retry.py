"""Bounded retries with exponential backoff and jitter, with an injected clock and sleep."""

from __future__ import annotations

from typing import Any

import hvac.exceptions
import pytest
import requests.exceptions

from sealpost.escrow._transport import Connection, KeyServerConfig, RetryPolicy
from sealpost.escrow.errors import KeyServerUnavailableError, PermissionDeniedError

CONFIG = KeyServerConfig("http://127.0.0.1:9")


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Raises ``error`` for the first ``failures`` calls, then answers."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self, _client: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "answer"


def sealed() -> hvac.exceptions.VaultError:
    return hvac.exceptions.VaultDown("sealed", errors=["Vault is sealed"])


def connection(policy: RetryPolicy, fake: FakeTime, rand: float = 1.0) -> Connection:
    return Connection(
        CONFIG, "t", retry=policy, sleep=fake.sleep, clock=fake.clock, rand=lambda: rand
    )


def test_retries_until_the_server_answers_with_doubling_delays() -> None:
    fake = FakeTime()
    fn = Flaky(3, sealed())
    conn = connection(RetryPolicy(max_attempts=5, initial_delay=0.1, max_delay=10), fake)
    assert conn.call("op", fn) == "answer"
    assert fn.calls == 4
    assert fake.sleeps == pytest.approx([0.1, 0.2, 0.4])


def test_delays_are_capped() -> None:
    fake = FakeTime()
    fn = Flaky(6, requests.exceptions.ConnectionError("refused"))
    policy = RetryPolicy(max_attempts=7, initial_delay=0.5, max_delay=1.0, max_elapsed=100)
    assert connection(policy, fake).call("op", fn) == "answer"
    assert fake.sleeps == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0, 1.0])


def test_jitter_scales_the_delay() -> None:
    fake = FakeTime()
    fn = Flaky(2, sealed())
    connection(RetryPolicy(initial_delay=1.0, max_delay=8), fake, rand=0.25).call("op", fn)
    assert fake.sleeps == pytest.approx([0.25, 0.5])


def test_gives_up_after_max_attempts() -> None:
    fake = FakeTime()
    fn = Flaky(100, sealed())
    conn = connection(RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.1), fake)
    with pytest.raises(KeyServerUnavailableError, match="sealed") as info:
        conn.call("transit encrypt", fn)
    assert fn.calls == 3
    assert len(fake.sleeps) == 2
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_gives_up_when_the_time_budget_is_spent() -> None:
    fake = FakeTime()
    fn = Flaky(100, sealed())
    policy = RetryPolicy(max_attempts=100, initial_delay=1.0, max_delay=1.0, max_elapsed=3.5)
    with pytest.raises(KeyServerUnavailableError):
        connection(policy, fake).call("op", fn)
    assert fake.now <= 3.5
    assert fn.calls == 4


def test_refusals_are_not_retried() -> None:
    fake = FakeTime()
    fn = Flaky(100, hvac.exceptions.Forbidden("no", errors=["permission denied"]))
    with pytest.raises(PermissionDeniedError):
        connection(RetryPolicy(), fake).call("op", fn)
    assert fn.calls == 1
    assert fake.sleeps == []


def test_retry_can_be_turned_off_per_call() -> None:
    fake = FakeTime()
    fn = Flaky(100, sealed())
    with pytest.raises(KeyServerUnavailableError):
        connection(RetryPolicy(), fake).call("op", fn, retry=False)
    assert fn.calls == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"initial_delay": -1},
        {"initial_delay": 2, "max_delay": 1},
        {"max_elapsed": -1},
    ],
)
def test_retry_policy_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        RetryPolicy(**kwargs)


def test_delay_is_within_bounds() -> None:
    policy = RetryPolicy(initial_delay=0.1, max_delay=2.0)
    assert policy.delay(1, lambda: 0.0) == 0.0
    assert policy.delay(3, lambda: 1.0) == pytest.approx(0.4)
    assert policy.delay(30, lambda: 1.0) == 2.0


def test_config_validation_and_token_not_in_repr() -> None:
    with pytest.raises(ValueError, match="http"):
        KeyServerConfig("127.0.0.1:8200")
    with pytest.raises(ValueError, match="timeout"):
        KeyServerConfig("http://x", timeout=0)
    conn = Connection(CONFIG, "s.supersecret-token")
    assert "supersecret" not in repr(conn)
