"""The screeners' time to a decision: per institution and per screener, nearest-rank."""

from __future__ import annotations

from sealpost.gateway import store
from sealpost.gateway.services.review import decision_times


def _row(institution: str, screener: str, queued: int | None, decided: int) -> store.DecisionRow:
    return store.DecisionRow(institution, screener, queued, decided)


def test_figures_per_institution_and_screener() -> None:
    rows = [
        _row("pi-a", "staff:jansen", 0, 60_000),  # 60 s
        _row("pi-a", "staff:jansen", 0, 120_000),  # 120 s
        _row("pi-a", "staff:de-boer", 0, 600_000),  # 600 s
        _row("pi-b", "staff:bakker", 10_000, 40_000),  # 30 s
        _row("pi-b", "staff:bakker", None, 40_000),  # queued before the column: not timed
    ]
    waiting = [("pi-a", 1_000_000), ("pi-a", 1_900_000), ("pi-c", 1_990_000)]
    reply = decision_times(rows, waiting, now_ms=2_000_000)
    institutions = {r.institution_id: r for r in reply.institutions}
    assert sorted(institutions) == ["pi-a", "pi-b", "pi-c"]
    a = institutions["pi-a"]
    assert (a.verdicts, a.median_seconds, a.p90_seconds) == (3, 120.0, 600.0)
    assert (a.undecided, a.oldest_undecided_seconds) == (2, 1000.0)
    assert (institutions["pi-b"].verdicts, institutions["pi-b"].undecided) == (1, 0)
    assert (institutions["pi-c"].verdicts, institutions["pi-c"].undecided) == (0, 1)
    screeners = {(r.institution_id, r.screener): r for r in reply.screeners}
    assert screeners["pi-a", "staff:jansen"].verdicts == 2
    assert screeners["pi-a", "staff:jansen"].median_seconds == 60.0
    assert screeners["pi-a", "staff:de-boer"].p90_seconds == 600.0
    assert ("pi-c", "") not in screeners
