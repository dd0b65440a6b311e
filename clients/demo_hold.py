"""``sealpost demo --hold``: the servers stay up after the day, for a person to walk in.

The demo makes a staff login per role at the key server and keeps each password in an
owner-only file in OUT/logins/, never on the screen. It prints the ports, the logins
and, for each role, a block to paste into a shell: the variables to export (a password
is read from its file by the shell) and the commands to run. The blocks are data
(:class:`Trial`); tests/integration/test_demo_hold.py runs them as printed.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import typer

from sealpost._internal.files import write_atomic
from sealpost._internal.stack import Stack
from sealpost.clients.scripted_day import NORTH, ORDINARY, say
from sealpost.clients.staff import StaffClient
from sealpost.gateway.webapp import BUILT_APP
from sealpost.v1 import audit_pb2

#: Folders in the output folder: the passwords (owner-only), and what people make there.
LOGINS_FOLDER: Final = "logins"
TRY_FOLDER: Final = "try"
#: The file, in the logins folder, with the key server's operator (root) token.
OPERATOR_FILE: Final = "key-server-operator"
#: The institution a person sets up a first terminal for (the day's have theirs).
TRY_INSTITUTION: Final = "pi-proef"
#: How every block starts: a shell comment naming the role, so a block pastes whole.
HEADING: Final = "# --- "


@dataclass(frozen=True)
class Login:
    """A staff login the held demo makes at the key server."""

    name: str
    role: str
    institutions: tuple[str, ...]

    @property
    def scope(self) -> str:
        """The institutions, as people read them."""
        return "every institution" if self.institutions == ("*",) else ", ".join(self.institutions)


#: One login per staff role (screeners and auditors are never the same person).
LOGINS: Final = (
    Login("demo-admin", "administrator", ("*",)),
    Login("demo-screener", "screener", (NORTH,)),
    Login("demo-approver", "approver", (NORTH,)),
    Login("demo-auditor", "auditor", ("*",)),
)
#: The login of each role.
LOGIN_OF: Final = {login.role: login.name for login in LOGINS}


@dataclass(frozen=True)
class FromFile:
    """A value the shell reads from a file when the command runs: a secret stays off screen."""

    path: Path

    def shell(self) -> str:
        """The value as a shell word."""
        return f'"$(cat {shlex.quote(str(self.path))})"'


def _word(value: str | FromFile) -> str:
    return value.shell() if isinstance(value, FromFile) else shlex.quote(value)


@dataclass(frozen=True)
class Trial:
    """One role to try by hand: the variables to export, the commands, what to try next."""

    role: str
    about: str
    exports: tuple[tuple[str, str | FromFile], ...]
    commands: tuple[str, ...]
    #: Commands that need something only the person can fill in (printed as comments).
    next: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The block as printed: heading, exports, commands, then what to try next."""
        return [
            f"{HEADING}{self.role}: {self.about}",
            *(f"export {name}={_word(value)}" for name, value in self.exports),
            *self.commands,
            *(f"#   then: {command}" for command in self.next),
        ]


@dataclass(frozen=True)
class Held:
    """Where everything is while the demo holds: what the printed commands name."""

    out: Path
    program: str
    gateway: str
    terminal_gateway: str
    web_url: str
    web_app: bool
    key_server: str
    ca_file: Path
    directory_key: str
    database_url: str
    audit_logs: tuple[Path, ...]
    gateway_log: Path

    @property
    def logins(self) -> Path:
        """The owner-only folder with one password file per login."""
        return self.out / LOGINS_FOLDER

    @property
    def tried(self) -> Path:
        """Where the trials keep what they make (a profile, certificates, state)."""
        return self.out / TRY_FOLDER


def program() -> str:
    """How the person runs this ``sealpost``: by name if the shell finds it, else by path."""
    script = Path(sys.executable).parent / "sealpost"
    if not script.is_file():
        return "sealpost"
    found = shutil.which("sealpost")
    if found is not None and Path(found).resolve() == script.resolve():
        return "sealpost"
    return shlex.quote(str(script))


