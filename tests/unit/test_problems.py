"""One table turns every failure into a sentence, a stable code and an exit code."""

from __future__ import annotations

import errno

import grpc
import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from sealpost.clients._grpc import ClientError
from sealpost.clients._problems import ExitCode, Where, problem_of
from sealpost.clients.relative import errors as relative_errors
from sealpost.clients.terminal import errors as terminal_errors
from sealpost.crypto.errors import ForkError, SignatureError
from sealpost.escrow import errors as escrow_errors

WHERE = Where(gateway="gw.example:443", ca_file="/etc/sealpost/ca.pem", key_server="https://kms")
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("error", "code", "exit_code", "words"),
    [
        (
            ClientError(UNAVAILABLE, "failed to connect to all addresses; last error: UNKNOWN: "
                        "ipv4:10.0.0.1:443: Failed to connect to remote host: Connection refused"),
            "gateway_unreachable", ExitCode.UNAVAILABLE, "Nothing answers at gw.example:443",
        ),
        (
            ClientError(UNAVAILABLE, "failed to connect to all addresses; last error: UNKNOWN: "
                        "ipv4:10.0.0.1:443: Ssl handshake failed: SSL_ERROR_SSL: error:1000007d:"
                        "SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED"),
            "gateway_tls_failed", ExitCode.USAGE, "not signed by the CA in /etc/sealpost/ca.pem",
        ),
        (
            ClientError(UNAVAILABLE, "DNS resolution failed for gw.example:443: C-ares status is "
                        "not ARES_SUCCESS qtype=A name=gw.example is_balancer=0: Domain name not "
                        "found"),
            "gateway_unknown_host", ExitCode.USAGE, "does not resolve",
        ),
        (
            ClientError(UNAVAILABLE, "the key server is sealed"),
            "gateway_unavailable", ExitCode.UNAVAILABLE, "Try again later",
        ),
        (
            ClientError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
            "gateway_timeout", ExitCode.UNAVAILABLE, "did not answer in time",
        ),
        (
            ClientError(grpc.StatusCode.PERMISSION_DENIED, "outside your institutions"),
            "permission_denied", ExitCode.FAILED, "outside your institutions",
        ),
        (
            ClientError(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many requests"),
            "rate_limited", ExitCode.UNAVAILABLE, "slow down",
        ),
        (
            escrow_errors.KeyServerUnavailableError("connection refused"),
            "key_server_unavailable", ExitCode.UNAVAILABLE, "The key server at https://kms",
        ),
        (
            escrow_errors.AuthenticationFailedError("invalid username or password"),
            "sign_in_refused", ExitCode.FAILED, "check the user name, the password",
        ),
        (
            escrow_errors.SecondFactorRequiredError("no one-time code"),
            "second_factor_required", ExitCode.FAILED, "needs a one-time code",
        ),
        (
            escrow_errors.TransportSecurityError("certificate verify failed"),
            "key_server_tls_failed", ExitCode.USAGE, "key server at https://kms failed",
        ),
        (SignatureError("bad signature"), "not_verified", ExitCode.NOT_VERIFIED, "bad signature"),
        (ForkError("two heads"), "log_inconsistent", ExitCode.NOT_VERIFIED, "two heads"),
        (
            terminal_errors.UnprovenReleaseError.__new__(terminal_errors.UnprovenReleaseError),
            "unproven_release", ExitCode.NOT_VERIFIED, "",
        ),
        (
            relative_errors.ProfileNotFoundError("no profile in /home/x"),
            "profile_not_found", ExitCode.USAGE, "no profile in /home/x",
        ),
        (
            terminal_errors.WrongPassphraseError("the passphrase is wrong"),
            "wrong_passphrase", ExitCode.FAILED, "the passphrase does not open",
        ),
        (
            OperationalError("connect", {}, Exception("could not connect to server")),
            "database_unavailable", ExitCode.UNAVAILABLE, "--database-url",
        ),
        (
            ProgrammingError("select", {}, Exception("no such table: log_leaves")),
            "database", ExitCode.USAGE, "migrations",
        ),
        (
            OperationalError("select", {}, Exception("no such table: log_leaves")),
            "database", ExitCode.USAGE, "migrations",
        ),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory", "/tmp/x.pem"),
            "file", ExitCode.USAGE, "Cannot use the file /tmp/x.pem: No such file or directory.",
        ),
    ],
)  # fmt: skip
def test_each_failure_has_its_words_code_and_exit(
    error: BaseException, code: str, exit_code: ExitCode, words: str
) -> None:
    problem = problem_of(error, WHERE)
    assert problem is not None
    assert (problem.code, problem.exit) == (code, exit_code)
    assert words in problem.message
    # Never gRPC's own text in the sentence: that is the detail, for --verbose.
    for raw in ("SSL_ERROR", "ipv4:", "C-ares", "UNKNOWN:", "UNAVAILABLE"):
        assert raw not in problem.message


def test_a_bug_is_not_dressed_up_as_a_failure() -> None:
    assert problem_of(KeyError("x")) is None
    assert problem_of(BrokenPipeError(errno.EPIPE, "Broken pipe")) is None


def test_the_exit_codes_are_the_documented_ones() -> None:
    assert [(e.name, e.value) for e in ExitCode] == [
        ("OK", 0), ("FAILED", 1), ("USAGE", 2), ("UNAVAILABLE", 3), ("NOT_VERIFIED", 4),
    ]  # fmt: skip


def test_the_address_comes_from_the_error_when_the_command_did_not_say() -> None:
    refused = ClientError(UNAVAILABLE, "Connection refused", address="gw.relatives.example:443")
    problem = problem_of(refused)
    assert problem is not None
    assert problem.message.startswith("Nothing answers at gw.relatives.example:443:")
