"""Token buckets for the public calls: per address, overall, bounded memory, settings."""

from __future__ import annotations

import pytest

from sealpost.gateway.errors import ResourceExhausted
from sealpost.gateway.ratelimit import (
    PublicLimits,
    Rate,
    RateLimiter,
    client_address,
    parse_limit,
    parse_rate,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_rate_is_n_per_unit_in_bursts_of_n() -> None:
    assert parse_rate("10/h") == Rate(per_minute=10 / 60, burst=10)
    assert parse_rate("120/min") == Rate(per_minute=120, burst=120)
    assert parse_rate("2/s") == Rate(per_minute=120, burst=2)
    limit = parse_limit("10/h,120/min")
    assert (limit.per_address, limit.overall) == (parse_rate("10/h"), parse_rate("120/min"))
    assert str(limit) == "10/h,120/min"
    for bad in ("", "10", "10/d", "0/h", "-1/h", "x/h", "10/h", "10/h;5/min", "1/h,2"):
        with pytest.raises(ValueError):  # noqa: PT011 - the setting parser's contract
            parse_limit(bad)


def test_one_address_over_its_limit_does_not_use_up_the_others() -> None:
    clock = Clock()
    limits = PublicLimits({"register": Rate(60, 2)}, {"register": Rate(600, 5)}, clock=clock)
    limits.take("register", "192.0.2.1")
    limits.take("register", "192.0.2.1")
    with pytest.raises(ResourceExhausted, match="your address") as third:
        limits.take("register", "192.0.2.1")
    assert 0.9 <= third.value.retry_after_seconds <= 1.1  # one token a second
    for address in ("192.0.2.2", "192.0.2.2", "192.0.2.3"):
        limits.take("register", address)
    with pytest.raises(ResourceExhausted, match="busy"):
        limits.take("register", "192.0.2.4")  # the overall bucket is empty now
    clock.now += 1.0
    limits.take("register", "192.0.2.1")  # refilled


def test_kinds_are_counted_apart_and_unknown_kinds_are_free() -> None:
    limits = PublicLimits({"sign_in": Rate(60, 1)}, {}, clock=Clock())
    limits.take("sign_in", "a")
    with pytest.raises(ResourceExhausted):
        limits.take("sign_in", "a")
    for _ in range(100):
        limits.take("directory", "a")


def test_addresses_remembered_are_bounded() -> None:
    clock = Clock()
    limits = PublicLimits({"register": Rate(1, 1)}, {}, clock=clock, max_addresses=3)
    for address in ("a", "b", "c", "d"):
        limits.take("register", address)
    limits.take("register", "a")  # forgotten as the least recently seen: a full bucket again
    with pytest.raises(ResourceExhausted):
        limits.take("register", "d")


def test_sends_per_account() -> None:
    clock = Clock()
    sends = RateLimiter(2, clock=clock)
    sends.take("acct-1")
    sends.take("acct-1")
    with pytest.raises(ResourceExhausted, match="too many messages"):
        sends.take("acct-1")
    sends.take("acct-2")


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:192.0.2.7:50412", "192.0.2.7"),
        ("ipv6:[2001:db8::1]:443", "2001:db8::1"),
        ("unix:/run/sealpost.sock", "unix:/run/sealpost.sock"),
        ("", ""),
    ],
)
def test_the_client_address_is_the_peer_without_its_port(peer: str, address: str) -> None:
    assert client_address(peer) == address