def trials(held: Held) -> list[Trial]:
    """A block per role, with the demo's addresses, files and cast filled in."""
    sp = held.program
    gateway = (("SEALPOST_GATEWAY", held.gateway), ("SEALPOST_CA_FILE", str(held.ca_file)))

    def staff(login: str) -> tuple[tuple[str, str | FromFile], ...]:
        return (
            *gateway,
            ("SEALPOST_KEY_SERVER_ADDRESS", held.key_server),
            ("SEALPOST_USER", login),
            ("SEALPOST_PASSWORD", FromFile(held.logins / login)),
        )

    issued = held.tried / "terminal-certificates"
    token = issued / "key-server.token"
    browser = (
        f"the web app at {held.web_url}/ in a browser that trusts {held.ca_file}, or "
        if held.web_app
        else ""
    )
    audit_logs = " ".join(f"--audit-log {shlex.quote(str(path))}" for path in held.audit_logs)
    return [
        Trial(
            "relative",
            f"{browser}the command line (it asks for a new passphrase)",
            (
                *gateway,
                ("SEALPOST_DIRECTORY_KEY", held.directory_key),
                ("SEALPOST_PROFILE", str(held.tried / "relative")),
            ),
            (
                f"{sp} relative init --name 'Ayşe Demir'",
                f"{sp} relative request-contact {ORDINARY}",
                f"{sp} relative notice",
            ),
            (
                f"{sp} relative send {ORDINARY} --text 'Hallo, tot zondag!'   "
                "(once the administrator approved the contact)",
            ),
        ),
        Trial(
            "administrator",
            "the institutions, detainees and contact requests",
            staff(LOGIN_OF["administrator"]),
            (f"{sp} admin detainee list", f"{sp} admin contact list"),
            (f"{sp} admin contact approve CONTACT_ID   (a request from the list)",),
        ),
        Trial(
            "screener",
            f"messages under a screening order at {NORTH} wait for you",
            (*staff(LOGIN_OF["screener"]), ("SEALPOST_DIRECTORY_KEY", held.directory_key)),
            (f"{sp} review queue",),
            (
                f"{sp} review open MESSAGE_ID   (the grant is logged first; the key server "
                "logs your decrypt)",
                f"{sp} review verdict MESSAGE_ID release",
            ),
        ),
        Trial(
            "approver",
            "a retrospective request needs a second officer (four eyes)",
            staff(LOGIN_OF["approver"]),
            (f"{sp} review retro list",),
            (f"{sp} review retro decide REQUEST_ID approve   (a screener's request)",),
        ),
        Trial(
            "terminal",
            f"the administrator sets up the first terminal of a new institution, "
            f"{TRY_INSTITUTION} (it asks for a new passphrase)",
            (
                *staff(LOGIN_OF["administrator"]),
                ("SEALPOST_TERMINAL_GATEWAY", held.terminal_gateway),
                ("SEALPOST_DIRECTORY_KEY", held.directory_key),
                ("SEALPOST_TERMINAL_PROFILE", str(held.tried / "terminal")),
            ),
            (
                f"{sp} admin institution add {TRY_INSTITUTION} --name 'PI Proef'",
                f"{sp} admin terminal issue --institution {TRY_INSTITUTION} "
                f"--out {shlex.quote(str(issued))}",
                f"SEALPOST_KEY_SERVER_TOKEN={FromFile(held.logins / OPERATOR_FILE).shell()} "
                f"{sp} admin terminal token {TRY_INSTITUTION} --out {shlex.quote(str(token))}",
                f"SEALPOST_KEY_SERVER_TOKEN={FromFile(token).shell()} "
                f"{sp} terminal enroll --certificates {shlex.quote(str(issued))}",
                f"{sp} terminal status",
                f"{sp} terminal intake --once",
            ),
            (f"{sp} terminal deliveries",),
        ),
        Trial(
            "auditor",
            "the transparency log, from the gateway's database and through the API",
            (
                *staff(LOGIN_OF["auditor"]),
                ("SEALPOST_DATABASE_URL", held.database_url),
                ("SEALPOST_DIRECTORY_KEY", held.directory_key),
            ),
            (
                f"{sp} audit verify --state-file "
                f"{shlex.quote(str(held.tried / 'audit-state.json'))}",
                f"{sp} audit verify-remote",
            ),
            (
                f"{sp} audit reconcile {audit_logs}   (exit 1: it finds the decrypt made "
                "straight at OpenBao at the end of the day)",
            ),
        ),
    ]


