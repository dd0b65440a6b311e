"""Watch lists: folding, transliteration, spelling variants, whole words, spans kept."""

from __future__ import annotations

import pytest

from sealpost.clients.triage._normalise import fold, skeleton, tokens
from sealpost.clients.triage.watchlist import EntryKind, WatchEntry, WatchList, WatchMatcher

LISTS = (
    WatchList(
        "pi-east",
        (
            WatchEntry(EntryKind.CODE_WORD, "witte sneeuw"),
            WatchEntry(EntryKind.CODE_WORD, "pakketje"),
        ),
    ),
    WatchList(
        "d-1234",
        (
            WatchEntry(EntryKind.CONTACT_BAN, "Mohammed El Amrani"),
            WatchEntry(EntryKind.CO_DEFENDANT, "Yusuf"),
            WatchEntry(EntryKind.CO_DEFENDANT, "Ömer Çelik"),
            WatchEntry(EntryKind.CONTACT_BAN, "Kowalski"),
        ),
    ),
)
MATCHER = WatchMatcher(LISTS)


@pytest.mark.parametrize(
    "spelling", ["Mohammed", "Muhammad", "Mohamed", "Мохаммед", "Мухаммад", "محمد", "مُحَمَّد"]
)
def test_spellings_and_scripts_of_one_name_meet(spelling: str) -> None:
    assert skeleton(fold(spelling)) == "mhmd"


@pytest.mark.parametrize("spelling", ["Yusuf", "Youssef", "Юсуф", "يوسف", "Yousef"])
def test_yusuf(spelling: str) -> None:
    assert skeleton(fold(spelling)) == "ysf"


@pytest.mark.parametrize(
    ("text", "matched", "reason"),
    [
        ("groeten van Мохаммед эль Амрани!", "Мохаммед эль Амрани", "contact-ban-variant"),
        ("قال محمد العمراني ذلك", "محمد العمراني", "contact-ban-variant"),
        ("Muhammad el-Amrani zegt hoi", "Muhammad el-Amrani", "contact-ban-variant"),
        ("MOHAMMED EL AMRANI belde", "MOHAMMED EL AMRANI", "contact-ban"),
        ("ik zag Youssef gisteren", "Youssef", "co-defendant-variant"),
        ("Юсуф передает привет", "Юсуф", "co-defendant"),
        ("omer celik was er ook", "omer celik", "co-defendant"),
        ("de WITTE  Sneeuw is binnen", "WITTE  Sneeuw", "code-word"),
        ("het pakketje komt", "pakketje", "code-word"),
        ("pozdrowienia od Kowalski", "Kowalski", "contact-ban"),
    ],
)
def test_hits_map_back_to_the_original_span(text: str, matched: str, reason: str) -> None:
    found = MATCHER.match(text, 2, "text")
    assert len(found) == 1
    hit = found[0]
    assert text[hit.start : hit.end] == hit.text == matched
    assert hit.reason == reason
    assert hit.part == 2
    assert hit.confidence == (0.6 if reason.endswith("variant") else 0.95)


@pytest.mark.parametrize(
    "text",
    [
        "pakketjes",  # a code word only as a whole word
        "witte muur en sneeuw",
        "het merk van de auto",  # a code word never matches by skeleton
        "Mohammedan",
        "pozdrowienia od Kowalskiego",  # inflected forms are other words (a known limit)
    ],
)
def test_no_hit_inside_other_words(text: str) -> None:
    assert MATCHER.match(text, 0, "text") == []


def test_code_words_match_only_their_folded_form() -> None:
    matcher = WatchMatcher([WatchList("x", (WatchEntry(EntryKind.CODE_WORD, "merk"),))])
    assert matcher.match("Mark en mirk", 0, "text") == []
    assert [s.text for s in matcher.match("MÉRK!", 0, "text")] == ["MÉRK"]


def test_short_names_match_exactly_only() -> None:
    matcher = WatchMatcher([WatchList("x", (WatchEntry(EntryKind.CONTACT_BAN, "Ali"),))])
    assert [s.text for s in matcher.match("Ali en Alie en Ela", 0, "text")] == ["Ali"]


def test_the_same_span_gives_one_signal_per_entry() -> None:
    found = MATCHER.match("Mohammed El Amrani", 0, "text")
    assert len(found) == 1
    assert found[0].reason == "contact-ban"


def test_values_name_the_list_and_entry() -> None:
    (hit,) = MATCHER.match("Youssef", 0, "text")
    assert dict(hit.values) == {"entry": "Yusuf", "list": "d-1234", "kind": "co-defendant"}


def test_no_lists_no_signals() -> None:
    assert WatchMatcher([]).match("Mohammed", 0, "text") == []


def test_tokens_keep_offsets_in_mixed_text() -> None:
    text = "Hoi «Мохаммед», اَلسَّلَامُ!"
    assert [text[t.start : t.end] for t in tokens(text)] == ["Hoi", "Мохаммед", "اَل", "سَّلَامُ"]
    assert [t.folded for t in tokens(text)][:2] == ["hoi", "mokhammed"]
