"""Each text detector: what it must find, and look-alikes it must leave alone."""

from __future__ import annotations

import time

import pytest

from sealpost.clients.triage import detectors
from sealpost.clients.triage.signals import Signal


def texts(found: list[Signal]) -> list[str]:
    return [s.text for s in found]


def spans_hold(text: str, found: list[Signal]) -> None:
    for s in found:
        assert text[s.start : s.end] == s.text


@pytest.mark.parametrize(
    ("text", "number", "region"),
    [
        ("bel me op 06-12345678 vanavond", "+31612345678", "NL"),
        ("of 06 1234 5678", "+31612345678", "NL"),
        ("thuis: 010-4123456", "+31104123456", "NL"),
        ("mijn nieuwe is +31 6 12345678", "+31612345678", "NL"),
        ("appt 0031 20 123 4567", "+31201234567", "NL"),
        ("ara beni +212 6 61 23 45 67", "+212661234567", "MA"),
        ("numaram +90 532 123 45 67", "+905321234567", "TR"),
        ("zadzwoń +48 512 345 678", "+48512345678", "PL"),
        ("call +44 7400 123456", "+447400123456", "GB"),
    ],
)
def test_phone_numbers_of_any_country(text: str, number: str, region: str) -> None:
    found = detectors.phones(text, 0, "text")
    assert [dict(s.values)["number"] for s in found] == [number]
    assert dict(found[0].values)["region"] == region
    spans_hold(text, found)


@pytest.mark.parametrize(
    "text",
    [
        "bestelnummer 2024-118-4471 is onderweg",
        "op 12-03-2024 om 14:30",
        "het kost 1.250,00 euro",
        "postcode 1012 AB",
        "zaaknummer 13/123456-22",
        "celnummer 4.12",
    ],
)
def test_no_phone_in_look_alikes(text: str) -> None:
    assert detectors.phones(text, 0, "text") == []


def test_ibans_with_valid_checksums() -> None:
    text = "stort op NL91 ABNA 0417 1643 00 of nl91abna0417164300, of DE89 3704 0044 0532 0130 00."
    found = detectors.ibans(text, 0, "text")
    assert texts(found) == [
        "NL91 ABNA 0417 1643 00", "nl91abna0417164300", "DE89 3704 0044 0532 0130 00",
    ]  # fmt: skip
    assert [dict(s.values)["country"] for s in found] == ["NL", "NL", "DE"]
    spans_hold(text, found)


@pytest.mark.parametrize(
    "text",
    [
        "NL91 ABNA 0417 1643 01",  # one digit off: mod-97 fails
        "NL19 ABNA 0417 1643 00",  # check digits swapped
        "DE89 3704 0044 0532 0130 01",  # one digit too many for Germany
        "order NL12 3456 7890 1234",
    ],
)
def test_no_iban_with_a_bad_checksum(text: str) -> None:
    assert detectors.ibans(text, 0, "text") == []


def test_payment_cards_pass_luhn_and_a_scheme_prefix() -> None:
    text = "kaart 4111 1111 1111 1111 en 5500-0000-0000-0004; bestelling 1234567812345670"
    found = detectors.cards(text, 0, "text")
    assert texts(found) == ["4111 1111 1111 1111", "5500-0000-0000-0004"]
    assert dict(found[0].values) == {"last4": "1111"}
    assert detectors.cards("4111 1111 1111 1112", 0, "text") == []


def test_wallets_with_checksums() -> None:
    text = (
        "btc 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa, 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy, "
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq, "
        "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297; "
        "eth 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed en "
        "0xde709f2102306220921060314715629080e2fb77"
    )
    found = detectors.wallets(text, 0, "text")
    assert [s.reason for s in found] == [
        "bitcoin", "bitcoin", "bitcoin", "bitcoin", "ethereum-checksum", "ethereum",
    ]  # fmt: skip
    spans_hold(text, found)


@pytest.mark.parametrize(
    "text",
    [
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb",  # last character changed: checksum fails
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",  # EIP-55 case broken
        "BC1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",  # mixed case is invalid bech32
    ],
)
def test_no_wallet_with_a_broken_checksum(text: str) -> None:
    assert detectors.wallets(text, 0, "text") == []


