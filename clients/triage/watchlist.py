"""Watch lists: names and code words an institution or a detainee's file asks screeners to notice.

Entries are matched on whole words after folding (``_normalise``): case, diacritics and
script do not matter. Names (contact-ban persons and co-defendants) also match on their
skeleton, so that spelling variants and transliterations meet, at a lower confidence;
code words match only in their folded form. One Aho-Corasick automaton (pyahocorasick)
runs over the folded words of the text; each hit is mapped back to the original span.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import ahocorasick

from sealpost.clients.triage._normalise import ARTICLES, MIN_SKELETON, skeleton, tokens
from sealpost.clients.triage.signals import Signal, Source, signal

DETECTOR: Final = "watch-list"
#: Confidence of a hit on the folded form, and on the skeleton (a spelling variant).
EXACT: Final = 0.95
VARIANT: Final = 0.6


class EntryKind(enum.StrEnum):
    """What a watch-list entry is."""

    CONTACT_BAN = "contact-ban"
    CO_DEFENDANT = "co-defendant"
    CODE_WORD = "code-word"


@dataclass(frozen=True)
class WatchEntry:
    """One name or code word, as the institution wrote it."""

    kind: EntryKind
    text: str


@dataclass(frozen=True)
class WatchList:
    """A named list: an institution's, or one detainee's."""

    name: str
    entries: tuple[WatchEntry, ...]


@dataclass(frozen=True)
class _Pattern:
    list_name: str
    entry: WatchEntry
    variant: bool
    words: int


class _Automaton:
    """Whole-word patterns over one form of the words (folded or skeleton)."""

    def __init__(self, patterns: dict[str, list[_Pattern]]) -> None:
        self._automaton = ahocorasick.Automaton()
        for key, found in patterns.items():
            self._automaton.add_word(key, (len(key), tuple(found)))
        self.empty = not patterns
        if not self.empty:
            self._automaton.make_automaton()

    def hits(self, forms: Sequence[str]) -> Iterator[tuple[int, _Pattern]]:
        """(index of the first word, pattern) for every hit; patterns are whole words."""
        if self.empty:
            return
        starts: dict[int, int] = {}
        offset = 1
        for index, form in enumerate(forms):
            starts[offset] = index
            offset += len(form) + 1
        line = _key(forms)
        for end, (length, found) in self._automaton.iter(line):
            first = starts[end - length + 2]
            for pattern in found:
                yield first, pattern


class WatchMatcher:
    """The automata for a set of lists; build once per set, match many texts."""

    def __init__(self, lists: Iterable[WatchList]) -> None:
        """Add each entry's folded form, and a name's skeleton, as patterns."""
        exact: dict[str, list[_Pattern]] = {}
        variants: dict[str, list[_Pattern]] = {}
        for watch in lists:
            for entry in watch.entries:
                words = tokens(entry.text)
                if not words:
                    continue
                key = _key([w.folded for w in words])
                exact.setdefault(key, []).append(_Pattern(watch.name, entry, False, len(words)))
                if entry.kind is EntryKind.CODE_WORD:
                    continue
                for skeletons in _spellings([w.folded for w in words]):
                    if _long_enough(skeletons):
                        variants.setdefault(_key(skeletons), []).append(
                            _Pattern(watch.name, entry, True, len(skeletons))
                        )
        self._exact = _Automaton(exact)
        self._variants = _Automaton(variants)

    def match(self, text: str, part: int, source: Source) -> list[Signal]:
        """Every hit in ``text``: one signal per span and entry, the exact form preferred."""
        if self._exact.empty and self._variants.empty:
            return []
        words = tokens(text)
        best: dict[tuple[int, int, str, WatchEntry], Signal] = {}
        for automaton, forms in (
            (self._exact, [w.folded for w in words]),
            (self._variants, [w.skeleton for w in words]),
        ):
            for first, pattern in automaton.hits(forms):
                start, stop = words[first].start, words[first + pattern.words - 1].end
                found = _signal(text, part, source, start, stop, pattern)
                key = (start, stop, pattern.list_name, pattern.entry)
                if key not in best or best[key].confidence < found.confidence:
                    best[key] = found
        return sorted(best.values(), key=lambda s: (s.start, s.end, s.reason))


def _spellings(folded: list[str]) -> list[list[str]]:
    """A name's skeleton, and the same with each article joined to the word after it."""
    spellings = [[skeleton(w) for w in folded]]
    joined: list[str] = []
    for word in folded:
        if joined and joined[-1] in ARTICLES:
            joined[-1] += word
        else:
            joined.append(word)
    if len(joined) < len(folded):
        spellings.append([skeleton(w) for w in joined])
    return spellings


def _long_enough(skeletons: Sequence[str]) -> bool:
    """A skeleton pattern only for names whose every word keeps a consonant, 3 in all."""
    return sum(len(s) for s in skeletons) >= MIN_SKELETON and all(skeletons)


def _key(words: Sequence[str]) -> str:
    """Words between single spaces, with a space at each end: hits fall on word boundaries."""
    return " " + " ".join(words) + " "


def _signal(text: str, part: int, source: Source, start: int, stop: int, p: _Pattern) -> Signal:
    reason = f"{p.entry.kind.value}-variant" if p.variant else p.entry.kind.value
    return signal(
        DETECTOR,
        part,
        source,
        start,
        stop,
        text[start:stop],
        reason,
        VARIANT if p.variant else EXACT,
        entry=p.entry.text,
        list=p.list_name,
        kind=p.entry.kind.value,
    )


__all__ = ["EntryKind", "WatchEntry", "WatchList", "WatchMatcher"]
