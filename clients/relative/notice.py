"""What a relative is told before the first message (SPEC section 7, "Honesty towards users").

The words are the web app's: its catalogues (clients/web/app/messages/<language>.json,
keys ``notice.*``) are the one source, so the web app, the SDK and ``sealpost relative``
tell every relative the same thing, in Dutch, English, Arabic, Turkish and Polish.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Final

from sealpost.errors import SealpostError
from sealpost.i18n import LANGUAGES, UnknownLanguageError

#: The web app's catalogues; the package ships them (pyproject: package-data "*.json").
CATALOGUE_DIR: Final = Path(__file__).resolve().parents[1] / "web" / "app" / "messages"
#: The catalogue entries of the notice, in the order they are shown: a title, one line
#: to read first, then who may read, that every reading is recorded, and what is exempt.
NOTICE_KEYS: Final = (
    "notice.title",
    "notice.intro",
    "notice.review",
    "notice.log",
    "notice.privileged",
)


class NoticeCatalogueError(SealpostError):
    """A catalogue of the review notice is missing, unreadable or incomplete."""


@functools.cache
def review_notice(language: str) -> str:
    """The review notice in ``language`` (one of sealpost.i18n.LANGUAGES), as plain text.

    UnknownLanguageError for any other language; NoticeCatalogueError when the
    catalogue lacks a part of the notice, so that nobody is shown half of it.
    """
    if language not in LANGUAGES:
        raise UnknownLanguageError(language, LANGUAGES)
    path = CATALOGUE_DIR / f"{language}.json"
    try:
        catalogue = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NoticeCatalogueError(f"cannot read the review notice from {path}: {exc}") from exc
    if not isinstance(catalogue, dict):
        raise NoticeCatalogueError(f"{path} is not a catalogue (a JSON object)")
    missing = [
        key
        for key in NOTICE_KEYS
        if not isinstance(catalogue.get(key), str) or not catalogue[key].strip()
    ]
    if missing:
        raise NoticeCatalogueError(f"{path} lacks {', '.join(missing)} of the review notice")
    return "\n\n".join(catalogue[key].strip() for key in NOTICE_KEYS)
