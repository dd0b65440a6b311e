"""Detectors over one text: each returns signals with exact spans, and never a verdict.

Every detector validates what it can (checksums, number plans, ranges) so that order
numbers, dates and amounts that merely look like a number do not raise a signal.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Final
from urllib.parse import urlsplit

import phonenumbers
from Crypto.Hash import keccak
from email_validator import EmailNotValidError, validate_email
from stdnum import iban, luhn

from sealpost.clients.triage.signals import Signal, Source, signal

Detector = Callable[[str, int, Source], list[Signal]]

# -- phone numbers -----------------------------------------------------------------------

#: Numbers without a country code are read as Dutch ones (06-..., 010-...).
DEFAULT_REGION: Final = "NL"


def phones(text: str, part: int, source: Source) -> list[Signal]:
    """Phone numbers of any country that its numbering plan says are valid."""
    found: list[Signal] = []
    matcher = phonenumbers.PhoneNumberMatcher(
        text, DEFAULT_REGION, leniency=phonenumbers.Leniency.VALID
    )
    for match in matcher:
        number = match.number
        region = phonenumbers.region_code_for_number(number) or "?"
        mobile = phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
        found.append(
            signal(
                "phone", part, source, match.start, match.end, match.raw_string, "phone",
                0.9 if region == DEFAULT_REGION else 0.95,
                region=region,
                number=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
                mobile="yes" if mobile else "no",
            )
        )  # fmt: skip
    return found


# -- bank accounts, cards, wallets ------------------------------------------------------

_IBAN: Final = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b", re.I)


def ibans(text: str, part: int, source: Source) -> list[Signal]:
    """IBANs whose country format and mod-97 checksum are valid (python-stdnum)."""
    found: list[Signal] = []
    for match in _IBAN.finditer(text):
        for start, end in _trimmed(text, match.start(), match.end()):
            candidate = text[start:end].upper()
            if iban.is_valid(candidate):
                compact = iban.compact(candidate)
                found.append(
                    signal(
                        "bank-account", part, source, start, end, text[start:end], "iban", 0.97,
                        country=compact[:2], iban=compact,
                    )
                )  # fmt: skip
                break
    return found


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The span, then shorter ones a whole space-separated group at a time."""
    while end > start:
        yield start, end
        space = text.rfind(" ", start, end)
        if space <= start:
            return
        end = space


_CARD: Final = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
#: Issuer prefixes of the card schemes a relative could hold (Visa, Mastercard, Amex,
#: Maestro and Discover, UnionPay, JCB, Diners).
_CARD_PREFIX: Final = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6|35|36|30|38)")


def cards(text: str, part: int, source: Source) -> list[Signal]:
    """Payment card numbers: 13 to 19 digits, a scheme's prefix, a valid Luhn checksum."""
    found: list[Signal] = []
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if _CARD_PREFIX.match(digits) and luhn.is_valid(digits):
            found.append(
                signal(
                    "payment-card", part, source, match.start(), match.end(), match.group(),
                    "card", 0.85, last4=digits[-4:],
                )
            )  # fmt: skip
    return found


_BASE58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BITCOIN_LEGACY: Final = re.compile(r"\b[13][1-9A-HJ-NP-Za-km-z]{25,34}\b")
_BECH32: Final = re.compile(r"\bbc1[02-9ac-hj-np-z]{8,87}\b", re.I)
_BECH32_CHARSET: Final = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_ETHEREUM: Final = re.compile(r"\b0x[0-9a-fA-F]{40}\b")


def wallets(text: str, part: int, source: Source) -> list[Signal]:
    """Bitcoin addresses (base58check or bech32/bech32m) and Ethereum addresses."""
    found: list[Signal] = []
    for match in _BITCOIN_LEGACY.finditer(text):
        if _base58check(match.group()):
            found.append(_wallet(match, part, source, "bitcoin", 0.97))
    for match in _BECH32.finditer(text):
        if _bech32(match.group()):
            found.append(_wallet(match, part, source, "bitcoin", 0.97))
    for match in _ETHEREUM.finditer(text):
        body = match.group()[2:]
        if body.islower() or body.isupper() or body.isdigit():
            found.append(_wallet(match, part, source, "ethereum", 0.8))
        elif _eip55(body):
            found.append(_wallet(match, part, source, "ethereum-checksum", 0.97))
    return found


def _wallet(match: re.Match[str], part: int, source: Source, reason: str, c: float) -> Signal:
    return signal(
        "crypto-wallet", part, source, match.start(), match.end(), match.group(), reason, c
    )


