"""The labelled corpus: every label is in its message, and the figures hold and are documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vectors.triage import evaluate

DOCS = Path(__file__).resolve().parents[2] / "docs" / "review.md"


def test_labels_are_in_their_messages_and_name_known_detectors() -> None:
    body = evaluate.load()
    ids = [m["id"] for m in body["messages"]]
    assert len(ids) == len(set(ids))
    for message in body["messages"]:
        assert message["set"] in evaluate.SETS
        assert message["language"] in {"nl", "en", "ar", "tr", "pl"}
        for label in message["expect"]:
            assert label["detector"] in evaluate.DETECTORS
            assert label["text"] in message["text"]


def test_no_false_positive_in_either_set() -> None:
    body = evaluate.load()
    for subset in evaluate.SETS:
        scores, _ = evaluate.evaluate(body, subset)
        for name in evaluate.DETECTORS:
            assert scores[name].wrong == 0, (subset, name)


def test_the_development_set_is_found_in_full() -> None:
    scores, _ = evaluate.evaluate(evaluate.load(), "development")
    assert all(scores[name].recall == 1.0 for name in evaluate.DETECTORS)
    assert scores["language"].recall >= 0.9


@pytest.mark.parametrize("subset", evaluate.SETS)
def test_docs_quote_the_current_figures(subset: str) -> None:
    scores, _ = evaluate.evaluate(evaluate.load(), subset)
    assert evaluate.table(scores) in DOCS.read_text(encoding="utf-8")
