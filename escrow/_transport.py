"""The one hvac client Sealpost builds, with error translation and bounded retries.

hvac is untyped: its values stay inside the escrow package, and every public
function there turns them into typed results. Retries apply to
``KeyServerUnavailableError`` only (connection refused, timeout, sealed, 5xx),
with exponential backoff and full jitter, bounded in attempts and in time.

A key server may be a cluster (docs/operations.md, section 8). ``KeyServerConfig``
then names every node, and a ``Connection`` that finds its node unavailable, or
answered by a standby that cannot reach the active node, tries the next address
on its following attempt and stays there while it answers. Standbys forward
requests to the active node, so any node that answers will do.
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
import requests
import requests.adapters

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


def split_addresses(text: str) -> tuple[str, ...]:
    """The addresses in ``text``: one URL, or several separated by commas (a cluster's nodes)."""
    return tuple(part.strip().rstrip("/") for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class KeyServerConfig:
    """Where the key server (OpenBao or Vault) is and how to reach it.

    ``address`` takes one URL, or the nodes of a cluster separated by commas, as
    SEALPOST_KEY_SERVER_ADDRESS and ``--key-server`` do; ``addresses`` takes them as a
    tuple. Afterwards ``addresses`` lists every node and ``address`` is the first,
    the one tried first.
    """

    address: str = ""
    #: TLS verification: True (system CAs) or the path of a CA bundle. Never False in production.
    verify: bool | str = True
    #: Seconds allowed for each HTTP request.
    timeout: float = 10.0
    #: Namespace, for servers that use them; None for the root namespace.
    namespace: str | None = None
    #: Every node of the key server, in the order they are tried.
    addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        given = split_addresses(self.address)
        listed = tuple(a.rstrip("/") for a in self.addresses) or given
        if self.addresses and given and given != listed[:1] and given != listed:
            raise ValueError("give the key server's addresses once: address or addresses")
        if not listed:
            raise ValueError("the key server address is missing")
        if not all(a.startswith(("http://", "https://")) for a in listed):
            raise ValueError("the key server address must start with http:// or https://")
        if len(set(listed)) != len(listed):
            raise ValueError("a key server address is named twice")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        object.__setattr__(self, "addresses", listed)
        object.__setattr__(self, "address", listed[0])


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
    """hvac's JSON adapter, recording the real HTTP status on the errors it raises.

    A redirect is raised as an error too. Only a standby that cannot forward to the
    active node answers one (a 307 to the active node's address); it is never followed,
    since the token header would travel to wherever Location points.
    """

    def _raise_for_error(self, method: str, url: str, response: Any) -> None:
        try:
            super()._raise_for_error(method, url, response)
        except hvac.exceptions.VaultError as exc:
            setattr(exc, STATUS_ATTRIBUTE, int(response.status_code))
            raise

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().request(*args, **kwargs)
        if isinstance(response, requests.Response) and response.is_redirect:
            error = hvac.exceptions.VaultError(
                "redirected", errors=["a standby node redirected to the active node"]
            )
            setattr(error, STATUS_ATTRIBUTE, int(response.status_code))
            raise error
        return response


class Connection:
    """An hvac client bound to one token, calling through ``call`` only.

    With several addresses, an unavailable answer moves the next attempt to the next
    address; the connection stays on an address while it answers.
    """

    def __init__(
        self,
        config: KeyServerConfig,
        token: str | None,
        *,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        transport: requests.adapters.BaseAdapter | None = None,
    ) -> None:
        """``transport``, for tests, answers every request in place of the network."""
        self.config = config
        self.retry = retry
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._current = 0
        # Redirects are not followed: the token header would travel to wherever Location points.
        self._client: Any = hvac.Client(
            url=config.addresses[0],
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
        if transport is not None:
            for scheme in ("http://", "https://"):
                self._client.adapter.session.mount(scheme, transport)

    def __repr__(self) -> str:
        return f"Connection(address={self.address!r})"

    @property
    def address(self) -> str:
        """The address the next request goes to."""
        return self.config.addresses[self._current]

    def _next_address(self) -> None:
        """Move to the next of the configured addresses (a no-op with only one)."""
        self._current = (self._current + 1) % len(self.config.addresses)
        self._client.url = self.address

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
            if not isinstance(error, KeyServerUnavailableError):
                raise error
            # This node cannot serve now: the next request, this call's or a later one's,
            # goes to the next node.
            failed = self.address
            self._next_address()
            if attempt >= policy.max_attempts:
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
                address=failed if self.address == failed else f"{failed} -> {self.address}",
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