def _base58check(address: str) -> bool:
    """Version byte 0x00 (P2PKH) or 0x05 (P2SH) and the double-SHA-256 checksum."""
    number = 0
    for char in address:
        number = number * 58 + _BASE58.index(char)
    raw = number.to_bytes(25, "big") if number.bit_length() <= 200 else b""
    if len(raw) != 25 or raw[0] not in (0x00, 0x05):
        return False
    leading = len(address) - len(address.lstrip("1"))
    if leading != (1 if raw[0] == 0 else 0):
        return False
    check = hashlib.sha256(hashlib.sha256(raw[:21]).digest()).digest()[:4]
    return check == raw[21:]


def _bech32(address: str) -> bool:
    """BIP-173 (bech32, witness v0) or BIP-350 (bech32m, v1+) checksum, one case only."""
    if address.lower() != address and address.upper() != address:
        return False
    hrp, data = address.lower().rsplit("1", 1)
    values = [_BECH32_CHARSET.index(c) for c in data]
    polymod = _polymod([ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + values)
    version = values[0] if values else -1
    return (version == 0 and polymod == 1) or (1 <= version <= 16 and polymod == 0x2BC830A3)


def _polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            check ^= generator[i] if (top >> i) & 1 else 0
    return check


def _eip55(body: str) -> bool:
    """EIP-55: a letter is upper case where the Keccak-256 of the lower-case hex has >= 8."""
    digest = keccak.new(digest_bits=256, data=body.lower().encode()).hexdigest()
    return all(
        c.isdigit() or (c.isupper() == (int(digest[i], 16) >= 8)) for i, c in enumerate(body)
    )


# -- links and e-mail addresses ---------------------------------------------------------

# Links and addresses come from the public: every pattern here runs in linear time. A match
# starts only where a run of host or address characters starts (the look-behinds), and a
# label is taken whole (possessive), so "a.a.a.a..." or "1-1-1-..." cannot make the engine
# retry from every character.
_URL: Final = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"']++"
    r"|(?<![\w.@/-])(?:[a-z0-9-]++\.)+(?:nl|be|com|org|net|eu|de|fr|es|pl|tr|ma|ru|ro|"
    r"io|me|info|biz|app|xyz|ly|gl|cc|to|onion)(?![\w-])(?:/[^\s<>\"']*+)?",
    re.I,
)
_EMAIL: Final = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)+")
#: Hosts of messaging services and link shorteners: a route around the screened channel.
MESSENGER_HOSTS: Final = frozenset(
    {"t.me", "telegram.me", "wa.me", "chat.whatsapp.com", "signal.me", "signal.group",
     "bit.ly", "tinyurl.com", "snapchat.com", "discord.gg"}
)  # fmt: skip


def links(text: str, part: int, source: Source) -> list[Signal]:
    """Web links (with or without a scheme) and e-mail addresses (form only, no lookups)."""
    found: list[Signal] = []
    emails: list[tuple[int, int]] = []
    for match in _EMAIL.finditer(text):
        try:
            validate_email(match.group(), check_deliverability=False)
        except EmailNotValidError:
            continue
        emails.append(match.span())
        found.append(
            signal("link", part, source, match.start(), match.end(), match.group(), "email", 0.9)
        )
    for match in _URL.finditer(text):
        start, end = match.start(), match.end()
        while end > start and text[end - 1] in ".,;:!?)]}'\"":
            end -= 1
        if any(a <= start < b for a, b in emails):
            continue
        raw = text[start:end]
        host = (urlsplit(raw if "://" in raw else "http://" + raw).hostname or "").lower()
        host = host.removeprefix("www.")
        if not any(c.isalpha() for c in host.rpartition(".")[0]):
            continue  # "7.nl" is a mark, "1.2.nl" no site anyone writes
        messenger = host in MESSENGER_HOSTS
        found.append(
            signal(
                "link", part, source, start, end, raw,
                "messenger-link" if messenger else "link", 0.95 if messenger else 0.8, host=host,
            )
        )  # fmt: skip
    return sorted(found, key=lambda s: s.start)


# -- places ----------------------------------------------------------------------------

_COORDINATES: Final = re.compile(
    r"(?<![\d.])(-?\d{1,2}\.\d{3,})\s*°?\s*([NS])?\s*[,;]?\s+(-?\d{1,3}\.\d{3,})\s*°?\s*([EOW])?"
    r"(?![\d.])"
)


def coordinates(text: str, part: int, source: Source) -> list[Signal]:
    """Decimal-degree pairs (latitude, longitude) with three or more decimals, in range."""
    found: list[Signal] = []
    for match in _COORDINATES.finditer(text):
        lat, north, lon, east = match.groups()
        raw = match.group().rstrip()
        latitude = float(lat) * (-1 if north == "S" else 1)
        longitude = float(lon) * (-1 if east == "W" else 1)
        if abs(latitude) > 90 or abs(longitude) > 180:
            continue
        found.append(
            signal(
                "coordinates", part, source, match.start(), match.start() + len(raw), raw,
                "coordinates", 0.85, latitude=f"{latitude:.5f}", longitude=f"{longitude:.5f}",
            )
        )  # fmt: skip
    return found


