"""The message catalogues against the code: what is missing, and bringing them up to date.

``python -m sealpost._internal.catalogues`` extracts every marked message from the code with
Babel, writes ``sealpost/locale/<domain>.pot`` and merges it into each language's catalogue
(new messages arrive empty, messages no longer in the code are dropped). Then translate the
empty entries; ``check`` (run by tests/unit/test_catalogues.py) fails until every entry of
every language is translated with exactly its message id's placeholders.
"""

from __future__ import annotations

import datetime as dt
import string
import sys
from pathlib import Path
from typing import Final

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from sealpost import i18n

#: How each catalogue's messages are marked in the code (Babel keyword specs).
KEYWORDS: Final[dict[i18n.Domain, dict[str, tuple[int, ...] | None]]] = {
    "staff": {"_": None, "_n": (1, 2)},
    "detainee": {"gettext": None, "ngettext": (1, 2)},
}


#: Catalogue headers carry no dates, so that an update without new words changes nothing.
_FIXED_DATE: Final = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_HEADER: Final = (
    "# Sealpost's {domain} messages{language}.\n# Update: python -m sealpost._internal.catalogues"
)


def _catalog(domain: i18n.Domain, language: str | None = None) -> Catalog:
    """An empty catalogue with Sealpost's header."""
    return Catalog(
        locale=language,
        domain=domain,
        header_comment=_HEADER.format(
            domain=domain, language=f" in {language}" if language else ""
        ),
        project="Sealpost",
        version="",
        copyright_holder="",
        msgid_bugs_address="",
        creation_date=_FIXED_DATE,
        revision_date=_FIXED_DATE,
        last_translator="",
        language_team="",
        charset="utf-8",
        fuzzy=False,
    )


def source_dirs() -> list[Path]:
    """The Python source folders (clients/, gateway/, ... are linked into sealpost/)."""
    root = Path(i18n.__file__).resolve().parent
    found = [root]
    for child in sorted(root.iterdir()):
        if child.is_symlink() and child.is_dir():
            found.append(child.resolve())
    return found


def extract(domain: i18n.Domain) -> Catalog:
    """Every message of ``domain`` marked in the code, with where it is used."""
    catalog = _catalog(domain)
    for folder in source_dirs():
        for filename, lineno, message, comments, context in extract_from_dir(
            str(folder),
            method_map=[("**.py", "python")],
            keywords=KEYWORDS[domain],
            comment_tags=("Translators:",),
        ):
            if not message or (isinstance(message, tuple) and not all(message)):
                continue
            location = (str((folder / filename).relative_to(folder.parent)), lineno)
            catalog.add(message, locations=[location], auto_comments=comments, context=context)
    return catalog


def read(domain: i18n.Domain, language: str) -> Catalog:
    """One language's catalogue as it is on disk."""
    with i18n.catalogue_path(domain, language).open("rb") as source:
        return read_po(source, locale=language, domain=domain)


def placeholders(text: str) -> set[str]:
    """The ``str.format`` field names in ``text``."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _texts(value: object) -> tuple[str, ...]:
    """A message id or string as its forms (one, or a plural's several)."""
    if isinstance(value, (tuple, list)):
        return tuple(str(form) for form in value)
    return (str(value),) if value else ("",)


def problems(domain: i18n.Domain, language: str, template: Catalog | None = None) -> list[str]:
    """What is wrong with one language's catalogue against the code; empty when complete."""
    template = template if template is not None else extract(domain)
    path = i18n.catalogue_path(domain, language)
    if not path.is_file():
        return [f"{path}: missing (run python -m sealpost._internal.catalogues)"]
    catalog = read(domain, language)
    found: list[str] = []
    for message in template:
        if not message.id:
            continue
        entry = catalog.get(message.id, message.context)
        if entry is None:
            found.append(f"{language}: not in the catalogue: {message.id!r}")
            continue
        if entry.fuzzy:
            found.append(f"{language}: marked fuzzy: {message.id!r}")
        ids = _texts(message.id)
        strings = _texts(entry.string)
        if not all(strings):
            found.append(f"{language}: not translated: {message.id!r}")
            continue
        # A plural's forms may leave out {count} ("one message" in words) but nothing else.
        wanted = placeholders(ids[-1])
        for form in strings:
            have = placeholders(form)
            if len(ids) > 1:
                have |= {"count"} & wanted
            if have != wanted:
                found.append(
                    f"{language}: placeholders {sorted(have)} instead of {sorted(wanted)}: "
                    f"{message.id!r}"
                )
    for entry in catalog:
        if entry.id and template.get(entry.id, entry.context) is None:
            found.append(f"{language}: no longer in the code: {entry.id!r}")
    return found


def update() -> list[Path]:
    """Write each domain's template and merge it into every language's catalogue."""
    written: list[Path] = []
    for domain, languages in i18n.DOMAIN_LANGUAGES.items():
        template = extract(domain)
        pot = i18n.LOCALE_DIR / f"{domain}.pot"
        pot.parent.mkdir(parents=True, exist_ok=True)
        with pot.open("wb") as out:
            write_po(out, template, omit_header=False, sort_output=True, include_lineno=False)
        written.append(pot)
        for language in languages:
            if language == i18n.SOURCE_LANGUAGE:
                continue
            path = i18n.catalogue_path(domain, language)
            catalog = read(domain, language) if path.is_file() else _catalog(domain, language)
            catalog.update(template, no_fuzzy_matching=True)
            catalog.revision_date = _FIXED_DATE
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as out:
                write_po(
                    out,
                    catalog,
                    ignore_obsolete=True,
                    sort_output=True,
                    include_lineno=False,
                    width=100,
                )
            written.append(path)
    return written


def main() -> int:
    """Update the catalogues, then list what still needs translating."""
    for path in update():
        print(f"wrote {path}")
    remaining = 0
    for domain, languages in i18n.DOMAIN_LANGUAGES.items():
        template = extract(domain)
        for language in languages:
            if language == i18n.SOURCE_LANGUAGE:
                continue
            for problem in problems(domain, language, template):
                print(f"{domain}: {problem}")
                remaining += 1
    return 1 if remaining else 0


if __name__ == "__main__":
    sys.exit(main())
