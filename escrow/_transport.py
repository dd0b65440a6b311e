"""The one hvac client Sealpost builds, with error translation and bounded retries.

hvac is untyped: its values stay inside the escrow package, and every public
function there turns them into typed results. Retries apply to
``KeyServerUnavailableError`` only (connection refused, timeout, sealed, 5xx),
with exponential backoff and full jitter, bounded in attempts and in time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import hvac
import hvac.adapters
import hvac.exceptions

from sealpost._internal.logs import get_logger
from sealpost.escrow.errors import (
    FOREIGN_ERRORS,
    STATUS_ATTRIBUTE,
    EscrowError,
    KeyServerUnavailableError,
    UnexpectedResponseError,
    translate,
)

_log = get_logger("sealpost.escrow")

T = TypeVar("T")


@dataclass(frozen=True)
class KeyServerConfig:
    """Where the key server (OpenBao or Vault) is and how to reach it."""

    address: str
    #: TLS verification: True (system CAs) or the path of a CA bundle. Never False in production.
    verify: bool | str = True
    #: Seconds allowed for each HTTP request.
    timeout: float = 10.0
    #: Namespace, for servers that use them; None for the root namespace.
    namespace: str | None = None

    def __post_init__(self) -> None:
        if not self.address.startswith(("http://", "https://")):
            raise ValueError("the key server address must start with http:// or https://")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in elapsed time."""

    max_attempts: int = 5
    initial_delay: float = 0.1
    max_delay: float = 2.0
    #: Seconds after the first attempt beyond which no new attempt starts.
    max_elapsed: float = 20.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < self.initial_delay or self.max_elapsed < 0:
            raise ValueError(
                "delays must satisfy 0 <= initial_delay <= max_delay, max_elapsed >= 0"
            )

    def delay(self, retry: int, rand: Callable[[], float]) -> float:
        """Delay before retry ``retry`` (1-based): uniform in [0, min(max, initial * 2**(n-1))]."""
        ceiling = min(self.max_delay, self.initial_delay * 2.0 ** (retry - 1))
        return rand() * ceiling


NO_RETRY = RetryPolicy(max_attempts=1)


class _StatusAdapter(hvac.adapters.JSONAdapter):  # type: ignore[misc]  # hvac has no types
    """hvac's JSON adapter, recording the real HTTP status on the errors it raises."""

    def _raise_for_error(self, method: str, url: str, response: Any) -> None:
        try:
            super()._raise_for_error(method, url, response)
        except hvac.exceptions.VaultError as exc:
            setattr(exc, STATUS_ATTRIBUTE, int(response.status_code))
            raise


class Connection:
    """An hvac client bound to one token, calling through ``call`` only."""

    def __init__(
        self,
        config: KeyServerConfig,
        token: str | None,
        *,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.retry = retry
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        # Redirects are not followed: the token header would travel to wherever Location points.
        self._client: Any = hvac.Client(
            url=config.address,
            token=token or "",
            verify=config.verify,
            timeout=config.timeout,
            namespace=config.namespace,
            allow_redirects=False,
            adapter=_StatusAdapter,
        )
        if not token:
            # hvac would otherwise pick up VAULT_TOKEN or ~/.vault-token.
            self._client.token = None

    def __repr__(self) -> str:
        return f"Connection(address={self.config.address!r})"

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.adapter.close()

    def call(self, operation: str, fn: Callable[[Any], T], *, retry: bool = True) -> T:
        """Run ``fn(hvac_client)``; translate errors; retry while the key server is unavailable."""
        policy = self.retry if retry else NO_RETRY
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            error: EscrowError
            try:
                return fn(self._client)
            except (*FOREIGN_ERRORS, EscrowError) as exc:
                error = translate(exc, operation)
            if not isinstance(error, KeyServerUnavailableError) or attempt >= policy.max_attempts:
                raise error
            delay = policy.delay(attempt, self._rand)
            if self._clock() - started + delay > policy.max_elapsed:
                raise error
            _log.warning(
                "key server unavailable, retrying",
                attempt=attempt,
                delay_seconds=round(delay, 3),
                status=error.status,
                reason=operation,
            )
            self._sleep(delay)


def data_of(answer: object, operation: str) -> dict[str, Any]:
    """The ``data`` object of a key-server answer; UnexpectedResponseError if there is none."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        raise UnexpectedResponseError(f"{operation}: the answer has no data")
    return data


def get_int(data: dict[str, Any], key: str, operation: str) -> int:
    """An integer field (not a bool)."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnexpectedResponseError(f"{operation}: field {key!r} is not an integer")
    return value


def get_str(data: dict[str, Any], key: str, operation: str) -> str:
    """A string field."""
    value = data.get(key)
    if not isinstance(value, str):
        raise UnexpectedResponseError(f"{operation}: field {key!r} is not a string")
    return value


def get_bool(data: dict[str, Any], key: str, operation: str) -> bool:
    """A boolean field."""
    value = data.get(key)
    if not isinstance(value, bool):
        raise UnexpectedResponseError(f"{operation}: field {key!r} is not a boolean")
    return value