#: Endings of Dutch street names. A street name is up to five words (capitalised, or a
#: particle such as "de" or "van"), the last with one of these endings.
STREET_ENDINGS: Final = (
    "straat", "laan", "weg", "plein", "gracht", "kade", "singel", "dijk", "pad", "hof",
    "dreef", "steeg", "markt", "park", "baan", "ring", "veld", "dam", "wal", "haven",
    "boulevard", "plantsoen", "kanaal", "lei", "oord", "erf", "burgwal", "straatweg",
)  # fmt: skip
_ADDRESS: Final = re.compile(
    r"(?<![\w'-])(?P<street>(?:(?:[A-Z][\w'-]*+|de|van|der|den|het|ten|ter)[ \t]){0,4}"
    r"[A-Z]?[\w'-]*(?:"
    + "|".join(STREET_ENDINGS)
    + r"))[ \t]+(?P<number>\d{1,5}(?:[ \t]?[a-zA-Z](?![a-zA-Z])|-\d{1,4}|[ \t]?(?:hs|bis))?)"
    r"[ \t]*[,\n]?[ \t]*(?P<postcode>[1-9]\d{3}[ \t]?[A-Za-z]{2})\b"
)


_PARTICLES: Final = re.compile(r"^(?:[a-z]+[ \t])+")


def addresses(text: str, part: int, source: Source) -> list[Signal]:
    """Dutch street addresses: street, house number and postcode (1234 AB) together."""
    found: list[Signal] = []
    for match in _ADDRESS.finditer(text):
        postcode = match.group("postcode").upper().replace(" ", "")
        if postcode[4:] in ("SA", "SD", "SS"):
            continue
        street = match.group("street")
        start = match.start("street") + len(street) - len(_PARTICLES.sub("", street))
        found.append(
            signal(
                "address", part, source, start, match.end(), text[start : match.end()],
                "address", 0.9, postcode=f"{postcode[:4]} {postcode[4:]}",
            )
        )  # fmt: skip
    return found


# -- hidden or encoded content ----------------------------------------------------------

_BASE64: Final = re.compile(r"(?<![\w+/])[A-Za-z0-9+/]{40,}={0,2}(?![\w+/=])")
_HEX: Final = re.compile(r"\b(?:0x)?[0-9a-fA-F]{32,}\b")
_TOKEN: Final = re.compile(r"\S{24,}")
_DIGIT: Final = re.compile(r"\d")
_HEX_LETTER: Final = re.compile(r"[a-fA-F]")
#: Bits per character above which a long token is unlike any word or number.
HIGH_ENTROPY: Final = 4.2


def encoded(text: str, part: int, source: Source) -> list[Signal]:
    """Long base64 or hexadecimal runs, and long random-looking strings."""
    found: list[Signal] = []
    taken: list[tuple[int, int]] = []
    for match in _HEX.finditer(text):
        if not (_DIGIT.search(match.group()) and _HEX_LETTER.search(match.group())):
            continue
        taken.append(match.span())
        found.append(_encoded(match, part, source, "hex", 0.7))
    for match in _BASE64.finditer(text):
        run = match.group()
        mixed = any(c.isdigit() or c in "+/" for c in run) and not run.islower()
        if mixed and not _inside(match.span(), taken) and len(run.rstrip("=")) % 4 != 1:
            taken.append(match.span())
            found.append(_encoded(match, part, source, "base64", 0.75))
    for match in _TOKEN.finditer(text):
        token = match.group()
        if _inside(match.span(), taken) or "://" in token or token.startswith("www."):
            continue
        if entropy(token) >= HIGH_ENTROPY:
            found.append(_encoded(match, part, source, "high-entropy", 0.5))
    return sorted(found, key=lambda s: s.start)


def _encoded(match: re.Match[str], part: int, source: Source, reason: str, c: float) -> Signal:
    return signal(
        "encoded", part, source, match.start(), match.end(), match.group(), reason, c,
        length=str(match.end() - match.start()),
    )  # fmt: skip


def _inside(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(a < span[1] and span[0] < b for a, b in taken)


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


#: Every text detector, by name, in the order they run.
TEXT_DETECTORS: Final[dict[str, Detector]] = {
    "phone": phones,
    "bank-account": ibans,
    "payment-card": cards,
    "crypto-wallet": wallets,
    "link": links,
    "coordinates": coordinates,
    "address": addresses,
    "encoded": encoded,
}
