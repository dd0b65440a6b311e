"""Folding words so that spellings of one name meet, with every word's place kept.

Two forms of each word (the rule set that docs/review.md, section "Triage", documents):

1. **folded**: transliterated to Latin letters (anyascii: Arabic, Cyrillic, Greek, ...),
   diacritics gone, case folded, only letters and digits kept. "Çelik" and "celik" meet,
   "Юсуф" and "Yusuf" meet.
2. **skeleton**, for names only: the folded word with spelling variants merged, then its
   vowels dropped and doubled letters collapsed. Arabic script writes no short vowels, so
   "محمد" (mhmd), "Мохаммед" (Mokhammed), "Mohammed" and "Muhammad" all give ``mhmd``.
   The Arabic article written onto a word (ال) becomes a word of its own, as "el" or
   "al" is in Latin script.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, NamedTuple

from anyascii import anyascii

#: A word: letters and digits with their combining marks (Arabic vowel signs are marks).
WORD: Final = re.compile(r"(?:[^\W_]|[\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670])+")

#: Spelling variants merged before vowels go, applied in this order.
VARIANTS: Final = (
    ("kh", "h"),  # Cyrillic kha and Arabic khaa as transliterated: Mokhammed, Khalid
    ("dj", "j"),  # French and Dutch spelling of j: Djamal
    ("dzh", "j"),  # Cyrillic dzh: Dzhamal
    ("zh", "j"),
    ("sch", "s"),
    ("sh", "s"),  # Arabic shin: Shirin, Chirine
    ("ch", "s"),
    ("tj", "t"),
    ("ph", "f"),
    ("th", "t"),
    ("gh", "g"),
    ("ck", "k"),
    ("q", "k"),  # Arabic qaf: Qasim, Kasim
    ("c", "k"),
    ("x", "ks"),
    ("z", "s"),
    ("v", "w"),  # Polish and German w is Russian and Dutch v: Nowak, Новак (Novak)
    ("ij", "y"),  # Dutch ij
)
#: Articles that Latin script writes apart or joined: "El Amrani" and "Elamrani" meet.
ARTICLES: Final = frozenset({"el", "al", "ul"})
#: Letters that carry no weight in the skeleton: vowels, and w and y after the first letter
#: (Arabic و and ي stand for long vowels: يوسف is ywsf, Yusuf and Youssef meet it).
_VOWELS: Final = frozenset("aeiou")
_GLIDES: Final = frozenset("wy")
#: A skeleton shorter than this matches too many words to mean anything.
MIN_SKELETON: Final = 3
#: The Arabic article al- (alif, lam), with any vowel signs written on it.
_ARABIC_ARTICLE: Final = re.compile(r"\u0627[\u064b-\u065f\u0670]*\u0644[\u064b-\u065f\u0670]*")
_NON_ALNUM: Final = re.compile(r"[^a-z0-9]+")


def fold(word: str) -> str:
    """Latin letters and digits only, lower case, no diacritics."""
    latin = word if word.isascii() else anyascii(unicodedata.normalize("NFC", word))
    return _NON_ALNUM.sub("", latin.lower())


def skeleton(folded: str) -> str:
    """The folded word with variants merged, vowels and doubled letters gone."""
    word = folded
    for old, new in VARIANTS:
        word = word.replace(old, new)
    kept: list[str] = []
    for i, letter in enumerate(word):
        if letter in _VOWELS or (i > 0 and letter in _GLIDES):
            continue
        if kept and kept[-1] == letter:
            continue
        kept.append(letter)
    return "".join(kept)


class Token(NamedTuple):
    """A word of the original text, its span there, and its two folded forms."""

    start: int
    end: int
    folded: str
    skeleton: str


def tokens(text: str) -> list[Token]:
    """The words of ``text`` that fold to something, in order."""
    found: list[Token] = []
    seen: dict[str, tuple[str, str]] = {}
    for match in WORD.finditer(text):
        start, end = match.span()
        word = match.group()
        article = _ARABIC_ARTICLE.match(word)
        if article and len(word) > article.end() + 1:
            # العمراني is "al Amrani": the article becomes a word, as Latin script writes it.
            _add(found, start, start + article.end(), article.group(), seen)
            start += article.end()
            word = word[article.end() :]
        _add(found, start, end, word, seen)
    return found


def _add(
    found: list[Token], start: int, end: int, word: str, seen: dict[str, tuple[str, str]]
) -> None:
    """Fold each distinct word once per text; nothing is kept across texts (plaintext)."""
    forms = seen.get(word)
    if forms is None:
        folded = fold(word)
        forms = seen[word] = (folded, skeleton(folded))
    if forms[0]:
        found.append(Token(start, end, *forms))
