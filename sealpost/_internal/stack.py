"""A running Sealpost on this machine: real OpenBao, real gateway, real database.

Used by the integration tests and by `sealpost demo`.

``Stack`` starts the gateway (on SQLite or PostgreSQL) against the session's
OpenBao, and makes the actors of SPEC section 2 on demand: staff with
identity tokens from the key server, relatives with registered devices,
terminals with client certificates the gateway's CA issued. ``ClusterStack`` does
the same against a three-node OpenBao Raft cluster (sealpost/_internal/baocluster.py),
for the failover tests.

What the stack changes at the key server (the bootstrap, staff logins, terminal
tokens) is kept as key-server actions; once ``record_key_server_actions`` names an
administrator, they are recorded in the transparency log, and so is every later
one, so that ``sealpost audit reconcile`` finds each change accounted for (SPEC P14).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from sealpost._internal.baocluster import OpenBaoCluster
from sealpost._internal.devservers import GatewayProcess, OpenBaoDevServer, gateway_directory_pin
from sealpost.clients._grpc import Endpoint
from sealpost.clients.admin.record import record_actions
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.clients.review.client import ReviewClient
from sealpost.clients.staff import StaffClient
from sealpost.clients.terminal.client import Escrow, TerminalClient
from sealpost.crypto.keyrecords import DirectoryPin
from sealpost.crypto.logentry import LogEvent, decode_event
from sealpost.escrow import identity
from sealpost.escrow._transport import KeyServerConfig, RetryPolicy
from sealpost.escrow.actions import KeyServerAction
from sealpost.escrow.bootstrap import BootstrapResult, BootstrapSettings, KeyServerBootstrap
from sealpost.escrow.client import EscrowClient, SealingClient
from sealpost.gateway import pki
from sealpost.v1 import admin_pb2, audit_pb2, common_pb2, envelope_pb2, log_pb2

_names = itertools.count()


def bootstrap_openbao(server: OpenBaoDevServer, prefix: str = "sealpost") -> BootstrapResult:
    """Bootstrap the key server for Sealpost (idempotent)."""
    runner = KeyServerBootstrap(
        KeyServerConfig(server.address), server.root_token, BootstrapSettings(prefix=prefix)
    )
    try:
        return runner.run()
    finally:
        runner.close()


class BaseStack:
    """The gateway and a key server, and factories for actors.

    ``Stack`` runs against one OpenBao dev server, ``ClusterStack`` against a Raft
    cluster; each says how the key server is reached and with which operator token.
    """

    def __init__(
        self, keyserver: BootstrapResult, gateway: GatewayProcess, prefix: str = "sealpost"
    ) -> None:
        self.keyserver = keyserver
        self.gateway = gateway
        self.prefix = prefix
        self._closers: list[object] = []
        #: Key-server actions not recorded yet; the bootstrap's wait for an administrator.
        self._unrecorded: list[KeyServerAction] = list(keyserver.actions)
        self._recorder: StaffClient | None = None

    def key_server_config(self) -> KeyServerConfig:
        """How the actors reach the key server."""
        raise NotImplementedError

    def operator_token(self) -> str:
        """The key server's root token, for the bootstrap and provisioning."""
        raise NotImplementedError

    @property
    def endpoint(self) -> Endpoint:
        """The public port."""
        return Endpoint(self.gateway.address, self.gateway.ca_pem)

    @property
    def terminal_endpoint(self) -> Endpoint:
        """The terminals' mutual-TLS port."""
        return Endpoint(self.gateway.terminal_address, self.gateway.ca_pem)

    @property
    def pin(self) -> DirectoryPin:
        """The directory key, pinned as the SDK ships it."""
        return DirectoryPin(gateway_directory_pin(self.gateway.state_dir))

    def close(self) -> None:
        """Close every client made."""
        for client in self._closers:
            client.close()  # type: ignore[attr-defined]

    # ----------------------------------------------------------------- key server

    def _admin(self) -> KeyServerBootstrap:
        return KeyServerBootstrap(
            self.key_server_config(),
            self.operator_token(),
            BootstrapSettings(prefix=self.prefix),
        )

    def _done(self, admin: KeyServerBootstrap) -> None:
        """Record what ``admin`` changed at the key server, or keep it for later."""
        actions = admin.take_actions()
        if self._recorder is None:
            self._unrecorded.extend(actions)
        else:
            record_actions(self._recorder, actions)

    def record_key_server_actions(self, administrator: StaffClient) -> int:
        """Record every key-server action so far through ``administrator``, and all later ones.

        Returns how many log events that took.
        """
        self._recorder = administrator
        pending, self._unrecorded = self._unrecorded, []
        return record_actions(administrator, pending)

    def staff_token(
        self, roles: Sequence[str], institutions: Sequence[str], name: str = ""
    ) -> tuple[str, str]:
        """A fresh staff member's (name, identity token)."""
        name, _session, token = self.staff_login(roles, institutions, name)
        return name, token

    def staff_login(
        self,
        roles: Sequence[str],
        institutions: Sequence[str],
        name: str = "",
        password: str = "",
    ) -> tuple[str, identity.StaffSession, str]:
        """A fresh staff member: (name, key-server session, gateway identity token).

        ``name`` is the key-server user name; a unique one is made when it is empty, and
        a random password when ``password`` is.
        """
        name = name or f"staff-{next(_names)}-{secrets.token_hex(3)}"
        password = password or secrets.token_urlsafe(18)
        admin = self._admin()
        try:
            admin.create_staff_user(name, password, roles, institutions)
        finally:
            self._done(admin)
            admin.close()
        config = self.key_server_config()
        session = identity.login_staff(config, name, password)
        token = identity.issue_identity_token(
            config, session.token, role=self.keyserver.identity_role
        )
        return name, session, token

    def enroll_totp(self, name: str) -> str:
        """Require a TOTP code at ``name``'s sign-in; the otpauth URL for their app."""
        admin = self._admin()
        try:
            return admin.enroll_staff_totp(name)
        finally:
            self._done(admin)
            admin.close()

    def reviewer(
        self, roles: Sequence[str], institutions: Sequence[str], name: str = ""
    ) -> ReviewClient:
        """A screener or approver with the review tool: gateway token and own key-server token."""
        _name, session, token = self.staff_login(roles, institutions, name)
        staff = StaffClient(self.endpoint, token)
        escrow = EscrowClient(
            self.key_server_config(),
            session.token,
            key=BootstrapSettings(prefix=self.prefix).escrow_key,
        )
        self._closers += [staff, escrow]
        return ReviewClient(staff, self.pin, escrow)

    def staff(
        self, roles: Sequence[str], institutions: Sequence[str], name: str = ""
    ) -> StaffClient:
        """A staff client with the given roles and institution scope."""
        _name, token = self.staff_token(roles, institutions, name)
        client = StaffClient(self.endpoint, token)
        self._closers.append(client)
        return client

    def escrow_for(
        self,
        institution_id: str,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen dataclass, safe default
    ) -> Escrow:
        """The terminal's escrow step: transit encrypt with an encrypt-only token."""
        admin = self._admin()
        try:
            token = admin.create_terminal_token(institution_id)
        finally:
            self._done(admin)
            admin.close()
        client = EscrowClient(
            self.key_server_config(),
            token.token,
            key=BootstrapSettings(prefix=self.prefix).escrow_key,
            retry=retry,
        )
        self._closers.append(client)

        def escrow(items: Sequence[tuple[bytes, bytes]]) -> list[envelope_pb2.EscrowBlob]:
            return [k.to_proto() for k in client.escrow_batch(list(items))] if items else []

        return escrow

    # ----------------------------------------------------------------- actors

    def sealer(self, token: str) -> SealingClient:
        """The triage key's client under ``token`` (a terminal's, or a screener's own)."""
        client = SealingClient(
            self.key_server_config(),
            token,
            key=BootstrapSettings(prefix=self.prefix).triage_key,
        )
        self._closers.append(client)
        return client

    def terminal_sealer(self, institution_id: str) -> SealingClient:
        """A terminal's triage key client, with a fresh terminal token of ``institution_id``."""
        admin = self._admin()
        try:
            token = admin.create_terminal_token(institution_id)
        finally:
            self._done(admin)
            admin.close()
        return self.sealer(token.token)

    def relative(self, name: str = "Relative") -> RelativeClient:
        """A relative with a registered device, signed in."""
        client = RelativeClient(self.endpoint, self.pin)
        client.register(name)
        client.login()
        self._closers.append(client)
        return client

    def terminal(
        self, admin: StaffClient, institution_id: str, *, register_key: bool = True
    ) -> TerminalClient:
        """A terminal of ``institution_id`` with a certificate issued through ``admin``."""
        csr, key = pki.make_csr("terminal")
        issued = admin.call(
            "admin",
            "IssueTerminalCertificate",
            admin_pb2.IssueTerminalCertificateRequest(
                institution_id=institution_id, csr_pem=csr.decode()
            ),
        )
        client = TerminalClient(
            self.terminal_endpoint, self.pin, key, issued.certificate_pem.encode()
        )
        client.terminal_id = issued.terminal.terminal_id  # type: ignore[attr-defined]
        if register_key:
            client.register_institution_key(institution_id)
        self._closers.append(client)
        return client


