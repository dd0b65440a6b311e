"""The language a text is written in, so that a message goes to a screener who reads it.

Lingua (lingua-language-detector) with the models it ships, restricted to the languages
that relatives of detainees in the Netherlands write most: fewer candidates are faster and
confuse less. Not available in Lingua, so never reported: Tamazight (Moroccan Berber),
Papiamento, Sranan Tongo and Tigrinya; such a text comes out as "uncertain" or as a
neighbour (Tamazight in Latin letters often as no language at all).
"""

from __future__ import annotations

import functools
from typing import Final

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

from sealpost.clients.triage.signals import Signal, Source, signal

LANGUAGES: Final = (
    Language.DUTCH, Language.ENGLISH, Language.ARABIC, Language.TURKISH, Language.POLISH,
    Language.FRENCH, Language.GERMAN, Language.SPANISH, Language.PORTUGUESE,
    Language.ITALIAN, Language.ROMANIAN, Language.BULGARIAN, Language.RUSSIAN,
    Language.UKRAINIAN, Language.ALBANIAN, Language.LITHUANIAN, Language.SOMALI,
    Language.PERSIAN,
)  # fmt: skip
#: Fewer letters than this tell too little: no language signal.
MIN_LETTERS: Final = 12
#: Below this confidence the best guess is reported as uncertain.
CONFIDENT: Final = 0.5


@functools.cache
def _detector() -> LanguageDetector:
    """Built once per process; the models load on first use."""
    return LanguageDetectorBuilder.from_languages(*LANGUAGES).build()


def language(text: str, part: int, source: Source) -> list[Signal]:
    """One signal over the whole text: the likeliest language and its confidence."""
    if sum(c.isalpha() for c in text) < MIN_LETTERS:
        return []
    values = _detector().compute_language_confidence_values(text)
    if not values:
        return []
    best = values[0]
    code = best.language.iso_code_639_1.name.lower()
    reason = "language" if best.value >= CONFIDENT else "language-uncertain"
    return [signal("language", part, source, 0, len(text), "", reason, best.value, language=code)]
