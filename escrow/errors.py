"""Errors raised at the key-server boundary, and the one place hvac's errors are translated.

    SealpostError
    └── EscrowError
        ├── KeyServerUnavailableError   refused, timed out, sealed, 5xx, rate limited,
        │                               redirected by a standby: retry (the next node)
        ├── TransportSecurityError      TLS failed: never retried
        ├── PermissionDeniedError       403/401: the token's policy does not allow this
        │   └── AuthenticationFailedError   a login was refused
        ├── InvalidRequestError         400 or refused locally: malformed, wrong context...
        │   └── KeyVersionRetiredError  the ciphertext's key version has been retired
        ├── NotFoundError               404: no such key, mount, role or path
        ├── UnexpectedResponseError     an answer this client cannot interpret
        ├── EscrowBlobError             a stored escrow blob does not parse
        │   └── BlobVersionError
        │       ├── BlobVersionTooOldError
        │       └── BlobVersionTooNewError
        ├── BootstrapError              the key server cannot be brought to the expected state
        ├── AuditLogError               a key-server audit log line is malformed
        ├── ActionReceiptError          a receipt of key-server actions does not parse
        │   └── ActionReceiptVersionError   too old, or newer than this code knows
        └── TokenError                  a staff identity token is not acceptable
            ├── MalformedTokenError     not a compact JWS with strict base64url and JSON
            ├── TokenSignatureError     algorithm, key id, key or signature refused
            ├── TokenExpiredError       ``exp`` has passed
            ├── TokenNotYetValidError   ``nbf`` or ``iat`` lies in the future
            └── TokenClaimsError        issuer, audience, subject, roles or institutions

Messages carry the operation and the key server's own error strings, never a
response body: a failed batch decrypt answers 400 with the other items'
plaintexts in its body, so ``text`` and ``json`` of hvac errors are never copied
and translated errors are raised ``from None``.
"""

from __future__ import annotations

from typing import Final

import hvac.exceptions
import requests.exceptions

from sealpost.errors import SealpostError

#: Exceptions that may escape hvac or requests; catch these and pass them to ``translate``.
FOREIGN_ERRORS: Final = (hvac.exceptions.VaultError, requests.exceptions.RequestException)

_MAX_DETAIL = 200
_RETIRED_MARKER = "disallowed by policy (too old)"


class EscrowError(SealpostError):
    """Base of the escrow package's errors."""

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message)
        #: HTTP status of the key server's answer, when there was one.
        self.status = status


class KeyServerUnavailableError(EscrowError):
    """The key server cannot serve now (down, sealed, overloaded); the request may be retried."""

    def explain(self) -> str:
        """Say what happened and what to do, to whoever asked (a screener, a terminal...)."""
        return f"the key server is unavailable ({self}): try again later"


class TransportSecurityError(EscrowError):
    """The TLS connection to the key server could not be verified."""


class PermissionDeniedError(EscrowError):
    """The token's policy does not allow this operation (or the token is not valid)."""


class AuthenticationFailedError(PermissionDeniedError):
    """A login was refused."""


class SecondFactorRequiredError(AuthenticationFailedError):
    """The login needs a one-time code (login MFA, TOTP) and none was given."""


class InvalidRequestError(EscrowError):
    """The request is malformed or refused as invalid (for example a wrong decrypt context)."""

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        item_errors: tuple[str | None, ...] = (),
    ) -> None:
        super().__init__(message, status=status)
        #: For a batch refused in part: one sanitised error (or None) per item, in order.
        self.item_errors = item_errors


class KeyVersionRetiredError(InvalidRequestError):
    """The ciphertext was made with a key version that retention has retired."""


class NotFoundError(EscrowError):
    """No such key, mount, role or path on the key server."""


class UnexpectedResponseError(EscrowError):
    """The key server answered something this client cannot interpret."""


class EscrowBlobError(EscrowError):
    """A stored escrow blob does not parse or is inconsistent."""


class BlobVersionError(EscrowBlobError):
    """An escrow blob carries a version this code does not accept."""


class BlobVersionTooOldError(BlobVersionError):
    """The escrow blob version is older than the oldest one accepted."""


class BlobVersionTooNewError(BlobVersionError):
    """The escrow blob version is newer than this code knows."""


class BootstrapError(EscrowError):
    """The key server cannot be brought to the state Sealpost expects."""


class AuditLogError(EscrowError):
    """A line of the key server's audit log is malformed."""

    def __init__(self, message: str, *, line_number: int) -> None:
        super().__init__(f"audit log line {line_number}: {message}")
        #: 1-based number of the offending line.
        self.line_number = line_number


class ActionReceiptError(EscrowError):
    """A receipt of key-server actions (for ``sealpost admin key record``) does not parse."""


class ActionReceiptVersionError(ActionReceiptError):
    """A receipt of a version this code does not accept: too old, or newer (upgrade)."""


class TokenError(EscrowError):
    """A staff identity token is not acceptable."""


class MalformedTokenError(TokenError):
    """Not a compact JWS with strict base64url parts and JSON objects."""


class TokenSignatureError(TokenError):
    """The algorithm, key id, key or signature is refused."""


