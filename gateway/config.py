"""Gateway configuration from flags, ``SEALPOST_*`` variables and a TOML settings file.

A flag wins over the environment, the environment over the settings file
(``--config``, SEALPOST_CONFIG; its keys are the settings' names), the file over
the default. Every value is validated before the server starts, and all problems
are reported together so an operator can fix them in one go
(``sealpost gateway check-config`` shows where each value came from).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sealpost import settings_file
from sealpost._internal.files import write_atomic
from sealpost._internal.logs import LEVELS
from sealpost.crypto import cosignature
from sealpost.crypto.errors import FormatError
from sealpost.gateway.errors import ConfigError
from sealpost.gateway.ratelimit import Limit, parse_limit
from sealpost.gateway.webapp import BUILT_APP
from sealpost.i18n import _
from sealpost.settings_file import Kind, SettingsError

ENV_PREFIX = "SEALPOST_"
#: The variable naming the settings file when ``--config`` is not given.
CONFIG_ENV: Final = "SEALPOST_CONFIG"
#: What the masked part of a secret shows.
MASK: Final = "***"
#: Most gateway worker processes on one machine (gateway/workers.py).
MAX_WORKERS = 64
#: Bounds of the tree-head signing interval, in seconds (SPEC P13: within seconds).
MIN_HEAD_INTERVAL_S = 0.1
MAX_HEAD_INTERVAL_S = 60.0
#: Most auditor witness keys one gateway accepts cosignatures from.
MAX_WITNESS_KEYS = 64
_WITNESS_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")


@dataclass(frozen=True)
class WitnessKey:
    """An auditor's witness key, handed over out of band: its name and Ed25519 public key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """The witness key id cosignatures carry (docs/transparency-log.md, "Cosignatures")."""
        return cosignature.witness_key_id(self.public_key)


@dataclass(frozen=True)
class WitnessKeys:
    """The auditors' witness keys the gateway accepts cosignatures from, in the order given."""

    keys: tuple[WitnessKey, ...] = ()

    def __str__(self) -> str:
        """The setting's own form, ``name=hex,name=hex`` (parsed back by ``_witness_keys``)."""
        return ",".join(f"{key.name}={key.public_key.hex()}" for key in self.keys)


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError
    return value


def _port_or_off(raw: str) -> int | None:
    return None if raw.strip().lower() == "off" else _port(raw)


def _web_app(raw: str) -> Path | None:
    return None if raw.strip().lower() == "off" else _path(raw)


_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _origins(raw: str) -> tuple[str, ...]:
    """Web origins as browsers send them, ``https://host[:port]``; http only for loopback."""
    origins: list[str] = []
    for item in raw.split(","):
        origin = item.strip()
        parts = urlsplit(origin)
        _ = parts.port  # a malformed port raises ValueError
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or origin != f"{parts.scheme}://{parts.netloc}"
            or origin != origin.lower()
            or "@" in parts.netloc
            or origin in origins
        ):
            raise ValueError
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK_NAMES:
            raise ValueError
        origins.append(origin)
    return tuple(origins)


def _host(raw: str) -> str:
    ipaddress.ip_address(raw)  # an address, not a name: no resolver surprises
    return raw


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 3600:
        raise ValueError
    return value


def _seconds() -> str:
    return _("a number of seconds from 0 to 3600")


def _relay(raw: str) -> str:
    """``host:port`` of an SMTP relay, or empty."""
    if not raw:
        return ""
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError
    return raw


def _level(raw: str) -> str:
    if raw not in LEVELS:
        raise ValueError
    return raw


def _path(raw: str) -> Path:
    if not raw:
        raise ValueError
    return Path(raw)


def _text(raw: str) -> str:
    if not raw or len(raw) > 2000:
        raise ValueError
    return raw


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError
    return raw.rstrip("/")


def _urls(raw: str) -> str:
    """One http(s) URL, or several separated by commas (a cluster's nodes): comma-joined."""
    urls = [_url(part.strip()) for part in raw.split(",")]
    if len(set(urls)) != len(urls):
        raise ValueError
    return ",".join(urls)


