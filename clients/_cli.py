"""What every ``sealpost`` command line shares: conventions, options, output and errors.

The conventions (docs/cli.md):

- A command group's options may be given before or after its subcommands
  (``sealpost review queue --gateway X`` as ``sealpost review --gateway X queue``), and
  each has a ``SEALPOST_*`` environment variable.
- ``--json`` prints JSON for scripts: results on standard output, enum values as short
  lower-case words, and a failure as ``{"error": {"code": ..., "message": ..., "exit": ...}}``
  on standard error.
- A failure is one plain sentence (``error: ...``) and one of the exit codes of
  :class:`~sealpost.clients._problems.ExitCode`; ``--verbose`` adds the underlying error.
- Deprecated option and variable names still work for one release, with a warning.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn, TypeVar

import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from sealpost._internal import logs
from sealpost.clients._grpc import Endpoint
from sealpost.clients._problems import ExitCode, Problem, Where, problem_of
from sealpost.clients._text import enum_prefix, short_enum
from sealpost.clients.staff import StaffClient
from sealpost.escrow._transport import KeyServerConfig
from sealpost.i18n import _

T = TypeVar("T")

#: Old option names, still accepted for one release: old -> new.
DEPRECATED_OPTIONS: Final[Mapping[str, str]] = {"--directory-pin": "--directory-key"}
#: Old environment variables, still read for one release: old -> new.
DEPRECATED_ENV: Final[Mapping[str, str]] = {"SEALPOST_DIRECTORY_PIN": "SEALPOST_DIRECTORY_KEY"}
VERBOSE_ENV: Final = "SEALPOST_VERBOSE"


# --------------------------------------------------------------------------- one run's output


@dataclass
class _Output:
    """How this run prints: set from the command line before the command runs."""

    json: bool = False
    verbose: bool = False
    where: Where = field(default_factory=Where)


_output = _Output()


def remember_where(*, gateway: str = "", ca_file: str = "", key_server: str = "") -> None:
    """Note what the command talks to, so that a failure can name it."""
    current = _output.where
    _output.where = Where(
        gateway or current.gateway, ca_file or current.ca_file, key_server or current.key_server
    )


#: A command's own log lines (JSON, for operators of servers) stay quiet unless --verbose:
#: what a person needs is said in words, once.
QUIET_LOGS: Final = "error"
VERBOSE_LOGS: Final = "info"


def set_verbose(verbose: bool) -> None:
    """--verbose: failures also show the underlying error, and log lines show."""
    _output.verbose = _output.verbose or verbose
    logs.configure(VERBOSE_LOGS if _output.verbose else QUIET_LOGS)


def report(problem: Problem) -> None:
    """Print a failure on standard error: one sentence, or JSON under --json."""
    if _output.json:
        body: dict[str, Any] = {
            "code": problem.code,
            "message": problem.message,
            "exit": int(problem.exit),
        }
        if _output.verbose and problem.detail:
            body["detail"] = problem.detail
        typer.echo(json.dumps({"error": body}, ensure_ascii=False), err=True)
        return
    typer.echo(_("error: {message}", message=problem.message), err=True)
    if _output.verbose and problem.detail:
        typer.echo(_("  detail: {detail}", detail=problem.detail), err=True)
    elif problem.detail and problem.exit in (ExitCode.UNAVAILABLE, ExitCode.NOT_VERIFIED):
        typer.echo(_("  (--verbose shows the details)"), err=True)


def fail(exc: BaseException) -> NoReturn:
    """Report ``exc`` and end the command with its exit code (a bug is re-raised)."""
    problem = problem_of(exc, _output.where)
    if problem is None:
        raise exc
    report(problem)
    raise typer.Exit(int(problem.exit)) from exc


def refuse(message: str, *, code: str = "usage", exit: ExitCode = ExitCode.USAGE) -> NoReturn:
    """End the command with a problem the command itself found."""
    report(Problem(code, message, exit))
    raise typer.Exit(int(exit))


# --------------------------------------------------------------------------- command groups


def _takes_value(option: Any) -> bool:
    return not (getattr(option, "is_flag", False) or getattr(option, "count", False))


def _options_of(command: Any) -> dict[str, Any]:
    """A command's options by every name they answer to."""
    found: dict[str, Any] = {}
    for param in getattr(command, "params", ()):
        for name in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
            if name.startswith("-"):
                found[name] = param
    return found


