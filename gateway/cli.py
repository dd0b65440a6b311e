"""``sealpost gateway``: prepare the state folder and database, and run the gateway."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from sealpost._internal import logs
from sealpost.clients._cli import cli_app, report, table
from sealpost.clients._problems import ExitCode, Problem
from sealpost.gateway.config import GatewayConfig, Resolved
from sealpost.gateway.errors import ConfigError
from sealpost.i18n import _

app = cli_app(help=_("Run the Sealpost gateway (API v1 over gRPC and, for browsers, Connect)."))

StateDir = Annotated[
    Path | None,
    typer.Option(
        help=_(
            "Folder with keys and TLS material (env SEALPOST_STATE_DIR, default ./sealpost-state)."
        )
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        help=_("SQLAlchemy URL (env SEALPOST_DATABASE_URL, default SQLite in the state folder).")
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help=_(
            "TOML settings file whose keys are the settings' names, e.g. port = 50051; flags "
            "and SEALPOST_* variables override it (env SEALPOST_CONFIG). See "
            "docs/operations.md, section 12."
        ),
    ),
]
DatabasePasswordFile = Annotated[
    Path | None,
    typer.Option(
        help=_(
            "File holding the database password, put into the database URL (env "
            "SEALPOST_DATABASE_PASSWORD_FILE)."
        )
    ),
]


def _fail(command: str, exc: ConfigError) -> typer.Exit:
    """Every problem of the configuration on its own line, in the staff language."""
    lines = [_("sealpost gateway {command}: invalid configuration:", command=command)]
    lines += [f"  - {problem}" for problem in exc.problems]
    report(Problem("configuration", "\n".join(lines), ExitCode.USAGE))
    return typer.Exit(int(ExitCode.USAGE))


def _load(command: str, flags: dict[str, str | None], config: Path | None) -> GatewayConfig:
    try:
        return GatewayConfig.load(flags, config_file=config)
    except ConfigError as exc:
        raise _fail(command, exc) from exc


def _path_flag(value: Path | None) -> str | None:
    return None if value is None else str(value)


def _database_flags(
    state_dir: Path | None, database_url: str | None, password_file: Path | None
) -> dict[str, str | None]:
    """The flags of a command that opens the database, as settings to load."""
    return {
        "state_dir": _path_flag(state_dir),
        "database_url": database_url,
        "database_password_file": _path_flag(password_file),
    }


@app.command(
    help=_("Create the state folder (keys, CA, TLS certificate) and migrate the database.")
)
def init(
    state_dir: StateDir = None,
    database_url: DatabaseUrl = None,
    database_password_file: DatabasePasswordFile = None,
    config: ConfigFile = None,
    host: Annotated[
        list[str] | None,
        typer.Option("--tls-host", help=_("Name or address in the TLS certificate (repeatable).")),
    ] = None,
) -> None:
    """Create the state folder (keys, CA, TLS certificate) and migrate the database."""
    from sealpost.gateway import keystore  # noqa: PLC0415
    from sealpost.gateway.storage import database  # noqa: PLC0415

    settings = _load(
        "init",
        _database_flags(state_dir, database_url, database_password_file),
        config,
    )
    created = keystore.init_state(
        settings.state_dir,
        host or ["127.0.0.1", "localhost"],
        file_keys=settings.key_custody == "file",
    )
    for path in created:
        typer.echo(_("created {path}", path=path))
    if not created:
        typer.echo(_("{folder} is complete; nothing created", folder=settings.state_dir))
    try:
        engine = database.create_database_engine(settings.database)
        database.migrate(engine)
        engine.dispose()
    except ConfigError as exc:
        raise _fail("init", exc) from exc
    typer.echo(_("database is at schema {revision}", revision=database.head_revision()))


@app.command(
    "renew-certificate",
    help=_(
        "Issue a new TLS certificate for the gateway from the state folder's own CA, for the "
        "same names unless --tls-host is given. A running gateway serves it to new "
        "connections at once, without a restart. With the organisation's certificates, put "
        "the renewed files at tls/server.pem and tls/server-key.pem instead."
    ),
)
def renew_certificate(
    state_dir: StateDir = None,
    host: Annotated[
        list[str] | None,
        typer.Option("--tls-host", help=_("Name or address in the TLS certificate (repeatable).")),
    ] = None,
    config: ConfigFile = None,
) -> None:
    """Issue a new TLS certificate for the gateway from the state folder's own CA."""
    from sealpost.gateway import keystore, pki  # noqa: PLC0415

    settings = _load("renew-certificate", {"state_dir": _path_flag(state_dir)}, config)
    try:
        path = keystore.renew_server_certificate(settings.state_dir, host or None)
    except OSError as exc:
        report(
            Problem(
                "renew_failed",
                _("cannot renew in {folder}: {why}", folder=settings.state_dir, why=exc),
                ExitCode.FAILED,
            )
        )
        raise typer.Exit(int(ExitCode.FAILED)) from exc
    expires = pki.expiry_ms(path.read_bytes())
    typer.echo(
        _(
            "renewed {path}; valid until {when} (UTC)",
            path=path,
            when=dt.datetime.fromtimestamp(expires / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M"),
        )
    )


@app.command(
    "rotate-directory-key",
    help=_(
        "Replace the directory key kept in the state folder (key_custody = file) by a new one, "
        "with a hand-over both keys sign.\n\n"
        "The hand-over and the new directory record go into the database and the log; then the "
        "key file is replaced. Relatives, terminals and auditors who pinned the old key follow "
        "the hand-over, and everything the old key signed stays valid. Restart every gateway "
        "afterwards: a running gateway serves the directory it started with. With key_custody "
        "= key-server, use `sealpost admin key rotate-signing-key directory` instead."
    ),
)
def rotate_directory_key(
    state_dir: StateDir = None,
    database_url: DatabaseUrl = None,
    database_password_file: DatabasePasswordFile = None,
    config: ConfigFile = None,
) -> None:
    """Replace the directory key kept in the state folder (the help is above)."""
    import dataclasses  # noqa: PLC0415

    from sqlalchemy import Connection  # noqa: PLC0415

    from sealpost.crypto.keys import PrivateKeys  # noqa: PLC0415
    from sealpost.gateway import directory, keystore, store, translog  # noqa: PLC0415
    from sealpost.gateway.services.context import wall_clock_ms  # noqa: PLC0415
    from sealpost.gateway.storage.database import Database  # noqa: PLC0415

    settings = _load(
        "rotate-directory-key",
        _database_flags(state_dir, database_url, database_password_file),
        config,
    )
    if settings.key_custody != "file":
        raise _fail(
            "rotate-directory-key",
            ConfigError(
                [
                    "the directory key is kept by the key server: "
                    "`sealpost admin key rotate-signing-key directory`"
                ]
            ),
        )
    try:
        keys = keystore.load_keys(settings.state_dir)
        new_directory = PrivateKeys.generate()
        new_keys = dataclasses.replace(keys, directory=new_directory)
        staged = keystore.stage_directory_key(settings.state_dir, new_directory)
        db = Database(settings.database)
        db.check_schema()
    except ConfigError as exc:
        raise _fail("rotate-directory-key", exc) from exc

    def hand_over(connection: Connection) -> directory.Directory:
        now = wall_clock_ms()
        translog.size(connection, for_update=True)
        current = directory.load_or_create(connection, keys, now)
        return directory.rotate_directory(connection, current, new_keys, store.GATEWAY_ACTOR, now)

    try:
        rotated = db.write(hand_over)
    finally:
        db.dispose()
    keystore.commit_staged(staged)
    typer.echo(
        _(
            "directory key replaced; the new key, to hand to new clients: {key}\n"
            "restart every gateway now",
            key=rotated.directory.signing_key.hex(),
        )
    )


@app.command(
    "rotate-token-key",
    help=_(
        "Start a new session-token key now (they also rotate daily on their own with "
        "key_custody = key-server).\n\n"
        "Tokens made before stay valid until they expire (15 minutes). After a suspected leak "
        "use --revoke-issued: no earlier key verifies anything and every relative signs in "
        "again. With key_custody = key-server every gateway takes the new key up within "
        "key_refresh_seconds; with file custody restart every gateway (and copy the key file to "
        "each), and every relative signs in again."
    ),
)
def rotate_token_key(
    state_dir: StateDir = None,
    config: ConfigFile = None,
    revoke_issued: Annotated[
        bool,
        typer.Option(
            "--revoke-issued", help=_("Also make every token issued so far stop verifying.")
        ),
    ] = False,
) -> None:
    """Start a new session-token key now (the help is above)."""
    from sealpost.escrow.errors import EscrowError  # noqa: PLC0415
    from sealpost.gateway import custody, keystore  # noqa: PLC0415

    settings = _load("rotate-token-key", {"state_dir": _path_flag(state_dir)}, config)
    try:
        if settings.key_custody == "key-server":
            kept = custody.KeyServerCustody(settings)
            try:
                status = kept.tokens.rotate(revoke_issued=revoke_issued)
            except EscrowError as exc:
                raise ConfigError([f"key server: {exc}"]) from exc
            finally:
                kept.close()
            typer.echo(
                _(
                    "session-token key rotated: version {version} is the newest",
                    version=status.newest_version,
                )
            )
        else:
            keystore.replace_token_key(settings.state_dir)
            typer.echo(_("session-token key replaced; restart every gateway now"))
    except ConfigError as exc:
        raise _fail("rotate-token-key", exc) from exc


def _key_server_pins(settings: GatewayConfig) -> tuple[str, str]:
    """The directory and log keys held by the key server, as the gateway would sign with."""
    from sealpost.escrow.errors import EscrowError  # noqa: PLC0415
    from sealpost.gateway import custody, directory  # noqa: PLC0415
    from sealpost.gateway.storage.database import Database  # noqa: PLC0415

    db = Database(settings.database)
    kept = custody.KeyServerCustody(settings)
    try:
        keys = kept.signers(db.read(directory.published_directory_key))
    except EscrowError as exc:
        raise ConfigError([f"key server: {exc}"]) from exc
    finally:
        kept.close()
        db.dispose()
    return keys[0].signing_key.hex(), keys[1].signing_key.hex()


@app.command(
    help=_(
        "Print the public keys clients and auditors pin: the directory key and the log key.\n\n"
        "Relatives, terminals, screeners and auditors are given the directory key (64 hex "
        "digits) out of band; everything else they trust is signed by it."
    )
)
def pin(
    state_dir: StateDir = None,
    config: ConfigFile = None,
    json_output: Annotated[bool, typer.Option("--json", help=_("Print a JSON object."))] = False,
) -> None:
    """Print the public keys clients and auditors pin: the directory key and the log key.

    Relatives, terminals, screeners and auditors are given the directory key (64 hex
    digits) out of band; everything else they trust is signed by it.
    """
    import json  # noqa: PLC0415

    from sealpost.gateway import keystore  # noqa: PLC0415

    settings = _load("pin", {"state_dir": _path_flag(state_dir)}, config)
    try:
        if settings.key_custody == "key-server":
            directory, log = _key_server_pins(settings)
        else:
            keys = keystore.load_keys(settings.state_dir)
            directory, log = keys.directory.signing_key.hex(), keys.log.signing_key.hex()
    except ConfigError as exc:
        raise _fail("pin", exc) from exc
    if json_output:
        typer.echo(json.dumps({"directoryKey": directory, "logKey": log}))
    else:
        typer.echo(_("directory key: {key}", key=directory))
        typer.echo(_("log key:       {key}", key=log))


@app.command(help=_("Upgrade the database schema to the newest revision."))
def migrate(
    state_dir: StateDir = None,
    database_url: DatabaseUrl = None,
    database_password_file: DatabasePasswordFile = None,
    config: ConfigFile = None,
) -> None:
    """Upgrade the database schema to the newest revision."""
    from sealpost.gateway.storage import database  # noqa: PLC0415

    settings = _load(
        "migrate",
        _database_flags(state_dir, database_url, database_password_file),
        config,
    )
    try:
        engine = database.create_database_engine(settings.database)
        before = database.current_revision(engine)
        database.migrate(engine)
        engine.dispose()
    except ConfigError as exc:
        raise _fail("migrate", exc) from exc
    typer.echo(
        _(
            "database schema: {before} -> {after}",
            before=before or _("empty"),
            after=database.head_revision(),
        )
    )


@app.command(help=_("Serve the API until SIGTERM or Ctrl-C, then shut down gracefully."))
def serve(
    host: Annotated[
        str | None,
        typer.Option(help=_("Address to listen on (env SEALPOST_HOST, default 127.0.0.1).")),
    ] = None,
    port: Annotated[
        str | None,
        typer.Option(
            help=_("Port for relatives and staff; 0: any free one (env SEALPOST_PORT, 50051).")
        ),
    ] = None,
    terminal_port: Annotated[
        str | None,
        typer.Option(
            help=_("Port for terminals, mutual TLS (env SEALPOST_TERMINAL_PORT, default 50052).")
        ),
    ] = None,
    web_port: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Port for browsers, the Connect protocol over HTTPS; 0: any free one, off: "
                "none (env SEALPOST_WEB_PORT, default 50053). See docs/gateway.md."
            )
        ),
    ] = None,
    web_origins: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Web origins whose pages may call the web port, e.g. https://post.example.nl, "
                "comma-separated (env SEALPOST_WEB_ORIGINS, default: no page may)."
            )
        ),
    ] = None,
    web_app: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Folder of the built relatives' web app the web port serves; off: none (env "
                "SEALPOST_WEB_APP, default: clients/web/app/dist once built). See docs/web.md."
            )
        ),
    ] = None,
    metrics_port: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Port of the Prometheus metrics (plain HTTP on --host, GET /metrics); 0: any "
                "free one, off: none (env SEALPOST_METRICS_PORT, default off). For operators "
                "only: never expose it publicly. See docs/operations.md, section 13."
            )
        ),
    ] = None,
    state_dir: StateDir = None,
    database_url: DatabaseUrl = None,
    database_password_file: DatabasePasswordFile = None,
    key_server_address: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Key server URL, for staff identity tokens; a cluster's nodes separated by "
                "commas (env SEALPOST_KEY_SERVER_ADDRESS)."
            )
        ),
    ] = None,
    oidc_issuer: Annotated[
        str | None, typer.Option(help=_("Expected staff token issuer (env SEALPOST_OIDC_ISSUER)."))
    ] = None,
    oidc_audience: Annotated[
        str | None,
        typer.Option(help=_("Expected staff token audience (env SEALPOST_OIDC_AUDIENCE).")),
    ] = None,
    send_rate_per_minute: Annotated[
        str | None,
        typer.Option(
            help=_("Sends per minute per account (env SEALPOST_SEND_RATE_PER_MINUTE, default 120).")
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            help=_("debug, info, warning or error (env SEALPOST_LOG_LEVEL, default info).")
        ),
    ] = None,
    grace_seconds: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Seconds in-flight calls get on shutdown (env SEALPOST_GRACE_SECONDS, default 5)."
            )
        ),
    ] = None,
    port_file: Annotated[
        Path | None,
        typer.Option(
            help=_(
                "Write the bound ports as JSON to this file once serving (env SEALPOST_PORT_FILE)."
            )
        ),
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Gateway processes sharing the ports, e.g. one per core (env SEALPOST_WORKERS, "
                "default 1). See docs/performance.md."
            )
        ),
    ] = None,
    head_interval_seconds: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Sign a tree head this often whenever the log has grown (env "
                "SEALPOST_HEAD_INTERVAL_SECONDS, default 2, from 0.1 to 60)."
            )
        ),
    ] = None,
    retention_days: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Delete settled messages this many days after acceptance, on a schedule (env "
                "SEALPOST_RETENTION_DAYS, default 0: keep). See docs/operations.md."
            )
        ),
    ] = None,
    witness_keys: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Auditors' witness keys whose cosignatures to accept, name=HEX,... (env "
                "SEALPOST_WITNESS_KEYS). See docs/transparency-log.md."
            )
        ),
    ] = None,
    register_limit: Annotated[
        str | None,
        typer.Option(
            help=_(
                "New devices per client address and overall, N/unit,N/unit (env "
                "SEALPOST_REGISTER_LIMIT, default 10/h,120/min). See docs/gateway.md, Limits."
            )
        ),
    ] = None,
    sign_in_limit: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Sign-in challenges and logins per client address and overall (env "
                "SEALPOST_SIGN_IN_LIMIT, default 60/min,3000/min)."
            )
        ),
    ] = None,
    directory_limit: Annotated[
        str | None,
        typer.Option(
            help=_(
                "Directory requests of callers not signed in, per address and overall (env "
                "SEALPOST_DIRECTORY_LIMIT, default 120/min,6000/min)."
            )
        ),
    ] = None,
    allow_tls12: Annotated[
        bool | None,
        typer.Option(
            "--allow-tls12/--tls13-only",
            help=_(
                "Also accept TLS 1.2 from old clients (env SEALPOST_ALLOW_TLS12, default: "
                "TLS 1.3 only). See docs/gateway.md, TLS."
            ),
        ),
    ] = None,
    config: ConfigFile = None,
) -> None:
    """Serve the API until SIGTERM or Ctrl-C, then shut down gracefully."""
    settings = _load("serve", _serve_flags(locals()), config)
    logs.configure(settings.log_level)
    from sealpost.gateway import keystore, tlspolicy, tracing  # noqa: PLC0415

    try:
        tracing.endpoint_of(os.environ)  # a bad SEALPOST_OTEL_ENDPOINT stops here, not later
    except ConfigError as exc:
        raise _fail("serve", exc) from exc

    try:
        server_key = keystore.load_tls(settings.state_dir).server_key
    except ConfigError as exc:
        raise _fail("serve", exc) from exc
    tlspolicy.restart_with_tls_policy(server_key, allow_tls12=settings.allow_tls12)
    try:
        if settings.workers > 1:
            from sealpost.gateway.workers import exec_supervisor  # noqa: PLC0415

            exec_supervisor(settings)  # does not return
        asyncio.run(serve_forever(settings))
    except ConfigError as exc:
        raise _fail("serve", exc) from exc
    except OSError as exc:
        typer.echo(
            _(
                "sealpost gateway serve: cannot listen on {address}: {reason}",
                address=settings.address,
                reason=exc,
            ),
            err=True,
        )
        raise typer.Exit(1) from exc


