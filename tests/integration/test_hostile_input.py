"""Hostile input at the running gateway (SPEC P10): every RPC fuzzed with random and mutated
request bytes, and the hostile requests the fuzzing found, once each.

Every refusal must be a clean gRPC status (never UNKNOWN or INTERNAL), leave every table as
it was, and leave the gateway serving. One gateway per database serves the whole module.
Example counts: tests/fuzzing.py.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

import sealpost.v1
from sealpost._internal.devservers import OpenBaoDevServer, gateway_health
from sealpost._internal.stack import Stack, approve_all, setup_institutions, start_gateway
from sealpost.clients._grpc import bearer
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.clients.staff import StaffClient
from sealpost.clients.terminal.client import TerminalClient
from sealpost.escrow.bootstrap import BootstrapResult
from sealpost.gateway.authz import RULES
from sealpost.gateway.principals import Role
from sealpost.gateway.storage.schema import metadata
from sealpost.v1 import (
    admin_pb2,
    audit_pb2,
    common_pb2,
    relative_pb2,
    review_pb2,
    terminal_pb2,
)
from tests import fuzzing

pytestmark = pytest.mark.integration

A, B, C = "hx-alpha", "hx-beta", "hx-gamma"
#: Detainees: one to write to, one to transfer away, one whose mailbox key gets revoked.
D_A, D_MOVED, D_STALE, D_B = "hx-d-a", "hx-d-moved", "hx-d-stale", "hx-d-b"

#: Codes a refusal may carry; UNKNOWN and INTERNAL mean a bug, UNAVAILABLE a broken gateway.
CLEAN_CODES: Final = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
#: Seconds a following stream is given before the test stops waiting for it.
STREAM_WAIT: Final = 0.6
OK = grpc.StatusCode.OK


def api_methods() -> list[MethodDescriptor]:
    """Every method of every service in the sealpost.v1 descriptors (new ones included)."""
    methods: list[MethodDescriptor] = []
    for info in pkgutil.iter_modules(sealpost.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"sealpost.v1.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            methods.extend(service.methods)
    return sorted(methods, key=path_of)


def path_of(method: MethodDescriptor) -> str:
    """The gRPC path of a method."""
    return f"/{method.containing_service.full_name}/{method.name}"


METHODS: Final = api_methods()


# --- The world: one gateway per database, institutions, actors and objects to aim at ---


@dataclass
class World:
    """A running gateway with actors in three institutions and objects they own."""

    stack: Stack
    engine: sa.Engine
    admin: StaffClient
    terminals: dict[str, TerminalClient]
    relative: RelativeClient
    #: Staff tokens by label: national officer and auditor, B-scoped officer and auditor.
    tokens: dict[str, str]
    message_id: bytes = b""
    contact_id: str = ""
    order_id: str = ""
    retrospective_id: str = ""
    channels: dict[str, grpc.Channel] = field(default_factory=dict)

    def channel(self, port: str) -> grpc.Channel:
        """A raw channel to the public port, or to the terminal port as terminal ``port``."""
        if port not in self.channels:
            if port == "public":
                self.channels[port] = self.stack.endpoint.channel()
            else:
                self.channels[port] = self.terminals[port].channel
        return self.channels[port]

    def counts(self) -> dict[str, int]:
        """Rows in every table of the gateway's database (one query)."""
        query = sa.select(
            *(
                sa.select(sa.func.count()).select_from(table).scalar_subquery().label(name)
                for name, table in metadata.tables.items()
            )
        )
        with self.engine.connect() as connection:
            return dict(connection.execute(query).one()._mapping)

    def texts(self) -> list[str]:
        """Ids that exist, so that fuzzed requests sometimes reach past the lookups."""
        return [
            A,
            B,
            D_A,
            D_B,
            D_MOVED,
            self.relative.account_id,
            self.contact_id,
            self.order_id,
            self.retrospective_id,
            "regular",
            "screen-all",
        ]

    def blobs(self) -> list[bytes]:
        """Byte ids that exist: a message, the relative's device key."""
        return [self.message_id, self.relative.key_id]


