"""The ``sealpost`` program: the language and gRPC's logging are settled before the commands load.

Help texts are words people read, built when the command modules are imported; so the
staff language (``--language`` anywhere on the command line, else SEALPOST_LANGUAGE or the
locale) is chosen first, and only then is :mod:`sealpost.cli` imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from sealpost import i18n


def language_flag(args: Sequence[str]) -> str | None:
    """The value of ``--language`` on a command line, if it is there."""
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--language" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--language="):
            return arg.partition("=")[2]
    return None


def main() -> None:
    """Console entry point."""
    args = sys.argv[1:]
    try:
        language = i18n.staff_language_from(language_flag(args))
    except i18n.UnknownLanguageError:
        # Not a staff language: a relative's --language (ar, tr, pl), or a mistake the
        # root option reports when it is parsed. The environment decides until then.
        language = i18n.staff_language_from(None)
    i18n.use_staff_language(language)
    if not os.environ.get("SEALPOST_VERBOSE") and "--verbose" not in args:
        # gRPC's core logs connection failures on stderr itself; each failure is reported
        # once, in words, and --verbose shows gRPC's own.
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from sealpost.cli import app  # noqa: PLC0415 - after the language is chosen

    app()