#: The settings ``serve`` takes as flags (every parameter but ``--config``).
SERVE_SETTINGS: tuple[str, ...] = tuple(
    name for name in inspect.signature(serve).parameters if name != "config"
)


def _with_serve_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` every option of ``serve`` ahead of its own (one list, not two)."""
    own = [
        parameter
        for parameter in inspect.signature(command, eval_str=True).parameters.values()
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    serve_options = inspect.signature(serve, eval_str=True).parameters.values()
    command.__dict__["__signature__"] = inspect.Signature([*serve_options, *own])
    command.__annotations__ = {**serve.__annotations__, **command.__annotations__}
    return command


@app.command(
    "check-config",
    help=_(
        "Print the configuration serve would use and where each value comes from (flag, "
        "variable, settings file, default); secrets are masked.\n\n"
        "Takes the same options as serve. Exit code 1 lists every problem."
    ),
)
@_with_serve_options
def check_config(
    json_output: Annotated[bool, typer.Option("--json", help=_("Print a JSON object."))] = False,
    **given: Any,
) -> None:
    """Print the configuration serve would use and where each value comes from.

    Takes the same options as serve. Exit code 1 lists every problem.
    """
    try:
        resolved = GatewayConfig.resolve(_serve_flags(given), config_file=given["config"])
    except ConfigError as exc:
        lines = [_("sealpost gateway check-config: invalid configuration:")]
        lines += [f"  - {problem}" for problem in exc.problems]
        report(Problem("configuration", "\n".join(lines), ExitCode.FAILED))
        raise typer.Exit(int(ExitCode.FAILED)) from exc
    if json_output:
        typer.echo(json.dumps(_check_json(resolved), indent=2, ensure_ascii=False))
    else:
        typer.echo(_check_text(resolved))


def _check_json(resolved: Resolved) -> dict[str, Any]:
    """The effective settings for scripts: value, source, and the flag, variable or line."""
    return {
        "configFile": None if resolved.config_file is None else str(resolved.config_file),
        "settings": {
            name: {
                "value": resolved.config.shown(name),
                "source": source.kind,
                **({"where": source.where} if source.where else {}),
                **({"line": source.line} if source.line else {}),
            }
            for name, source in resolved.sources.items()
        },
    }


def _check_text(resolved: Resolved) -> str:
    """The effective settings as a table, the settings file read above it."""
    heading = (
        _("settings file: {file}", file=resolved.config_file)
        if resolved.config_file is not None
        else _("settings file: none")
    )
    rows = [
        (name, resolved.config.shown(name), source.describe())
        for name, source in resolved.sources.items()
    ]
    return "\n".join(
        [heading, "", table((_("setting"), _("value"), _("from")), rows), "", _("no problems")]
    )


def _serve_flags(given: dict[str, Any]) -> dict[str, str | None]:
    """The settings ``serve``'s flags give, by name, in their text form (None: not given)."""
    flags: dict[str, str | None] = {}
    for name in SERVE_SETTINGS:
        value = given[name]
        if value is None or isinstance(value, str):
            flags[name] = value
        elif isinstance(value, bool):
            flags[name] = str(value).lower()
        else:
            flags[name] = str(value)  # a Path
    return flags


#: A wildcard listen address, and the address of this machine the health check asks instead.
_LOCAL_FOR: dict[str, str] = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - a mapping


@app.command(
    help=_(
        "Ask the gateway on this machine whether it serves (gRPC health over TLS): exit 0 "
        "when it does, 1 when it does not or does not answer.\n\n"
        "For container health checks: it reads the port and the state folder's CA from the "
        "same settings as serve (--config, SEALPOST_* variables)."
    )
)
def health(
    state_dir: StateDir = None,
    port: Annotated[
        str | None,
        typer.Option(help=_("The gateway's public port (env SEALPOST_PORT, default 50051).")),
    ] = None,
    service: Annotated[
        str,
        typer.Option(
            help=_("One service's status, e.g. sealpost.KeyServer; default: the whole gateway.")
        ),
    ] = "",
    timeout: Annotated[
        float, typer.Option(min=0.1, max=60.0, help=_("Seconds to wait for the answer."))
    ] = 3.0,
    config: ConfigFile = None,
) -> None:
    """Ask the gateway on this machine whether it serves (gRPC health over TLS).

    Exit 0 when it does, 1 when it does not or does not answer (container health checks
    reserve 2).
    """
    import grpc  # noqa: PLC0415
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415

    from sealpost.gateway import keystore, pki  # noqa: PLC0415

    try:
        settings = GatewayConfig.load(
            {"state_dir": _path_flag(state_dir), "port": port}, config_file=config
        )
        tls = keystore.load_tls(settings.state_dir)
        ca_pem, names = tls.ca.read_bytes(), pki.server_names(tls.server.read_bytes())
    except ConfigError as exc:
        _unhealthy("\n".join(exc.problems), exc)
    except (OSError, ValueError) as exc:
        _unhealthy(_("cannot read the TLS files: {reason}", reason=exc), exc)
    host = _LOCAL_FOR.get(settings.host, settings.host)
    address = f"[{host}]:{settings.port}" if ":" in host else f"{host}:{settings.port}"
    options = [("grpc.ssl_target_name_override", names[0])] if names else []
    credentials = grpc.ssl_channel_credentials(ca_pem)
    with grpc.secure_channel(address, credentials, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            why = _("{address} does not answer ({code})", address=address, code=exc.code().name)
            _unhealthy(why, exc)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    typer.echo(status)
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        raise typer.Exit(int(ExitCode.FAILED))


def _unhealthy(why: str, exc: BaseException) -> NoReturn:
    """Exit 1 whatever went wrong: container health checks reserve 2 (and 3 is not theirs)."""
    report(Problem("unhealthy", _("unhealthy: {why}", why=why), ExitCode.FAILED))
    raise typer.Exit(int(ExitCode.FAILED)) from exc


async def serve_forever(config: GatewayConfig) -> None:
    """Imported lazily so that ``--help`` stays fast."""
    from sealpost.gateway.server import serve as run  # noqa: PLC0415

    await run(config)
