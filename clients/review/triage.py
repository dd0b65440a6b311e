"""Triage in the review tool: the ranked queue, the highlighted message, the watch lists.

The queue shows each message's sealed summary (clients/triage/sealed.py), opened at the
key server with the screener's own identity: which detectors found something, the
message's language, and a rank that puts messages with findings first among themselves
without delaying any message that has none (docs/review.md, "Triage"). A summary holds
no text of the message. The spans themselves appear only once the message is opened
under a logged grant: :func:`report_for` triages the opened plaintext again, here, with
the same watch lists the terminal used.

Watch lists are kept by the institution's screeners: a plain text file, one entry per
line, ``kind: text`` (``contact-ban: Mohammed El Amrani``, ``co-defendant: ...``,
``code-word: witte sneeuw``); empty lines and lines starting with ``#`` are skipped.
The review tool seals a list at the key server before it goes to the gateway, which
keeps the ciphertext and logs the change with its digest, never the names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sealpost.clients.review.client import Review, ReviewClient
from sealpost.clients.triage.errors import FormatError
from sealpost.clients.triage.rank import Queued, rank
from sealpost.clients.triage.sealed import (
    Summary,
    decode_watch_list,
    encode_watch_list,
    summary_context,
    watch_list_context,
)
from sealpost.clients.triage.signals import Report, language_name
from sealpost.clients.triage.watchlist import EntryKind, WatchEntry, WatchList
from sealpost.escrow.client import SealingClient
from sealpost.i18n import _
from sealpost.v1 import common_pb2, review_pb2

#: The institution's own list is named this in reports ("possibly ... (institution)").
INSTITUTION_LIST: Final = "institution"


@dataclass(frozen=True)
class Ranked:
    """A queue item and what triage says of it: None when no summary could be read."""

    item: review_pb2.QueueItem
    summary: Summary | None


@dataclass(frozen=True)
class _NoSummary:
    score: float = 0.0


def open_summaries(
    sealer: SealingClient, items: Sequence[review_pb2.QueueItem]
) -> dict[bytes, Summary | None]:
    """Each item's opened summary; None for one without a seal or whose seal is refused."""
    sealed = [i for i in items if i.triage_seal]
    opened = sealer.open([(summary_context(i.message_id), i.triage_seal) for i in sealed])
    out: dict[bytes, Summary | None] = {i.message_id: None for i in items}
    for item, plain in zip(sealed, opened, strict=True):
        if plain is None:
            continue
        try:
            out[item.message_id] = Summary.decode(plain)
        except FormatError:
            continue
    return out


def ranked(
    items: Sequence[review_pb2.QueueItem],
    summaries: dict[bytes, Summary | None],
    now: dt.datetime | None = None,
) -> list[Ranked]:
    """The queue in screening order (docs/review.md, "The screening order")."""
    now = now or dt.datetime.now(dt.UTC)
    # Queued by position: the gateway's order (longest waiting first) breaks ties between
    # messages that have waited the same number of seconds.
    queued = [
        Queued(
            f"{position:09d}",
            now - dt.timedelta(seconds=i.waited_seconds),
            summaries.get(i.message_id) or _NoSummary(),
            screen_all=i.legal_basis == common_pb2.LEGAL_BASIS_REGIME_SCREEN_ALL,
        )
        for position, i in enumerate(items)
    ]
    return [
        Ranked(items[int(q.message_id)], summaries.get(items[int(q.message_id)].message_id))
        for q in rank(queued)
    ]


def for_readers(ranked: list[Ranked], reads: frozenset[str]) -> tuple[list[Ranked], list[str]]:
    """The messages a screener who reads ``reads`` should take, and the others' languages.

    A message whose language triage could not tell (no summary, or below 0.5) stays:
    someone must look at it.
    """
    kept: list[Ranked] = []
    others: list[str] = []
    for r in ranked:
        s = r.summary
        if s is None or not s.language or s.language_confidence < 0.5 or s.language in reads:
            kept.append(r)
        else:
            others.append(s.language)
    return kept, others


