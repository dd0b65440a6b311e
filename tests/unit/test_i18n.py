"""Languages chosen the documented way; times as they are in the Netherlands."""

from __future__ import annotations

import datetime as dt

import pytest

from sealpost import i18n


@pytest.mark.parametrize(
    ("flag", "environ", "expected"),
    [
        (None, {}, "en"),
        (None, {"LANG": "nl_NL.UTF-8"}, "nl"),
        (None, {"LANG": "C.UTF-8"}, "en"),
        (None, {"LANGUAGE": "fr:nl", "LANG": "en_GB.UTF-8"}, "nl"),
        (None, {"LC_ALL": "en_US.UTF-8", "LANG": "nl_NL.UTF-8"}, "en"),
        (None, {"LANG": "ar_MA.UTF-8"}, "en"),  # staff programs speak Dutch and English
        (None, {"SEALPOST_LANGUAGE": "nl", "LC_ALL": "en_US.UTF-8"}, "nl"),
        ("en", {"SEALPOST_LANGUAGE": "nl"}, "en"),
        ("nl-NL", {}, "nl"),
    ],
)
def test_staff_language_precedence(
    flag: str | None, environ: dict[str, str], expected: str
) -> None:
    assert i18n.staff_language_from(flag, environ) == expected


def test_a_flag_naming_a_language_the_staff_programs_do_not_speak_is_refused() -> None:
    with pytest.raises(i18n.UnknownLanguageError, match="choose one of nl, en"):
        i18n.staff_language_from("ar", {})


def test_a_variable_naming_one_is_passed_over() -> None:
    # SEALPOST_LANGUAGE=ar is a relative's choice; staff programs then follow the locale.
    assert i18n.staff_language_from(None, {"SEALPOST_LANGUAGE": "ar", "LANG": "nl_NL"}) == "nl"
    assert i18n.language_from(i18n.LANGUAGES, None, {"SEALPOST_LANGUAGE": "ar"}) == "ar"


def test_detainee_languages() -> None:
    assert [i18n.translator("detainee", lang).language for lang in i18n.LANGUAGES] == [
        "nl", "en", "ar", "tr", "pl",
    ]  # fmt: skip
    assert i18n.translator("detainee", "ar").right_to_left
    assert not i18n.translator("detainee", "tr").right_to_left
    with pytest.raises(i18n.UnknownLanguageError):
        i18n.translator("detainee", "de")
    with pytest.raises(i18n.UnknownLanguageError):
        i18n.translator("staff", "pl")


def test_times_are_dutch_local_time_in_winter_and_summer() -> None:
    dutch = i18n.translator("detainee", "nl")
    assert dutch.datetime(dt.datetime(2026, 12, 4, 5, 45, tzinfo=dt.UTC)) == "4 dec 2026, 06:45"
    assert dutch.datetime(dt.datetime(2026, 7, 4, 5, 45, tzinfo=dt.UTC)) == "4 jul 2026, 07:45"
    # A naive time is UTC, as everywhere in Sealpost.
    assert dutch.datetime(dt.datetime(2026, 7, 4, 5, 45)) == "4 jul 2026, 07:45"
    # Just before midnight UTC is the next day in Amsterdam.
    assert dutch.date(dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)) == "1 januari 2027"
    assert i18n.translator("detainee", "pl").date(dt.date(2026, 12, 4)) == "4 grudnia 2026"