def test_links_and_email_addresses() -> None:
    text = (
        "kijk op https://voorbeeld.nl/a?b=1. of www.site.com, app via t.me/kanaal; "
        "mail jan@voorbeeld.nl"
    )
    found = detectors.links(text, 0, "text")
    assert [(s.text, s.reason) for s in found] == [
        ("https://voorbeeld.nl/a?b=1", "link"),
        ("www.site.com", "link"),
        ("t.me/kanaal", "messenger-link"),
        ("jan@voorbeeld.nl", "email"),
    ]
    spans_hold(text, found)


def test_no_link_in_ordinary_sentences() -> None:
    assert detectors.links("Het is 3.5 graden. Tot zo.Dag! mijn cijfer was 7.nl", 0, "text") == []


def test_coordinates_in_range_with_enough_decimals() -> None:
    text = "we zijn hier: 52.09074, 5.12142 en daar 51.9225° N, 4.47917° E"
    found = detectors.coordinates(text, 0, "text")
    assert len(found) == 2
    assert dict(found[0].values) == {"latitude": "52.09074", "longitude": "5.12142"}
    spans_hold(text, found)


@pytest.mark.parametrize(
    "text", ["prijs 12.50, 3.20", "versie 1.2.3, 4.5.6", "95.12345, 5.12345", "tijd 12.30 14.45"]
)
def test_no_coordinates_in_prices_versions_or_out_of_range(text: str) -> None:
    assert detectors.coordinates(text, 0, "text") == []


def test_dutch_street_addresses() -> None:
    text = (
        "Kom naar Turfmarkt 147, 2511 DP Den Haag of de Burgemeester de Withstraat 3-2, 3011 AB."
        " Ook: Kalverstraat 92a 1012 PH en\nSint Jacobsstraat 14\n1012 NC Amsterdam"
    )
    found = detectors.addresses(text, 0, "text")
    assert texts(found) == [
        "Turfmarkt 147, 2511 DP",
        "Burgemeester de Withstraat 3-2, 3011 AB",
        "Kalverstraat 92a 1012 PH",
        "Sint Jacobsstraat 14\n1012 NC",
    ]
    spans_hold(text, found)


@pytest.mark.parametrize(
    "text",
    [
        "mijn postcode is 1012 AB",  # a postcode alone is not an address
        "in 2024 woonden we op 1012 AB",
        "Kalverstraat is druk",
        "Kalverstraat 92 in Amsterdam",  # no postcode
        "Havenstraat 12 3011 SS",  # SS is never used in a Dutch postcode
    ],
)
def test_no_address_without_street_number_and_postcode(text: str) -> None:
    assert detectors.addresses(text, 0, "text") == []


def test_encoded_runs_and_random_strings() -> None:
    text = (
        "zie aGVsbG8gd29ybGQgdGhpcyBpcyBhIHNlY3JldCBtZXNzYWdlIGhpZGRlbg== en "
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 en "
        "x7#Kq9!zR2@mW4$pL8&vN3^tB6"
    )
    found = detectors.encoded(text, 0, "text")
    assert [s.reason for s in found] == ["base64", "hex", "high-entropy"]
    spans_hold(text, found)


@pytest.mark.parametrize(
    "text",
    [
        "Hoofdstedelijkeonderwijsinstellingenvergadering is een lang woord",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "het ordernummer is 20240312000118",
        "https://voorbeeld.nl/een/lang/pad/naar/een/pagina/met/veel/woorden",
    ],
)
def test_nothing_encoded_in_long_words_numbers_or_links(text: str) -> None:
    assert detectors.encoded(text, 0, "text") == []


ADVERSARIAL = {
    "dots": "a." * 10_000,
    "e-mail": "a@" + "b." * 10_000,
    "at the end": "a" * 20_000 + "@",
    "hyphens": "1-" * 10_000,
    "domains": "a." * 10_000 + "nl",
    "base64": "Ab1+" * 5_000 + "!",
    "streets": "Kerkstraat " * 2_000,
    "capitals": "A " * 10_000,
    "digits": "1 " * 10_000,
    "url": "http://" + "a" * 20_000,
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_text_from_the_public_cannot_stall_a_detector(name: str) -> None:
    """Every pattern is linear: 20,000 characters of a worst case take well under a second."""
    text = ADVERSARIAL[name]
    for detect in detectors.TEXT_DETECTORS.values():
        started = time.perf_counter()
        detect(text, 0, "text")
        assert time.perf_counter() - started < 1.0, detect.__name__