def detector_word(detector: str) -> str:
    """A detector's name in the staff language."""
    words: dict[str, Callable[[], str]] = {
        "phone": lambda: _("phone number"),
        "bank-account": lambda: _("bank account"),
        "payment-card": lambda: _("payment card"),
        "crypto-wallet": lambda: _("crypto wallet"),
        "link": lambda: _("link"),
        "coordinates": lambda: _("coordinates"),
        "address": lambda: _("address"),
        "watch-list": lambda: _("watch list"),
        "encoded": lambda: _("encoded text"),
        "hidden-data": lambda: _("hidden data"),
    }
    word = words.get(detector)
    return word() if word else detector


def signals_cell(summary: Summary | None) -> str:
    """The queue's signals column: "watch list 1, phone number 2", "none" or "not triaged"."""
    if summary is None:
        return _("not triaged")
    if not summary.counts:
        return _("none")
    return ", ".join(f"{detector_word(d)} {n}" for d, n in summary.counts)


def language_cell(summary: Summary | None) -> str:
    """The queue's language column: the language's name, "uncertain", or empty."""
    if summary is None or not summary.language:
        return ""
    if summary.language_confidence < 0.5:
        return _("uncertain")
    return language_name(summary.language)


def summary_json(summary: Summary | None) -> dict[str, Any] | None:
    """A summary for scripts (detector codes as documented)."""
    if summary is None:
        return None
    return {
        "signals": dict(summary.counts),
        "score": summary.score,
        "language": summary.language,
        "languageConfidence": summary.language_confidence,
    }


# --------------------------------------------------------------------------- watch lists


def watch_lists(
    client: ReviewClient, sealer: SealingClient, institution_id: str, detainee_id: str = ""
) -> list[tuple[common_pb2.WatchListRecord, WatchList]]:
    """An institution's lists (its own and its detainees', or one detainee's), opened."""
    records = client.watch_lists(institution_id, detainee_id)
    opened = sealer.open(
        [(watch_list_context(r.institution_id, r.detainee_id), r.sealed) for r in records]
    )
    out = []
    for record, plain in zip(records, opened, strict=True):
        name = record.detainee_id or INSTITUTION_LIST
        if plain is None:
            raise FormatError(f"the watch list {name!r} does not open at the key server")
        out.append((record, decode_watch_list(plain, name)))
    return out


def lists_for(
    client: ReviewClient, sealer: SealingClient, institution_id: str, detainee_id: str
) -> list[WatchList]:
    """The lists triage uses for one detainee's message: the institution's and the detainee's.

    ``institution_id`` empty: the institution holding the detainee now.
    """
    return [
        lst
        for record, lst in watch_lists(client, sealer, institution_id, detainee_id)
        if record.detainee_id in ("", detainee_id)
    ]


def set_watch_list(
    client: ReviewClient,
    sealer: SealingClient,
    institution_id: str,
    detainee_id: str,
    entries: tuple[WatchEntry, ...],
) -> review_pb2.SetWatchListResponse:
    """Seal ``entries`` and replace the list with them (refused if changed meanwhile)."""
    current = client.watch_lists(institution_id, detainee_id)
    version = next((r.version for r in current if r.detainee_id == detainee_id), 0)
    (sealed,) = sealer.seal(
        [(watch_list_context(institution_id, detainee_id), encode_watch_list(entries))]
    )
    return client.set_watch_list(institution_id, detainee_id, sealed, version)


def parse_list(text: str) -> tuple[WatchEntry, ...]:
    """Entries from the list file format (module docstring); ValueError names a bad line."""
    kinds = {k.value: k for k in EntryKind}
    entries: list[WatchEntry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        kind, sep, value = stripped.partition(":")
        if not sep or kind.strip() not in kinds or not value.strip():
            raise ValueError(
                _(
                    "line {number}: write KIND: TEXT, with KIND one of {kinds}",
                    number=number,
                    kinds=", ".join(kinds),
                )
            )
        entries.append(WatchEntry(kinds[kind.strip()], value.strip()))
    return tuple(entries)


def format_list(entries: Sequence[WatchEntry]) -> str:
    """A list in the file format, so that show's output can be edited and set again."""
    return "".join(f"{e.kind.value}: {e.text}\n" for e in entries)


def report_for(review: Review, lists: Sequence[WatchList]) -> Report:
    """Triage of an opened message, for highlighting: only after its logged grant."""
    from sealpost.clients.triage.engine import triage  # noqa: PLC0415 - heavy models

    return triage(review.message.parts, lists)
