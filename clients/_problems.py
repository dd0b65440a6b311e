"""What went wrong, in one plain sentence, with a stable code and an exit code: one table.

Every ``sealpost`` command reports a failure through :func:`problem_of`: the sentence says
what failed and what to check, the code is stable for scripts (``--json`` prints it), the
exit code is one of :class:`ExitCode` (docs/cli.md lists them). The raw text of the
underlying error (gRPC's, the key server's, the database driver's) is kept as ``detail``
and shown only under ``--verbose``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import grpc
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from sealpost.clients._grpc import ClientError
from sealpost.clients.relative import errors as relative_errors
from sealpost.clients.review import errors as review_errors
from sealpost.clients.terminal import errors as terminal_errors
from sealpost.crypto.errors import CryptoError, ForkError, RollbackError
from sealpost.errors import SealpostError
from sealpost.escrow import errors as escrow_errors
from sealpost.gateway.errors import ConfigError
from sealpost.i18n import UnknownLanguageError, _


class ExitCode(enum.IntEnum):
    """How a command ended; the same numbers in every program."""

    #: Done; a check found nothing.
    OK = 0
    #: Refused or failed (the gateway said no, the operation could not be done); a check
    #: found something.
    FAILED = 1
    #: Could not run as asked: a wrong or missing option, a file that cannot be read, a
    #: setting that does not fit (a wrong CA file). Fix the command or the settings.
    USAGE = 2
    #: Not now: a server could not be reached, did not answer in time, or asked to wait
    #: (for example the key server is sealed). Trying again later may succeed.
    UNAVAILABLE = 3
    #: What a server sent does not verify (a signature, a log proof, a fork or rollback of
    #: the log): do not retry; tell whoever runs the gateway and keep the output.
    NOT_VERIFIED = 4


@dataclass(frozen=True)
class Problem:
    """A failure as a person and a script see it."""

    code: str
    message: str
    exit: ExitCode
    #: The underlying error's own words, for --verbose.
    detail: str = ""


@dataclass(frozen=True)
class Where:
    """What the command was talking to, so that the sentence can name it."""

    gateway: str = ""
    ca_file: str = ""
    key_server: str = ""


_TLS_MARKERS: Final = (
    "ssl",
    "tls",
    "handshake",
    "certificate",
    "x509",
    "peer name",
)
_UNKNOWN_HOST_MARKERS: Final = ("resolving", "domain name not found", "name or service not known")


def _gateway_unavailable(exc: ClientError, where: Where) -> Problem:
    """UNAVAILABLE: nothing listening, a name that does not resolve, TLS that fails."""
    address = where.gateway or exc.address or _("the gateway")
    details = exc.message.lower()
    if any(marker in details for marker in _TLS_MARKERS):
        ca = where.ca_file or "--ca-file"
        return Problem(
            "gateway_tls_failed",
            _(
                "The TLS connection to the gateway at {address} failed: its certificate is not "
                "signed by the CA in {ca}, or it is not issued for that address. Check "
                "--ca-file (SEALPOST_CA_FILE) and --gateway.",
                address=address,
                ca=ca,
            ),
            ExitCode.USAGE,
            exc.message,
        )
    if any(marker in details for marker in _UNKNOWN_HOST_MARKERS):
        return Problem(
            "gateway_unknown_host",
            _(
                "The gateway's address {address} does not resolve: check the host name in "
                "--gateway (SEALPOST_GATEWAY).",
                address=address,
            ),
            ExitCode.USAGE,
            exc.message,
        )
    if "connection refused" in details or "failed to connect" in details:
        return Problem(
            "gateway_unreachable",
            _(
                "Nothing answers at {address}: is the gateway running, and is this its port? "
                "Check --gateway (SEALPOST_GATEWAY).",
                address=address,
            ),
            ExitCode.UNAVAILABLE,
            exc.message,
        )
    return Problem(
        "gateway_unavailable",
        _(
            "The gateway at {address} cannot serve this now (it or its database or key server "
            "is down or busy). Try again later.",
            address=address,
        ),
        ExitCode.UNAVAILABLE,
        exc.message,
    )


def _client_problem(exc: ClientError, where: Where) -> Problem:
    """A refusal or failure the gateway answered with."""
    if exc.code == grpc.StatusCode.UNAVAILABLE:
        return _gateway_unavailable(exc, where)
    if exc.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Problem(
            "gateway_timeout",
            _(
                "The gateway at {address} did not answer in time. Try again later.",
                address=where.gateway or exc.address or _("the gateway"),
            ),
            ExitCode.UNAVAILABLE,
            exc.message,
        )
    if exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Problem(
            "rate_limited",
            _("The gateway asks to slow down: {reason}", reason=exc.message),
            ExitCode.UNAVAILABLE,
            exc.message,
        )
    # The gateway's own words are one sentence for a person already (its error table).
    return Problem(exc.code.name.lower(), exc.message or exc.code.name, ExitCode.FAILED)


def _sign_in_problem(exc: escrow_errors.AuthenticationFailedError) -> Problem:
    if isinstance(exc, escrow_errors.SecondFactorRequiredError):
        return Problem(
            "second_factor_required",
            _(
                "This sign-in needs a one-time code from the authenticator app: set "
                "SEALPOST_TOTP, or run the command at a terminal to be asked."
            ),
            ExitCode.FAILED,
            str(exc),
        )
    return Problem(
        "sign_in_refused",
        _(
            "The key server refused the sign-in: check the user name, the password and, "
            "if you use one, the one-time code."
        ),
        ExitCode.FAILED,
        str(exc),
    )


def _key_server_problem(exc: escrow_errors.EscrowError, where: Where) -> Problem:
    address = where.key_server or _("the key server")
    if isinstance(exc, escrow_errors.KeyServerUnavailableError):
        return Problem(
            "key_server_unavailable",
            _(
                "The key server at {address} cannot serve now (down, sealed or busy). "
                "Try again later; if it lasts, tell its operators.",
                address=address,
            ),
            ExitCode.UNAVAILABLE,
            str(exc),
        )
    if isinstance(exc, escrow_errors.TransportSecurityError):
        return Problem(
            "key_server_tls_failed",
            _(
                "The TLS connection to the key server at {address} failed: check its address "
                "and the CA bundle.",
                address=address,
            ),
            ExitCode.USAGE,
            str(exc),
        )
    if isinstance(exc, escrow_errors.AuthenticationFailedError):
        return _sign_in_problem(exc)
    if isinstance(exc, escrow_errors.PermissionDeniedError) and exc.status is None:
        # Raised by Sealpost itself with words for this case.
        return Problem("key_server_permission_denied", exc.explain(), ExitCode.FAILED, str(exc))
    if isinstance(exc, escrow_errors.PermissionDeniedError):
        return Problem(
            "key_server_permission_denied",
            _(
                "The key server does not allow this: {reason}. Sign in again if your session "
                "has expired, or ask an administrator for the role.",
                reason=exc.explain(),
            ),
            ExitCode.FAILED,
            str(exc),
        )
    return Problem("key_server", exc.explain(), ExitCode.FAILED, str(exc))


def _verification_problem(exc: CryptoError, _where: Where) -> Problem:
    code = "log_inconsistent" if isinstance(exc, (ForkError, RollbackError)) else "not_verified"
    return Problem(code, exc.explain(), ExitCode.NOT_VERIFIED, str(exc))


#: Errors of each program with a code and exit of their own; the first match along the
#: error's class tree wins (so a subclass listed here beats its base's generic row).
_SPECIAL: Final[tuple[tuple[type[SealpostError], str, ExitCode], ...]] = (
    (relative_errors.ProfileNotFoundError, "profile_not_found", ExitCode.USAGE),
    (terminal_errors.ProfileNotFoundError, "profile_not_found", ExitCode.USAGE),
    (relative_errors.WrongPassphraseError, "wrong_passphrase", ExitCode.FAILED),
    (terminal_errors.WrongPassphraseError, "wrong_passphrase", ExitCode.FAILED),
    (relative_errors.WeakPassphraseError, "weak_passphrase", ExitCode.USAGE),
    (terminal_errors.WeakPassphraseError, "weak_passphrase", ExitCode.USAGE),
    (relative_errors.ProfileExistsError, "profile_exists", ExitCode.FAILED),
    (terminal_errors.ProfileExistsError, "profile_exists", ExitCode.FAILED),
    (relative_errors.ProfileBusyError, "profile_busy", ExitCode.FAILED),
    (terminal_errors.ProfileBusyError, "profile_busy", ExitCode.FAILED),
    (relative_errors.ProfileError, "profile_unusable", ExitCode.FAILED),
    (terminal_errors.ProfileError, "profile_unusable", ExitCode.FAILED),
    (relative_errors.DirectoryMismatchError, "directory_mismatch", ExitCode.NOT_VERIFIED),
    (relative_errors.ReceiptError, "receipt_not_verified", ExitCode.NOT_VERIFIED),
    (terminal_errors.UnprovenReleaseError, "unproven_release", ExitCode.NOT_VERIFIED),
    (terminal_errors.LogWitnessError, "log_inconsistent", ExitCode.NOT_VERIFIED),
    (terminal_errors.TerminalRevokedError, "terminal_revoked", ExitCode.FAILED),
    (terminal_errors.NoMailboxKeyError, "no_mailbox_key", ExitCode.FAILED),
    (terminal_errors.TerminalSettingsError, "configuration", ExitCode.USAGE),
    (review_errors.EvidenceCheckError, "evidence_not_verified", ExitCode.NOT_VERIFIED),
    (review_errors.EvidenceFormatError, "evidence_malformed", ExitCode.USAGE),
    (ConfigError, "configuration", ExitCode.USAGE),
)


def _database_unavailable(exc: OperationalError, _where: Where) -> Problem:
    return Problem(
        "database_unavailable",
        _("The database cannot be opened or reached: check --database-url and that it runs."),
        ExitCode.UNAVAILABLE,
        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
    )


def _database_problem(exc: SQLAlchemyError, _where: Where) -> Problem:
    return Problem(
        "database",
        _(
            "The database cannot be read as a Sealpost database: is it one, with its "
            "migrations applied?"
        ),
        ExitCode.USAGE,
        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
    )


def _file_problem(exc: OSError, _where: Where) -> Problem:
    name = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or str(exc)
    if name:
        message = _("Cannot use the file {name}: {reason}.", name=name, reason=reason)
    else:
        message = _("A file cannot be used: {reason}.", reason=reason)
    return Problem("file", message, ExitCode.USAGE, str(exc))


def _generic_problem(exc: SealpostError, _where: Where) -> Problem:
    return Problem("failed", exc.explain(), ExitCode.FAILED, str(exc))


def _language_problem(exc: UnknownLanguageError, _where: Where) -> Problem:
    return Problem("usage", str(exc), ExitCode.USAGE)


#: Words of a database driver's error that mean the database could not be reached at all
#: (psycopg, SQLite); any other OperationalError ("no such table") is a database that is
#: not what was asked for.
_UNREACHABLE_DATABASE: Final = (
    "could not connect",
    "connection refused",
    "connection failed",
    "connection timeout",
    "timeout expired",
    "server closed the connection",
    "the database system is starting up",
    "the database system is shutting down",
    "unable to open database file",
)


def _operational_problem(exc: OperationalError, where: Where) -> Problem:
    text = str(exc).lower()
    if any(marker in text for marker in _UNREACHABLE_DATABASE):
        return _database_unavailable(exc, where)
    return _database_problem(exc, where)


#: Everything else by kind, first match wins.
_HANDLERS: Final[tuple[tuple[type[BaseException], Callable[[Any, Where], Problem]], ...]] = (
    (ClientError, _client_problem),
    (escrow_errors.EscrowError, _key_server_problem),
    (CryptoError, _verification_problem),
    (SealpostError, _generic_problem),
    (UnknownLanguageError, _language_problem),
    (OperationalError, _operational_problem),
    (SQLAlchemyError, _database_problem),
    (OSError, _file_problem),
)


def problem_of(exc: BaseException, where: Where | None = None) -> Problem | None:
    """The problem to report for ``exc``; None for an error that is a bug (let it show)."""
    if isinstance(exc, BrokenPipeError):
        return None  # the reader went away (| head): Click ends quietly
    for kind, code, exit_code in _SPECIAL:
        if isinstance(exc, kind):
            return Problem(code, exc.explain(), exit_code, str(exc))
    for handled, handle in _HANDLERS:
        if isinstance(exc, handled):
            return handle(exc, where or Where())
    return None
