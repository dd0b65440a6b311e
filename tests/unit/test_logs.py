"""Logs are safe by construction: only allow-listed fields reach the output."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from sealpost._internal import logs


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    logs.configure("debug", stream=stream)
    return stream


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_unlisted_fields_are_dropped_and_named(captured: io.StringIO) -> None:
    log = logs.get_logger("test")
    log.info("send", message_id="ab12", body="CANARY-PLAINTEXT", token="secret-token", count=3)
    (record,) = _records(captured)
    assert record["message_id"] == "ab12"
    assert record["count"] == 3
    assert record["dropped_fields"] == ["body", "token"]
    assert "CANARY-PLAINTEXT" not in captured.getvalue()
    assert "secret-token" not in captured.getvalue()


def test_context_fields_pass_the_same_filter(captured: io.StringIO) -> None:
    structlog.contextvars.bind_contextvars(request_id="r-1234567", authorization="Bearer abc")
    try:
        logs.get_logger("test").info("call")
    finally:
        structlog.contextvars.clear_contextvars()
    (record,) = _records(captured)
    assert record["request_id"] == "r-1234567"
    assert "Bearer abc" not in captured.getvalue()


def test_level_filter(captured: io.StringIO) -> None:
    logs.configure("warning", stream=captured)
    log = logs.get_logger("test")
    log.info("quiet")
    log.warning("loud")
    assert [r["event"] for r in _records(captured)] == ["loud"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level must be one of"):
        logs.configure("verbose")
