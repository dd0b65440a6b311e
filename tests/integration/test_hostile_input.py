"""Hostile input at the running gateway (SPEC P10, P8, P11): every RPC fuzzed with random and
mutated request bytes; the hostile requests the fuzzing found, once each; oversized and
malformed messages; stale, revoked and mismatched key records; a revoked device's session;
and credentials of one institution aimed at another's detainees and messages.

Every refusal must be a clean gRPC status (never UNKNOWN or INTERNAL), leave every table as
it was, and leave the gateway serving. One gateway per database serves the whole module;
tests that revoke something use objects of their own. Example counts: tests/fuzzing.py.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
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
from sealpost.crypto import auth as crypto_auth
from sealpost.crypto import keyrecords as kr
from sealpost.crypto.envelope import Part, seal_envelope, sign_envelope
from sealpost.crypto.keyrecords import VerifiedKey
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.limits import DEFAULT_LIMITS, MIB, Limits
from sealpost.escrow.bootstrap import BootstrapResult
from sealpost.gateway.authz import RULES, Target
from sealpost.gateway.principals import Role
from sealpost.gateway.server import MAX_MESSAGE_BYTES
from sealpost.gateway.services.context import wall_clock_ms
from sealpost.gateway.storage.schema import metadata
from sealpost.v1 import (
    admin_pb2,
    audit_pb2,
    common_pb2,
    envelope_pb2,
    relative_pb2,
    relative_pb2_grpc,
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
        """Rows in every table of the gateway's database (one query).

        Except ``tree_heads``: the gateway signs a head on its own within seconds whenever
        the log has grown (SPEC P13), so a head may appear during any call, after an
        earlier call that was taken.
        """
        query = sa.select(
            *(
                sa.select(sa.func.count()).select_from(table).scalar_subquery().label(name)
                for name, table in metadata.tables.items()
                if name != "tree_heads"
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
        "escrow-auditor": Caller(
            "escrow-auditor", "public", bearer(world.tokens["escrow-auditor"])
        ),
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
    Role.ESCROW_AUDITOR: "escrow-auditor",
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
        world = _populate(stack, engine)
        try:
            yield world
        finally:
            if "public" in world.channels:  # terminal channels belong to their clients
                world.channels["public"].close()
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
        "escrow-auditor": stack.staff_token(["escrow-auditor"], ["*"])[1],
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


def log_size(world: World) -> int:
    """Bytes in the gateway's log so far."""
    return world.stack.gateway.log_file.stat().st_size


