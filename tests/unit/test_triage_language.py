"""The language signal: the five languages of the relatives' app, and honesty where unsure."""

from __future__ import annotations

import pytest

from sealpost.clients.triage.language import language

TEXTS = {
    "nl": "Hoi schat, hoe gaat het met je? Ik kom zondag op bezoek met de kinderen.",
    "en": "Hi love, how are you? I will visit on Sunday with the kids.",
    "ar": "مرحبا حبيبي، كيف حالك؟ سأزورك يوم الأحد مع الأطفال",
    "tr": "Merhaba canım, nasılsın? Pazar günü çocuklarla ziyarete geleceğim.",  # noqa: RUF001
    "pl": "Cześć kochanie, jak się masz? W niedzielę przyjdę z dziećmi.",
    "ru": "Привет, дорогой, как ты? В воскресенье приеду с детьми.",  # noqa: RUF001
}


@pytest.mark.parametrize("code", TEXTS)
def test_each_language_is_named_with_confidence(code: str) -> None:
    text = TEXTS[code]
    (signal,) = language(text, 3, "ocr")
    assert signal.reason == "language"
    assert dict(signal.values) == {"language": code}
    assert signal.confidence >= 0.5
    assert (signal.part, signal.source, signal.start, signal.end) == (3, "ocr", 0, len(text))
    assert signal.weight == 0.0  # it routes a message, it never raises its rank


def test_too_short_to_tell() -> None:
    assert language("ok 👍 12:30", 0, "text") == []


def test_a_language_without_a_model_is_uncertain_not_confidently_wrong() -> None:
    # Tamazight (Moroccan Berber) in Latin letters: Lingua has no model for it.
    (signal,) = language("Azul a gma, mamek tellid? Ad d-asegh ass n lhed.", 0, "text")
    assert signal.reason == "language-uncertain"
    assert signal.confidence < 0.5
