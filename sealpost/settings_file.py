"""A TOML settings file (read with the standard library's tomllib), checked key by key.

A program's settings each have a name, a kind of TOML value and a text form that its flag
and ``SEALPOST_*`` variable take. :func:`read` checks every key of a file against the
names and kinds, turns each value into that text form, and reports every problem at once:
an unknown key, a value of the wrong kind, a file others may change. Each problem names
the file and, where the key can be found in it, the line. What the text means (a port
from 0 to 65535, a URL) is the program's own parser's business, after this.
"""

from __future__ import annotations

import difflib
import enum
import re
import stat
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sealpost.i18n import _

#: Bytes a settings file may hold: a few hundred lines of settings, far below this.
MAX_FILE_BYTES: Final = 1 << 20


class Kind(enum.Enum):
    """The TOML value a setting takes, and how it becomes the setting's text form."""

    #: A string, as is.
    TEXT = "text"
    #: An integer.
    INTEGER = "integer"
    #: An integer or a float (``2`` and ``2.5``).
    NUMBER = "number"
    #: ``true`` or ``false``.
    BOOLEAN = "boolean"
    #: An integer, or the string ``"off"``.
    INTEGER_OR_OFF = "integer_or_off"
    #: An array of strings: joined with commas.
    TEXT_LIST = "text_list"
    #: A table of strings, ``name = "value"``: ``name=value`` pairs joined with commas.
    TEXT_TABLE = "text_table"

    def expected(self) -> str:
        """The TOML value wanted, in the staff language."""
        words = {
            Kind.TEXT: _("a string"),
            Kind.INTEGER: _("an integer"),
            Kind.NUMBER: _("a number"),
            Kind.BOOLEAN: _("true or false"),
            Kind.INTEGER_OR_OFF: _('an integer or "off"'),
            Kind.TEXT_LIST: _("an array of strings"),
            Kind.TEXT_TABLE: _("a table of strings"),
        }
        return words[self]


@dataclass(frozen=True)
class FileValue:
    """One setting the file sets: its text form and the line it is on (0: not found)."""

    text: str
    line: int


@dataclass(frozen=True)
class SettingsFile:
    """The settings a file sets, by name, in the text form their flags take.

    ``problems`` lists the keys that cannot be used (and a file others may change); the
    other keys are in ``values``, so that their own problems can be reported too.
    """

    path: Path
    values: dict[str, FileValue]
    problems: list[str]

    def where(self, name: str) -> str:
        """``FILE, line N: name`` (or ``FILE: name`` when the line is not known)."""
        return _where(self.path, self.values[name].line, name)


class SettingsError(Exception):
    """The file cannot be used; ``problems`` lists every reason, each naming the file."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _where(path: Path, line: int, name: str) -> str:
    if line:
        return _("{file}, line {line}: {setting}", file=path, line=line, setting=name)
    return _("{file}: {setting}", file=path, setting=name)


def _type_name(value: object) -> str:
    """What a TOML value is, in the staff language."""
    if isinstance(value, list | dict) and not value:
        return _("an empty array") if isinstance(value, list) else _("an empty table")
    names: list[tuple[type | tuple[type, ...], str]] = [
        (bool, _("a boolean")),  # before int: a bool is an int to Python
        (int, _("an integer")),
        (float, _("a float")),
        (str, _("a string")),
        (list, _("an array")),
        (dict, _("a table")),
    ]
    return next((name for kind, name in names if isinstance(value, kind)), _("a date or time"))


def _strings(items: Collection[object]) -> bool:
    """Non-empty, and every item a string."""
    return bool(items) and all(isinstance(item, str) for item in items)


def _text_form(kind: Kind, value: object) -> str | None:
    """The text a flag would give for ``value``, or None when it is not of ``kind``."""
    form: str | None = None
    if isinstance(value, bool):
        form = ("true" if value else "false") if kind is Kind.BOOLEAN else None
    elif isinstance(value, int):
        form = str(value) if kind in (Kind.INTEGER, Kind.NUMBER, Kind.INTEGER_OR_OFF) else None
    elif isinstance(value, float):
        form = repr(value) if kind is Kind.NUMBER else None
    elif isinstance(value, str):
        form = value if kind in (Kind.TEXT, Kind.INTEGER_OR_OFF) else None
    elif isinstance(value, list) and kind is Kind.TEXT_LIST and _strings(value):
        form = ",".join(value)
    elif isinstance(value, dict) and kind is Kind.TEXT_TABLE and _strings(value.values()):
        form = ",".join(f"{name}={item}" for name, item in value.items())
    return form


def line_of(text: str, name: str) -> int:
    """The line where the top-level key or table ``name`` is set; 0 when none is found.

    tomllib reports lines only for syntax errors; an unknown key or a value of the wrong
    kind is found again by its name, as ``name = ...`` before any table header, or as a
    ``[name]`` header.
    """
    key = re.compile(rf"\s*(?:{re.escape(name)}|\"{re.escape(name)}\"|'{re.escape(name)}')\s*=")
    header = re.compile(rf"\s*\[\s*{re.escape(name)}\s*\]")
    in_table = False
    for number, line in enumerate(text.splitlines(), start=1):
        if header.match(line):
            return number
        if line.lstrip().startswith("["):
            in_table = True
        elif not in_table and key.match(line):
            return number
    return 0


def check_owner_only_writable(path: Path) -> str | None:
    """A problem when others than the owner may change ``path``; None otherwise.

    A settings file says where the program connects and what it trusts: someone who can
    change it can redirect it. The same rule as for the program's own state.
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # reported when the file is read
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return _("{file} can be changed by other users: run chmod go-w {file}", file=path)
    return None


def read(path: Path, kinds: Mapping[str, Kind]) -> SettingsFile:
    """Read ``path`` and check each key against ``kinds``.

    SettingsError when the file cannot be read or is not TOML; the problems of its keys
    are in the result's ``problems``.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(
            [_("cannot read {file}: {reason}", file=path, reason=exc.strerror or exc)]
        ) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise SettingsError([_("{file} is larger than 1 MiB", file=path)])
    try:
        text = raw.decode("utf-8")
        document = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise SettingsError([_("{file} is not UTF-8 text", file=path)]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            [_("{file} is not valid TOML: {reason}", file=path, reason=exc)]
        ) from exc
    problems: list[str] = []
    unsafe = check_owner_only_writable(path)
    if unsafe:
        problems.append(unsafe)
    values: dict[str, FileValue] = {}
    for name, value in document.items():
        line = line_of(text, name)
        kind = kinds.get(name)
        if kind is None:
            close = difflib.get_close_matches(name, list(kinds), n=1)
            problems.append(
                _(
                    "{where}: no such setting (did you mean {suggestion}?)",
                    where=_where(path, line, name),
                    suggestion=close[0],
                )
                if close
                else _("{where}: no such setting", where=_where(path, line, name))
            )
            continue
        form = _text_form(kind, value)
        if form is None:
            problems.append(
                _(
                    "{where}: expected {expected}, got {actual}",
                    where=_where(path, line, name),
                    expected=kind.expected(),
                    actual=_type_name(value),
                )
            )
            continue
        values[name] = FileValue(form, line)
    return SettingsFile(path, values, problems)