def _count(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 1_000_000:
        raise ValueError
    return value


def _days(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 36_500:
        raise ValueError
    return value


def _workers(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= MAX_WORKERS:
        raise ValueError
    return value


def _head_interval(raw: str) -> float:
    value = float(raw)
    if not MIN_HEAD_INTERVAL_S <= value <= MAX_HEAD_INTERVAL_S:
        raise ValueError
    return value


#: Seconds between looks at the key server's keys: often enough that every gateway reads
#: a new session-token key before it makes tokens (3 minutes after it is written).
MAX_KEY_REFRESH_S: Final = 120.0


def _key_refresh(raw: str) -> float:
    value = float(raw)
    if not 1.0 <= value <= MAX_KEY_REFRESH_S:
        raise ValueError
    return value


#: Where the directory, log and session-token keys are kept.
KEY_CUSTODIES: Final = ("file", "key-server")


def _custody(raw: str) -> str:
    if raw not in KEY_CUSTODIES:
        raise ValueError
    return raw


def _prefix(raw: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", raw):
        raise ValueError
    return raw


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError


def _witness_keys(raw: str) -> WitnessKeys:
    """``name=hex,name=hex``: lower-case names, 64 hex digits of an Ed25519 public key each."""
    keys: list[WitnessKey] = []
    for item in raw.split(","):
        name, sep, key_hex = item.strip().partition("=")
        if not sep or not _WITNESS_NAME.match(name) or len(key_hex) != 64:
            raise ValueError
        key = WitnessKey(name, bytes.fromhex(key_hex))
        try:
            key_id = key.key_id
        except FormatError:
            raise ValueError from None
        if any(k.name == name or k.key_id == key_id for k in keys):
            raise ValueError
        keys.append(key)
    if not keys or len(keys) > MAX_WITNESS_KEYS:
        raise ValueError
    return WitnessKeys(tuple(keys))


def _limit_expect() -> str:
    return _(
        "two rates N/unit,N/unit (per client address, then overall; unit s, min or h), "
        "e.g. 10/h,120/min"
    )


def _meta(env: str, parse: Callable[[str], Any], expect: Callable[[], str]) -> dict[str, Any]:
    """Where a setting comes from in the environment, how to parse it, what is expected.

    ``expect`` says it in the staff language when a value does not parse.
    """
    return {"env": ENV_PREFIX + env, "parse": parse, "expect": expect}


@dataclass(frozen=True)
class GatewayConfig:
    """Everything ``sealpost gateway serve`` needs to start."""

    #: Address to listen on.
    host: str = field(
        default="127.0.0.1",
        metadata=_meta("HOST", _host, lambda: _("an IP address such as 127.0.0.1")),
    )
    #: Port for relatives and staff (TLS); 0 picks a free one.
    port: int = field(
        default=50051, metadata=_meta("PORT", _port, lambda: _("an integer from 0 to 65535"))
    )
    #: Port for institution terminals (mutual TLS, client certificate required); 0 picks one.
    terminal_port: int = field(
        default=50052,
        metadata=_meta("TERMINAL_PORT", _port, lambda: _("an integer from 0 to 65535")),
    )
    #: Port for browsers (the Connect protocol over HTTPS, docs/gateway.md); 0 picks one,
    #: ``off`` serves no browser port.
    web_port: int | None = field(
        default=50053,
        metadata=_meta("WEB_PORT", _port_or_off, lambda: _("an integer from 0 to 65535, or off")),
    )
    #: Web origins whose pages may call the browser port (CORS); none: no page may.
    web_origins: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            "WEB_ORIGINS",
            _origins,
            lambda: _(
                "origins such as https://post.example.nl separated by commas (plain http only "
                "for localhost, 127.0.0.1 or [::1])"
            ),
        ),
    )
    #: Port of the Prometheus metrics endpoint (plain HTTP on ``host``, GET /metrics; for
    #: operators only, never exposed publicly: docs/operations.md, section 13); 0 picks
    #: one, ``off`` (the default) serves none.
    metrics_port: int | None = field(
        default=None,
        metadata=_meta(
            "METRICS_PORT", _port_or_off, lambda: _("an integer from 0 to 65535, or off")
        ),
    )
    #: The built relatives' web app the browser port serves (docs/web.md); ``off``: none.
    #: By default the one built in the source tree, when it has been built.
    web_app: Path | None = field(
        default=BUILT_APP,
        metadata=_meta("WEB_APP", _web_app, lambda: _("a folder path, or off")),
    )
    #: Folder with the gateway's keys and TLS material (`sealpost gateway init` creates it).
    state_dir: Path = field(
        default=Path("sealpost-state"),
        metadata=_meta("STATE_DIR", _path, lambda: _("a folder path")),
    )
    #: SQLAlchemy URL; empty means a SQLite file in the state folder.
    database_url: str = field(
        default="", metadata=_meta("DATABASE_URL", _text, lambda: _("a database URL"))
    )
    #: A file holding the database's password (a mounted secret), put into database_url
    #: when the gateway connects; the URL then carries no password of its own.
    database_password_file: Path | None = field(
        default=None, metadata=_meta("DATABASE_PASSWORD_FILE", _path, lambda: _("a file path"))
    )
    #: The key server (OpenBao or Vault), whose identity tokens staff present; a cluster's
    #: nodes separated by commas (the gateway asks the next one when one does not answer).
    key_server_address: str = field(
        default="",
        metadata=_meta(
            "KEY_SERVER_ADDRESS",
            _urls,
            lambda: _("an http(s) URL, or several separated by commas"),
        ),
    )
    #: Where the directory and log keys sign and the session-token key is kept: ``file``
    #: (gateway-keys.json in the state folder, the single-host default) or ``key-server``
    #: (transit keys that never leave the key server, docs/operations.md, section 16).
    key_custody: str = field(
        default="file",
        metadata=_meta(
            "KEY_CUSTODY", _custody, lambda: _("one of {kinds}", kinds=", ".join(KEY_CUSTODIES))
        ),
    )
    #: A file holding the gateway's own key-server token (``sealpost admin gateway-token``),
    #: with key_custody = key-server; the gateway renews it while it runs.
    key_server_token_file: Path | None = field(
        default=None, metadata=_meta("KEY_SERVER_TOKEN_FILE", _path, lambda: _("a file path"))
    )
    #: The prefix the key server was bootstrapped with (mounts and key names derive from it).
    key_server_prefix: str = field(
        default="sealpost",
        metadata=_meta(
            "KEY_SERVER_PREFIX",
            _prefix,
            lambda: _("lower-case letters, digits and '-', starting with a letter"),
        ),
    )
    #: Seconds between renewals of the gateway's key-server token, refreshes of the
    #: session-token keys and looks for a newer log key (key_custody = key-server).
    key_refresh_seconds: float = field(
        default=60.0,
        metadata=_meta(
            "KEY_REFRESH_SECONDS",
            _key_refresh,
            lambda: _("a number of seconds from 1 to {most:.0f}", most=MAX_KEY_REFRESH_S),
        ),
    )
    #: Expected issuer (``iss``) of staff identity tokens.
    oidc_issuer: str = field(
        default="", metadata=_meta("OIDC_ISSUER", _url, lambda: _("an http(s) URL"))
    )
    #: Expected audience (``aud``) of staff identity tokens: the key server's role client id.
    oidc_audience: str = field(
        default="", metadata=_meta("OIDC_AUDIENCE", _text, lambda: _("a client id"))
    )
    #: Sends per minute per account before RESOURCE_EXHAUSTED (a flood guard, not a cap).
    send_rate_per_minute: int = field(
        default=120,
        metadata=_meta("SEND_RATE_PER_MINUTE", _count, lambda: _("a whole number from 1")),
    )
    #: Lowest level logged.
    log_level: str = field(
        default="info",
        metadata=_meta("LOG_LEVEL", _level, lambda: _("one of {levels}", levels=", ".join(LEVELS))),
    )
    #: Time in-flight calls get to finish on shutdown.
    grace_seconds: float = field(
        default=5.0,
        metadata=_meta("GRACE_SECONDS", _positive_float, _seconds),
    )
    #: Write the bound port here once serving (useful with port 0).
    port_file: Path | None = field(
        default=None, metadata=_meta("PORT_FILE", _path, lambda: _("a file path"))
    )
    #: Gateway processes sharing the ports (SO_REUSEPORT); one per core uses every core.
    workers: int = field(
        default=1,
        metadata=_meta(
            "WORKERS", _workers, lambda: _("a whole number from 1 to {most}", most=MAX_WORKERS)
        ),
    )
    #: Seconds between checks that sign a tree head whenever the log has grown (SPEC P13).
    head_interval_seconds: float = field(
        default=2.0,
        metadata=_meta(
            "HEAD_INTERVAL_SECONDS",
            _head_interval,
            lambda: _(
                "a number of seconds from {least} to {most:.0f}",
                least=MIN_HEAD_INTERVAL_S,
                most=MAX_HEAD_INTERVAL_S,
            ),
        ),
    )
    #: Delete settled messages (delivered, withheld, rejected) this many days after they
    #: were accepted, with their feed entries and grants; 0 keeps them (docs/operations.md,
    #: "Retention of rows"). The log keeps its leaves: digests and ids, never content.
    retention_days: float = field(
        default=0.0,
        metadata=_meta(
            "RETENTION_DAYS", _days, lambda: _("a number of days from 0 (keep) to 36500")
        ),
    )
    #: Seconds between two retention rounds.
    retention_interval_seconds: float = field(
        default=3600.0,
        metadata=_meta("RETENTION_INTERVAL_SECONDS", _positive_float, _seconds),
    )
    #: Auditors' witness keys, ``name=hex,...``, whose cosignatures the gateway accepts.
    witness_keys: WitnessKeys = field(
        default=WitnessKeys(),
        metadata=_meta(
            "WITNESS_KEYS",
            _witness_keys,
            lambda: _(
                "name=HEX pairs separated by commas: lower-case names, 64 hex digits of an "
                "Ed25519 public key each, no name or key twice"
            ),
        ),
    )

    #: The SMTP relay (host:port) for e-mail notices of news to relatives who asked for
    #: them (docs/gateway.md, "Notices by e-mail"); empty: no notices are sent.
    smtp_relay: str = field(
        default="", metadata=_meta("SMTP_RELAY", _relay, lambda: _("host:port, or empty for none"))
    )
    #: The sender of the notices.
    smtp_from: str = field(
        default="Sealpost <no-reply@localhost>",
        metadata=_meta(
            "SMTP_FROM", _text, lambda: _("an address such as Sealpost <no-reply@example.nl>")
        ),
    )
    #: STARTTLS to the relay; off only for a relay on the same host.
    smtp_starttls: bool = field(
        default=True, metadata=_meta("SMTP_STARTTLS", _boolean, lambda: _("true or false"))
    )
    #: Seconds between looks for news to tell, and the least time between two notices to
    #: one relative (so that their timing says little about events).
    news_interval_seconds: float = field(
        default=30.0, metadata=_meta("NEWS_INTERVAL_SECONDS", _positive_float, _seconds)
    )
    news_quiet_seconds: float = field(
        default=900.0, metadata=_meta("NEWS_QUIET_SECONDS", _positive_float, _seconds)
    )

    #: New devices (RegisterDevice), per client address and overall (docs/gateway.md, "Limits").
    register_limit: Limit = field(
        default=parse_limit("10/h,120/min"),
        metadata=_meta("REGISTER_LIMIT", parse_limit, _limit_expect),
    )
    #: Sign-in challenges and logins, per client address and overall.
    sign_in_limit: Limit = field(
        default=parse_limit("60/min,3000/min"),
        metadata=_meta("SIGN_IN_LIMIT", parse_limit, _limit_expect),
    )
    #: The directory, to callers who are not signed in, per client address and overall.
    directory_limit: Limit = field(
        default=parse_limit("120/min,6000/min"),
        metadata=_meta("DIRECTORY_LIMIT", parse_limit, _limit_expect),
    )

    #: Accept TLS 1.2 from old clients as well as TLS 1.3 (docs/gateway.md, "TLS").
    allow_tls12: bool = field(
        default=False, metadata=_meta("ALLOW_TLS12", _boolean, lambda: _("true or false"))
    )

    def settings(self) -> dict[str, str]:
        """The settings that differ from the defaults, each in the form ``load`` parses."""
        default = GatewayConfig()
        return {
            f.name: self.settings_text(f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    def write_port_file(self, ports: dict[str, int]) -> None:
        """Write the bound ports to ``port_file`` (if set) as JSON, atomically."""
        if self.port_file is not None:
            write_atomic(self.port_file, (json.dumps(ports) + "\n").encode(), mode=0o644)

    @property
    def public_limits(self) -> dict[str, Limit]:
        """The limits of the unauthenticated calls, by kind (gateway/ratelimit.py)."""
        return {
            "register": self.register_limit,
            "sign_in": self.sign_in_limit,
            "directory": self.directory_limit,
        }

    @property
    def address(self) -> str:
        """The public listen address in gRPC's host:port form."""
        return self._join(self.port)

    @property
    def web_address(self) -> str | None:
        """The browser port's host:port, or None when it is off."""
        return None if self.web_port is None else self._join(self.web_port)

    @property
    def terminal_address(self) -> str:
        """The terminals' listen address in gRPC's host:port form."""
        return self._join(self.terminal_port)

    def _join(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{port}"

    @property
    def database(self) -> str:
        """The database URL, defaulting to sealpost.db in the state folder.

        With ``database_password_file`` the password is read from that file now and put
        into the URL; ConfigError when the file cannot be read.
        """
        url = self.database_url or f"sqlite:///{self.state_dir.resolve() / 'sealpost.db'}"
        if self.database_password_file is None:
            return url
        return with_password(url, read_password(self.database_password_file))

    def shown(self, name: str) -> str:
        """A setting's value as ``check-config`` prints it: no secret in it."""
        value = self.settings_text(name)
        return mask_secrets(value) if name == "database_url" else value

    def settings_text(self, name: str) -> str:
        """A setting's value in the text form its flag takes (``off`` for none)."""
        value = getattr(self, name)
        if value is None:  # the ports and web_app say off; the files are simply not given
            return "" if name in ("port_file", "database_password_file") else "off"
        if isinstance(value, tuple):
            return ",".join(value)
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)

    @property
    def staff_auth_enabled(self) -> bool:
        """True when staff identity tokens can be verified."""
        return bool(self.key_server_address and self.oidc_issuer and self.oidc_audience)

    @classmethod
    def load(
        cls,
        flags: Mapping[str, str | None],
        environ: Mapping[str, str] | None = None,
        *,
        config_file: Path | None = None,
    ) -> GatewayConfig:
        """Build from flags (``None`` = not given) over ``environ`` over the file over defaults.

        The file is ``config_file`` (``--config``), else the one SEALPOST_CONFIG names, else
        none.
        """
        return cls.resolve(flags, environ, config_file=config_file).config

    @classmethod
    def resolve(
        cls,
        flags: Mapping[str, str | None],
        environ: Mapping[str, str] | None = None,
        *,
        config_file: Path | None = None,
    ) -> Resolved:
        """As ``load``, and where each setting's value came from."""
        environ = os.environ if environ is None else environ
        if config_file is None and environ.get(CONFIG_ENV):
            config_file = Path(environ[CONFIG_ENV])
        values: dict[str, Any] = {}
        sources: dict[str, Source] = {}
        problems: list[str] = []
        document: settings_file.SettingsFile | None = None
        if config_file is not None:
            try:
                document = settings_file.read(config_file, setting_kinds())
            except SettingsError as exc:
                problems += exc.problems
            else:
                problems += document.problems
        for f in fields(cls):
            env_name = f.metadata["env"]
            raw = flags.get(f.name)
            source = Source("flag", "--" + f.name.replace("_", "-"))
            label = source.where
            if raw is None and env_name in environ:
                raw, source = environ[env_name], Source("variable", env_name)
                label = env_name
            if raw is None and document is not None and f.name in document.values:
                found = document.values[f.name]
                raw, source = found.text, Source("file", str(document.path), found.line)
                label = document.where(f.name)
            if raw is None:
                sources[f.name] = Source("default", "")
                continue
            sources[f.name] = source
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError:
                problems.append(
                    _(
                        "{setting}: expected {expect}, got {value}",
                        setting=label,
                        expect=f.metadata["expect"](),
                        value=repr(mask_secrets(raw) if f.name == "database_url" else raw),
                    )
                )
        problems += _consistency(values)
        if problems:
            raise ConfigError(problems)
        return Resolved(cls(**values), sources, config_file)


@dataclass(frozen=True)
class Source:
    """Where a setting's value came from: a flag, a variable, the settings file, the default."""

    #: "flag", "variable", "file" or "default".
    kind: str
    #: The flag, the variable or the file; empty for the default.
    where: str
    #: The line in the file (0: not known, or not from a file).
    line: int = 0

    def describe(self) -> str:
        """In the staff language, as ``check-config`` prints it."""
        if self.kind == "flag":
            return _("flag {flag}", flag=self.where)
        if self.kind == "variable":
            return _("variable {variable}", variable=self.where)
        if self.kind == "file":
            if self.line:
                return _("settings file, line {line}", line=self.line)
            return _("settings file")
        return _("default")


@dataclass(frozen=True)
class Resolved:
    """A configuration, where each of its values came from, and the settings file read."""

    config: GatewayConfig
    sources: dict[str, Source]
    config_file: Path | None


#: The TOML value each kind of setting takes in a settings file, by its Python type.
_KINDS: Final = {
    "str": Kind.TEXT,
    "Path": Kind.TEXT,
    "Path | None": Kind.TEXT,
    "Limit": Kind.TEXT,
    "int": Kind.INTEGER,
    "int | None": Kind.INTEGER_OR_OFF,
    "float": Kind.NUMBER,
    "bool": Kind.BOOLEAN,
    "tuple[str, ...]": Kind.TEXT_LIST,
    "WitnessKeys": Kind.TEXT_TABLE,
}


def setting_kinds() -> dict[str, Kind]:
    """Every setting a settings file may set, and the TOML value it takes."""
    return {f.name: _KINDS[str(f.type)] for f in fields(GatewayConfig)}


def _consistency(values: Mapping[str, Any]) -> list[str]:
    """Problems of settings that only make sense together."""
    problems: list[str] = []
    staff = [values.get(k) for k in ("key_server_address", "oidc_issuer", "oidc_audience")]
    custody_only = values.get("key_custody") == "key-server" and not any(staff[1:])
    if any(staff) and not all(staff) and not custody_only:
        problems.append(
            _(
                "staff sign-in needs all of SEALPOST_KEY_SERVER_ADDRESS, "
                "SEALPOST_OIDC_ISSUER and SEALPOST_OIDC_AUDIENCE (or none of them)"
            )
        )
    if values.get("key_custody") == "key-server" and not (
        values.get("key_server_address") and values.get("key_server_token_file")
    ):
        problems.append(
            _(
                "key_custody = key-server needs key_server_address and key_server_token_file "
                "(the gateway's own token)"
            )
        )
    if values.get("database_password_file") is not None:
        url = values.get("database_url", "")
        if not url:
            problems.append(
                _(
                    "database_password_file needs database_url too: the database's URL, "
                    "without a password"
                )
            )
        elif urlsplit(url).password is not None:
            problems.append(
                _(
                    "database_url carries a password and database_password_file names "
                    "another: give the password in one place"
                )
            )
    return problems


def mask_secrets(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) masked."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK  # not a URL a password could be told apart in: show none of it
    query = parse_qsl(parts.query, keep_blank_values=True)
    in_query = any(name == "password" for name, _value in query)
    if password is None and not in_query:
        return url  # as given: rebuilding would change its form (sqlite:///...)
    if password is not None:
        userinfo, _at, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:{MASK}@{host}")
    if in_query:
        masked = [(n, MASK if n == "password" else v) for n, v in query]
        parts = parts._replace(query=urlencode(masked, safe="*"))
    return urlunsplit(parts)


def read_password(path: Path) -> str:
    """The password in ``path`` (one line; a final newline is not part of it)."""
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [_("cannot read the database password from {file}: {reason}", file=path, reason=exc)]
        ) from exc
    if not password or "\n" in password:
        raise ConfigError([_("{file} must hold the database password on one line", file=path)])
    return password


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` set (SQLAlchemy quotes what needs quoting)."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - keeps --help fast

    return make_url(url).set(password=password).render_as_string(hide_password=False)
