"""The pure rules of the key-server-kept session-token key: stored value, metadata, schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sealpost.escrow.errors import UnexpectedResponseError
from sealpost.gateway import auth
from sealpost.gateway.errors import Unauthenticated
from sealpost.gateway.tokenkeys import (
    KeyVersion,
    check_periods,
    issuing_key,
    keys_in_use,
    parse_metadata,
    parse_stored_key,
    parse_time,
    rotation_due,
    stored_value,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
WHERE = "session-token key t-gateway/session-token-key version 3"
DELAY = timedelta(minutes=3)


def test_stored_value_round_trips() -> None:
    assert stored_value(KEY_A) == {"format": 1, "token_key": KEY_A.hex()}
    assert parse_stored_key(stored_value(KEY_A), WHERE) == KEY_A


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "not an object"),
        ("00" * 32, "not an object"),
        ({"token_key": "00" * 32}, "format None is not 1"),
        ({"format": 2, "token_key": "00" * 32}, "format 2 is not 1"),
        ({"format": "1", "token_key": "00" * 32}, "format '1' is not 1"),
        ({"format": 1}, "no token_key"),
        ({"format": 1, "token_key": 7}, "no token_key"),
        ({"format": 1, "token_key": "zz" * 32}, "not hexadecimal"),
        ({"format": 1, "token_key": "abc"}, "not hexadecimal"),
        ({"format": 1, "token_key": "00" * 31}, "has 31 bytes, not 32"),
        ({"format": 1, "token_key": "00" * 33}, "has 33 bytes, not 32"),
        ({"format": 1, "token_key": ""}, "has 0 bytes, not 32"),
    ],
)
def test_malformed_stored_values_are_refused(data: object, message: str) -> None:
    with pytest.raises(UnexpectedResponseError, match=message) as info:
        parse_stored_key(data, WHERE)
    assert str(info.value).startswith(f"{WHERE} is malformed")


def test_a_refusal_never_shows_the_stored_value() -> None:
    secret_looking = "ab" * 31 + "zz"
    with pytest.raises(UnexpectedResponseError) as info:
        parse_stored_key({"format": 1, "token_key": secret_looking}, WHERE)
    assert secret_looking not in str(info.value)
    assert "ab" * 4 not in str(info.value)


def _version(created: str, *, deleted: str = "", destroyed: bool = False) -> dict[str, Any]:
    return {"created_time": created, "deletion_time": deleted, "destroyed": destroyed}


def test_metadata_lists_versions_alive_and_gone() -> None:
    meta = parse_metadata(
        {
            "current_version": 4,
            "versions": {
                "2": _version("2026-01-01T00:00:00Z", destroyed=True),
                "3": _version("2026-01-02T00:00:00Z", deleted="2026-01-02T01:00:00Z"),
                "4": _version("2026-01-03T00:00:00.123456789Z"),
            },
        },
        "read metadata",
    )
    assert meta.current_version == 4
    assert meta.alive == {4: pytest.approx(1767398400.123456)}
    assert meta.gone == frozenset({2, 3})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"versions": {}}, "current_version"),
        ({"current_version": True, "versions": {}}, "current_version"),
        ({"current_version": 1}, "no list of versions"),
        ({"current_version": 1, "versions": {"x": {}}}, "malformed list"),
        ({"current_version": 1, "versions": {"1": "yes"}}, "malformed list"),
        ({"current_version": 2, "versions": {"1": _version("2026-01-01T00:00:00Z")}}, "not listed"),
        ({"current_version": 1, "versions": {"1": _version("")}}, "no creation time"),
        ({"current_version": 1, "versions": {"1": _version("yesterday")}}, "malformed creation"),
    ],
)
def test_malformed_metadata_is_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(UnexpectedResponseError, match=message):
        parse_metadata(data, "read metadata")


def test_parse_time_reads_key_server_timestamps() -> None:
    assert parse_time("1970-01-01T00:01:40Z", "x") == 100.0
    assert parse_time("1970-01-01T00:01:40.5Z", "x") == 100.5


def test_rotation_is_due_at_the_period_not_before() -> None:
    day = timedelta(days=1)
    assert not rotation_due(1000.0, 1000.0 + 86399.9, day)
    assert rotation_due(1000.0, 1000.0 + 86400.0, day)
    assert rotation_due(1000.0, 1000.0 + 90000.0, day)


def test_the_first_key_makes_tokens_at_once() -> None:
    first = KeyVersion(1, KEY_A, 1000.0)
    keys = keys_in_use(first, None, 1000.0, DELAY)
    assert (keys.current, keys.previous) == (KEY_A, None)
    assert issuing_key(first, None, 1000.0, DELAY) is first


def test_a_new_key_verifies_at_once_and_makes_tokens_after_the_delay() -> None:
    old = KeyVersion(1, KEY_A, 0.0)
    new = KeyVersion(2, KEY_B, 1000.0)
    young = keys_in_use(new, old, 1000.0 + 179.0, DELAY)
    assert (young.current, young.previous) == (KEY_A, KEY_B)
    assert issuing_key(new, old, 1000.0 + 179.0, DELAY).version == 1
    grown = keys_in_use(new, old, 1000.0 + 180.0, DELAY)
    assert (grown.current, grown.previous) == (KEY_B, KEY_A)
    assert issuing_key(new, old, 1000.0 + 180.0, DELAY).version == 2
    # A token made while the new key waited verifies once it makes tokens, and vice versa.
    session = auth.SessionToken("acct", b"\x01" * 32, 10**13)
    made_before = auth.issue_session_token(young, session)
    made_after = auth.issue_session_token(grown, session)
    assert made_before != made_after
    for keys in (young, grown):
        assert auth.verify_session_token(keys, made_before, 0) == session
        assert auth.verify_session_token(keys, made_after, 0) == session
    with pytest.raises(Unauthenticated):
        auth.verify_session_token(auth.TokenKeys(KEY_B), made_before, 0)


def test_periods_that_would_sign_relatives_out_are_refused() -> None:
    check_periods(timedelta(days=1), DELAY)
    check_periods(timedelta(minutes=19), DELAY)
    with pytest.raises(ValueError, match="rotation_period must exceed"):
        check_periods(timedelta(minutes=18), DELAY)
    with pytest.raises(ValueError, match="rotation_period must exceed"):
        check_periods(timedelta(minutes=15), timedelta(0))
    with pytest.raises(ValueError, match="negative"):
        check_periods(timedelta(days=1), timedelta(seconds=-1))
