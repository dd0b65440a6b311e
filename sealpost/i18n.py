"""Words people read, in their language, and times as they are in the Netherlands.

Two gettext catalogues, read with Babel from ``sealpost/locale/<language>/LC_MESSAGES``:

- ``staff``: what the staff programs print (review, terminal, admin, audit, gateway, demo),
  in Dutch and English. Code marks these words with :func:`_` (and :func:`_n` for plurals).
- ``detainee``: what a detainee is handed on paper (delivery slips, withholding notices,
  reply receipts), in Dutch, English, Arabic, Turkish and Polish. Code asks a
  :class:`Translator` for them (``words.gettext(...)``, ``words.ngettext(...)``).

English is the source language: a message id is the English text, so English needs no
catalogue. Placeholders are ``str.format`` names (``{detainee}``); a catalogue entry must
use exactly the names of its message id (tests/unit/test_catalogues.py checks every entry of
every catalogue against the code). ``python -m sealpost._internal.catalogues`` brings the
catalogues up to date with the code after words change.

The staff language is chosen once per process: ``--language`` (the ``sealpost`` command
reads it before anything else), else ``SEALPOST_LANGUAGE``, else the usual locale variables
(``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``), else English; a variable naming a
language the program does not speak is passed over.
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext as _gettext
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo

from babel.core import Locale
from babel.dates import format_date as _format_date
from babel.dates import format_time as _format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

Domain = Literal["staff", "detainee"]

#: Languages of what detainees and relatives read (SPEC section 7), Dutch first.
LANGUAGES: Final = ("nl", "en", "ar", "tr", "pl")
#: Languages of the staff programs.
STAFF_LANGUAGES: Final = ("nl", "en")
#: The languages each catalogue is written in.
DOMAIN_LANGUAGES: Final[Mapping[Domain, tuple[str, ...]]] = {
    "staff": STAFF_LANGUAGES,
    "detainee": LANGUAGES,
}
#: The language of the message ids, which needs no catalogue.
SOURCE_LANGUAGE: Final = "en"
#: Languages written right to left.
RIGHT_TO_LEFT: Final = frozenset({"ar"})
#: The institutions are in the Netherlands: every time a person reads is local time there.
TIME_ZONE: Final = ZoneInfo("Europe/Amsterdam")
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
#: The environment variable that chooses the staff programs' language.
LANGUAGE_ENV: Final = "SEALPOST_LANGUAGE"
_LOCALE_ENV: Final = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


class UnknownLanguageError(ValueError):
    """A language this catalogue is not written in."""

    def __init__(self, language: str, languages: Sequence[str]) -> None:
        super().__init__(f"unknown language {language!r}: choose one of {', '.join(languages)}")
        self.language = language
        self.languages = tuple(languages)


def catalogue_path(domain: Domain, language: str) -> Path:
    """Where a language's catalogue of ``domain`` is kept."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"


@functools.cache
def _translations(domain: Domain, language: str) -> _gettext.NullTranslations:
    """The catalogue compiled in memory (fuzzy entries left out, so they read as English)."""
    if language == SOURCE_LANGUAGE:
        return _gettext.NullTranslations()
    with catalogue_path(domain, language).open("rb") as source:
        catalog = read_po(source, locale=language, domain=domain)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def language_of(tag: str, languages: Sequence[str]) -> str | None:
    """The language of a locale name or tag (``nl_NL.UTF-8``, ``ar-MA``) if it is one of ours."""
    base = tag.strip().replace("-", "_").split("_")[0].split(".")[0].split("@")[0].lower()
    return base if base in languages else None


class Translator:
    """Words and times in one language of one catalogue."""

    def __init__(self, domain: Domain, language: str) -> None:
        languages = DOMAIN_LANGUAGES[domain]
        if language not in languages:
            raise UnknownLanguageError(language, languages)
        self.domain: Final = domain
        self.language: Final = language
        self._catalogue = _translations(domain, language)

    def __repr__(self) -> str:
        return f"Translator({self.domain!r}, {self.language!r})"

    @property
    def right_to_left(self) -> bool:
        """Whether this language is written right to left."""
        return self.language in RIGHT_TO_LEFT

    def gettext(self, message: str, /, **values: object) -> str:
        """``message`` in this language, with ``values`` put in its placeholders."""
        text = self._catalogue.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, count: int, /, **values: object) -> str:
        """The form for ``count``; ``count`` is also a placeholder value."""
        text = self._catalogue.ngettext(singular, plural, count)
        return text.format(count=count, **values)

    def datetime(self, when: dt.datetime) -> str:
        """A date and time to the minute as they are in the Netherlands, in the language's way."""
        local = _aware(when).astimezone(TIME_ZONE).replace(tzinfo=None)
        date = _format_date(local.date(), "medium", locale=self.language)
        time = _format_time(local.time(), "short", locale=self.language)
        pattern: str = Locale.parse(self.language).datetime_formats["medium"]
        return pattern.replace("{1}", date).replace("{0}", time).replace("'", "")

    def date(self, when: dt.date | dt.datetime) -> str:
        """A date, written the language's way (a date-time is taken in Dutch local time)."""
        if isinstance(when, dt.datetime):
            when = _aware(when).astimezone(TIME_ZONE).date()
        return _format_date(when, "long", locale=self.language)


def _aware(when: dt.datetime) -> dt.datetime:
    """Times without a zone are UTC throughout Sealpost."""
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def translator(domain: Domain, language: str) -> Translator:
    """The translator for one language of ``domain``; UnknownLanguageError if there is none."""
    return _translator(domain, language)


@functools.cache
def _translator(domain: Domain, language: str) -> Translator:
    return Translator(domain, language)


# -- the staff programs' language ---------------------------------------------------------

_staff: Translator | None = None


def language_from(
    languages: Sequence[str],
    flag: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The reader's language among ``languages``: the flag, SEALPOST_LANGUAGE, the locale.

    A flag naming a language not in ``languages`` is an error (UnknownLanguageError);
    SEALPOST_LANGUAGE or a locale naming one is passed over (the variable is shared by
    programs that speak different sets: a relative's ``ar`` means nothing to a staff
    program). Without any, English.
    """
    env = os.environ if environ is None else environ
    if flag:
        language = language_of(flag, languages)
        if language is None:
            raise UnknownLanguageError(flag, languages)
        return language
    for name in (LANGUAGE_ENV, *_LOCALE_ENV):
        for tag in env.get(name, "").split(":"):
            if tag and (language := language_of(tag, languages)):
                return language
    return SOURCE_LANGUAGE


def staff_language_from(flag: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The staff programs' language (Dutch or English), chosen as :func:`language_from` says."""
    return language_from(STAFF_LANGUAGES, flag, environ)


def use_staff_language(language: str) -> Translator:
    """Speak ``language`` in the staff programs from now on (for this process)."""
    global _staff  # noqa: PLW0603 - one language per process, chosen at start
    _staff = translator("staff", language)
    return _staff


def staff() -> Translator:
    """The staff programs' translator (chosen from the environment on first use)."""
    return _staff if _staff is not None else use_staff_language(staff_language_from())


def _(message: str, /, **values: object) -> str:
    """``message`` in the staff language."""
    return staff().gettext(message, **values)


def _n(singular: str, plural: str, count: int, /, **values: object) -> str:
    """The staff-language form of a message for ``count`` (also a placeholder)."""
    return staff().ngettext(singular, plural, count, **values)
