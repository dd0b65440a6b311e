"""A witness of the gateway's log: the newest head seen, each new head checked, countersigned.

SPEC P13; docs/transparency-log.md, "Witnesses".

Institution terminals (clients/terminal/witness.py) and auditors (``sealpost audit
witness``) run this same witness with their own key and state file. For each head:

1. the head's signature is checked against the log key record, which is checked against
   the pinned directory key (``GatewayLog.verify_head``);
2. the head is compared with the newest head in the state file: a larger head must be
   proven consistent with it (RFC 9162 consistency proof from the gateway, verified
   here), a head of the same size must have the same root, a smaller head must be a
   prefix of it (``crypto.cosignature.check_successor``). Anything else is a fork
   (``ForkError``). When the gateway can no longer prove the stored head, or offers a
   smaller head as its newest, its log was rolled back (``RollbackError``). Both are
   raised, never swallowed, and the state file keeps the old head, so every later
   check refuses too until people have looked;
3. a newer head replaces the stored one (written atomically, owner-only, under a lock
   so that the intake loop and the delivery desk may share one state file), and is
   cosigned and handed to the gateway (``SubmitCosignature``). The gateway may refuse
   to publish it; that does not change what the witness has seen.

Errors of this module:

    SealpostError
    └── WitnessError
        └── WitnessStateError       the state file or a head file cannot be used

A head that does not verify raises ``sealpost.crypto.errors.CryptoError``; a fork or a
rollback its subclasses ``ForkError`` and ``RollbackError``; the gateway's refusals
``sealpost.clients._grpc.ClientError``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import grpc
from google.protobuf.message import DecodeError

from sealpost._internal.files import locked, write_atomic
from sealpost.clients._grpc import ClientError
from sealpost.crypto import cosignature as crypto_cosignature
from sealpost.crypto import keyrecords, logentry
from sealpost.crypto.cosignature import DEFAULT_CLOCK_LEEWAY_MS, Successor, check_successor
from sealpost.crypto.errors import ProofError, RollbackError
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.crypto.logentry import VerifiedTreeHead
from sealpost.errors import SealpostError
from sealpost.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    keys_pb2,
    log_pb2,
    relative_pb2,
    relative_pb2_grpc,
)

#: The JSON document a witness keeps its newest head in.
STATE_FORMAT: Final = "sealpost-witness-state"
STATE_VERSION: Final = 1
#: A signed tree head on its own, as ``sealpost audit verify --since-head`` reads it.
HEAD_FORMAT: Final = "sealpost-signed-tree-head"
HEAD_VERSION: Final = 1
#: Formats whose ``signed_tree_head`` a head reader accepts (the audit state adds its own).
HEAD_BEARING_FORMATS: Final = frozenset({STATE_FORMAT, HEAD_FORMAT})
#: gRPC codes with which the gateway says it cannot prove a head of the size asked for.
_CANNOT_PROVE: Final = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND})


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


class WitnessError(SealpostError):
    """Base of the witness's own errors."""


class WitnessStateError(WitnessError):
    """The witness state file, or a head file, is damaged or of an unknown format."""


# --------------------------------------------------------------------------- head documents


def head_document(
    head: log_pb2.SignedTreeHead, verified: VerifiedTreeHead, *, kind: str = HEAD_FORMAT
) -> dict[str, Any]:
    """A signed head as JSON: the signed bytes (base64) and, for people, what they say."""
    return {
        "format": kind,
        "version": HEAD_VERSION if kind == HEAD_FORMAT else STATE_VERSION,
        "signed_tree_head": base64.b64encode(head.SerializeToString(deterministic=True)).decode(),
        "tree_size": verified.tree_size,
        "root_hash": verified.root_hash.hex(),
        "timestamp_ms": verified.timestamp_ms,
        "log_key_id": verified.log_key_id.hex(),
    }


