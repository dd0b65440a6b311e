"""Triage: signals that help a screener read a message, never a verdict (SPEC P16).

Pure, local functions over a message's decrypted parts and the institution's watch lists.
Each signal names its detector, the exact span, the matched text, a reason a person can
read (:func:`explain`) and a confidence. Nothing is sent anywhere. Triage ranks and
highlights; it never withholds a message and never delays one without findings.

Usage::

    report = triage(parts, [institution_list, detainee_list])
    for s in report.signals:
        print(s.detector, s.part, s.start, s.end, explain(s), s.confidence)
    stored = report.to_json()                     # "triage/v1"
    order = rank([Queued(message_id, waiting_since, report), ...])
"""

from __future__ import annotations

from sealpost.clients.triage.engine import scan_text, triage
from sealpost.clients.triage.errors import (
    FormatError,
    OldVersionError,
    TriageError,
    UnknownVersionError,
)
from sealpost.clients.triage.extract import Limits
from sealpost.clients.triage.rank import Queued, rank
from sealpost.clients.triage.sealed import (
    Summary,
    decode_watch_list,
    encode_watch_list,
    summary_context,
    watch_list_context,
)
from sealpost.clients.triage.signals import FORMAT, Report, Signal, explain
from sealpost.clients.triage.watchlist import EntryKind, WatchEntry, WatchList, WatchMatcher

__all__ = [
    "FORMAT",
    "EntryKind",
    "FormatError",
    "Limits",
    "OldVersionError",
    "Queued",
    "Report",
    "Signal",
    "Summary",
    "TriageError",
    "UnknownVersionError",
    "WatchEntry",
    "WatchList",
    "WatchMatcher",
    "decode_watch_list",
    "encode_watch_list",
    "explain",
    "rank",
    "scan_text",
    "summary_context",
    "triage",
    "watch_list_context",
]