def assert_serving(world: World, log_from: int) -> None:
    """The gateway process is alive, healthy, and logged no bug since ``log_from``."""
    gateway = world.stack.gateway
    assert gateway.process.poll() is None, "the gateway process died"
    assert gateway_health(gateway.address, gateway.ca_pem) == "SERVING"
    with gateway.log_file.open("rb") as log:
        log.seek(log_from)
        assert b'"rpc.bug"' not in log.read()


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
    log_from = log_size(world)

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
    assert_serving(world, log_from)


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
    # Enum filters beyond the SMALLINT their column is (proto3 enums are open).
    (
        "ReviewService",
        "ListRetrospectiveRequests",
        "officer",
        review_pb2.ListRetrospectiveRequestsRequest(status=32768),  # type: ignore[arg-type]
    ),
    (
        "AdminService",
        "ListContactRequests",
        "officer",
        admin_pb2.ListContactRequestsRequest(status=40000),  # type: ignore[arg-type]
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


# --- Oversized messages ---

BIG_LIMITS: Final = Limits(
    max_parts=400,
    max_part_bytes=40 * MIB,
    max_total_bytes=40 * MIB,
    max_recipients=64,
    max_header_bytes=4 * MIB,
)
TEXT: Final = "text/plain; charset=utf-8"


def _as(relative: RelativeClient) -> Caller:
    return Caller("relative", "public", bearer(relative.token))


def _send(world: World, relative: RelativeClient, envelope: envelope_pb2.Envelope) -> Outcome:
    request = relative_pb2.SendMessageRequest(envelope=envelope)
    send = _path("RelativeService", "SendMessage")
    return raw_call(world, _as(relative), send, request.SerializeToString())


def _mailbox(relative: RelativeClient, detainee: str) -> VerifiedKey:
    mailbox = relative.contact(detainee).mailbox
    assert mailbox is not None
    return mailbox


def _sealed(
    relative: RelativeClient,
    parts: Sequence[Part],
    recipients: Sequence[VerifiedKey],
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> envelope_pb2.Envelope:
    return seal_envelope(
        list(parts),
        sender_keys=relative.keys,
        sender_key_id=relative.key_id,
        recipients=list(recipients),
        now_ms=wall_clock_ms(),
        limits=limits,
    )


def _resigned(
    relative: RelativeClient,
    envelope: envelope_pb2.Envelope,
    change: Callable[[envelope_pb2.EnvelopeHeader], None],
) -> envelope_pb2.Envelope:
    """The envelope with its header changed, signed again by the real sender."""
    header = envelope_pb2.EnvelopeHeader.FromString(envelope.header)
    change(header)
    return sign_envelope(
        header.SerializeToString(deterministic=True),
        list(envelope.part_ciphertexts),
        list(envelope.sealed_keys),
        relative.keys,
    )


def _stranger_key() -> VerifiedKey:
    """A message key nobody registered (what a forged or guessed record would name)."""
    keys = PrivateKeys.generate()
    return VerifiedKey(
        id=secrets.token_bytes(32),
        purpose=kr.MAILBOX,
        subject="nobody",
        encryption_key=keys.encryption_key,
        signing_key=keys.signing_key,
        not_before=0,
        not_after=2**40,
        issuer_key_id=secrets.token_bytes(32),
    )


OVER_LIMITS: Final[dict[str, Callable[[], list[Part]]]] = {
    "a part over 16 MiB": lambda: [Part(TEXT, bytes(16 * MIB))],
    "parts over 25 MiB together": lambda: [Part(TEXT, bytes(int(12.6 * MIB)))] * 2,
    "21 parts": lambda: [Part(TEXT, b"x")] * 21,
    "a header over 64 KiB": lambda: [Part("x" * 250, b"x")] * 300,
}


@pytest.mark.parametrize("case", list(OVER_LIMITS))
def test_envelopes_over_the_limits_are_refused(world: World, case: str) -> None:
    """Correctly signed, but beyond the envelope limits (docs/protocol.md, "Limits")."""
    mailbox = _mailbox(world.relative, D_A)
    envelope = _sealed(world.relative, OVER_LIMITS[case](), [mailbox], limits=BIG_LIMITS)
    before = world.counts()
    outcome = _send(world, world.relative, envelope)
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, outcome
    assert "larger than" in outcome.details or "more than" in outcome.details
    assert world.counts() == before


def test_too_many_recipients_and_stale_or_future_dates_are_refused(world: World) -> None:
    relative = world.relative
    mailbox = _mailbox(relative, D_A)
    crowded = _sealed(
        relative,
        [Part(TEXT, b"x")],
        [mailbox, *(_stranger_key() for _ in range(16))],
        limits=BIG_LIMITS,
    )
    base = _sealed(relative, [Part(TEXT, b"x")], [mailbox])
    week = 8 * 24 * 3600 * 1000

    def dated(offset_ms: int) -> Callable[[envelope_pb2.EnvelopeHeader], None]:
        def change(header: envelope_pb2.EnvelopeHeader) -> None:
            header.created_at_ms += offset_ms

        return change

    before = world.counts()
    for envelope in (
        crowded,
        _resigned(relative, base, dated(-week)),
        _resigned(relative, base, dated(10 * 60 * 1000)),
    ):
        outcome = _send(world, relative, envelope)
        assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, outcome
    assert world.counts() == before


HEADER_FIELDS: Final = [f.number for f in envelope_pb2.EnvelopeHeader.DESCRIPTOR.fields]
ENVELOPE_FIELDS: Final = [f.number for f in envelope_pb2.Envelope.DESCRIPTOR.fields]


def test_tampered_sends_are_refused_whole_or_stored_whole(world: World) -> None:
    """The send path with mutated envelopes, some signed again by the real sender so that they
    reach the checks past the signature: a refusal stores nothing, an acceptance stores one
    message and one log entry (the gateway cannot see inside; the terminal judges the rest)."""
    relative = world.relative
    mailbox = _mailbox(relative, D_A)
    send = _path("RelativeService", "SendMessage")
    seen: set[grpc.StatusCode] = set()

    @fuzzing.fuzz_settings(25)
    @given(data=st.data(), resign=st.booleans())
    def check(data: st.DataObject, resign: bool) -> None:
        base = _sealed(relative, [Part(TEXT, b"tampered")], [mailbox])
        if resign:
            header = data.draw(fuzzing.mutated(base.header, HEADER_FIELDS), label="header")
            envelope = sign_envelope(
                header, list(base.part_ciphertexts), list(base.sealed_keys), relative.keys
            )
            wire = envelope.SerializeToString()
        else:
            wire = data.draw(fuzzing.mutated(base.SerializeToString(), ENVELOPE_FIELDS))
        before = world.counts()
        outcome = raw_call(world, _as(relative), send, fuzzing.field_bytes(1, fuzzing.LEN, wire))
        assert_clean(world, send, wire, outcome)
        seen.add(outcome.code)
        after = world.counts()
        if outcome.code != OK:
            assert after == before, outcome
            return
        assert after["messages"] == before["messages"] + 1
        assert after["log_leaves"] == before["log_leaves"] + 1

    log_from = log_size(world)
    check()
    assert_serving(world, log_from)
    assert {OK, grpc.StatusCode.INVALID_ARGUMENT} <= seen, seen  # both ends were reached


def test_requests_over_the_receive_limit_are_resource_exhausted(world: World) -> None:
    """Larger than the gateway parses at all: refused by grpc before any handler runs."""
    payload = bytes(MAX_MESSAGE_BYTES + 1)
    log_from = log_size(world)
    before = world.counts()
    for caller, method in (
        (_as(world.relative), _path("RelativeService", "SendMessage")),
        (callers(world)["terminal"], _path("TerminalService", "SendReply")),
    ):
        outcome = raw_call(world, caller, method, payload)
        assert outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED, outcome
    assert world.counts() == before
    assert_serving(world, log_from)


# --- Malformed protobufs ---


def _filler(field: FieldDescriptor) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return secrets.token_bytes(32)
    if field.type == FieldDescriptor.TYPE_STRING:
        return "x"
    return 1


def _repeated_cases() -> list[tuple[MethodDescriptor, FieldDescriptor]]:
    return [(m, f) for m in METHODS for f in m.input_type.fields if f.is_repeated]


@pytest.mark.parametrize(
    ("method", "repeated"),
    _repeated_cases(),
    ids=[f"{path_of(m)}.{f.name}" for m, f in _repeated_cases()],
)
def test_thousands_of_repeated_entries_are_answered_cleanly_and_quickly(
    world: World, method: MethodDescriptor, repeated: FieldDescriptor
) -> None:
    request = message_factory.GetMessageClass(method.input_type)()
    target: Any = getattr(request, repeated.name)
    for _ in range(5000):
        if repeated.message_type is not None:
            target.add()
        else:
            target.append(_filler(repeated))
    caller = callers(world)[allowed_callers(path_of(method))[0]]
    before = world.counts()
    started = time.monotonic()
    outcome = raw_call(world, caller, method, request.SerializeToString())
    assert time.monotonic() - started < 10
    assert outcome.code in CLEAN_CODES, outcome
    assert world.counts() == before


def test_envelopes_with_thousands_of_entries_are_refused(world: World) -> None:
    relative = world.relative
    base = _sealed(relative, [Part(TEXT, b"x")], [_mailbox(relative, D_A)])
    keys = list(base.sealed_keys)
    ciphertexts = list(base.part_ciphertexts)
    recipients = [secrets.token_bytes(32) for _ in range(5000)]

    def many_recipients(header: envelope_pb2.EnvelopeHeader) -> None:
        header.recipient_key_ids.extend(recipients)

    forged = [
        sign_envelope(base.header, ciphertexts * 5000, keys, relative.keys),
        sign_envelope(base.header, ciphertexts, keys * 5000, relative.keys),
        _resigned(relative, base, many_recipients),
    ]
    before = world.counts()
    for envelope in forged:
        outcome = _send(world, relative, envelope)
        assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, outcome
    assert world.counts() == before


def test_unknown_fields_are_ignored_in_requests_but_refused_in_signed_envelopes(
    world: World,
) -> None:
    relative = world.relative
    caller = _as(relative)
    unknown = fuzzing.field_bytes(5000, fuzzing.LEN, b"from a newer client")
    # Requests follow proto3: a field this gateway does not know is ignored.
    contacts = raw_call(world, caller, _path("RelativeService", "ListContacts"), unknown)
    assert contacts.code == OK, contacts

    base = _sealed(relative, [Part(TEXT, b"x")], [_mailbox(relative, D_A)])
    wire = base.SerializeToString()
    header_unknown = sign_envelope(
        base.header + unknown, list(base.part_ciphertexts), list(base.sealed_keys), relative.keys
    )
    payloads = {
        "unknown envelope field": wire + unknown,
        "unknown header field, signed": header_unknown.SerializeToString(),
        "header with the wrong wire type": wire + fuzzing.field_bytes(2, fuzzing.VARINT, b"\x07"),
        "nested unknown field": wire + fuzzing.nested_messages(5000, 90),
    }
    send = _path("RelativeService", "SendMessage")
    before = world.counts()
    for name, envelope_bytes in payloads.items():
        request = fuzzing.field_bytes(1, fuzzing.LEN, envelope_bytes)
        outcome = raw_call(world, caller, send, request)
        assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (name, outcome)
    assert world.counts() == before


# --- Stale, revoked and mismatched key records ---


def test_envelopes_to_keys_that_are_not_a_current_mailbox_are_refused(world: World) -> None:
    relative = world.relative
    other = world.stack.relative("Someone Else")
    device = dataclasses.replace(_stranger_key(), id=other.key_id)
    institution = dataclasses.replace(_stranger_key(), id=world.terminals[A].institution_key_id)
    stale = _mailbox(relative, D_STALE)
    world.admin.call(
        "admin",
        "RevokeKey",
        admin_pb2.RevokeKeyRequest(key_id=stale.id, reason="mailbox key compromised"),
    )
    cases = {
        "another relative's device key": (device, grpc.StatusCode.INVALID_ARGUMENT),
        "an institution key": (institution, grpc.StatusCode.INVALID_ARGUMENT),
        "a key nobody registered": (_stranger_key(), grpc.StatusCode.INVALID_ARGUMENT),
        "a revoked mailbox key": (stale, grpc.StatusCode.FAILED_PRECONDITION),
    }
    before = world.counts()
    for name, (recipient, code) in cases.items():
        envelope = _sealed(relative, [Part(TEXT, b"x")], [recipient])
        outcome = _send(world, relative, envelope)
        assert outcome.code == code, (name, outcome)
    assert world.counts() == before


def test_signing_in_with_a_key_of_another_purpose_is_refused(world: World) -> None:
    relative = world.relative
    mailbox = _mailbox(relative, D_A)
    stub = relative_pb2_grpc.RelativeServiceStub(world.channel("public"))
    for key_id in (mailbox.id, world.terminals[A].institution_key_id):
        challenge = stub.CreateChallenge(
            relative_pb2.CreateChallengeRequest(key_id=key_id), timeout=10
        ).challenge
        login = relative_pb2.LoginRequest(
            key_id=key_id,
            challenge=challenge,
            signature=crypto_auth.sign_login(relative.keys, key_id=key_id, challenge=challenge),
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub.Login(login, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_session_of_a_revoked_device_is_refused_at_once(world: World) -> None:
    relative = world.stack.relative("Lost Phone")
    relative.request_contact(D_A)
    approve_all(world.admin, A)
    sealed = relative.seal(D_A, "sent after the phone was lost")
    token = relative.token
    world.admin.call(
        "admin",
        "RevokeKey",
        admin_pb2.RevokeKeyRequest(key_id=relative.key_id, reason="phone lost"),
    )
    stub = relative_pb2_grpc.RelativeServiceStub(world.channel("public"))
    before = world.counts()
    calls: list[Callable[[], object]] = [
        lambda: stub.SendMessage(sealed, metadata=bearer(token), timeout=10),
        lambda: stub.ListContacts(
            relative_pb2.ListContactsRequest(), metadata=bearer(token), timeout=10
        ),
        lambda: list(
            stub.StreamInbox(relative_pb2.StreamInboxRequest(), metadata=bearer(token), timeout=10)
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "revoked" in (refused.value.details() or "")
    # Nor can the revoked key sign in again.
    challenge = stub.CreateChallenge(
        relative_pb2.CreateChallengeRequest(key_id=relative.key_id), timeout=10
    ).challenge
    with pytest.raises(grpc.RpcError) as login:
        stub.Login(
            relative_pb2.LoginRequest(
                key_id=relative.key_id,
                challenge=challenge,
                signature=crypto_auth.sign_login(
                    relative.keys, key_id=relative.key_id, challenge=challenge
                ),
            ),
            timeout=10,
        )
    assert login.value.code() == grpc.StatusCode.UNAUTHENTICATED
    after = world.counts()
    # A revoked key gets an answer, but no challenge is kept for it: nothing was written.
    assert after == before


# --- Credentials of one institution on another's detainees and messages (SPEC P11) ---


def _aimed_at_a(world: World, method: MethodDescriptor, target: Target) -> Message:
    """A request of ``method`` naming institution A's object that ``target`` resolves."""
    request = message_factory.GetMessageClass(method.input_type)()
    fields: dict[Target, dict[str, Any]] = {
        Target.INSTITUTION: {"institution_id": A},
        Target.DETAINEE: {"detainee_id": D_A},
        Target.DETAINEE_OPTIONAL: {"detainee_id": D_A},
        Target.TRANSFER: {"detainee_id": D_A, "to_institution_id": B},
        Target.MESSAGE: {"message_id": world.message_id},
        Target.CONTACT: {"contact_id": world.contact_id},
        Target.ORDER: {"order_id": world.order_id},
        Target.TERMINAL: {"terminal_id": world.terminals[A].terminal_id},  # type: ignore[attr-defined]
        Target.RETROSPECTIVE: {"request_id": world.retrospective_id},
        Target.HANDOVER: {"detainee_id": D_MOVED},
    }
    if "[]." in target.value:  # a batch: "submissions[].message_id", "messages[].message_id"
        repeated, _, name = target.value.partition("[].")
        getattr(request, repeated).add(**{name: world.message_id})
    for name, value in fields.get(target, {}).items():
        setattr(request, name, value)
    return request


#: Targets that name one institution's object in the request.
SCOPED: Final = frozenset(Target) - {Target.NONE, Target.OWN, Target.NATIONAL}


def _foreign_cases() -> list[tuple[MethodDescriptor, str]]:
    cases = []
    for method in METHODS:
        rule = RULES[path_of(method)]
        if rule.target not in SCOPED:
            continue
        if Role.TERMINAL in rule.roles:
            cases.append((method, "terminal-b"))
        if rule.roles & {Role.SCREENER, Role.APPROVER, Role.ADMINISTRATOR}:
            cases.append((method, "officer-b"))
        if Role.AUDITOR in rule.roles:
            cases.append((method, "auditor-b"))
    return cases


@pytest.mark.parametrize(
    ("method", "who"),
    _foreign_cases(),
    ids=[f"{path_of(m)}-{w}" for m, w in _foreign_cases()],
)
def test_another_institutions_objects_are_out_of_reach(
    world: World, method: MethodDescriptor, who: str
) -> None:
    """A terminal certificate or staff token of B, aimed at A's detainee, message, contact,
    order, terminal, retrospective request or handover: PERMISSION_DENIED, nothing changed."""
    request = _aimed_at_a(world, method, RULES[path_of(method)].target)
    before = world.counts()
    outcome = raw_call(world, callers(world)[who], method, request.SerializeToString())
    assert outcome.code == grpc.StatusCode.PERMISSION_DENIED, (path_of(method), outcome)
    assert world.counts() == before


def test_every_scoped_method_is_tried_from_another_institution() -> None:
    tried = {path_of(m) for m, _who in _foreign_cases()}
    scoped = {path for path, rule in RULES.items() if rule.target in SCOPED}
    assert tried == scoped


def test_health_and_reflection_answer_garbage_cleanly(world: World) -> None:
    """Outside the API, but open to anyone on the public port."""
    channel = world.channel("public")
    reflection: grpc.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    )
    health: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        "/grpc.health.v1.Health/Check"
    )
    for call in (
        lambda: list(reflection(iter([b"\xff"]), timeout=10)),
        lambda: health(fuzzing.nested_groups(1, 101), timeout=10),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
