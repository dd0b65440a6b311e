"""Precision and recall of each triage detector on the labelled corpus (corpus.json).

    .venv/bin/python -m tests.vectors.triage.evaluate [--misses]

A finding counts as right when its detector and its exact text match a label of the same
message; anything else found is a false positive, any label not found a miss. The language
row counts a message right when the likeliest language is the labelled one. The corpus is
synthetic (written for this purpose in Dutch, English, Arabic, Turkish and Polish), so the
figures say how the detectors behave on the cases written down, not on real mail.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sealpost.clients.triage import EntryKind, WatchEntry, WatchList, WatchMatcher, scan_text

CORPUS: Final = Path(__file__).resolve().parent / "corpus.json"
#: Every detector the corpus scores, in the order of the table.
DETECTORS: Final = (
    "phone", "bank-account", "payment-card", "crypto-wallet", "link", "coordinates",
    "address", "watch-list", "encoded",
)  # fmt: skip


#: The development set was scored while the rules were written; the held-out set was written
#: afterwards and scored once, with no rule changed for it.
SETS: Final = ("development", "held-out")


@dataclass
class Score:
    """Counts for one detector."""

    right: int = 0
    wrong: int = 0
    missed: int = 0

    @property
    def precision(self) -> float:
        found = self.right + self.wrong
        return self.right / found if found else 1.0

    @property
    def recall(self) -> float:
        labelled = self.right + self.missed
        return self.right / labelled if labelled else 1.0


def load(path: Path = CORPUS) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if body.get("format") != "triage-corpus/v1":
        raise ValueError(f"{path} is not a triage-corpus/v1 file")
    return body


def watch_lists(body: dict[str, Any]) -> list[WatchList]:
    return [
        WatchList(
            w["name"], tuple(WatchEntry(EntryKind(e["kind"]), e["text"]) for e in w["entries"])
        )
        for w in body["watch_lists"]
    ]


def evaluate(body: dict[str, Any], subset: str) -> tuple[dict[str, Score], list[str]]:
    """Scores per detector (and "language") on one set, and a line for every mistake."""
    matcher = WatchMatcher(watch_lists(body))
    scores = {name: Score() for name in (*DETECTORS, "language")}
    mistakes: list[str] = []
    for message in body["messages"]:
        if message["set"] != subset:
            continue
        found = scan_text(message["text"], 0, "text", matcher)
        expected = Counter((e["detector"], e["text"]) for e in message["expect"])
        got = Counter((s.detector, s.text) for s in found if s.detector in DETECTORS)
        for (detector, text), n in (got | expected).items():
            right = min(got[(detector, text)], expected[(detector, text)])
            scores[detector].right += right
            scores[detector].wrong += got[(detector, text)] - right
            scores[detector].missed += expected[(detector, text)] - right
            if got[(detector, text)] > right:
                mistakes.append(f"{message['id']}: {detector} found {text!r} (not labelled)")
            if expected[(detector, text)] > right:
                mistakes.append(f"{message['id']}: {detector} missed {text!r}")
            del n
        languages = [dict(s.values)["language"] for s in found if s.detector == "language"]
        if languages[:1] == [message["language"]]:
            scores["language"].right += 1
        else:
            scores["language"].wrong += 1
            scores["language"].missed += 1
            mistakes.append(f"{message['id']}: language {languages[:1]} for {message['language']}")
    return scores, mistakes


def table(scores: dict[str, Score]) -> str:
    """A Markdown table, as docs/review.md quotes it."""
    lines = [
        "| detector | labelled | found | right | precision | recall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in scores.items():
        lines.append(
            f"| {name} | {s.right + s.missed} | {s.right + s.wrong} | {s.right} "
            f"| {s.precision:.2f} | {s.recall:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Score the triage detectors on the corpus.")
    parser.add_argument("--misses", action="store_true", help="also list every mistake")
    args = parser.parse_args()
    body = load()
    for subset in SETS:
        scores, mistakes = evaluate(body, subset)
        count = sum(m["set"] == subset for m in body["messages"])
        print(f"\n{subset} set: {count} messages in {CORPUS.name}\n")
        print(table(scores))
        if args.misses:
            print("\n" + ("\n".join(mistakes) or "no mistakes"))


if __name__ == "__main__":
    main()
