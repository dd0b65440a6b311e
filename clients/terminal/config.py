"""The settings a terminal's operator sets: flags over variables over a TOML file over the profile.

The profile (profile.py) keeps what enrolment decided, sealed and authenticated: the
institution and terminal ids, the certificate and its key, the CA, the directory pin,
the key-server token and CA bundle, the institution key, the detainee register. None of
that can be set here. What can:

=================  ===============================  =========================================
setting            variable                         instead of
=================  ===============================  =========================================
gateway            SEALPOST_TERMINAL_GATEWAY        the profile's gateway address (host:port)
key_server         SEALPOST_TERMINAL_KEY_SERVER     the profile's key-server URL
batch_size         SEALPOST_TERMINAL_BATCH_SIZE     200 (intake)
triage             SEALPOST_TERMINAL_TRIAGE         true (intake)
max_wait           SEALPOST_TERMINAL_MAX_WAIT       60 seconds (intake --once)
metrics_port       SEALPOST_TERMINAL_METRICS_PORT   off (intake; on 127.0.0.1 only)
passphrase_file    SEALPOST_PASSPHRASE_FILE         SEALPOST_PASSPHRASE or a prompt
=================  ===============================  =========================================

The settings file is ``--config`` (intake) or the one SEALPOST_TERMINAL_CONFIG names; its
keys are the names above. A changed address is only where the terminal connects: the
gateway must still present a certificate of the CA pinned in the profile and a directory
signed by the pinned key, and the key server one that the profile's CA bundle (or the
system's) trusts. A file that others may change is refused (settings_file).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from sealpost import settings_file
from sealpost.clients.terminal.errors import TerminalSettingsError
from sealpost.i18n import _
from sealpost.settings_file import Kind, SettingsError

#: The variable naming the settings file when ``--config`` is not given.
CONFIG_ENV: Final = "SEALPOST_TERMINAL_CONFIG"
#: Most messages in one escrow batch (SubmitEscrow's and the key server's limit).
MAX_BATCH: Final = 200
_LOOPBACK: Final = ("localhost", "127.0.0.1", "::1")


def _gateway(raw: str) -> str:
    """``host:port`` of the gateway's terminal port."""
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in raw:
        raise ValueError
    return raw


def _key_server(raw: str) -> str:
    """An https URL; http only for a key server on this machine (development)."""
    parts = urlsplit(raw)
    _ = parts.port  # a malformed port raises ValueError
    if parts.scheme not in ("http", "https") or not parts.hostname or "," in raw:
        raise ValueError
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError
    return raw.rstrip("/")


def _batch(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= MAX_BATCH:
        raise ValueError
    return value


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError


def _seconds(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 3600:
        raise ValueError
    return value


def _port_or_off(raw: str) -> int | None:
    if raw.strip().lower() == "off":
        return None
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError
    return value


def _path(raw: str) -> Path:
    if not raw:
        raise ValueError
    return Path(raw)


@dataclass(frozen=True)
class Setting:
    """One operator setting: its variable, its TOML value, how its text parses, what it wants."""

    env: str
    kind: Kind
    parse: Callable[[str], Any]
    expect: Callable[[], str]


#: Every setting, by the name its key in the settings file has.
SETTINGS: Final[dict[str, Setting]] = {
    "gateway": Setting(
        "SEALPOST_TERMINAL_GATEWAY",
        Kind.TEXT,
        _gateway,
        lambda: _("host:port of the gateway's terminal port"),
    ),
    "key_server": Setting(
        "SEALPOST_TERMINAL_KEY_SERVER",
        Kind.TEXT,
        _key_server,
        lambda: _("an https URL (http only for this machine)"),
    ),
    "batch_size": Setting(
        "SEALPOST_TERMINAL_BATCH_SIZE",
        Kind.INTEGER,
        _batch,
        lambda: _("a whole number from 1 to {most}", most=MAX_BATCH),
    ),
    "triage": Setting(
        "SEALPOST_TERMINAL_TRIAGE", Kind.BOOLEAN, _boolean, lambda: _("true or false")
    ),
    "max_wait": Setting(
        "SEALPOST_TERMINAL_MAX_WAIT",
        Kind.NUMBER,
        _seconds,
        lambda: _("a number of seconds from 0 to 3600"),
    ),
    "metrics_port": Setting(
        "SEALPOST_TERMINAL_METRICS_PORT",
        Kind.INTEGER_OR_OFF,
        _port_or_off,
        lambda: _("an integer from 0 to 65535, or off"),
    ),
    "passphrase_file": Setting(
        "SEALPOST_PASSPHRASE_FILE", Kind.TEXT, _path, lambda: _("a file path")
    ),
}


@dataclass(frozen=True)
class TerminalConfig:
    """The operator's settings in force; None for an address means the profile's."""

    gateway: str | None = None
    key_server: str | None = None
    batch_size: int = MAX_BATCH
    triage: bool = True
    max_wait: float = 60.0
    #: The intake's metrics port on 127.0.0.1; None: no metrics.
    metrics_port: int | None = None
    passphrase_file: Path | None = None
    #: Where each setting given came from: the flag, the variable, or ``FILE, line N``.
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def load(
        cls,
        flags: Mapping[str, str | None],
        environ: Mapping[str, str] | None = None,
        *,
        config_file: Path | None = None,
    ) -> TerminalConfig:
        """Flags (``None``: not given) over ``environ`` over the settings file over defaults.

        TerminalSettingsError lists every problem.
        """
        environ = os.environ if environ is None else environ
        if config_file is None and environ.get(CONFIG_ENV):
            config_file = Path(environ[CONFIG_ENV])
        problems: list[str] = []
        document: settings_file.SettingsFile | None = None
        if config_file is not None:
            try:
                document = settings_file.read(
                    config_file, {name: s.kind for name, s in SETTINGS.items()}
                )
            except SettingsError as exc:
                problems += exc.problems
            else:
                problems += document.problems
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, setting in SETTINGS.items():
            raw, where = flags.get(name), "--" + name.replace("_", "-")
            if raw is None and setting.env in environ:
                raw, where = environ[setting.env], setting.env
            if raw is None and document is not None and name in document.values:
                raw, where = document.values[name].text, document.where(name)
            if raw is None:
                continue
            try:
                values[name] = setting.parse(raw)
            except ValueError:
                problems.append(
                    _(
                        "{setting}: expected {expect}, got {value}",
                        setting=where,
                        expect=setting.expect(),
                        value=repr(raw),
                    )
                )
                continue
            sources[name] = where
        if problems:
            raise TerminalSettingsError(problems)
        return cls(**values, sources=sources)
