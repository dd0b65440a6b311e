"""The review command line's own parsing and naming: ids, pins, dates, waits, file names."""

from __future__ import annotations

import datetime as dt

import pytest
import typer

from sealpost.clients.review import _format
from sealpost.clients.review.cli import _safe_name, parse_message_id, parse_moment, parse_pin


def test_message_ids_are_32_hex_digits() -> None:
    assert parse_message_id("00" * 16) == bytes(16)
    assert parse_message_id(" " + "Ab" * 16 + "\n") == b"\xab" * 16
    for bad in ["", "zz" * 16, "00" * 15, "00" * 17, "0" * 31]:
        with pytest.raises(typer.BadParameter):
            parse_message_id(bad)


def test_directory_pin_is_64_hex_digits() -> None:
    assert parse_pin("11" * 32).signing_key == b"\x11" * 32
    for bad in ["", "11" * 31, "xy" * 32]:
        with pytest.raises(typer.BadParameter):
            parse_pin(bad)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp() * 1000)


def test_dates_cover_whole_days_and_default_to_utc() -> None:
    assert parse_moment("2026-03-01", end_of_day=False) == _utc(2026, 3, 1)
    assert parse_moment("2026-03-31", end_of_day=True) == _utc(2026, 4, 1)
    assert parse_moment("2026-03-01T12:30:00", end_of_day=True) == _utc(2026, 3, 1, 12, 30)
    assert parse_moment("2026-03-01T12:30:00+02:00", end_of_day=False) == _utc(2026, 3, 1, 10, 30)
    with pytest.raises(typer.BadParameter):
        parse_moment("1 March", end_of_day=False)


def test_attachment_names_stay_inside_the_folder() -> None:
    taken: set[str] = set()
    assert _safe_name("brief.pdf", 1, taken) == "brief.pdf"
    assert _safe_name("brief.pdf", 2, taken) == "2-brief.pdf"
    assert _safe_name("../../etc/passwd", 3, taken) == "passwd"
    assert _safe_name("", 4, taken) == "attachment-4"
    assert _safe_name("..", 5, taken) == "attachment-5"
    assert _safe_name(".bashrc", 6, taken) == "attachment-6"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3660, "1h 01m"), (90_000, "1d 01h")],
)
def test_waiting_times_read_naturally(seconds: int, shown: str) -> None:
    assert _format.waited(seconds) == shown
