"""Time to a decision in the screening queue, per institution and screener, from the log alone.

A message enters the screening queue with its ``MESSAGE_QUEUED`` entry (the terminal
routes it there after escrow) and is decided with its ``VERDICT_RECORDED`` entry, whose
actor is the screener. Both entries carry the gateway's time, so the time to a decision
is the difference of the two, and the log proves it: no table of the database is read.
A message's institution is not written in its entries; it is the detainee's at
acceptance and moves with a transfer (docs/transparency-log.md), so it is taken from the
replay of the whole log (``replay.Replay``), the same walk ``sealpost audit verify`` holds
the tables against.

Counted: every first verdict recorded in the period about a message of an institution in
scope, at the institution the message belonged to when it was decided. Still undecided:
every message in the queue, without a verdict, at the end of the period or at ``now``
(whichever comes first), however long ago it was queued. Percentiles are nearest-rank.

Pure code: events in, figures out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sealpost._internal.stats import spread
from sealpost.clients.audit.replay import Replay
from sealpost.crypto.logentry import LogAction, LogEvent
from sealpost.gateway.principals import ALL_INSTITUTIONS

#: Entries that take a message out of the screening queue without a verdict of their own
#: (a detainee's release rejects what waits; a release or withholding always follows a
#: verdict, and one without is a broken rule ``verify`` reports).
_LEAVES_QUEUE: Final = frozenset(
    {LogAction.MESSAGE_REJECTED, LogAction.MESSAGE_RELEASED, LogAction.MESSAGE_WITHHELD}
)
STAFF_PREFIX: Final = "staff:"


@dataclass(frozen=True)
class InstitutionDecisions:
    """One institution's verdicts in the period and its queue at the period's end, seconds."""

    institution: str
    verdicts: int = 0
    median_s: float | None = None
    p90_s: float | None = None
    #: Messages still in the queue without a verdict, and how long the oldest has waited.
    undecided: int = 0
    oldest_undecided_s: float | None = None


@dataclass(frozen=True)
class ScreenerDecisions:
    """One screener's verdicts at one institution in the period, in seconds."""

    screener: str
    institution: str
    verdicts: int
    median_s: float | None
    p90_s: float | None


@dataclass(frozen=True)
class Decisions:
    """Time to a decision for a report's institutions, their screeners and all together."""

    institutions: tuple[InstitutionDecisions, ...] = ()
    #: Every institution of the report together (institution ``*``); None when the report
    #: covers only one.
    national: InstitutionDecisions | None = None
    screeners: tuple[ScreenerDecisions, ...] = ()
    #: The moment (ms since the epoch) the undecided messages were counted at.
    measured_at_ms: int = 0


def _row(institution: str, decided: list[float], waiting: list[float]) -> InstitutionDecisions:
    count, median, p90 = spread(decided)
    return InstitutionDecisions(
        institution, count, median, p90, len(waiting), max(waiting) if waiting else None
    )


def decision_times(
    events: Iterable[tuple[int, LogEvent]],
    scope: Sequence[str],
    start_ms: int,
    end_ms: int,
    now_ms: int,
) -> Decisions:
    """Verdicts in [start_ms, end_ms) and the queue at min(end_ms, now_ms), per ``scope``.

    ``events`` is the whole log in index order (the replay needs every entry to know
    where each message is). Institutions outside ``scope`` are never counted, not even
    in the total: a screener who also decided elsewhere shows only what they decided here.
    """
    institutions = list(dict.fromkeys(scope))
    horizon = min(end_ms, now_ms)
    state = Replay()
    queued: dict[str, int] = {}
    decided: dict[str, list[float]] = {i: [] for i in institutions}
    by_screener: dict[tuple[str, str], list[float]] = {}
    waiting: dict[str, list[float]] | None = None
    for index, event in events:
        if waiting is None and event.time_ms >= horizon:
            waiting = _waiting(state, queued, institutions, horizon)
        state.add(index, event)
        message = event.message_id()
        if message is None:
            continue
        if event.action is LogAction.MESSAGE_QUEUED:
            queued.setdefault(message, event.time_ms)
        elif event.action is LogAction.VERDICT_RECORDED:
            entered = queued.pop(message, None)
            institution = state.message_institution(message)
            if entered is None or institution is None or institution not in decided:
                continue
            if not start_ms <= event.time_ms < end_ms:
                continue
            took = max(0, event.time_ms - entered) / 1000
            decided[institution].append(took)
            screener = event.actor.removeprefix(STAFF_PREFIX)
            by_screener.setdefault((institution, screener), []).append(took)
        elif event.action in _LEAVES_QUEUE:
            queued.pop(message, None)
    if waiting is None:
        waiting = _waiting(state, queued, institutions, horizon)
    rows = tuple(_row(i, decided[i], waiting[i]) for i in institutions)
    national = None
    if len(institutions) > 1:
        national = _row(
            ALL_INSTITUTIONS,
            [s for i in institutions for s in decided[i]],
            [s for i in institutions for s in waiting[i]],
        )
    order = {institution: n for n, institution in enumerate(institutions)}
    screeners = tuple(
        ScreenerDecisions(screener, institution, *spread(seconds))
        for (institution, screener), seconds in sorted(
            by_screener.items(), key=lambda item: (order[item[0][0]], item[0][1])
        )
    )
    return Decisions(rows, national, screeners, horizon)


def _waiting(
    state: Replay, queued: dict[str, int], institutions: list[str], horizon: int
) -> dict[str, list[float]]:
    """How long each message still in the queue at ``horizon`` has waited, per institution."""
    out: dict[str, list[float]] = {i: [] for i in institutions}
    for message, entered in queued.items():
        institution = state.message_institution(message)
        if institution in out and entered < horizon:
            out[institution].append((horizon - entered) / 1000)
    return out
