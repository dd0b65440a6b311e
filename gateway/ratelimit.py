"""Token buckets: per account for sends, per client address and overall for unauthenticated calls.

Anyone can call the public methods (the directory, registration, sign-in). Before,
100 RegisterDevice calls made 100 accounts in 1.3 s and 300 CreateChallenge calls 300
rows in 0.6 s. Each kind of public call now has a bucket per client address and one for
the whole gateway; an empty bucket answers RESOURCE_EXHAUSTED with the seconds until
the next token (the ``retry-after-seconds`` trailer). Buckets live in this process:
several gateway processes each keep their own, so the limits are per process, and a
load balancer in front should keep the client's address (docs/gateway.md, "Limits").
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sealpost.gateway.errors import ResourceExhausted

#: How many client addresses are remembered; the least recently seen are forgotten first,
#: so that a flood from many addresses cannot grow this process's memory without bound.
MAX_ADDRESSES: Final = 100_000


@dataclass(frozen=True)
class Rate:
    """``per_minute`` calls on average, in bursts of at most ``burst``."""

    per_minute: float
    burst: float

    def __post_init__(self) -> None:
        """Refuse a rate that could never admit a call."""
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError("a rate admits at least one call (per_minute > 0, burst >= 1)")


@dataclass(frozen=True)
class Limit:
    """The limits of one kind of public call: per client address, and for the whole gateway.

    Written ``N/unit,N/unit`` (per address, overall), units ``s``, ``min`` or ``h``:
    ``10/h,120/min`` is 10 an hour from one address (in bursts of 10) and 120 a minute
    in all.
    """

    per_address: Rate
    overall: Rate
    #: As written in the setting (``parse_limit`` reads it back).
    text: str = ""

    def __str__(self) -> str:
        """The setting's own form."""
        return self.text


_UNITS: Final = {"s": 1.0, "min": 60.0, "h": 3600.0}


def parse_rate(text: str) -> Rate:
    """``N/unit``: N calls per second, minute or hour, in bursts of N. ValueError if not."""
    count, slash, unit = text.strip().partition("/")
    if not slash or unit not in _UNITS or not count.isdigit() or not 0 < int(count) <= 10**9:
        raise ValueError(f"not a rate: {text!r}")
    return Rate(per_minute=int(count) * 60.0 / _UNITS[unit], burst=float(int(count)))


def parse_limit(text: str) -> Limit:
    """``N/unit,N/unit``: the per-address and the overall rate. ValueError if not."""
    per_address, comma, overall = text.partition(",")
    if not comma:
        raise ValueError(f"not two rates: {text!r}")
    return Limit(parse_rate(per_address), parse_rate(overall), text.strip())


#: Which kind of limit each public method counts against (gateway/authz.py PUBLIC_METHODS).
PUBLIC_KINDS: Final = {
    "/sealpost.v1.RelativeService/GetDirectory": "directory",
    "/sealpost.v1.RelativeService/RegisterDevice": "register",
    "/sealpost.v1.RelativeService/CreateChallenge": "sign_in",
    "/sealpost.v1.RelativeService/Login": "sign_in",
}


class TokenBucket:
    """One bucket: refilled continuously, at most ``burst`` tokens."""

    __slots__ = ("_last", "_per_second", "_rate", "_tokens")

    def __init__(self, rate: Rate, now: float) -> None:
        """A full bucket."""
        self._rate = rate
        self._per_second = rate.per_minute / 60.0
        self._tokens = rate.burst
        self._last = now

    def take(self, now: float) -> float:
        """Use one token and return 0, or return the seconds until one is there."""
        self._tokens = min(self._rate.burst, self._tokens + (now - self._last) * self._per_second)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._per_second


class RateLimiter:
    """A token bucket per account for sends: a flood guard, not a cap on correspondence."""

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_accounts: int = MAX_ADDRESSES,
    ) -> None:
        """``per_minute`` sends, in bursts of at most that many."""
        self._rate = Rate(float(per_minute), float(per_minute))
        self._clock = clock
        self._max = max_accounts
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str) -> None:
        """Use one token, or raise ResourceExhausted with the wait until the next one."""
        now = self._clock()
        bucket = _bucket(self._buckets, key, self._rate, now, self._max)
        wait = bucket.take(now)
        if wait:
            raise ResourceExhausted("too many messages in a short time; slow down", wait)


def _bucket(
    buckets: OrderedDict[Any, TokenBucket], key: Any, rate: Rate, now: float, limit: int
) -> TokenBucket:
    """The bucket of ``key``, made full when new; the least recently used go past ``limit``."""
    bucket = buckets.get(key)
    if bucket is None:
        bucket = buckets[key] = TokenBucket(rate, now)
        if len(buckets) > limit:
            buckets.popitem(last=False)
    else:
        buckets.move_to_end(key)
    return bucket


class PublicLimits:
    """The buckets of the unauthenticated calls, by kind of call (``PUBLIC_KINDS``)."""

    @classmethod
    def of(cls, limits: Mapping[str, Limit]) -> PublicLimits:
        """Buckets for each kind's per-address and overall rates."""
        return cls(
            {kind: limit.per_address for kind, limit in limits.items()},
            {kind: limit.overall for kind, limit in limits.items()},
        )

    def __init__(
        self,
        per_address: Mapping[str, Rate],
        overall: Mapping[str, Rate],
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        """``per_address`` and ``overall`` rates by kind (e.g. "register", "sign_in")."""
        self._per_address = dict(per_address)
        self._clock = clock
        self._max = max_addresses
        now = clock()
        self._overall = {kind: TokenBucket(rate, now) for kind, rate in overall.items()}
        self._addresses: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()

    def take(self, kind: str, address: str) -> None:
        """Admit one call of ``kind`` from ``address``, or raise ResourceExhausted.

        The address's bucket is asked first: a client over its own limit does not use up
        the whole gateway's.
        """
        now = self._clock()
        rate = self._per_address.get(kind)
        if rate is not None:
            bucket = _bucket(self._addresses, (kind, address), rate, now, self._max)
            wait = bucket.take(now)
            if wait:
                raise ResourceExhausted(
                    "too many requests from your address; try again shortly", wait
                )
        overall = self._overall.get(kind)
        if overall is not None:
            wait = overall.take(now)
            if wait:
                raise ResourceExhausted("the service is busy; try again shortly", wait)


def client_address(peer: str) -> str:
    """The client's address without its port, from gRPC's peer string.

    ``ipv4:192.0.2.1:5000`` -> ``192.0.2.1``; ``ipv6:[2001:db8::1]:5000`` ->
    ``2001:db8::1``; anything else (a Unix socket) is kept whole.
    """
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        host = rest.rpartition(":")[0]
        return host.strip("[]") or rest
    return peer