class Stack(BaseStack):
    """The gateway and one OpenBao dev server, and factories for actors."""

    def __init__(
        self,
        openbao: OpenBaoDevServer,
        keyserver: BootstrapResult,
        gateway: GatewayProcess,
        prefix: str = "sealpost",
    ) -> None:
        super().__init__(keyserver, gateway, prefix)
        self.openbao = openbao

    def key_server_config(self) -> KeyServerConfig:
        """The dev server's one address, over plain HTTP on loopback."""
        return KeyServerConfig(self.openbao.address)

    def operator_token(self) -> str:
        """The dev server's root token."""
        return self.openbao.root_token


def start_gateway(
    workdir: Path,
    openbao: OpenBaoDevServer | OpenBaoCluster,
    keyserver: BootstrapResult,
    database_url: str,
    extra_env: dict[str, str] | None = None,
) -> GatewayProcess:
    """A gateway configured to accept the key server's staff identity tokens, serving.

    If starting is interrupted (Ctrl-C, a stop signal), the half-started gateway is stopped:
    the caller never got it, so could not. Of a cluster the gateway is given every node,
    and trusts the cluster's CA for its identity-key fetches and its health probe.
    """
    tls = (
        {"SSL_CERT_FILE": str(openbao.ca_file), "REQUESTS_CA_BUNDLE": str(openbao.ca_file)}
        if isinstance(openbao, OpenBaoCluster)
        else {}
    )
    gateway = GatewayProcess(
        workdir,
        database_url=database_url,
        env={
            "SEALPOST_KEY_SERVER_ADDRESS": openbao.address,
            "SEALPOST_OIDC_ISSUER": keyserver.issuer,
            "SEALPOST_OIDC_AUDIENCE": keyserver.audience,
            **tls,
            **(extra_env or {}),
        },
    )
    try:
        gateway.start()
    except BaseException:
        gateway.stop()
        raise
    return gateway


