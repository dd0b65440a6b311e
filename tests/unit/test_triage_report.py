"""Signals as stored (triage/v1), their reasons in words, and the screening order."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sealpost.clients.triage import (
    FORMAT,
    FormatError,
    OldVersionError,
    Queued,
    Report,
    Signal,
    UnknownVersionError,
    explain,
    rank,
)
from sealpost.clients.triage.signals import REASONS, signal
from sealpost.i18n import use_staff_language

PHONE = signal("phone", 0, "text", 10, 21, "06-12345678", "phone", 0.9, region="NL")
IBAN = signal("bank-account", 1, "ocr", 3, 25, "NL91 ABNA 0417 1643 00", "iban", 0.97, country="NL")
LANGUAGE = signal("language", 0, "text", 0, 40, "", "language", 0.99, language="ar")


def test_a_report_round_trips_through_json() -> None:
    report = Report((PHONE, IBAN, LANGUAGE))
    stored = report.to_json()
    body = json.loads(stored)
    assert body["format"] == FORMAT == "triage/v1"
    assert body["signals"][0] == {
        "detector": "phone", "part": 0, "source": "text", "start": 10, "end": 21,
        "text": "06-12345678", "reason": "phone", "values": {"region": "NL"}, "confidence": 0.9,
    }  # fmt: skip
    assert Report.from_json(stored) == report
    assert Report.from_json(stored.encode()) == report


@pytest.mark.parametrize(
    ("format_", "error"),
    [("triage/v2", UnknownVersionError), ("triage/v0", OldVersionError), ("other", FormatError)],
)
def test_other_formats_are_refused_with_distinct_errors(
    format_: str, error: type[FormatError]
) -> None:
    with pytest.raises(error):
        Report.from_json(json.dumps({"format": format_, "signals": []}))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.update(confidence=1.5),
        lambda s: s.update(start=30),
        lambda s: s.update(part=True),
        lambda s: s.update(source="disk"),
        lambda s: s.update(values={"region": 31}),
        lambda s: s.pop("reason"),
    ],
)
def test_malformed_signals_are_refused(mangle: object) -> None:
    body = json.loads(Report((PHONE,)).to_json())
    assert callable(mangle)
    mangle(body["signals"][0])
    with pytest.raises(FormatError):
        Report.from_json(json.dumps(body))


@pytest.mark.parametrize("text", ["", "[]", "{", '{"format": "triage/v1"}'])
def test_not_a_report(text: str) -> None:
    with pytest.raises(FormatError):
        Report.from_json(text)


def test_impossible_signals_are_bugs() -> None:
    with pytest.raises(ValueError, match="confidence"):
        Signal("phone", 0, "text", 0, 1, "x", "phone", -0.1)
    with pytest.raises(ValueError, match="span"):
        Signal("phone", 0, "text", 5, 1, "x", "phone", 0.5)


def test_reasons_read_in_dutch_and_english() -> None:
    try:
        use_staff_language("nl")
        dutch = [explain(s) for s in (PHONE, IBAN, LANGUAGE)]
        use_staff_language("en")
        english = [explain(s) for s in (PHONE, IBAN, LANGUAGE)]
    finally:
        use_staff_language("en")
    assert english == [
        "A phone number (NL).",
        "A bank account (IBAN, NL) with a valid checksum.",
        "Written in Arabic.",
    ]
    assert dutch[2] == "Geschreven in het Arabisch."
    assert all(d != e for d, e in zip(dutch, english, strict=True))


def test_every_reason_has_words_and_unknown_codes_stay_codes() -> None:
    values = {
        "region": "NL", "country": "NL", "last4": "1111", "host": "t.me", "latitude": "52",
        "longitude": "5", "postcode": "2511 DP", "entry": "Yusuf", "list": "d-1", "kind": "x",
        "language": "nl", "length": "64", "size": "100", "width": "1", "height": "1", "count": "2",
    }  # fmt: skip
    for code in REASONS:
        s = signal("x", 0, "text", 0, 0, "", code, 0.5, **values)
        assert explain(s) != code
    assert explain(signal("x", 0, "text", 0, 0, "", "from-the-future", 0.5)) == "from-the-future"


T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def queued(name: str, minutes: int, *signals: Signal) -> Queued:
    return Queued(name, T0 + dt.timedelta(minutes=minutes), Report(signals))


def test_findings_go_first_among_findings_and_messages_without_keep_their_place() -> None:
    a = queued("a", 0)
    b = queued("b", 1, PHONE)
    c = queued("c", 2, LANGUAGE)  # informational only: no finding
    d = queued("d", 3, PHONE, IBAN)
    e = queued("e", 4)
    f = queued("f", 5, IBAN)
    order = [q.message_id for q in rank([f, e, d, c, b, a])]
    # By age: a b c d e f. a, c and e keep places 0, 2 and 4; d (1.87) > f (0.97) > b (0.9).
    assert order == ["a", "d", "c", "f", "e", "b"]


def test_no_finding_is_never_delayed() -> None:
    queue = [queued(f"m{i}", i, *([PHONE] * (i % 3))) for i in range(30)]
    by_age = sorted(queue, key=lambda q: q.waiting_since)
    ranked = rank(queue)
    for position, q in enumerate(by_age):
        if q.report.score == 0:
            assert ranked.index(q) == position


def test_equal_weight_goes_oldest_first() -> None:
    order = rank([queued("new", 9, PHONE), queued("old", 1, PHONE)])
    assert [q.message_id for q in order] == ["old", "new"]


def test_ranking_withholds_nothing() -> None:
    queue = [queued(f"m{i}", i, *([IBAN] * (i % 2))) for i in range(10)]
    assert sorted(q.message_id for q in rank(queue)) == sorted(q.message_id for q in queue)