def _subcommand_at(args: Sequence[str], options: Mapping[str, Any]) -> int | None:
    """Where the subcommand's name is in ``args`` (options before it skipped)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return None
        if arg.startswith("-"):
            option = options.get(arg)
            index += 2 if option is not None and "=" not in arg and _takes_value(option) else 1
            continue
        return index
    return None


def _subcommands(group: Any, ctx: Any, args: Sequence[str]) -> list[Any]:
    """The commands below ``group`` that ``args`` name, outermost first."""
    found: list[Any] = []
    command = group
    rest = list(args)
    while hasattr(command, "commands"):
        at = _subcommand_at(rest, _options_of(command))
        if at is None:
            break
        command = command.get_command(ctx, rest[at])
        if command is None:
            break
        found.append(command)
        rest = rest[at + 1 :]
    return found


def _chain_options(group: Any, ctx: Any, args: Sequence[str]) -> set[str]:
    """Option names the subcommands named in ``args`` define themselves (never lifted)."""
    return {name for command in _subcommands(group, ctx, args) for name in _options_of(command)}


def _lift(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """Move this group's own options from after its subcommand to before it."""
    own = _options_of(group)
    at = _subcommand_at(args, own)
    if at is None:
        return args
    theirs = _chain_options(group, ctx, args)
    before, tail = args[: at + 1], args[at + 1 :]
    lifted: list[str] = []
    kept: list[str] = []
    index = 0
    while index < len(tail):
        arg = tail[index]
        if arg == "--":
            kept += tail[index:]
            break
        name = arg.split("=", 1)[0]
        option = own.get(name)
        if option is not None and name not in theirs:
            width = 2 if "=" not in arg and _takes_value(option) else 1
            lifted += tail[index : index + width]
            index += width
            continue
        kept.append(arg)
        index += 1
    return [*before[:at], *lifted, *before[at:], *kept]


def _renamed(args: list[str]) -> list[str]:
    """Deprecated option names replaced by the current ones, with a warning."""
    out: list[str] = []
    for arg in args:
        name, eq, value = arg.partition("=")
        if name in DEPRECATED_OPTIONS:
            new = DEPRECATED_OPTIONS[name]
            typer.echo(_("warning: {old} is deprecated; use {new}", old=name, new=new), err=True)
            out.append(f"{new}{eq}{value}")
        else:
            out.append(arg)
    return out


