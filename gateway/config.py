"""Gateway configuration from command-line flags and ``SEALPOST_*`` environment variables.

A flag wins over the environment, the environment over the default. Every
value is validated before the server starts, and all problems are reported
together so an operator can fix them in one go.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sealpost._internal.logs import LEVELS
from sealpost.gateway.errors import ConfigError

ENV_PREFIX = "SEALPOST_"


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError
    return value


def _host(raw: str) -> str:
    ipaddress.ip_address(raw)  # an address, not a name: no resolver surprises
    return raw


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 3600:
        raise ValueError
    return value


def _level(raw: str) -> str:
    if raw not in LEVELS:
        raise ValueError
    return raw


def _path(raw: str) -> Path:
    if not raw:
        raise ValueError
    return Path(raw)


def _meta(env: str, parse: Callable[[str], Any], expect: str) -> dict[str, Any]:
    """Where a setting comes from in the environment, how to parse it, what is expected."""
    return {"env": ENV_PREFIX + env, "parse": parse, "expect": expect}


@dataclass(frozen=True)
class GatewayConfig:
    """Everything ``sealpost gateway serve`` needs to start."""

    #: Address to listen on.
    host: str = field(
        default="127.0.0.1", metadata=_meta("HOST", _host, "an IP address such as 127.0.0.1")
    )
    #: Port to listen on; 0 picks a free one.
    port: int = field(default=50051, metadata=_meta("PORT", _port, "an integer from 0 to 65535"))
    #: Lowest level logged.
    log_level: str = field(
        default="info", metadata=_meta("LOG_LEVEL", _level, f"one of {', '.join(LEVELS)}")
    )
    #: Time in-flight calls get to finish on shutdown.
    grace_seconds: float = field(
        default=5.0,
        metadata=_meta("GRACE_SECONDS", _positive_float, "a number of seconds from 0 to 3600"),
    )
    #: Write the bound port here once serving (useful with port 0).
    port_file: Path | None = field(default=None, metadata=_meta("PORT_FILE", _path, "a file path"))

    @property
    def address(self) -> str:
        """The listen address in gRPC's host:port form."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def load(
        cls, flags: Mapping[str, str | None], environ: Mapping[str, str] | None = None
    ) -> GatewayConfig:
        """Build from flags (``None`` = not given) over ``environ`` over defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(cls):
            env_name = f.metadata["env"]
            raw = flags.get(f.name)
            source = "--" + f.name.replace("_", "-")
            if raw is None and env_name in environ:
                raw, source = environ[env_name], env_name
            if raw is None:
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError:
                problems.append(f"{source}: expected {f.metadata['expect']}, got {raw!r}")
        if problems:
            raise ConfigError(problems)
        return cls(**values)
