"""hvac and requests exceptions map to the escrow error tree, and never carry response bodies."""

from __future__ import annotations

import hvac.exceptions
import pytest
import requests.exceptions

from sealpost.errors import SealpostError
from sealpost.escrow.errors import (
    STATUS_ATTRIBUTE,
    EscrowError,
    InvalidRequestError,
    KeyServerUnavailableError,
    KeyVersionRetiredError,
    NotFoundError,
    PermissionDeniedError,
    TransportSecurityError,
    UnexpectedResponseError,
    error_for_status,
    translate,
)

PLAINTEXT = "U0VDUkVUUExBSU5URVhUU0VDUkVUUExBSU5URVhUISE="  # what a batch body would leak


def vault_error(
    cls: type[hvac.exceptions.VaultError], errors: list[str] | None = None, **kw: object
) -> hvac.exceptions.VaultError:
    # Like hvac's adapter: without an ``errors`` list, the message is the response text.
    return cls(
        kw.get("text") or "message",
        errors=errors,
        method="post",
        url="http://bao/v1/x",
        text=kw.get("text"),
        json=kw.get("json"),
    )


@pytest.mark.parametrize(
    ("cls", "expected", "status"),
    [
        (hvac.exceptions.InvalidRequest, InvalidRequestError, 400),
        (hvac.exceptions.Unauthorized, PermissionDeniedError, 401),
        (hvac.exceptions.Forbidden, PermissionDeniedError, 403),
        (hvac.exceptions.InvalidPath, NotFoundError, 404),
        (hvac.exceptions.PreconditionFailed, KeyServerUnavailableError, 412),
        (hvac.exceptions.RateLimitExceeded, KeyServerUnavailableError, 429),
        (hvac.exceptions.InternalServerError, KeyServerUnavailableError, 500),
        (hvac.exceptions.VaultNotInitialized, KeyServerUnavailableError, 501),
        (hvac.exceptions.BadGateway, KeyServerUnavailableError, 502),
        (hvac.exceptions.VaultDown, KeyServerUnavailableError, 503),
    ],
)
def test_hvac_classes_map_by_status(
    cls: type[hvac.exceptions.VaultError], expected: type[EscrowError], status: int
) -> None:
    error = translate(vault_error(cls, ["boom"]), "transit encrypt")
    assert type(error) is expected
    assert error.status == status
    assert "transit encrypt" in str(error)
    assert "boom" in str(error)
    assert isinstance(error, SealpostError)


def test_sealed_server_is_unavailable_and_says_so() -> None:
    error = translate(vault_error(hvac.exceptions.VaultDown, ["Vault is sealed"]), "decrypt")
    assert isinstance(error, KeyServerUnavailableError)
    assert "sealed" in str(error)
    assert "unavailable" in error.explain()


def test_recorded_status_wins_over_class() -> None:
    exc = vault_error(hvac.exceptions.UnexpectedError, ["gateway timeout"])
    setattr(exc, STATUS_ATTRIBUTE, 504)
    assert isinstance(translate(exc, "op"), KeyServerUnavailableError)
    exc = vault_error(hvac.exceptions.UnexpectedError, ["conflict"])
    setattr(exc, STATUS_ATTRIBUTE, 409)
    assert isinstance(translate(exc, "op"), UnexpectedResponseError)


def test_unknown_status_is_unexpected() -> None:
    error = translate(vault_error(hvac.exceptions.UnexpectedError), "op")
    assert isinstance(error, UnexpectedResponseError)


def test_retired_version_is_its_own_error() -> None:
    exc = vault_error(
        hvac.exceptions.InvalidRequest,
        ["ciphertext or signature version is disallowed by policy (too old)"],
    )
    error = translate(exc, "transit decrypt")
    assert isinstance(error, KeyVersionRetiredError)
    assert isinstance(error, InvalidRequestError)


def test_wrong_context_is_invalid_request_not_retired() -> None:
    exc = vault_error(hvac.exceptions.InvalidRequest, ["cipher: message authentication failed"])
    error = translate(exc, "transit decrypt")
    assert type(error) is InvalidRequestError


def test_batch_refused_in_part_never_carries_the_body() -> None:
    body = {
        "data": {
            "batch_results": [
                {"plaintext": PLAINTEXT, "reference": ""},
                {"plaintext": "", "error": "cipher: message authentication failed"},
            ]
        }
    }
    exc = vault_error(hvac.exceptions.InvalidRequest, None, text=str(body), json=body)
    assert PLAINTEXT in str(exc)  # hvac itself would leak it
    error = translate(exc, "transit batch decrypt")
    assert isinstance(error, InvalidRequestError)
    assert error.item_errors == (None, "cipher: message authentication failed")
    assert PLAINTEXT not in str(error)
    assert PLAINTEXT not in repr(error)
    assert PLAINTEXT not in error.explain()
    assert "1 of 2" in str(error)


def test_batch_retired_items_are_reported_as_retired() -> None:
    body = {"data": {"batch_results": [{"error": "... disallowed by policy (too old)"}]}}
    error = translate(vault_error(hvac.exceptions.InvalidRequest, json=body), "op")
    assert isinstance(error, KeyVersionRetiredError)


def test_server_error_strings_are_flattened_and_bounded() -> None:
    exc = vault_error(hvac.exceptions.Forbidden, ["1 error occurred:\n\t* permission denied\n\n"])
    error = translate(exc, "transit decrypt")
    assert "\n" not in str(error)
    assert "permission denied" in str(error)
    long = translate(vault_error(hvac.exceptions.Forbidden, ["x" * 5000]), "op")
    assert len(str(long)) < 300


def test_param_validation_is_invalid_request() -> None:
    exc = hvac.exceptions.ParamValidationError("min_encryption_version must be 0 or greater")
    assert isinstance(translate(exc, "op"), InvalidRequestError)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (requests.exceptions.ConnectionError("refused"), KeyServerUnavailableError),
        (requests.exceptions.ConnectTimeout("slow"), KeyServerUnavailableError),
        (requests.exceptions.ReadTimeout("slow"), KeyServerUnavailableError),
        (requests.exceptions.SSLError("bad cert"), TransportSecurityError),
        (requests.exceptions.JSONDecodeError("x", "doc", 0), UnexpectedResponseError),
        (requests.exceptions.InvalidURL("no"), InvalidRequestError),
        (ValueError("other"), UnexpectedResponseError),
    ],
)
def test_transport_errors(exc: BaseException, expected: type[EscrowError]) -> None:
    error = translate(exc, "transit encrypt")
    assert type(error) is expected
    assert error.status is None


def test_escrow_errors_pass_through() -> None:
    error = NotFoundError("x")
    assert translate(error, "op") is error


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidRequestError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (503, KeyServerUnavailableError),
        (599, KeyServerUnavailableError),
        (418, UnexpectedResponseError),
        (None, UnexpectedResponseError),
    ],
)
def test_error_for_status(status: int | None, expected: type[EscrowError]) -> None:
    assert type(error_for_status("op", status, ["why"])) is expected