def make_logins(stack: Stack, folder: Path) -> dict[str, str]:
    """Make every login of LOGINS, each password in its own owner-only file in ``folder``.

    The key server's operator token goes there too: ``admin terminal token`` and ``admin
    staff add`` need it. Returns each login's gateway identity token.
    """
    folder.mkdir(mode=0o700)
    folder.chmod(0o700)
    tokens: dict[str, str] = {}
    for login in LOGINS:
        password = secrets.token_urlsafe(18)
        _name, _keys, tokens[login.name] = stack.staff_login(
            [login.role], list(login.institutions), login.name, password
        )
        write_atomic(folder / login.name, password.encode())
    write_atomic(folder / OPERATOR_FILE, stack.openbao.root_token.encode())
    return tokens


def held_from(stack: Stack, out: Path) -> Held:
    """Where the held demo's servers and files are."""
    gateway = stack.gateway
    ca_file = out / "ca.pem"
    write_atomic(ca_file, gateway.ca_pem, mode=0o644)
    return Held(
        out=out,
        program=program(),
        gateway=gateway.address,
        terminal_gateway=gateway.terminal_address,
        web_url=gateway.web_url,
        web_app=gateway.env.get("SEALPOST_WEB_APP") == str(BUILT_APP),
        key_server=stack.openbao.address,
        ca_file=ca_file,
        directory_key=stack.pin.signing_key.hex(),
        database_url=gateway.database_url,
        audit_logs=stack.openbao.audit_logs,
        gateway_log=gateway.log_file,
    )


def guide(held: Held) -> list[str]:
    """What the held demo prints about itself, before the blocks."""
    width = max(len(login.name) for login in LOGINS)
    return [
        "both servers are running",
        f"  gateway     {held.gateway} public (relatives and staff, TLS), "
        f"{held.terminal_gateway} terminals (mutual TLS), {held.web_url} browsers "
        f"(Connect); its log: {held.gateway_log}",
        f"  key server  {held.key_server} (OpenBao dev server, in memory); audit logs "
        f"{', '.join(str(path) for path in held.audit_logs)}",
        f"  web app     {held.web_url}/ (trust the demo's own CA: {held.ca_file})"
        if held.web_app
        else "  web app     not built (make web-app), so not served",
        f"  directory key {held.directory_key} (what relatives, terminals and auditors pin)",
        f"  logins at the key server; each password is in its own file in {held.logins}/ "
        "(readable by you only):",
        *(f"    {login.name:<{width}}  {login.role}, {login.scope}" for login in LOGINS),
        f"    and the key server's operator token, for `admin terminal token` and `admin "
        f"staff add`: {held.logins / OPERATOR_FILE}",
        "try each role by hand: paste a block below into a shell",
    ]


def hold_servers(stack: Stack, out: Path) -> None:
    """Make the logins, print the guide and a block per role, then wait to be stopped."""
    tokens = make_logins(stack, out / LOGINS_FOLDER)
    held = held_from(stack, out)
    # A head signed now: the auditor's first verify finds the logins' log entries signed.
    administrator = StaffClient(stack.endpoint, tokens[LOGIN_OF["administrator"]])
    try:
        administrator.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))
    finally:
        administrator.close()
    for line in guide(held):
        say(line)
    for trial in trials(held):
        typer.echo("")
        for line in trial.lines():
            typer.echo(line)
    typer.echo("")
    say(f"holding; Ctrl-C or `kill {os.getpid()}` (SIGTERM) stops both servers, then the demo")
    while True:
        time.sleep(3600)