@dataclass(frozen=True)
class Caller:
    """Who sends a raw call: which port and which credentials."""

    name: str
    port: str
    metadata: tuple[tuple[str, str], ...] = ()


def callers(world: World) -> dict[str, Caller]:
    """Every kind of caller, national or of institution A, plus B-scoped staff."""
    return {
        "anonymous": Caller("anonymous", "public"),
        "relative": Caller("relative", "public", bearer(world.relative.token)),
        "officer": Caller("officer", "public", bearer(world.tokens["officer"])),
        "auditor": Caller("auditor", "public", bearer(world.tokens["auditor"])),
        "terminal": Caller("terminal", A),
        "officer-b": Caller("officer-b", "public", bearer(world.tokens["officer-b"])),
        "auditor-b": Caller("auditor-b", "public", bearer(world.tokens["auditor-b"])),
        "terminal-b": Caller("terminal-b", B),
    }


_CALLER_OF_ROLE: Final = {
    Role.ANONYMOUS: "anonymous",
    Role.RELATIVE: "relative",
    Role.TERMINAL: "terminal",
    Role.SCREENER: "officer",
    Role.APPROVER: "officer",
    Role.ADMINISTRATOR: "officer",
    Role.AUDITOR: "auditor",
}


def allowed_callers(path: str) -> list[str]:
    """The callers the authorisation table lets through for ``path`` (none for new methods)."""
    rule = RULES.get(path)
    if rule is None:
        return []
    return sorted({_CALLER_OF_ROLE[role] for role in rule.roles})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    openbao: OpenBaoDevServer,
    keyserver: BootstrapResult,
) -> Iterator[World]:
    """The module's gateway on each database, with everything the tests aim at."""
    workdir = tmp_path_factory.mktemp(f"hostile-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'hostile.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"hostile_{time.time_ns()}")
    # The flood guard would answer RESOURCE_EXHAUSTED before any check this module aims at.
    gateway = start_gateway(
        workdir / "gateway", openbao, keyserver, url, {"SEALPOST_SEND_RATE_PER_MINUTE": "100000"}
    )
    stack = Stack(openbao, keyserver, gateway)
    engine = sa.create_engine(url)
    try:
        yield _populate(stack, engine)
    finally:
        engine.dispose()
        stack.close()
        gateway.stop()


def _populate(stack: Stack, engine: sa.Engine) -> World:
    admin, terminals = setup_institutions(
        stack,
        [
            (D_A, A, "regular"),
            (D_MOVED, A, "regular"),
            (D_STALE, A, "regular"),
            (D_B, B, "regular"),
        ],
    )
    admin.call(
        "admin", "CreateInstitution", admin_pb2.CreateInstitutionRequest(institution_id=C, name=C)
    )
    terminals[C] = stack.terminal(admin, C)
    relative = stack.relative("Hostile Input")
    for detainee in (D_A, D_STALE):
        relative.request_contact(detainee)
    approve_all(admin, A)
    tokens = {
        "officer": stack.staff_token(["administrator", "screener", "approver"], ["*"])[1],
        "auditor": stack.staff_token(["auditor"], ["*"])[1],
        "officer-b": stack.staff_token(["administrator", "screener", "approver"], [B])[1],
        "auditor-b": stack.staff_token(["auditor"], [B])[1],
    }
    world = World(stack, engine, admin, terminals, relative, tokens)
    world.message_id = relative.send(D_A, "first").message_id
    world.contact_id = relative.contact(D_A).contact_id
    officer = StaffClient(stack.endpoint, tokens["officer"])
    try:
        order = officer.call(
            "admin",
            "CreateScreeningOrder",
            admin_pb2.CreateScreeningOrderRequest(
                detainee_id=D_A,
                legal_ground=common_pb2.LEGAL_GROUND_CRIME_PREVENTION,
                direction=common_pb2.DIRECTION_BOTH,
                note="hostile input test",
                starts_at=_timestamp(time.time() - 60),
                ends_at=_timestamp(time.time() + 86_400),
            ),
        )
        world.order_id = order.order.order_id
        retrospective = officer.call(
            "review",
            "FileRetrospectiveRequest",
            review_pb2.FileRetrospectiveRequestRequest(
                detainee_id=D_A,
                direction=common_pb2.DIRECTION_INBOUND,
                case_reference="HX-1",
                reason="hostile input test",
                period_start=_timestamp(time.time() - 86_400),
                period_end=_timestamp(time.time()),
            ),
        )
        world.retrospective_id = retrospective.request.request_id
        # D_MOVED leaves A for C: A's terminal owes C a handover.
        officer.call(
            "admin",
            "TransferDetainee",
            admin_pb2.TransferDetaineeRequest(detainee_id=D_MOVED, to_institution_id=C),
        )
    finally:
        officer.close()
    return world


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(int(seconds * 1000))
    return stamp


# --- Raw calls ---


@dataclass(frozen=True)
class Outcome:
    """The status of one raw call and, for a stream, whether it was still open when left."""

    code: grpc.StatusCode
    details: str
    waiting: bool = False


def raw_call(world: World, caller: Caller, method: MethodDescriptor, payload: bytes) -> Outcome:
    """Send ``payload`` as the request of ``method``, bytes as they are (no serializer)."""
    channel = world.channel(caller.port)
    path = path_of(method)
    try:
        if method.server_streaming:
            stream: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
            for _ in stream(payload, metadata=caller.metadata, timeout=STREAM_WAIT):
                pass
        else:
            unary: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
            unary(payload, metadata=caller.metadata, timeout=30)
    except grpc.RpcError as error:
        code = error.code()
        details = error.details() or ""
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and method.server_streaming:
            return Outcome(code, details, waiting=True)
        return Outcome(code, details)
    return Outcome(OK, "")


def follows(method: MethodDescriptor, payload: bytes) -> bool:
    """True when ``payload`` parses as a request that asks the stream to stay open."""
    cls = message_factory.GetMessageClass(method.input_type)
    try:
        request = cls.FromString(payload)
    except DecodeError:
        return False
    return bool(getattr(request, "follow", False))


def assert_clean(world: World, method: MethodDescriptor, payload: bytes, outcome: Outcome) -> None:
    """A clean refusal, or success; a stream may only be left open when it was asked to be."""
    if outcome.waiting:
        assert follows(method, payload), f"{path_of(method)} hung on a non-following request"
        return
    assert outcome.code == OK or outcome.code in CLEAN_CODES, (
        f"{path_of(method)} answered {outcome.code.name}: {outcome.details!r}"
    )


def assert_serving(world: World) -> None:
    """The gateway process is alive, healthy, and logged no bug."""
    gateway = world.stack.gateway
    assert gateway.process.poll() is None, "the gateway process died"
    assert gateway_health(gateway.address, gateway.ca_pem) == "SERVING"
    assert '"rpc.bug"' not in gateway.log_file.read_text(errors="replace")


# --- Fuzzing every RPC ---


def _payloads(world: World, method: MethodDescriptor) -> st.SearchStrategy[bytes]:
    numbers = [f.number for f in method.input_type.fields]
    structured = fuzzing.message(method.input_type, texts=world.texts(), blobs=world.blobs()).map(
        lambda m: m.SerializeToString()
    )
    return st.one_of(
        st.binary(max_size=200),
        structured,
        structured.flatmap(lambda data: fuzzing.mutated(data, numbers)),
    )


@pytest.mark.parametrize("method", METHODS, ids=path_of)
def test_every_rpc_answers_fuzzed_bytes_cleanly(world: World, method: MethodDescriptor) -> None:
    permitted = allowed_callers(path_of(method)) or ["anonymous"]
    everyone = callers(world)

    @fuzzing.fuzz_settings(10)
    @given(
        payload=_payloads(world, method),
        who=st.sampled_from([*permitted, *permitted, "anonymous", "relative", "terminal-b"]),
    )
    def check(payload: bytes, who: str) -> None:
        before = world.counts()
        outcome = raw_call(world, everyone[who], method, payload)
        assert_clean(world, method, payload, outcome)
        if outcome.code != OK and not outcome.waiting:
            assert world.counts() == before, f"{path_of(method)} refused but changed state"

    check()
    assert_serving(world)


def test_methods_are_walked_from_the_descriptors() -> None:
    paths = {path_of(m) for m in METHODS}
    assert paths == set(RULES), "a method without a rule, or a rule without a method"
    assert len(paths) > 50


# --- Known hostile requests, each once (regressions of what the fuzzing found) ---


def _path(service: str, method: str) -> MethodDescriptor:
    (found,) = [m for m in METHODS if path_of(m) == f"/sealpost.v1.{service}/{method}"]
    return found


def _stamp(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


KNOWN_HOSTILE: Final[list[tuple[str, str, str, Message]]] = [
    # A NUL in an id: PostgreSQL cannot even compare with it.
    (
        "AdminService",
        "DecideContact",
        "officer",
        admin_pb2.DecideContactRequest(
            contact_id="c\0", decision=common_pb2.CONTACT_STATUS_APPROVED
        ),
    ),
    (
        "TerminalService",
        "ListDeliveries",
        "terminal",
        terminal_pb2.ListDeliveriesRequest(detainee_id="\0"),
    ),
    # Integers beyond what the databases store.
    (
        "ReviewService",
        "ListQueue",
        "officer",
        review_pb2.ListQueueRequest(page=common_pb2.PageRequest(page_token="9" * 20)),
    ),
    (
        "AuditService",
        "ListTreeHeads",
        "auditor",
        audit_pb2.ListTreeHeadsRequest(min_tree_size=2**63),
    ),
    (
        "AuditService",
        "GetEntries",
        "auditor",
        audit_pb2.GetEntriesRequest(start=2**64 - 10, end=2**64 - 1),
    ),
    (
        "RelativeService",
        "StreamInbox",
        "relative",
        relative_pb2.StreamInboxRequest(after_cursor="18446744073709551616"),
    ),
    (
        "TerminalService",
        "StreamIntake",
        "terminal",
        terminal_pb2.StreamIntakeRequest(after_cursor=str(2**63)),
    ),
    # Timestamps outside the range protobuf defines.
    (
        "AdminService",
        "CreateScreeningOrder",
        "officer",
        admin_pb2.CreateScreeningOrderRequest(
            detainee_id=D_A,
            legal_ground=common_pb2.LEGAL_GROUND_CRIME_PREVENTION,
            direction=common_pb2.DIRECTION_BOTH,
            starts_at=_stamp(2**62),
            ends_at=_stamp(2**62 + 86_400),
        ),
    ),
    (
        "ReviewService",
        "FileRetrospectiveRequest",
        "officer",
        review_pb2.FileRetrospectiveRequestRequest(
            detainee_id=D_A,
            direction=common_pb2.DIRECTION_INBOUND,
            period_start=_stamp(2**61),
            period_end=_stamp(2**61 + 86_400),
            case_reference="HX-2",
            reason="out of range",
        ),
    ),
]


@pytest.mark.parametrize(
    ("service", "method", "who", "request_message"),
    KNOWN_HOSTILE,
    ids=[f"{s}.{m}" for s, m, _w, _r in KNOWN_HOSTILE],
)
def test_known_hostile_requests_are_invalid_arguments(
    world: World, service: str, method: str, who: str, request_message: Message
) -> None:
    before = world.counts()
    outcome = raw_call(
        world, callers(world)[who], _path(service, method), request_message.SerializeToString()
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, outcome
    assert world.counts() == before


@pytest.mark.parametrize("method", METHODS, ids=path_of)
def test_bytes_that_do_not_parse_are_invalid_arguments(
    world: World, method: MethodDescriptor
) -> None:
    """Truncated, corrupt or too deeply nested bytes: INVALID_ARGUMENT, never grpc's UNKNOWN."""
    caller = callers(world)[(allowed_callers(path_of(method)) or ["anonymous"])[0]]
    for payload in (b"\xff", b"\x0a\x05ab", fuzzing.nested_groups(1000, 101)):
        outcome = raw_call(world, caller, method, payload)
        assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (path_of(method), outcome)
