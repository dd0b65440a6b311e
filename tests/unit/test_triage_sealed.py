"""Sealed triage: summaries without text, of one size; watch lists; the queue's order."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import pytest

from sealpost.clients.review import triage as review_triage
from sealpost.clients.terminal.client import Intake
from sealpost.clients.terminal.triage import IntakeTriage
from sealpost.clients.triage import (
    EntryKind,
    FormatError,
    OldVersionError,
    Queued,
    Report,
    UnknownVersionError,
    WatchEntry,
    WatchList,
    rank,
)
from sealpost.clients.triage.sealed import (
    LIST_BLOCK_BYTES,
    SUMMARY_BYTES,
    Summary,
    decode_watch_list,
    encode_watch_list,
    summary_context,
    watch_list_context,
)
from sealpost.clients.triage.signals import signal
from sealpost.crypto import domains
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.envelope import Part
from sealpost.v1 import common_pb2, review_pb2

PHONE = signal("phone", 0, "text", 8, 19, "06-12345678", "phone", 0.9, region="NL")
NAME = signal("watch-list", 0, "text", 0, 18, "Mohammed El Amrani", "contact-ban", 0.95)
DUTCH = signal("language", 0, "text", 0, 40, "", "language", 0.88, language="nl")


def test_a_summary_counts_detectors_and_holds_no_text_of_the_message() -> None:
    summary = Summary.of(Report((NAME, PHONE, PHONE, DUTCH)))
    assert summary.counts == (("phone", 2), ("watch-list", 1))
    assert summary.score == pytest.approx(2.75)
    assert (summary.language, summary.language_confidence) == ("nl", 0.88)
    raw = summary.encode()
    assert len(raw) == SUMMARY_BYTES
    for text in ("06-12345678", "Mohammed", "Amrani", "NL"):
        assert text.encode() not in raw
    assert Summary.decode(raw) == summary


def test_every_summary_has_the_same_size_findings_or_not() -> None:
    empty = Summary.of(Report(()))
    full = Summary.of(Report((*(PHONE for _ in range(5000)), NAME, DUTCH)))
    assert len(empty.encode()) == len(full.encode()) == SUMMARY_BYTES
    assert dict(full.counts)["phone"] == 999  # counts are capped, so sizes cannot tell


@pytest.mark.parametrize(
    ("marker", "error"),
    [("triage-summary/v2", UnknownVersionError), ("triage-summary/v0", OldVersionError)],
)
def test_other_summary_versions_are_refused_distinctly(marker: str, error: type[Exception]) -> None:
    body = json.dumps(
        {"format": marker, "counts": {}, "score": 0, "language": "", "language_confidence": 0}
    )
    with pytest.raises(error):
        Summary.decode(body.encode().ljust(SUMMARY_BYTES))


@pytest.mark.parametrize(
    "data",
    [
        b"x" * SUMMARY_BYTES,
        b"{}".ljust(SUMMARY_BYTES),
        b'{"format":"triage-summary/v1"}',  # not padded: the size is part of the format
        json.dumps(
            {
                "format": "triage-summary/v1",
                "counts": {"phone": -1},
                "score": 1,
                "language": "",
                "language_confidence": 0,
            }
        )
        .encode()
        .ljust(SUMMARY_BYTES),
    ],
)
def test_malformed_summaries_are_refused(data: bytes) -> None:
    with pytest.raises(FormatError):
        Summary.decode(data)


def test_contexts_are_domain_separated_and_bound_to_their_object() -> None:
    one, two = bytes(16), bytes([1] * 16)
    assert summary_context(one) != summary_context(two)
    assert summary_context(one).startswith(domains.TRIAGE_SUMMARY_CONTEXT + b"\x00")
    assert watch_list_context("pi-a", "d-1") != watch_list_context("pi-a", "")
    assert watch_list_context("pi-a", "") != watch_list_context("pi-b", "")
    assert watch_list_context("pi-a", "d-1").startswith(domains.TRIAGE_WATCH_LIST_CONTEXT)
    with pytest.raises(ValueError, match="16 bytes"):
        summary_context(b"short")


def test_a_watch_list_round_trips_padded_to_whole_blocks() -> None:
    entries = (
        WatchEntry(EntryKind.CONTACT_BAN, "محمد العمراني"),
        WatchEntry(EntryKind.CODE_WORD, "witte sneeuw"),
    )
    raw = encode_watch_list(entries)
    assert len(raw) % LIST_BLOCK_BYTES == 0
    assert decode_watch_list(raw, "d-1") == WatchList("d-1", entries)
    assert len(encode_watch_list(())) == LIST_BLOCK_BYTES
    with pytest.raises(ValueError, match="characters"):
        encode_watch_list((WatchEntry(EntryKind.CODE_WORD, " "),))
    with pytest.raises(FormatError):
        decode_watch_list(b'{"format":"watch-list/v1","entries":[{"kind":"x","text":"y"}]}', "d")


def test_the_list_file_format_reads_back_what_show_prints() -> None:
    text = "# zaak 2026/123\n\ncontact-ban: Mohammed El Amrani\ncode-word:  witte sneeuw \n"
    entries = review_triage.parse_list(text)
    assert entries == (
        WatchEntry(EntryKind.CONTACT_BAN, "Mohammed El Amrani"),
        WatchEntry(EntryKind.CODE_WORD, "witte sneeuw"),
    )
    assert review_triage.parse_list(review_triage.format_list(entries)) == entries
    with pytest.raises(ValueError, match="line 2"):
        review_triage.parse_list("code-word: x\nvictim: Jan\n")
    with pytest.raises(ValueError, match="line 1"):
        review_triage.parse_list("contact-ban:\n")


def _at(minutes: int) -> dt.datetime:
    return dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)


@pytest.mark.parametrize(("screen_all", "expected"), [(True, "adcfeb"), (False, "dfbace")])
def test_the_screening_order_delays_no_finding_only_under_a_screen_all_regime(
    screen_all: bool, expected: str
) -> None:
    scores = {"a": 0.0, "b": 0.9, "c": 0.0, "d": 1.87, "e": 0.0, "f": 0.97}
    queue = [
        Queued(name, _at(i), Summary((), score), screen_all=screen_all)
        for i, (name, score) in enumerate(scores.items())
    ]
    assert "".join(q.message_id for q in rank(queue)) == expected


def _item(
    message_id: int, waited: int, basis: common_pb2.LegalBasis.ValueType
) -> review_pb2.QueueItem:
    return review_pb2.QueueItem(
        message_id=bytes([message_id]) * 16, waited_seconds=waited, legal_basis=basis
    )


def test_the_review_queue_ranks_by_summary_and_keeps_the_gateways_order_on_ties() -> None:
    order = common_pb2.LEGAL_BASIS_SCREENING_ORDER
    items = [_item(1, 60, order), _item(2, 60, order), _item(3, 60, order), _item(4, 5, order)]
    summaries: dict[bytes, Summary | None] = {i.message_id: None for i in items}
    summaries[items[2].message_id] = Summary((("phone", 1),), 0.9, "nl", 0.9)
    ranked = review_triage.ranked(items, summaries)
    assert [r.item.message_id[0] for r in ranked] == [3, 1, 2, 4]
    assert review_triage.signals_cell(ranked[0].summary) == "phone number 1"
    assert review_triage.signals_cell(ranked[1].summary) == "not triaged"
    assert review_triage.signals_cell(Summary((), 0.0)) == "none"
    assert review_triage.language_cell(Summary((), 0.0, "ar", 0.3)) == "uncertain"


# --------------------------------------------------------------------------- the terminal


class _Client:
    def __init__(self) -> None:
        self.handed_in: list[tuple[bytes, str]] = []

    def watch_lists(self) -> list[common_pb2.WatchListRecord]:
        return []

    def seal_triage(self, seals: Sequence[tuple[bytes, str]]) -> int:
        self.handed_in.extend(seals)
        return len(seals)


class _Sealer:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.sealed: list[bytes] = []

    def seal(self, items: Sequence[tuple[bytes, bytes]]) -> list[str]:
        from sealpost.escrow.errors import KeyServerUnavailableError  # noqa: PLC0415

        if self.fail:
            raise KeyServerUnavailableError("down")
        self.sealed.extend(context for context, _plain in items)
        return ["vault:v1:AAAA" for _ in items]

    def open(self, items: Sequence[tuple[bytes, str]]) -> list[bytes | None]:
        return [None for _ in items]


def _intake(message_id: int, *, privileged: bool) -> Intake:
    return Intake("c", bytes([message_id]) * 16, "d-1", None, None, "", privileged, 0)  # type: ignore[arg-type]


def test_the_terminal_never_triages_privileged_mail_whatever_the_gateway_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[bytes] = []

    def decrypt(envelope: object, dek: bytes, sender: object, *, now_ms: int) -> object:
        opened.append(dek)
        return type("Opened", (), {"parts": (Part("text/plain", b"hallo"),)})()

    monkeypatch.setattr(crypto_envelope, "decrypt_with_dek", decrypt)
    client, sealer = _Client(), _Sealer()
    step = IntakeTriage(client, sealer, run=lambda parts, lists: Report(()))  # type: ignore[arg-type]
    outcome = step([(_intake(1, privileged=True), b"k1"), (_intake(2, privileged=False), b"k2")])
    assert opened == [b"k2"]
    assert [m for m, _ in client.handed_in] == [bytes([2]) * 16]
    assert sealer.sealed == [summary_context(bytes([2]) * 16)]
    assert (outcome.sealed, outcome.failed) == (1, 0)


def test_a_key_server_that_refuses_leaves_the_messages_untriaged_and_intake_going(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        crypto_envelope,
        "decrypt_with_dek",
        lambda *a, **k: type("Opened", (), {"parts": ()})(),
    )
    client = _Client()
    step = IntakeTriage(client, _Sealer(fail=True), run=lambda parts, lists: Report(()))  # type: ignore[arg-type]
    outcome = step([(_intake(3, privileged=False), b"k3")])
    assert (outcome.sealed, outcome.failed) == (0, 1)
    assert client.handed_in == []


def test_a_queued_reply_is_triaged_from_the_text_the_terminal_composed() -> None:
    seen: list[bytes] = []

    def run(parts: Sequence[Part], lists: Sequence[WatchList]) -> Report:
        seen.extend(p.data for p in parts)
        return Report((PHONE,))

    client, sealer = _Client(), _Sealer()
    step = IntakeTriage(client, sealer, run=run)  # type: ignore[arg-type]
    assert step.reply(bytes([5]) * 16, "d-1", [Part("text/plain", b"bel 06-12345678")])
    assert seen == [b"bel 06-12345678"]
    assert client.handed_in == [(bytes([5]) * 16, "vault:v1:AAAA")]
    assert not IntakeTriage(client, _Sealer(fail=True), run=run).reply(  # type: ignore[arg-type]
        bytes([6]) * 16, "d-1", [Part("text/plain", b"x")]
    )


def test_a_screener_who_reads_dutch_leaves_arabic_letters_to_a_colleague() -> None:
    order = common_pb2.LEGAL_BASIS_SCREENING_ORDER
    items = [_item(1, 9, order), _item(2, 8, order), _item(3, 7, order), _item(4, 6, order)]
    summaries: dict[bytes, Summary | None] = {
        items[0].message_id: Summary((), 0.0, "nl", 0.9),
        items[1].message_id: Summary((), 0.0, "ar", 0.9),
        items[2].message_id: Summary((), 0.0, "ar", 0.3),  # uncertain: someone must look
        items[3].message_id: None,  # not triaged: likewise
    }
    kept, others = review_triage.for_readers(
        review_triage.ranked(items, summaries), frozenset({"nl", "en"})
    )
    assert [r.item.message_id[0] for r in kept] == [1, 3, 4]
    assert others == ["ar"]
