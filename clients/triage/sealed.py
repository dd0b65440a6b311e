"""What leaves the institution's zone of triage, sealed: summaries and watch lists.

A **summary** is what the screening queue shows before a message is opened: which
detectors found something and how often, the summed weight that ranks the queue, and
the likeliest language. It holds no text of the message: no span, no matched words (those
appear only in the review screen, after a logged grant, where the review tool triages the
opened message again). Every summary is padded to :data:`SUMMARY_BYTES`, so that the
gateway, which stores it sealed, cannot tell a message with findings from one without.

A **watch list** travels as its entries, padded to a multiple of :data:`LIST_BLOCK_BYTES`
(the gateway learns a list's size to within that block, never its names).

Both are sealed at the key server under the triage key, each bound to a derivation
context (:func:`summary_context`, :func:`watch_list_context`), so that a ciphertext made
for one message or list does not open as another's. Pure code: no I/O.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from sealpost.clients.triage.errors import FormatError, OldVersionError, UnknownVersionError
from sealpost.clients.triage.signals import INFORMATIONAL, Report
from sealpost.clients.triage.watchlist import EntryKind, WatchEntry, WatchList
from sealpost.crypto import domains

SUMMARY_FORMAT: Final = "triage-summary/v1"
LIST_FORMAT: Final = "watch-list/v1"
#: Every sealed summary's plaintext has exactly this size.
SUMMARY_BYTES: Final = 512
#: A sealed list's plaintext is a whole number of these blocks.
LIST_BLOCK_BYTES: Final = 1024
#: Most entries one list may hold (well inside the gateway's limit on a sealed list).
MAX_LIST_ENTRIES: Final = 2000
#: Longest entry, in characters.
MAX_ENTRY_CHARS: Final = 200
#: Counts above this are shown as this (a summary's size must not depend on them).
MAX_COUNT: Final = 999
_MESSAGE_ID_BYTES: Final = 16


@dataclass(frozen=True)
class Summary:
    """A message's triage, as the queue shows it: counts per detector, weight, language."""

    #: Detector -> how many signals it gave (informational detectors left out).
    counts: tuple[tuple[str, int], ...]
    #: The sum of the signals' weights: what ranks the queue.
    score: float
    #: The likeliest language of the message's main text ("" if unknown) and its confidence.
    language: str = ""
    language_confidence: float = 0.0

    @classmethod
    def of(cls, report: Report) -> Summary:
        """The summary of a full report: what may be shown before the message is opened."""
        counts = Counter(s.detector for s in report.signals if s.detector not in INFORMATIONAL)
        languages = [s for s in report.signals if s.detector == "language"]
        best = max(languages, key=lambda s: (s.end - s.start, s.confidence), default=None)
        return cls(
            counts=tuple(sorted((d, min(n, MAX_COUNT)) for d, n in counts.items())),
            score=round(report.score, 3),
            language=dict(best.values).get("language", "") if best is not None else "",
            language_confidence=best.confidence if best is not None else 0.0,
        )

    def encode(self) -> bytes:
        """The padded plaintext to seal: always :data:`SUMMARY_BYTES` long."""
        body = {
            "format": SUMMARY_FORMAT,
            "counts": dict(self.counts),
            "score": self.score,
            "language": self.language,
            "language_confidence": self.language_confidence,
        }
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
        if len(raw) > SUMMARY_BYTES:
            raise ValueError(f"a summary is {len(raw)} bytes, more than {SUMMARY_BYTES}")
        return raw.ljust(SUMMARY_BYTES, b" ")

    @classmethod
    def decode(cls, data: bytes) -> Summary:
        """Read an opened summary; FormatError (or a version subclass) if it is not one."""
        if len(data) != SUMMARY_BYTES:
            raise FormatError(f"a triage summary is {SUMMARY_BYTES} bytes, not {len(data)}")
        body = _json_object(data, "triage summary")
        _check_format(body, SUMMARY_FORMAT)
        try:
            counts = body["counts"]
            if not isinstance(counts, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and 0 < v <= MAX_COUNT
                for k, v in counts.items()
            ):
                raise FormatError("a triage summary's counts are detector names and numbers")
            score = float(body["score"])
            confidence = float(body["language_confidence"])
            language = body["language"]
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"a malformed triage summary: {exc}") from exc
        if not isinstance(language, str) or not math.isfinite(score) or score < 0:
            raise FormatError("a malformed triage summary")
        return cls(tuple(sorted(counts.items())), score, language, confidence)


def summary_context(message_id: bytes) -> bytes:
    """The key server's derivation context of a message's sealed summary."""
    if len(message_id) != _MESSAGE_ID_BYTES:
        raise ValueError("a message id is 16 bytes")
    return domains.TRIAGE_SUMMARY_CONTEXT + b"\x00" + message_id


def watch_list_context(institution_id: str, detainee_id: str) -> bytes:
    """The key server's derivation context of an institution's or a detainee's sealed list."""
    return b"\x00".join(
        (domains.TRIAGE_WATCH_LIST_CONTEXT, institution_id.encode(), detainee_id.encode())
    )


def encode_watch_list(entries: tuple[WatchEntry, ...]) -> bytes:
    """A list's entries as the padded plaintext to seal."""
    if len(entries) > MAX_LIST_ENTRIES:
        raise ValueError(f"a watch list holds at most {MAX_LIST_ENTRIES} entries")
    for entry in entries:
        if not entry.text.strip() or len(entry.text) > MAX_ENTRY_CHARS:
            raise ValueError(f"an entry is 1 to {MAX_ENTRY_CHARS} characters")
    body = {
        "format": LIST_FORMAT,
        "entries": [{"kind": e.kind.value, "text": e.text} for e in entries],
    }
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    blocks = max(1, -(-len(raw) // LIST_BLOCK_BYTES))
    return raw.ljust(blocks * LIST_BLOCK_BYTES, b" ")


def decode_watch_list(data: bytes, name: str) -> WatchList:
    """An opened list's entries, named ``name``; FormatError if it is not a list."""
    body = _json_object(data, "watch list")
    _check_format(body, LIST_FORMAT)
    items = body.get("entries")
    if not isinstance(items, list):
        raise FormatError("a watch list has a list of entries")
    try:
        entries = tuple(WatchEntry(EntryKind(i["kind"]), str(i["text"])) for i in items)
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"a malformed watch-list entry: {exc}") from exc
    return WatchList(name, entries)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"a {what} is not JSON") from exc
    if not isinstance(body, dict):
        raise FormatError(f"a {what} is a JSON object")
    return body


def _check_format(body: dict[str, object], expected: str) -> None:
    found = body.get("format")
    stem = expected.rsplit("/v", 1)[0]
    if not isinstance(found, str) or not found.startswith(stem + "/v"):
        raise FormatError(f"not a {stem} (no {stem}/v* format marker)")
    if found != expected:
        version = found.removeprefix(stem + "/v")
        if version.isdigit() and int(version) > int(expected.rsplit("/v", 1)[1]):
            raise UnknownVersionError(found)
        raise OldVersionError(found)