def parse_head(
    raw: bytes, *, formats: frozenset[str] = HEAD_BEARING_FORMATS
) -> log_pb2.SignedTreeHead:
    """A signed tree head from a head file: JSON with ``signed_tree_head``, or binary.

    JSON documents of the ``formats`` given are read (a head file, a witness state file,
    an audit state file); anything else is taken as the deterministic protobuf bytes of
    a SignedTreeHead. The head is not verified here. The plain fields of a JSON
    document, when present, must agree with the signed bytes.
    """
    if raw.lstrip()[:1] == b"{":
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WitnessStateError("not a signed tree head (JSON that does not parse)") from exc
        if not isinstance(document, dict) or document.get("format") not in formats:
            raise WitnessStateError(
                f"not a signed tree head (format is not one of {sorted(formats)})"
            )
        head = _decode_head(document.get("signed_tree_head"))
        _check_plain_fields(document, head)
        return head
    try:
        head = log_pb2.SignedTreeHead.FromString(raw)
    except DecodeError as exc:
        raise WitnessStateError("not a signed tree head (neither JSON nor protobuf)") from exc
    if not head.tree_head or not head.signature:
        raise WitnessStateError("not a signed tree head (no tree head or signature)")
    return head


def _decode_head(value: object) -> log_pb2.SignedTreeHead:
    if not isinstance(value, str):
        raise WitnessStateError("the document carries no signed_tree_head")
    try:
        head = log_pb2.SignedTreeHead.FromString(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, DecodeError) as exc:
        raise WitnessStateError("signed_tree_head is not a base64 SignedTreeHead") from exc
    if not head.tree_head or not head.signature:
        raise WitnessStateError("signed_tree_head has no tree head or signature")
    return head


def _check_plain_fields(document: dict[str, Any], head: log_pb2.SignedTreeHead) -> None:
    try:
        signed = log_pb2.TreeHead.FromString(head.tree_head)
    except DecodeError as exc:
        raise WitnessStateError("signed_tree_head holds no TreeHead") from exc
    expected = {
        "tree_size": signed.tree_size,
        "root_hash": signed.root_hash.hex(),
        "timestamp_ms": signed.timestamp_ms,
        "log_key_id": signed.log_key_id.hex(),
    }
    for name, value in expected.items():
        if name in document and document[name] != value:
            raise WitnessStateError(f"the document's {name} differs from its signed tree head")


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class WitnessState:
    """The newest head a witness has seen and checked, and when it last cosigned."""

    head: log_pb2.SignedTreeHead
    #: When the witness cosigned ``head`` (0 until it did).
    cosigned_at_ms: int = 0
    updated_at_ms: int = 0


class WitnessStore(Protocol):
    """Where a witness keeps its newest head (a file beside the profile; memory in tests)."""

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Keep other processes sharing the store out while a head is checked and stored."""
        ...

    def load(self) -> WitnessState | None:
        """The stored state, or None before the first head."""
        ...

    def save(self, state: WitnessState) -> None:
        """Persist ``state`` durably before returning."""
        ...


class MemoryWitnessStore:
    """A WitnessStore in memory."""

    def __init__(self, state: WitnessState | None = None) -> None:
        """Start from ``state`` (none by default)."""
        self.state = state

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Nothing to lock in one process."""
        yield

    def load(self) -> WitnessState | None:
        """The stored state."""
        return self.state

    def save(self, state: WitnessState) -> None:
        """Keep it."""
        self.state = state


class FileWitnessStore:
    """The witness state as JSON (owner-only, replaced atomically), with a lock file beside it."""

    def __init__(self, path: Path) -> None:
        """Store at ``path``; the lock is ``path`` with ``.lock`` appended."""
        self.path = path

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """An exclusive lock shared by every process using this state file."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return locked(self.path.with_name(self.path.name + ".lock"))

    def load(self) -> WitnessState | None:
        """The saved state; None when there is none yet."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise WitnessStateError(f"cannot read {self.path}: {exc.strerror}") from exc
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WitnessStateError(f"{self.path} is not witness state") from exc
        if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
            raise WitnessStateError(f"{self.path} is not witness state")
        version = document.get("version")
        if version != STATE_VERSION:
            raise WitnessStateError(f"{self.path}: witness state version {version!r} is not read")
        head = _decode_head(document.get("signed_tree_head"))
        _check_plain_fields(document, head)
        numbers = [document.get("cosigned_at_ms"), document.get("updated_at_ms")]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
            raise WitnessStateError(f"{self.path}: times are not whole numbers")
        return WitnessState(head, int(document["cosigned_at_ms"]), int(document["updated_at_ms"]))

    def save(self, state: WitnessState) -> None:
        """Write the state atomically, readable by its owner only."""
        signed = log_pb2.TreeHead.FromString(state.head.tree_head)
        verified = VerifiedTreeHead(
            signed.version,
            signed.tree_size,
            signed.root_hash,
            signed.timestamp_ms,
            signed.log_key_id,
        )
        document = head_document(state.head, verified, kind=STATE_FORMAT)
        document["cosigned_at_ms"] = state.cosigned_at_ms
        document["updated_at_ms"] = state.updated_at_ms
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))


