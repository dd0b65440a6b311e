"""The ``sealpost`` program run as a person runs it, and the staff language for one test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sealpost import i18n

if TYPE_CHECKING:
    from sealpost._internal.stack import Stack


def sealpost(
    *args: str, timeout: float = 120, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m sealpost ARGS`` in a clean environment without a Dutch locale.

    No SEALPOST_* variable is inherited (only those of ``env``) and the locale is C, so
    only ``--language`` chooses the language; wide columns keep help texts on one line.
    """
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")},
        **(env or {}),
    }
    env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", LANGUAGE="", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "sealpost", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def as_staff(
    stack: Stack, roles: Sequence[str], institutions: Sequence[str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``python -m sealpost ARGS`` as a new staff member with ``roles`` at ``institutions``.

    Signed in at the stack's key server (gateway token and own key-server token), the
    stack's gateway and directory key set through SEALPOST_* variables, in English.
    """
    _name, session, token = stack.staff_login(roles, institutions)
    return sealpost(
        *args,
        env={
            "SEALPOST_GATEWAY": stack.gateway.address,
            "SEALPOST_CA_FILE": str(stack.gateway.state_dir / "tls" / "ca.pem"),
            "SEALPOST_KEY_SERVER_ADDRESS": stack.openbao.address,
            "SEALPOST_STAFF_TOKEN": token,
            "SEALPOST_KEY_SERVER_TOKEN": session.token,
            "SEALPOST_DIRECTORY_KEY": stack.pin.signing_key.hex(),
            "SEALPOST_LANGUAGE": "en",
            "SEALPOST_KEY_PREFIX": stack.prefix,
        },
    )


@contextmanager
def staff_language(language: str) -> Iterator[None]:
    """Speak ``language`` in this process's staff programs, then English again."""
    i18n.use_staff_language(language)
    try:
        yield
    finally:
        i18n.use_staff_language(i18n.SOURCE_LANGUAGE)
