"""The institution's register of its detainees: the name it records and the language they read.

Kept at the terminal, inside the institution's zone, sealed in the terminal profile with
its secrets (profile.py): the gateway knows a detainee by id only and never learns a
name or a language. Every document handed to a detainee (slip, reply receipt,
withholding notice) is written in the registered language with the registered name
beside the id; a detainee not in the register reads Dutch, and the id alone.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from sealpost import i18n
from sealpost.clients.terminal.errors import ProfileFormatError, RegisterError
from sealpost.i18n import _

#: The language of a detainee the register does not know (the institutions are Dutch).
DEFAULT_LANGUAGE: Final = "nl"
#: The longest name and detainee id the register keeps.
MAX_NAME_CHARS: Final = 200
MAX_ID_CHARS: Final = 100
#: Control, surrogate, private-use and unassigned characters.
_REFUSED: Final = frozenset({"Cc", "Cs", "Co", "Cn"})
#: Bidirectional embeddings, overrides and isolates: they could turn a printed name around.
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Detainee:
    """A detainee as the institution records them: id, name (may be unknown), language."""

    detainee_id: str
    name: str = ""
    language: str = DEFAULT_LANGUAGE

    def shown(self) -> str:
        """The name beside the id, as documents show it: "Name (id)", or the id alone."""
        return f"{self.name} ({self.detainee_id})" if self.name else self.detainee_id

    def to_json(self) -> dict[str, str]:
        """The entry as a JSON object."""
        return {"detaineeId": self.detainee_id, "name": self.name, "language": self.language}


def _check_text(value: str, *, name: bool, limit: int) -> str:
    """``value`` trimmed and NFC-normalised; RegisterError if empty, too long or not printable.

    ``name``: the value is a name (else a detainee id); each has its own sentences, since
    the two nouns are not declined alike in every language.
    """
    value = unicodedata.normalize("NFC", value.strip())
    if not value:
        raise RegisterError(_("the name is empty") if name else _("the detainee id is empty"))
    if len(value) > limit:
        raise RegisterError(
            _("the name is longer than {limit} characters", limit=limit)
            if name
            else _("the detainee id is longer than {limit} characters", limit=limit)
        )
    if any(c in _BIDI_CONTROLS or unicodedata.category(c) in _REFUSED for c in value):
        raise RegisterError(
            _("the name holds control or unassigned characters")
            if name
            else _("the detainee id holds control or unassigned characters")
        )
    return value


def check_language(language: str) -> str:
    """A language documents are written in; RegisterError naming the choices otherwise."""
    chosen = i18n.language_of(language, i18n.LANGUAGES)
    if chosen is None:
        raise RegisterError(
            _(
                "no documents in {language}: choose one of {languages}",
                language=repr(language),
                languages=", ".join(i18n.LANGUAGES),
            )
        )
    return chosen


@dataclass(frozen=True)
class DetaineeRegister:
    """Detainees by id; immutable: ``set`` and ``remove`` return a new register."""

    entries: Mapping[str, Detainee] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Detainee]:
        """The entries in id order."""
        return iter(sorted(self.entries.values(), key=lambda d: d.detainee_id))

    def __len__(self) -> int:
        """How many detainees are registered."""
        return len(self.entries)

    def lookup(self, detainee_id: str) -> Detainee:
        """The registered detainee, or one in Dutch without a name."""
        return self.entries.get(detainee_id) or Detainee(detainee_id)

    def set(
        self, detainee_id: str, *, name: str | None = None, language: str | None = None
    ) -> DetaineeRegister:
        """Register a detainee (a name is needed) or change their name or language."""
        detainee_id = _check_text(detainee_id, name=False, limit=MAX_ID_CHARS)
        current = self.entries.get(detainee_id)
        if current is None and name is None:
            raise RegisterError(
                _("{detainee} is not in the register yet: give the name", detainee=detainee_id)
            )
        entry = current or Detainee(detainee_id)
        if name is not None:
            entry = replace(entry, name=_check_text(name, name=True, limit=MAX_NAME_CHARS))
        if language is not None:
            entry = replace(entry, language=check_language(language))
        return DetaineeRegister({**self.entries, detainee_id: entry})

    def remove(self, detainee_id: str) -> DetaineeRegister:
        """The register without this detainee (released or transferred away)."""
        if detainee_id not in self.entries:
            raise RegisterError(_("{detainee} is not in the register", detainee=detainee_id))
        return DetaineeRegister({k: v for k, v in self.entries.items() if k != detainee_id})

    def to_json(self) -> list[dict[str, str]]:
        """The register as stored in the profile: a list of entries in id order."""
        return [entry.to_json() for entry in self]

    @classmethod
    def from_json(cls, value: object) -> DetaineeRegister:
        """Parse the stored list; ProfileFormatError if it is damaged."""
        if not isinstance(value, list):
            raise ProfileFormatError(_("the detainee register is damaged"))
        entries: dict[str, Detainee] = {}
        for item in value:
            if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) for k in ("detaineeId", "name", "language")
            ):
                raise ProfileFormatError(_("the detainee register is damaged"))
            language = i18n.language_of(item["language"], i18n.LANGUAGES)
            if language is None or item["detaineeId"] in entries:
                raise ProfileFormatError(_("the detainee register is damaged"))
            entries[item["detaineeId"]] = Detainee(item["detaineeId"], item["name"], language)
        return cls(entries)