@contextlib.contextmanager
def running_stack(
    workdir: Path,
    openbao: OpenBaoDevServer,
    keyserver: BootstrapResult,
    database_url: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """A gateway started for ``keyserver`` with its actor factories; closed and stopped after."""
    gateway = start_gateway(workdir, openbao, keyserver, database_url, extra_env)
    stack = Stack(openbao, keyserver, gateway)
    try:
        yield stack
    finally:
        stack.close()
        gateway.stop()


class ClusterStack(BaseStack):
    """The gateway and an OpenBao Raft cluster (TLS, every node named), and actor factories."""

    def __init__(
        self,
        cluster: OpenBaoCluster,
        keyserver: BootstrapResult,
        gateway: GatewayProcess,
        prefix: str = "sealpost",
    ) -> None:
        super().__init__(keyserver, gateway, prefix)
        self.cluster = cluster

    def key_server_config(self) -> KeyServerConfig:
        """Every node's address and the cluster's CA."""
        return self.cluster.key_server_config()

    def operator_token(self) -> str:
        """The root token made when the cluster was initialised."""
        return self.cluster.root_token


#: The identity-token issuer a cluster's bootstrap sets: one name for the whole cluster, so
#: that tokens issued by a new leader carry the same ``iss`` (docs/operations.md, section 8).
CLUSTER_ISSUER: Final = "https://bao.sealpost.test:8200"


def bootstrap_cluster(
    cluster: OpenBaoCluster, prefix: str = "sealpost", issuer: str = CLUSTER_ISSUER
) -> BootstrapResult:
    """Bootstrap a cluster for Sealpost, with one issuer for every node (idempotent)."""
    runner = KeyServerBootstrap(
        cluster.key_server_config(),
        cluster.root_token,
        BootstrapSettings(prefix=prefix, issuer=issuer),
    )
    try:
        return runner.run()
    finally:
        runner.close()


@contextlib.contextmanager
def running_cluster_stack(
    workdir: Path,
    cluster: OpenBaoCluster,
    keyserver: BootstrapResult,
    database_url: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[ClusterStack]:
    """A gateway for a bootstrapped cluster with its actor factories; closed and stopped after."""
    gateway = start_gateway(workdir, cluster, keyserver, database_url, extra_env)
    stack = ClusterStack(cluster, keyserver, gateway)
    try:
        yield stack
    finally:
        stack.close()
        gateway.stop()


def setup_institutions(
    stack: BaseStack, detainees: Sequence[tuple[str, str, str]]
) -> tuple[StaffClient, dict[str, TerminalClient]]:
    """A national administrator, the institutions and detainees named, one terminal each.

    ``detainees``: (detainee id, institution id, regime); every detainee gets a mailbox key.
    """
    admin = stack.staff(["administrator"], ["*"])
    terminals: dict[str, TerminalClient] = {}
    for _detainee, institution, _regime in detainees:
        if institution not in terminals:
            admin.call(
                "admin",
                "CreateInstitution",
                admin_pb2.CreateInstitutionRequest(institution_id=institution, name=institution),
            )
            terminals[institution] = stack.terminal(admin, institution)
    for detainee, institution, regime in detainees:
        admin.call(
            "admin",
            "IntakeDetainee",
            admin_pb2.IntakeDetaineeRequest(
                detainee_id=detainee, institution_id=institution, regime=regime
            ),
        )
        terminals[institution].provision_mailbox(detainee)
    return admin, terminals


def approve_all(admin: StaffClient, institution_id: str) -> int:
    """Approve every requested contact of an institution; returns how many."""
    pending = admin.call(
        "admin",
        "ListContactRequests",
        admin_pb2.ListContactRequestsRequest(
            institution_id=institution_id, status=common_pb2.CONTACT_STATUS_REQUESTED
        ),
    )
    for request in pending.requests:
        admin.call(
            "admin",
            "DecideContact",
            admin_pb2.DecideContactRequest(
                contact_id=request.contact_id, decision=common_pb2.CONTACT_STATUS_APPROVED
            ),
        )
    return len(pending.requests)


def screening_order(
    admin: StaffClient,
    detainee: str,
    direction: common_pb2.Direction.ValueType = common_pb2.DIRECTION_BOTH,
    *,
    days: int = 14,
    note: str = "Officier van justitie, zaak 2026/123",
) -> None:
    """An active screening order (crime prevention) from an hour ago for ``days`` days."""
    now = dt.datetime.now(dt.UTC)
    starts, ends = Timestamp(), Timestamp()
    starts.FromDatetime(now - dt.timedelta(hours=1))
    ends.FromDatetime(now + dt.timedelta(days=days))
    admin.call(
        "admin",
        "CreateScreeningOrder",
        admin_pb2.CreateScreeningOrderRequest(
            detainee_id=detainee,
            legal_ground=common_pb2.LEGAL_GROUND_CRIME_PREVENTION,
            direction=direction,
            starts_at=starts,
            ends_at=ends,
            note=note,
        ),
    )


def log_events(stack: BaseStack) -> list[LogEvent]:
    """Every event in the gateway's transparency log, read by a national auditor."""
    auditor = stack.staff(["auditor"], ["*"])
    head = auditor.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))
    size = log_pb2.TreeHead.FromString(head.tree_head.tree_head).tree_size
    entries = auditor.call("audit", "GetEntries", audit_pb2.GetEntriesRequest(start=0, end=size))
    return [decode_event(e.leaf) for e in entries.entries]
