"""Every message catalogue has every message the code marks, translated, with its placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from sealpost import i18n
from sealpost._internal import catalogues

CATALOGUES = [
    (domain, language)
    for domain, languages in i18n.DOMAIN_LANGUAGES.items()
    for language in languages
    if language != i18n.SOURCE_LANGUAGE
]


@pytest.fixture(scope="module")
def templates() -> dict[i18n.Domain, Catalog]:
    return {domain: catalogues.extract(domain) for domain in i18n.DOMAIN_LANGUAGES}


@pytest.mark.parametrize(("domain", "language"), CATALOGUES)
def test_catalogue_is_complete(
    domain: i18n.Domain, language: str, templates: dict[i18n.Domain, Catalog]
) -> None:
    assert catalogues.problems(domain, language, templates[domain]) == []


def _write(folder: Path, language: str, entries: dict[str, str]) -> None:
    catalog = Catalog(locale=language, domain="detainee", fuzzy=False)
    for message_id, text in entries.items():
        catalog.add(message_id, text)
    path = folder / language / "LC_MESSAGES" / "detainee.po"
    path.parent.mkdir(parents=True)
    with path.open("wb") as out:
        write_po(out, catalog)


def test_missing_empty_and_wrong_placeholders_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = Catalog(domain="detainee")
    template.add("From {sender}")
    template.add("Printed")
    template.add("Sent")
    _write(tmp_path, "nl", {"From {sender}": "Van {afzender}", "Printed": "", "Gone": "Weg"})
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)

    found = catalogues.problems("detainee", "nl", template)

    assert found == [
        "nl: placeholders ['afzender'] instead of ['sender']: 'From {sender}'",
        "nl: not translated: 'Printed'",
        "nl: not in the catalogue: 'Sent'",
        "nl: no longer in the code: 'Gone'",
    ]


def test_a_missing_catalogue_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    [problem] = catalogues.problems("detainee", "pl", Catalog(domain="detainee"))
    assert "missing" in problem
