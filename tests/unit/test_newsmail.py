"""E-mail notices (gateway/newsmail.py): the same few words for any news, in five languages."""

from __future__ import annotations

import json

import pytest

from sealpost.gateway import newsmail, policy, states


def test_every_language_has_exactly_the_notice_texts() -> None:
    files = sorted(p.stem for p in newsmail.CATALOGUE.glob("*.json"))
    assert files == sorted(newsmail.LANGUAGES)
    for language in newsmail.LANGUAGES:
        document = json.loads((newsmail.CATALOGUE / f"{language}.json").read_text("utf-8"))
        assert set(document) == set(newsmail.KEYS), language
        assert all(text.strip() and "{" not in text for text in document.values()), language


@pytest.mark.parametrize("language", newsmail.LANGUAGES)
def test_a_notice_says_only_that_there_is_news(language: str) -> None:
    message = newsmail.notice(language, "Sealpost <no-reply@post.example.nl>", "a@example.nl")
    assert message["To"] == "a@example.nl"
    assert message["Content-Language"] == language
    assert message.get_content().strip() == newsmail.texts(language)["news.body"]
    assert str(message["Subject"]) == newsmail.texts(language)["news.subject"]


def test_an_unknown_language_gets_the_default() -> None:
    message = newsmail.notice("xx", "Sealpost <no-reply@post.example.nl>", "a@example.nl")
    assert message["Content-Language"] == "nl"


def test_news_is_a_relatives_message_settled_or_a_reply_to_read() -> None:
    inbound = policy.NEWS_STATES[policy.INBOUND]
    assert inbound == {states.DELIVERED, states.WITHHELD, states.REJECTED}
    # Screening is never news: a notice must not show that a message was queued.
    assert states.QUEUED not in inbound
    assert policy.NEWS_STATES[policy.OUTBOUND] == {states.RELEASED}
