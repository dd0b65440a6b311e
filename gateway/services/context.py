"""What every service needs: database, directory, clock, limits, rate limiter, stream wake-ups."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Connection

from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.crypto.limits import DEFAULT_LIMITS, Limits
from sealpost.gateway.auth import StaffVerifier
from sealpost.gateway.directory import Directory
from sealpost.gateway.errors import InvalidArgument
from sealpost.gateway.principals import ANONYMOUS, Principal
from sealpost.gateway.ratelimit import PublicLimits, RateLimiter
from sealpost.gateway.storage.database import Database
from sealpost.gateway.storage.groupcommit import GroupCommit
from sealpost.gateway.witnesses import Witness

Clock = Callable[[], int]
T = TypeVar("T")

#: The authenticated caller of the current call, set by the interceptor before any handler.
CALLER: contextvars.ContextVar[Principal] = contextvars.ContextVar("caller", default=ANONYMOUS)

MAX_PAGE: int = 500
DEFAULT_PAGE: int = 100
#: The largest integer both databases store (a signed 64-bit BIGINT): a request value above
#: it (a uint64 field, a page token) can name nothing that exists, and is refused.
MAX_STORED_INT: int = 2**63 - 1
#: The Timestamp range protobuf defines (0001-01-01 to 9999-12-31 UTC), in seconds.
_MIN_TIMESTAMP_S = -62_135_596_800
_MAX_TIMESTAMP_S = 253_402_300_799


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def timestamp(ms: int | None) -> Timestamp | None:
    """A protobuf Timestamp for milliseconds since the epoch (None stays None)."""
    if ms is None:
        return None
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def millis(stamp: Timestamp, what: str) -> int:
    """Milliseconds of a required Timestamp field within the range protobuf defines."""
    if stamp.seconds == 0 and stamp.nanos == 0:
        raise InvalidArgument(f"{what} is required")
    if not _MIN_TIMESTAMP_S <= stamp.seconds <= _MAX_TIMESTAMP_S or not 0 <= stamp.nanos < 10**9:
        raise InvalidArgument(f"{what} is not a valid time")
    return stamp.ToMilliseconds()


def stored_int(value: int, what: str) -> int:
    """A non-negative request integer that the database can hold (uint64 fields may not)."""
    if not 0 <= value <= MAX_STORED_INT:
        raise InvalidArgument(f"{what} is out of range")
    return value


def page_size(requested: int) -> int:
    """The page size to use for a request's page_size (0 means the default)."""
    if requested == 0:
        return DEFAULT_PAGE
    return min(requested, MAX_PAGE)


def page_after(token: str) -> int:
    """The sequence number a page token stands for."""
    if not token:
        return 0
    try:
        value = int(token)
    except ValueError as exc:
        raise InvalidArgument("page_token is not one this gateway issued") from exc
    if not 0 <= value <= MAX_STORED_INT:
        raise InvalidArgument("page_token is not one this gateway issued")
    return value


class Notifier:
    """Wakes streams of an audience when something is added to its feed (this process only).

    Streams also poll, so changes made by another gateway process arrive too, a little later.
    """

    def __init__(self) -> None:
        """No waiters yet."""
        self._events: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def notify(self, audience: str) -> None:
        """Wake every stream waiting on ``audience``."""
        for event in list(self._events.get(audience, ())):
            event.set()

    async def wait(self, audience: str, timeout: float) -> None:
        """Return when ``audience`` is notified or after ``timeout`` seconds."""
        event = asyncio.Event()
        self._events[audience].add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._events[audience].discard(event)


@dataclass
class Context:
    """Shared by every service of one gateway process."""

    db: Database
    directory: Directory
    clock: Clock = wall_clock_ms
    limits: Limits = DEFAULT_LIMITS
    rate: RateLimiter = field(default_factory=lambda: RateLimiter(120))
    #: Buckets of the unauthenticated calls (None: unlimited, as in unit tests).
    public_limits: PublicLimits | None = None
    notifier: Notifier = field(default_factory=Notifier)
    staff: StaffVerifier | None = None
    #: Seconds a following stream waits before polling the database again.
    poll_seconds: float = 1.0
    #: Batches concurrent writes into one transaction (None: one transaction per write).
    group_commit: GroupCommit | None = None
    #: Key records whose directory signature was verified, by record id.
    verified_keys: dict[bytes, VerifiedKey] = field(default_factory=dict)
    #: The detainee of each mailbox key seen, by key id: a record's subject never changes
    #: (whether the key is still the detainee's current one is read at every send).
    mailbox_owners: dict[bytes, str] = field(default_factory=dict)
    #: Auditors' witness keys whose cosignatures are accepted, by witness key id.
    auditor_witnesses: Mapping[bytes, Witness] = field(default_factory=dict)

    async def write(self, job: Callable[[Connection], T]) -> T:
        """Run ``job`` in a write transaction; returns once it is committed (durable)."""
        if self.group_commit is not None:
            return await self.group_commit.run(job)
        return await self.db.awrite(job)
