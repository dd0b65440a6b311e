"""Errors raised by the gateway, and the one table that maps them to gRPC status codes.

    SealpostError
    └── GatewayError
        ├── ConfigError            invalid configuration (flags or environment)
        ├── InvalidArgument        malformed or out-of-range input          INVALID_ARGUMENT
        ├── Unauthenticated        no or bad credentials                    UNAUTHENTICATED
        ├── PermissionDenied       authenticated, but not allowed           PERMISSION_DENIED
        ├── NotFound               no such thing (or not visible to you)    NOT_FOUND
        ├── AlreadyExists          a replay of something already stored     ALREADY_EXISTS
        ├── FailedPrecondition     not allowed in the current state         FAILED_PRECONDITION
        ├── ResourceExhausted      rate limit reached; carries a retry hint RESOURCE_EXHAUSTED
        └── Unavailable            a dependency (database, key server) down UNAVAILABLE

Errors of other packages are mapped here too (crypto errors become
INVALID_ARGUMENT with a safe message). The database's errors never get this far:
the store turns a broken constraint into AlreadyExists (gateway/store/_common.py),
the storage layer a lost connection into Unavailable (gateway/storage/). Anything
else is a bug: INTERNAL, logged.
"""

from __future__ import annotations

from typing import Final

import grpc

from sealpost.crypto.errors import CryptoError
from sealpost.errors import SealpostError


class GatewayError(SealpostError):
    """Base of the gateway's errors."""


class ConfigError(GatewayError):
    """The gateway's configuration is invalid; lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))

    def explain(self) -> str:
        """Each problem on its own line."""
        return "invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems)


class InvalidArgument(GatewayError):
    """The request is malformed or a value is out of range."""


class Unauthenticated(GatewayError):
    """No credentials, or credentials that do not verify."""


class PermissionDenied(GatewayError):
    """The caller is authenticated but may not do this."""


class NotFound(GatewayError):
    """No such object, or none the caller may see."""


class AlreadyExists(GatewayError):
    """The object exists already; for sends, a replay of a stored message id."""


class FailedPrecondition(GatewayError):
    """Not possible in the current state (contact not approved, regime blocked, ...)."""


class ResourceExhausted(GatewayError):
    """A rate limit was reached; try again after ``retry_after_seconds``."""

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(GatewayError):
    """A dependency (database, key server) is unavailable; try again later."""


#: The one mapping from error type to gRPC status code; the most specific class wins.
STATUS_OF: Final[tuple[tuple[type[BaseException], grpc.StatusCode], ...]] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (ConfigError, grpc.StatusCode.INVALID_ARGUMENT),
    (CryptoError, grpc.StatusCode.INVALID_ARGUMENT),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
)


def status_for(error: BaseException) -> grpc.StatusCode | None:
    """The status code for a known error type, or None for a bug."""
    for kind, code in STATUS_OF:
        if isinstance(error, kind):
            return code
    return None
