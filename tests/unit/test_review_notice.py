"""The review notice is the web app's words, complete, in each of the five languages."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sealpost.clients.relative import cli as relative_cli
from sealpost.clients.relative import notice
from sealpost.clients.relative.notice import (
    NOTICE_KEYS,
    NoticeCatalogueError,
    review_notice,
)
from sealpost.i18n import LANGUAGES, UnknownLanguageError

#: What each language's notice must say, in that language's words: the law it reads
#: under, that every reading is recorded in the log, and that lawyers' mail is exempt.
COMPLETE = {
    "nl": ("artikel 36", "vastgelegd in een logboek", "advocaten"),
    "en": ("article 36", "Every such reading is recorded", "lawyers"),
    "ar": ("المادة 36", "كل قراءة", "المحامين"),
    "tr": ("madde 36", "her okuma", "avukatlarla"),
    "pl": ("art. 36", "Każde takie odczytanie jest zapisywane", "adwokatami"),
}


def _catalogue(language: str) -> dict[str, object]:
    path = Path(notice.__file__).resolve().parents[1] / "web" / "app" / "messages"
    data = json.loads((path / f"{language}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_every_language_has_a_complete_test() -> None:
    assert set(COMPLETE) == set(LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_notice_is_the_catalogue_text_in_order(language: str) -> None:
    catalogue = _catalogue(language)
    text = review_notice(language)
    assert text == "\n\n".join(str(catalogue[key]) for key in NOTICE_KEYS)
    assert text.split("\n\n")[3] == catalogue["notice.log"]  # every reading is recorded


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_notice_is_complete(language: str) -> None:
    text = review_notice(language)
    for words in COMPLETE[language]:
        assert words in text, f"{language}: {words!r} missing"


def test_the_catalogues_are_in_the_package() -> None:
    """A wheel ships them: messages/ is a namespace package under sealpost.*, with its JSON.

    (``pip wheel . --no-deps`` lists sealpost/clients/web/app/messages/<language>.json.)
    """
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    setup = config["tool"]["setuptools"]
    find = setup["packages"]["find"]
    assert find.get("namespaces", True)  # a folder without __init__.py is a package too
    assert "sealpost.*" in find["include"]
    assert "*.json" in setup["package-data"]["*"]
    folder = notice.CATALOGUE_DIR.relative_to(root)
    assert folder.parts == ("clients", "web", "app", "messages")
    assert all(part.isidentifier() for part in folder.parts)
    assert (root / "sealpost" / "clients").resolve() == root / "clients"


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(UnknownLanguageError, match="choose one of nl, en, ar, tr, pl"):
        review_notice("de")


def test_a_catalogue_without_part_of_the_notice_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue = _catalogue("nl")
    del catalogue["notice.log"]
    (tmp_path / "nl.json").write_text(json.dumps(catalogue), encoding="utf-8")
    (tmp_path / "en.json").write_text("[]", encoding="utf-8")
    monkeypatch.setattr(notice, "CATALOGUE_DIR", tmp_path)
    review_notice.cache_clear()
    try:
        with pytest.raises(NoticeCatalogueError, match=r"lacks notice\.log"):
            review_notice("nl")
        with pytest.raises(NoticeCatalogueError, match="not a catalogue"):
            review_notice("en")
        with pytest.raises(NoticeCatalogueError, match="cannot read"):
            review_notice("pl")
    finally:
        review_notice.cache_clear()


@pytest.mark.parametrize(
    ("arguments", "environment", "language"),
    [
        (["--language", "tr"], {"SEALPOST_LANGUAGE": "pl", "LANG": "nl_NL.UTF-8"}, "tr"),
        ([], {"SEALPOST_LANGUAGE": "pl", "LANG": "nl_NL.UTF-8"}, "pl"),
        ([], {"LANG": "ar_MA.UTF-8"}, "ar"),
        ([], {"LANG": "C.UTF-8"}, "en"),
    ],
)
def test_the_command_shows_it_in_the_relatives_language(
    arguments: list[str],
    environment: dict[str, str],
    language: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SEALPOST_LANGUAGE", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(relative_cli.app, ["notice", *arguments])
    assert result.exit_code == 0, result.output
    assert result.output == review_notice(language) + "\n"


def test_the_command_refuses_an_unknown_language() -> None:
    result = CliRunner().invoke(relative_cli.app, ["notice", "--language", "de"])
    assert result.exit_code == 2
    assert "unknown language 'de'" in result.output
