"""What the staff command lines share: where the gateway and key server are, signing in, output."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from sealpost.clients._grpc import ClientError, Endpoint
from sealpost.clients.staff import StaffClient
from sealpost.errors import SealpostError
from sealpost.escrow._transport import KeyServerConfig

T = TypeVar("T")

Gateway = Annotated[
    str,
    typer.Option(
        "--gateway", envvar="SEALPOST_GATEWAY", help="Gateway address host:port (public port)."
    ),
]
CaFile = Annotated[
    Path,
    typer.Option(
        "--ca-file",
        envvar="SEALPOST_CA_FILE",
        help="The gateway's CA certificate (PEM), to check the gateway's TLS certificate.",
    ),
]
KeyServer = Annotated[
    str,
    typer.Option("--key-server", envvar="SEALPOST_KEY_SERVER_ADDRESS", help="Key server URL."),
]
User = Annotated[
    str,
    typer.Option("--user", envvar="SEALPOST_USER", help="Your staff user name at the key server."),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def key_prefix() -> str:
    """The prefix of the key server's Sealpost names (SEALPOST_KEY_PREFIX, as at bootstrap)."""
    return os.environ.get("SEALPOST_KEY_PREFIX", "sealpost")


@dataclass
class StaffOptions:
    """Connection and sign-in settings of a staff command line."""

    gateway: str
    ca_file: Path
    key_server: str
    user: str
    json: bool = False
    _session: tuple[str, str] | None = field(default=None, repr=False)

    def endpoint(self) -> Endpoint:
        """The gateway's public port and CA."""
        try:
            return Endpoint(self.gateway, self.ca_file.read_bytes())
        except OSError as exc:
            raise typer.BadParameter(f"cannot read the CA file {self.ca_file}: {exc}") from exc

    def _sign_in(self) -> tuple[str, str]:
        """(key-server token, identity token) after signing in with user name and password."""
        if self._session is not None:
            return self._session
        from sealpost.escrow import identity  # noqa: PLC0415
        from sealpost.escrow.bootstrap import BootstrapSettings  # noqa: PLC0415

        if not self.key_server or not self.user:
            raise typer.BadParameter(
                "sign in with --key-server and --user (or set SEALPOST_STAFF_TOKEN)"
            )
        password = os.environ.get("SEALPOST_PASSWORD") or typer.prompt(
            f"Password for {self.user}", hide_input=True
        )
        config = self.key_server_config()
        session = identity.login_staff(config, self.user, password)
        role = BootstrapSettings(prefix=key_prefix()).identity_role
        self._session = (
            session.token,
            identity.issue_identity_token(config, session.token, role=role),
        )
        return self._session

    def key_server_config(self) -> KeyServerConfig:
        """Where the key server is."""
        if not self.key_server:
            raise typer.BadParameter("--key-server (or SEALPOST_KEY_SERVER_ADDRESS) is needed")
        return KeyServerConfig(self.key_server)

    def token(self) -> str:
        """An identity token for the gateway: SEALPOST_STAFF_TOKEN, or one after signing in."""
        return os.environ.get("SEALPOST_STAFF_TOKEN") or self._sign_in()[1]

    def key_server_token(self) -> str:
        """Your own key-server token: SEALPOST_KEY_SERVER_TOKEN, or one after signing in."""
        return os.environ.get("SEALPOST_KEY_SERVER_TOKEN") or self._sign_in()[0]

    def client(self) -> StaffClient:
        """A signed-in staff client."""
        return StaffClient(self.endpoint(), self.token())


def emit(options: StaffOptions, message: Message | dict[str, Any], text: str) -> None:
    """Print ``text`` for people, or the message as JSON with --json."""
    if options.json:
        data = message if isinstance(message, dict) else MessageToDict(message)
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        typer.echo(text)


def run(action: Callable[[], T]) -> T:
    """Run a command body; errors become one clear line and exit code 1."""
    try:
        return action()
    except ClientError as exc:
        typer.echo(f"error: {exc.message} ({exc.code.name})", err=True)
        raise typer.Exit(1) from exc
    except SealpostError as exc:
        typer.echo(f"error: {exc.explain()}", err=True)
        raise typer.Exit(1) from exc