class TokenExpiredError(TokenError):
    """The token's ``exp`` has passed."""


class TokenNotYetValidError(TokenError):
    """The token's ``nbf`` or ``iat`` lies in the future."""


class TokenClaimsError(TokenError):
    """Issuer, audience, subject, roles or institutions are refused."""


def _sanitise(error: object) -> str:
    return " ".join(str(error).split())[:_MAX_DETAIL]


def batch_item_errors(body: object) -> tuple[str | None, ...]:
    """Per-item errors of a batch answer; plaintexts and ciphertexts are never looked at."""
    data = body.get("data") if isinstance(body, dict) else None
    results = data.get("batch_results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        return ()
    out: list[str | None] = []
    for item in results:
        error = item.get("error") if isinstance(item, dict) else "malformed batch result"
        out.append(_sanitise(error) if isinstance(error, str) and error else None)
    return tuple(out)


def _class_for_status(status: int, message: str) -> type[EscrowError]:
    if status in (412, 429) or status >= 500 or 300 <= status < 400:
        # 412: a standby has not caught up yet; 429: rate limited; 5xx: down or sealed;
        # 3xx: a standby that cannot forward points at the active node (never followed).
        return KeyServerUnavailableError
    if status == 400:
        return KeyVersionRetiredError if _RETIRED_MARKER in message else InvalidRequestError
    if status in (401, 403):
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    return UnexpectedResponseError


def error_for_status(
    operation: str,
    status: int | None,
    server_errors: object = None,
    *,
    item_errors: tuple[str | None, ...] = (),
) -> EscrowError:
    """The error for an HTTP answer: ``server_errors`` is the body's ``errors`` list, if any."""
    if status is None:
        return UnexpectedResponseError(f"{operation}: unexpected answer from the key server")
    if item_errors and status == 400:
        failed = [e for e in item_errors if e is not None]
        first = failed[0] if failed else "no detail"
        message = f"{operation}: {len(failed)} of {len(item_errors)} batch items refused ({first})"
        cls = KeyVersionRetiredError if _RETIRED_MARKER in first else InvalidRequestError
        return cls(message, status=status, item_errors=item_errors)
    errors = server_errors if isinstance(server_errors, list) else []
    detail = "; ".join(p for p in (_sanitise(e) for e in errors if isinstance(e, str)) if p)
    message = f"{operation}: {detail[:_MAX_DETAIL] or 'no detail'} (HTTP {status})"
    return _class_for_status(status, message)(message, status=status)


#: hvac's exception classes and the HTTP status each stands for.
_STATUS_OF_CLASS: Final[dict[type[hvac.exceptions.VaultError], int]] = {
    hvac.exceptions.InvalidRequest: 400,
    hvac.exceptions.Unauthorized: 401,
    hvac.exceptions.Forbidden: 403,
    hvac.exceptions.InvalidPath: 404,
    hvac.exceptions.PreconditionFailed: 412,
    hvac.exceptions.RateLimitExceeded: 429,
    hvac.exceptions.InternalServerError: 500,
    hvac.exceptions.VaultNotInitialized: 501,
    hvac.exceptions.BadGateway: 502,
    hvac.exceptions.VaultDown: 503,
}

#: Attribute the transport sets on hvac errors: the response's real HTTP status.
STATUS_ATTRIBUTE: Final = "sealpost_status"


def _from_vault(exc: hvac.exceptions.VaultError, operation: str) -> EscrowError:
    if isinstance(exc, hvac.exceptions.ParamValidationError):
        return InvalidRequestError(f"{operation}: refused before sending: {_sanitise(exc.args[0])}")
    status = getattr(exc, STATUS_ATTRIBUTE, None)
    if not isinstance(status, int):
        status = _STATUS_OF_CLASS.get(type(exc))
    return error_for_status(operation, status, exc.errors, item_errors=batch_item_errors(exc.json))


#: Transport failures, most specific first (SSLError is a ConnectionError).
_TRANSPORT_ERRORS: Final[tuple[tuple[type[Exception], type[EscrowError], str], ...]] = (
    (requests.exceptions.SSLError, TransportSecurityError, "TLS verification failed"),
    (requests.exceptions.Timeout, KeyServerUnavailableError, "timed out"),
    (requests.exceptions.ConnectionError, KeyServerUnavailableError, "cannot connect"),
    (requests.exceptions.JSONDecodeError, UnexpectedResponseError, "the answer is not JSON"),
    (requests.exceptions.RequestException, InvalidRequestError, "request not sent"),
)


def translate(exc: BaseException, operation: str) -> EscrowError:
    """Map an hvac or requests exception to this package's tree (raise the result ``from None``).

    ``operation`` names what was attempted ("transit encrypt"); it must not contain
    keys, tokens, ciphertexts or message content.
    """
    if isinstance(exc, EscrowError):
        return exc
    if isinstance(exc, hvac.exceptions.VaultError):
        return _from_vault(exc, operation)
    for foreign, ours, what in _TRANSPORT_ERRORS:
        if isinstance(exc, foreign):
            return ours(f"{operation}: {what}")
    return UnexpectedResponseError(f"{operation}: {type(exc).__name__}")