def _from_old_env(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """Values of deprecated variables, given as the current option when that is not set."""
    options: dict[str, Any] = {}
    for command in (group, *_subcommands(group, ctx, args)):
        options.update(_options_of(command))
    extra: list[str] = []
    for old, new in DEPRECATED_ENV.items():
        value = os.environ.get(old)
        if not value or os.environ.get(new):
            continue
        option = next((name for name, param in options.items() if new in _env(param)), None)
        if option is None or option in args:
            continue
        typer.echo(_("warning: {old} is deprecated; use {new}", old=old, new=new), err=True)
        extra += [option, value]
    return [*args, *extra] if extra else args


def _env(param: Any) -> tuple[str, ...]:
    envvar = getattr(param, "envvar", None)
    if envvar is None:
        return ()
    return (envvar,) if isinstance(envvar, str) else tuple(envvar)


class CommandGroup(TyperGroup):
    """A command group that follows the conventions above and reports failures in one way."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if ctx.parent is None:
            _output.json = (
                "--json" in args[: args.index("--")] if "--" in args else "--json" in args
            )
            _output.verbose = bool(os.environ.get(VERBOSE_ENV))
            _output.where = Where()
            set_verbose(False)
            args = _renamed(args)
            args = _from_old_env(self, ctx, args)
        return super().parse_args(ctx, _lift(self, ctx, args))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except NoArgsIsHelpError:
            raise
        except ClickException as exc:
            # A usage error is reported like every other failure: one line (or JSON).
            report(Problem("usage", exc.format_message(), ExitCode.USAGE))
            where = getattr(exc, "ctx", None)
            if where is not None and not _output.json:
                typer.echo(_("  (see: {command} --help)", command=where.command_path), err=True)
            raise typer.Exit(exc.exit_code) from exc
        except Exception as exc:
            if problem_of(exc) is None:
                raise
            fail(exc)


def cli_app(help: str, **settings: Any) -> typer.Typer:
    """A ``sealpost`` command group (every group is made here, so that all follow one way)."""
    settings.setdefault("no_args_is_help", True)
    return typer.Typer(help=help, cls=CommandGroup, pretty_exceptions_enable=False, **settings)


Gateway = Annotated[
    str,
    typer.Option(
        "--gateway", envvar="SEALPOST_GATEWAY", help=_("Gateway address host:port (public port).")
    ),
]
CaFile = Annotated[
    Path,
    typer.Option(
        "--ca-file",
        envvar="SEALPOST_CA_FILE",
        help=_("The gateway's CA certificate (PEM), to check the gateway's TLS certificate."),
    ),
]
KeyServer = Annotated[
    str,
    typer.Option(
        "--key-server",
        envvar="SEALPOST_KEY_SERVER_ADDRESS",
        help=_("Key server URL; a cluster's nodes separated by commas."),
    ),
]
User = Annotated[
    str,
    typer.Option(
        "--user", envvar="SEALPOST_USER", help=_("Your staff user name at the key server.")
    ),
]
JsonOutput = Annotated[
    bool, typer.Option("--json", help=_("Print JSON for scripts (failures too, on stderr)."))
]
DirectoryKey = Annotated[
    str,
    typer.Option(
        "--directory-key",
        envvar="SEALPOST_DIRECTORY_KEY",
        help=_(
            "The key directory's Ed25519 public key (64 hex digits), pinned: every key is "
            "trusted only through it. Formerly --directory-pin / SEALPOST_DIRECTORY_PIN."
        ),
    ),
]


#: Bytes of an Ed25519 public key: the directory key is 64 hex digits.
PUBLIC_KEY_BYTES: Final = 32


def directory_key_bytes(text: str) -> bytes:
    """The pinned directory key from its hex form (colons and spaces allowed), or BadParameter."""
    if not text.strip():
        raise typer.BadParameter(
            _("the directory key is needed: --directory-key HEX (or SEALPOST_DIRECTORY_KEY)"),
            param_hint="--directory-key",
        )
    try:
        raw = bytes.fromhex(text.strip().replace(":", "").replace(" ", ""))
    except ValueError:
        raw = b""
    if len(raw) != PUBLIC_KEY_BYTES:
        raise typer.BadParameter(
            _("the directory key is 64 hexadecimal digits"), param_hint="--directory-key"
        )
    return raw


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
        remember_where(gateway=self.gateway, ca_file=str(self.ca_file))
        try:
            return Endpoint(self.gateway, self.ca_file.read_bytes())
        except OSError as exc:
            refuse(
                _(
                    "Cannot read the CA file {path}: {reason}. Check --ca-file (SEALPOST_CA_FILE).",
                    path=self.ca_file,
                    reason=exc.strerror,
                ),
                code="ca_file",
            )

    def _sign_in(self) -> tuple[str, str]:
        """(key-server token, identity token) after signing in with user name and password."""
        if self._session is not None:
            return self._session
        from sealpost.escrow import identity  # noqa: PLC0415
        from sealpost.escrow.bootstrap import BootstrapSettings  # noqa: PLC0415
        from sealpost.escrow.errors import SecondFactorRequiredError  # noqa: PLC0415

        if not self.key_server or not self.user:
            raise typer.BadParameter(
                _("sign in with --key-server and --user (or set SEALPOST_STAFF_TOKEN)")
            )
        password = os.environ.get("SEALPOST_PASSWORD") or typer.prompt(
            _("Password for {user}", user=self.user), hide_input=True
        )
        config = self.key_server_config()

        def one_time_code() -> str:
            code = os.environ.get("SEALPOST_TOTP")
            if code:
                return code
            if not sys.stdin.isatty():
                raise SecondFactorRequiredError("no one-time code: not at a terminal")
            return str(
                typer.prompt(_("One-time code for {user} (authenticator app)", user=self.user))
            )

        session = identity.login_staff(config, self.user, password, one_time_code=one_time_code)
        role = BootstrapSettings(prefix=key_prefix()).identity_role
        self._session = (
            session.token,
            identity.issue_identity_token(config, session.token, role=role),
        )
        return self._session

    def key_server_config(self) -> KeyServerConfig:
        """Where the key server is."""
        if not self.key_server:
            raise typer.BadParameter(
                _("--key-server (or SEALPOST_KEY_SERVER_ADDRESS) is needed"),
                param_hint="--key-server",
            )
        remember_where(key_server=self.key_server)
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


def _with_short_enums(data: dict[str, Any], descriptor: Any) -> dict[str, Any]:
    """MessageToDict's output with enum values as short lower-case words ("withheld")."""
    for field_descriptor in descriptor.fields:
        key = field_descriptor.json_name
        if key not in data:
            continue
        value = data[key]
        if field_descriptor.enum_type is not None:
            prefix = enum_prefix(field_descriptor.enum_type.name)
            data[key] = (
                [short_enum(item, prefix) for item in value]
                if isinstance(value, list)
                else short_enum(value, prefix)
            )
        elif (
            field_descriptor.message_type is not None
            and not field_descriptor.message_type.GetOptions().map_entry
        ):
            sub = field_descriptor.message_type
            if isinstance(value, list):
                data[key] = [
                    _with_short_enums(item, sub) if isinstance(item, dict) else item
                    for item in value
                ]
            elif isinstance(value, dict):
                data[key] = _with_short_enums(value, sub)
    return data


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns that line up: each as wide as its widest cell, two spaces between."""
    widths = [max(len(str(row[i])) for row in (headers, *rows)) for i in range(len(headers))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (headers, *rows)
    )


def message_json(message: Message) -> dict[str, Any]:
    """A protobuf message as JSON for scripts, in the conventions' style."""
    return _with_short_enums(MessageToDict(message), message.DESCRIPTOR)


def print_json(data: object) -> None:
    """JSON on standard output (UTF-8 as is, indented)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def emit(options: StaffOptions | bool, message: Message | dict[str, Any], text: str) -> None:
    """Print ``text`` for people, or the data as JSON with --json."""
    wanted = options if isinstance(options, bool) else options.json
    if wanted:
        print_json(message_json(message) if isinstance(message, Message) else message)
    elif text:
        typer.echo(text)


def run(action: Callable[[], T]) -> T:
    """Run a command body; a failure becomes one clear line and its exit code."""
    try:
        return action()
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if problem_of(exc) is None:
            raise
        fail(exc)