# --------------------------------------------------------------------------- the gateway


class WitnessLog(Protocol):
    """The log as a witness sees it: heads, proofs, and a place to hand cosignatures in."""

    def newest_head(self) -> log_pb2.SignedTreeHead:
        """The newest signed head the gateway stores."""
        ...

    def consistency_proof(self, first: int, second: int) -> log_pb2.ConsistencyProof:
        """RFC 9162 proof from size ``first`` to ``second``; ClientError if it cannot."""
        ...

    def verify_head(self, head: log_pb2.SignedTreeHead) -> VerifiedTreeHead:
        """The head checked against the log key record the pinned directory vouches for."""
        ...

    def submit(self, head: log_pb2.SignedTreeHead, cosignature: log_pb2.Cosignature) -> int:
        """Hand a cosignature in; the largest size this witness has cosigned at the gateway."""
        ...


@dataclass
class GatewayLog:
    """WitnessLog over gRPC: AuditService for heads, proofs and cosignatures.

    ``channel`` gives the channel to use (a terminal's mutual-TLS one, or a staff TLS
    channel); ``metadata`` carries a staff member's bearer token, if any.
    """

    channel: Callable[[], grpc.Channel]
    pin: DirectoryPin
    metadata: Sequence[tuple[str, str]] = ()
    timeout: float = 30.0
    clock: Callable[[], int] = wall_clock_ms
    _log_keys: dict[bytes, VerifiedKey] = field(default_factory=dict, repr=False)

    def _call(self, stub: Any, method: str, request: object) -> Any:
        try:
            return getattr(stub, method)(
                request, metadata=tuple(self.metadata), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise ClientError.of(exc) from exc

    def _audit(self, method: str, request: object) -> Any:
        return self._call(audit_pb2_grpc.AuditServiceStub(self.channel()), method, request)

    def newest_head(self) -> log_pb2.SignedTreeHead:
        """GetTreeHead: the newest stored head (never a fresh one: that is the gateway's job)."""
        reply: audit_pb2.GetTreeHeadResponse = self._audit(
            "GetTreeHead", audit_pb2.GetTreeHeadRequest()
        )
        return reply.tree_head

    def consistency_proof(self, first: int, second: int) -> log_pb2.ConsistencyProof:
        """GetConsistencyProof."""
        reply: audit_pb2.GetConsistencyProofResponse = self._audit(
            "GetConsistencyProof",
            audit_pb2.GetConsistencyProofRequest(first_size=first, second_size=second),
        )
        return reply.proof

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> log_pb2.InclusionProof:
        """GetInclusionProof."""
        reply: audit_pb2.GetInclusionProofResponse = self._audit(
            "GetInclusionProof",
            audit_pb2.GetInclusionProofRequest(leaf_index=leaf_index, tree_size=tree_size),
        )
        return reply.proof

    def submit(self, head: log_pb2.SignedTreeHead, cosignature: log_pb2.Cosignature) -> int:
        """SubmitCosignature."""
        reply: audit_pb2.SubmitCosignatureResponse = self._audit(
            "SubmitCosignature",
            audit_pb2.SubmitCosignatureRequest(tree_head=head, cosignature=cosignature),
        )
        return int(reply.witness_tree_size)

    def verify_head(self, head: log_pb2.SignedTreeHead) -> VerifiedTreeHead:
        """Check ``head`` against its log key record, verified against the pinned directory.

        The record must have been valid, and not revoked, when the head was signed.
        """
        try:
            key_id = log_pb2.TreeHead.FromString(head.tree_head).log_key_id
        except DecodeError:
            key_id = b""
        log_key = self._log_keys.get(key_id)
        if log_key is None:
            log_key = self._fetch_log_key(key_id, head)
        verified = logentry.verify_tree_head(head, log_key.signing_key, log_key.id)
        if not log_key.valid_at(verified.timestamp_ms):
            raise ProofError("the tree head was signed outside the log key's validity")
        return verified

    def _fetch_log_key(self, key_id: bytes, head: log_pb2.SignedTreeHead) -> VerifiedKey:
        relative = relative_pb2_grpc.RelativeServiceStub(self.channel())
        reply: relative_pb2.GetDirectoryResponse = self._call(
            relative, "GetDirectory", relative_pb2.GetDirectoryRequest()
        )
        revocations = list(reply.revocations)
        directory = keyrecords.verify_directory_record(
            reply.directory_key,
            self.pin,
            now_ms=self.clock(),
            revocations=revocations,
            successions=reply.successions,
        )
        candidates = [reply.log_key]
        if keyrecords.key_record_id(reply.log_key.body) != key_id and key_id:
            found: relative_pb2.GetKeyRecordsResponse = self._call(
                relative, "GetKeyRecords", relative_pb2.GetKeyRecordsRequest(key_ids=[key_id])
            )
            candidates = list(found.key_records)
        timestamp = _claimed_timestamp(head)
        for record in candidates:
            if not hmac.compare_digest(keyrecords.key_record_id(record.body), key_id):
                continue
            verified = keyrecords.verify_key_record(
                record,
                directory,
                now_ms=timestamp,
                revocations=revocations,
                purpose=keys_pb2.KEY_PURPOSE_LOG,
            )
            self._log_keys[key_id] = verified
            return verified
        raise ProofError("the tree head names a log key the gateway's directory does not publish")


def _claimed_timestamp(head: log_pb2.SignedTreeHead) -> int:
    try:
        return max(0, log_pb2.TreeHead.FromString(head.tree_head).timestamp_ms)
    except DecodeError:
        return 0


# --------------------------------------------------------------------------- the witness


@dataclass(frozen=True)
class WitnessKey:
    """The key a witness cosigns with: its key id and Ed25519 seed (repr shows the id only)."""

    key_id: bytes
    seed: bytes = field(repr=False)


@dataclass(frozen=True)
class Observation:
    """What one look at a head found: the head, how it relates, and the cosignature."""

    head: VerifiedTreeHead
    #: None for the first head the witness ever sees (trusted on first use).
    relation: Successor | None
    #: True when the head became the witness's newest head.
    stored: bool
    #: True when the gateway took the cosignature (or had it, or has a newer one).
    cosigned: bool = False
    #: Why handing the cosignature in failed, if it did ("UNAVAILABLE: ...").
    submit_error: str | None = None


class Witness:
    """A witness of one gateway's log. ``observe`` any head; ``witness`` the newest one.

    ``observe(signed_head) -> VerifiedTreeHead`` is the entry point for the rest of a
    program (the terminal's delivery desk checks the head that proves each release with
    it): it returns the verified head when it belongs to the one history this witness
    has seen, and raises otherwise. It never trusts a head the gateway merely stores.
    """

    def __init__(
        self,
        log: WitnessLog,
        store: WitnessStore,
        key: WitnessKey | None,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        clock_leeway_ms: int = DEFAULT_CLOCK_LEEWAY_MS,
    ) -> None:
        """Check heads from ``log``, keep the newest in ``store``, cosign with ``key``.

        Without ``key`` the witness checks and keeps heads but cosigns nothing.
        """
        self.log = log
        self.store = store
        self.key = key
        self._clock = clock
        self._clock_leeway_ms = clock_leeway_ms
        #: Cosignatures the gateway took during this process's life.
        self.cosigned = 0

    @property
    def newest(self) -> VerifiedTreeHead | None:
        """The newest head seen so far, as stored (its signature was checked when stored)."""
        state = self.store.load()
        if state is None:
            return None
        head = log_pb2.TreeHead.FromString(state.head.tree_head)
        return VerifiedTreeHead(
            head.version, head.tree_size, head.root_hash, head.timestamp_ms, head.log_key_id
        )

    def observe(self, signed_head: log_pb2.SignedTreeHead) -> VerifiedTreeHead:
        """Check ``signed_head`` against the newest head seen; keep and cosign it if newer.

        Returns the verified head when it is of the one history this witness has seen: a
        newer head (then stored and cosigned), the same tree, or an older head that the
        newest extends (neither stored nor cosigned). Raises CryptoError when the head
        does not verify, ForkError when it cannot be of the same history, RollbackError
        when the gateway can no longer prove the newest head seen, and ClientError when
        the gateway cannot be asked for a proof.
        """
        return self.check(signed_head).head

    def witness(self) -> Observation:
        """Fetch the gateway's newest head and observe it: the periodic round of a witness.

        A newest head smaller than one seen before is a rollback (RollbackError), even if
        it is a prefix of it: the gateway signs only ever larger heads.
        """
        return self.check(self.log.newest_head(), newest=True)

    def check(self, signed_head: log_pb2.SignedTreeHead, *, newest: bool = False) -> Observation:
        """``observe`` with the whole outcome; ``newest`` when the gateway calls it its newest."""
        verified = self.log.verify_head(signed_head)
        with self.store.locked():
            state = self.store.load()
            if state is None:
                relation: Successor | None = None
            else:
                relation = self._relate(state, verified)
                if relation is Successor.OLDER and newest:
                    raise RollbackError(
                        f"the gateway's newest tree head has size {verified.tree_size}, but it "
                        f"showed a head of size {self._size(state)} before: its log was rolled back"
                    )
            store = relation in (None, Successor.NEWER) or (
                relation is Successor.SAME and self._later(state, verified)
            )
            if store:
                self.store.save(WitnessState(signed_head, 0, self._clock()))
        if not store:
            return Observation(verified, relation, stored=False)
        return self._cosign(signed_head, verified, relation)

    @staticmethod
    def _size(state: WitnessState) -> int:
        return int(log_pb2.TreeHead.FromString(state.head.tree_head).tree_size)

    @staticmethod
    def _later(state: WitnessState | None, head: VerifiedTreeHead) -> bool:
        if state is None:
            return True
        stored = log_pb2.TreeHead.FromString(state.head.tree_head)
        return head.timestamp_ms > stored.timestamp_ms

    def _relate(self, state: WitnessState, head: VerifiedTreeHead) -> Successor:
        stored = log_pb2.TreeHead.FromString(state.head.tree_head)
        newest = VerifiedTreeHead(
            stored.version,
            stored.tree_size,
            stored.root_hash,
            stored.timestamp_ms,
            stored.log_key_id,
        )
        proof = None
        if head.tree_size != newest.tree_size:
            small, large = sorted((head.tree_size, newest.tree_size))
            try:
                proof = self.log.consistency_proof(small, large)
            except ClientError as exc:
                if exc.code not in _CANNOT_PROVE:
                    raise
                if large == newest.tree_size:
                    raise RollbackError(
                        f"the gateway cannot prove the tree head of size {large} it showed "
                        f"before ({exc.message}): its log was rolled back"
                    ) from exc
                raise ProofError(
                    f"the gateway cannot prove its own tree head of size {large}: {exc.message}"
                ) from exc
        return check_successor(newest, head, proof, clock_leeway_ms=self._clock_leeway_ms)

    def _cosign(
        self,
        signed_head: log_pb2.SignedTreeHead,
        verified: VerifiedTreeHead,
        relation: Successor | None,
    ) -> Observation:
        if self.key is None:
            return Observation(verified, relation, stored=True)
        now = self._clock()
        cosignature = crypto_cosignature.cosign(
            signed_head.tree_head,
            witness_key_id=self.key.key_id,
            cosigned_at_ms=now,
            seed=self.key.seed,
        )
        try:
            self.log.submit(signed_head, cosignature)
        except ClientError as exc:
            # ALREADY_EXISTS: the gateway has this very cosignature (an earlier try). Any
            # other refusal changes nothing the witness has seen; it is reported, and the
            # next newer head is cosigned afresh.
            if exc.code != grpc.StatusCode.ALREADY_EXISTS:
                return Observation(
                    verified, relation, stored=True, submit_error=f"{exc.code.name}: {exc.message}"
                )
        self.cosigned += 1
        with self.store.locked():
            state = self.store.load()
            if state is not None and state.head == signed_head:
                self.store.save(WitnessState(signed_head, now, self._clock()))
        return Observation(verified, relation, stored=True, cosigned=True)
