"""Typed clients for the escrow key in OpenBao or Vault transit (spec section 3, steps 3, 5 and 8).

``EscrowClient`` is what terminals (escrow, encrypt-only tokens) and the review
tool (decrypt, with the screener's own token) use; ``KeyAdminClient`` is for the
key administrator (rotation, auto-rotation, retention). Least privilege is the
key server's job: each token's policy allows exactly its operations, and a
refusal surfaces as ``PermissionDeniedError``. Data keys, tokens and ciphertexts are
never logged.
"""

from __future__ import annotations

import base64
import binascii
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import TracebackType
from typing import Any, Final, Protocol, Self

from sealpost._internal.logs import get_logger
from sealpost.escrow._transport import (
    NO_RETRY,
    Connection,
    KeyServerConfig,
    RetryPolicy,
    data_of,
    get_bool,
    get_int,
    get_str,
)
from sealpost.escrow.actions import ActionJournal, ActionKind, KeyServerAction
from sealpost.escrow.blob import (
    DEK_BYTES,
    EscrowedKey,
    check_message_id,
    ciphertext_key_version,
)
from sealpost.escrow.errors import (
    EscrowBlobError,
    InvalidRequestError,
    KeyServerUnavailableError,
    UnexpectedResponseError,
    batch_item_errors,
    error_for_status,
)

__all__ = [
    "DEFAULT_ESCROW_KEY",
    "DEFAULT_TRANSIT_MOUNT",
    "ESCROW_BATCH_SIZE",
    "DecryptOutcome",
    "EscrowClient",
    "EscrowKeyRef",
    "EscrowedKey",
    "KeyAdminClient",
    "KeyEscrow",
    "KeyInfo",
    "KeyServerConfig",
    "KeyServerHealth",
    "RetryPolicy",
    "health",
]

_log = get_logger("sealpost.escrow")

DEFAULT_TRANSIT_MOUNT: Final = "sealpost-transit"
DEFAULT_ESCROW_KEY: Final = "sealpost-escrow"

#: Items per transit batch request. OpenBao's listener refuses JSON bodies with more
#: than ``max_request_json_strings`` strings (default 1000, keys and values both count);
#: each item carries four (two keys, two values), so 250 items are refused and 200
#: leave headroom for the envelope's own keys.
ESCROW_BATCH_SIZE: Final = 200


@dataclass(frozen=True)
class EscrowKeyRef:
    """Which transit mount and key hold the escrow key."""

    mount: str = DEFAULT_TRANSIT_MOUNT
    name: str = DEFAULT_ESCROW_KEY

    def __str__(self) -> str:
        """The key as the key server names it: ``<mount>/keys/<name>``."""
        return f"{self.mount}/keys/{self.name}"

    @property
    def encrypt_path(self) -> str:
        """API path of encryption with this key."""
        return f"/v1/{self.mount}/encrypt/{self.name}"

    @property
    def decrypt_path(self) -> str:
        """API path of decryption with this key."""
        return f"/v1/{self.mount}/decrypt/{self.name}"

    @property
    def key_path(self) -> str:
        """API path of the key itself."""
        return f"/v1/{self.mount}/keys/{self.name}"


@dataclass(frozen=True)
class KeyServerHealth:
    """``sys/health`` as Sealpost needs it."""

    initialized: bool
    sealed: bool
    standby: bool
    version: str

    @property
    def ready(self) -> bool:
        """Initialised and unsealed: requests can be served."""
        return self.initialized and not self.sealed


@dataclass(frozen=True)
class KeyInfo:
    """The escrow key's versions and configuration (never its material)."""

    name: str
    key_type: str
    derived: bool
    exportable: bool
    allow_plaintext_backup: bool
    deletion_allowed: bool
    latest_version: int
    min_decryption_version: int
    min_encryption_version: int
    #: Versions below this one have been trimmed: gone for good.
    min_available_version: int
    #: Versions that can still decrypt (those at or above min_decryption_version).
    available_versions: tuple[int, ...]
    #: 0 when automatic rotation is off.
    auto_rotate_period: timedelta
    #: When each available version was created, seconds since the epoch (transit reports it
    #: for symmetric keys); retention retires a version once its successor is old enough.
    created_at: tuple[tuple[int, int], ...] = ()

    def created(self, version: int) -> int | None:
        """Creation time of ``version`` in seconds since the epoch, if known."""
        return dict(self.created_at).get(version)

    def retirable_below(self, cutoff_s: int) -> int:
        """The lowest version to keep: every older one was superseded before ``cutoff_s``.

        A version is still needed while messages escrowed under it are inside the
        retention period, which is until its successor was created. The latest
        version is always kept.
        """
        keep = self.min_decryption_version
        for version in self.available_versions:
            successor = self.created(version + 1)
            if version >= self.latest_version or successor is None or successor >= cutoff_s:
                break
            keep = version + 1
        return keep


@dataclass(frozen=True)
class DecryptOutcome:
    """One item of a batch decrypt: the data key, or why the key server refused it."""

    message_id: bytes
    dek: bytes | None = field(repr=False)
    error: InvalidRequestError | None = None

    def dek_or_raise(self) -> bytes:
        """The data key; the item's error if it was refused."""
        if self.dek is None:
            raise self.error or InvalidRequestError("decrypt refused")
        return self.dek


class KeyEscrow(Protocol):
    """What the gateway and clients need from the key server; tests may pass a plain fake."""

    def escrow_batch(self, items: Sequence[tuple[bytes, bytes]]) -> list[EscrowedKey]:
        """Escrow (message id, data key) pairs."""
        ...

    def decrypt(self, message_id: bytes, ciphertext: str) -> bytes:
        """Recover one data key, as the caller's own identity."""
        ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, operation: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise UnexpectedResponseError(f"{operation}: a value is not base64") from None


def _check_dek(dek: bytes) -> None:
    if len(dek) != DEK_BYTES:
        raise InvalidRequestError(f"a data key is {DEK_BYTES} bytes")


def _check_id(message_id: bytes) -> None:
    try:
        check_message_id(message_id)
    except EscrowBlobError as exc:
        raise InvalidRequestError(str(exc)) from None


def _escrowed(message_id: bytes, result: object, operation: str) -> EscrowedKey:
    if not isinstance(result, dict) or result.get("error"):
        raise UnexpectedResponseError(f"{operation}: an item was not encrypted")
    ciphertext = get_str(result, "ciphertext", operation)
    version = get_int(result, "key_version", operation)
    try:
        if ciphertext_key_version(ciphertext) != version:
            raise UnexpectedResponseError(f"{operation}: ciphertext and key version disagree")
        return EscrowedKey(message_id=message_id, ciphertext=ciphertext, key_version=version)
    except EscrowBlobError as exc:
        raise UnexpectedResponseError(f"{operation}: {exc}") from None


def _plaintext_dek(result: dict[str, Any], operation: str) -> bytes:
    dek = _unb64(get_str(result, "plaintext", operation), operation)
    if len(dek) != DEK_BYTES:
        raise UnexpectedResponseError(f"{operation}: the decrypted data key has the wrong size")
    return dek


class _Base:
    def __init__(
        self,
        config: KeyServerConfig,
        token: str,
        *,
        key: EscrowKeyRef,
        retry: RetryPolicy,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rand: Callable[[], float],
    ) -> None:
        if not token:
            raise ValueError("a key-server token is required")
        self.key = key
        self._conn = Connection(config, token, retry=retry, sleep=sleep, clock=clock, rand=rand)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r})"

    def _batch_decrypt(self, operation: str, body: dict[str, Any]) -> Any:
        """The answer to a batch decrypt; one refused in part is an answer, not an error.

        A batch refused in part answers 400 with the other items' plaintexts in the body;
        it is read here, never passed to an exception.
        """

        def send(client: Any) -> Any:
            response = client.adapter.post(self.key.decrypt_path, json=body, raise_exception=False)
            if isinstance(response, dict):
                return response
            status = int(response.status_code)
            try:
                payload = response.json()
            except ValueError:
                payload = None
            if status == 400 and batch_item_errors(payload):
                return payload
            errors = payload.get("errors") if isinstance(payload, dict) else None
            raise error_for_status(operation, status, errors)

        return self._conn.call(operation, send)

    def _post(self, operation: str, path: str, body: dict[str, Any]) -> Any:
        return self._conn.call(operation, lambda c: c.adapter.post(path, json=body))

    def health(self) -> KeyServerHealth:
        """The key server's initialised/sealed state and version (no retries)."""
        return _health(self._conn)

    def close(self) -> None:
        """Close the HTTP session."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EscrowClient(_Base):
    """Escrow data keys (terminal token) and recover them (a screener's own token).

    One client per thread: it holds one HTTP session.
    """

    def __init__(
        self,
        config: KeyServerConfig,
        token: str,
        *,
        key: EscrowKeyRef = EscrowKeyRef(),
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen dataclass, safe default
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(config, token, key=key, retry=retry, sleep=sleep, clock=clock, rand=rand)

    def renew_self(self) -> int:
        """Renew this client's own token (terminal tokens are periodic); its new TTL in seconds.

        A periodic token lives as long as it is renewed within its period; a terminal
        that stops renewing it can no longer escrow, and its intake then fails closed.
        """
        operation = "token renew-self"
        answer = self._conn.call(
            operation, lambda c: c.adapter.post("/v1/auth/token/renew-self", json={})
        )
        auth = answer.get("auth") if isinstance(answer, dict) else None
        ttl = auth.get("lease_duration") if isinstance(auth, dict) else None
        if not isinstance(ttl, int):
            raise UnexpectedResponseError(f"{operation}: no lease duration in the answer")
        return ttl

    def escrow(self, message_id: bytes, dek: bytes) -> EscrowedKey:
        """Escrow one data key under the message's derived key (context = message id)."""
        return self.escrow_batch([(message_id, dek)])[0]

    def escrow_batch(self, items: Sequence[tuple[bytes, bytes]]) -> list[EscrowedKey]:
        """Escrow (message id, data key) pairs in transit batches of ESCROW_BATCH_SIZE.

        All or nothing for the caller: if any batch fails after retries the error is
        raised and earlier results are dropped; escrowing again is harmless.
        """
        for message_id, dek in items:
            _check_id(message_id)
            _check_dek(dek)
        out: list[EscrowedKey] = []
        for start in range(0, len(items), ESCROW_BATCH_SIZE):
            chunk = items[start : start + ESCROW_BATCH_SIZE]
            out.extend(self._escrow_chunk(chunk))
        _log.debug("escrowed", count=len(out), batch_size=ESCROW_BATCH_SIZE)
        return out

    def _escrow_chunk(self, chunk: Sequence[tuple[bytes, bytes]]) -> list[EscrowedKey]:
        operation = "transit batch encrypt"
        body = {
            "batch_input": [{"context": _b64(mid), "plaintext": _b64(dek)} for mid, dek in chunk]
        }
        answer = self._conn.call(
            operation, lambda c: c.adapter.post(self.key.encrypt_path, json=body)
        )
        results = data_of(answer, operation).get("batch_results")
        if not isinstance(results, list) or len(results) != len(chunk):
            raise UnexpectedResponseError(f"{operation}: batch results do not match the request")
        return [
            _escrowed(mid, res, operation) for (mid, _dek), res in zip(chunk, results, strict=True)
        ]

    def decrypt(self, message_id: bytes, ciphertext: str) -> bytes:
        """Recover a data key; the key server refuses a ciphertext made for another message."""
        _check_id(message_id)
        operation = "transit decrypt"
        body = {"ciphertext": ciphertext, "context": _b64(message_id)}
        answer = self._conn.call(
            operation, lambda c: c.adapter.post(self.key.decrypt_path, json=body)
        )
        return _plaintext_dek(data_of(answer, operation), operation)

    def decrypt_escrowed(self, escrowed: EscrowedKey) -> bytes:
        """``decrypt`` for a parsed escrow blob."""
        return self.decrypt(escrowed.message_id, escrowed.ciphertext)

    def decrypt_batch(self, items: Sequence[EscrowedKey]) -> list[DecryptOutcome]:
        """Recover many data keys; refused items come back with their error, not as an exception.

        Errors that concern the whole request (permission, availability) are raised.
        """
        out: list[DecryptOutcome] = []
        for start in range(0, len(items), ESCROW_BATCH_SIZE):
            out.extend(self._decrypt_chunk(items[start : start + ESCROW_BATCH_SIZE]))
        return out

    def _decrypt_chunk(self, chunk: Sequence[EscrowedKey]) -> list[DecryptOutcome]:
        operation = "transit batch decrypt"
        body = {
            "batch_input": [
                {"ciphertext": e.ciphertext, "context": _b64(e.message_id)} for e in chunk
            ]
        }

        answer = self._batch_decrypt(operation, body)
        results = data_of(answer, operation).get("batch_results")
        if not isinstance(results, list) or len(results) != len(chunk):
            raise UnexpectedResponseError(f"{operation}: batch results do not match the request")
        item_errors = batch_item_errors(answer)
        outcomes: list[DecryptOutcome] = []
        for escrowed, result, error in zip(chunk, results, item_errors, strict=True):
            if error is not None:
                refused = error_for_status(operation, 400, [error])
                assert isinstance(refused, InvalidRequestError)
                outcomes.append(DecryptOutcome(escrowed.message_id, None, refused))
            else:
                dek = _plaintext_dek(result, operation)
                outcomes.append(DecryptOutcome(escrowed.message_id, dek, None))
        return outcomes


class SealingClient(_Base):
    """Seal and open small records under the triage key (docs/review.md, "Triage").

    Each record is bound to its derivation context: a ciphertext made for one message's
    summary or one watch list does not open as another's. A terminal's token seals, a
    screener's opens; neither reaches a message's data key with this key.
    """

    def __init__(
        self,
        config: KeyServerConfig,
        token: str,
        *,
        key: EscrowKeyRef,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen dataclass, safe default
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(config, token, key=key, retry=retry, sleep=sleep, clock=clock, rand=rand)

    def seal(self, items: Sequence[tuple[bytes, bytes]]) -> list[str]:
        """Ciphertexts of (context, plaintext) pairs, in order, in batches of ESCROW_BATCH_SIZE."""
        out: list[str] = []
        operation = "transit batch encrypt"
        for start in range(0, len(items), ESCROW_BATCH_SIZE):
            chunk = items[start : start + ESCROW_BATCH_SIZE]
            body = {
                "batch_input": [
                    {"context": _b64(context), "plaintext": _b64(plaintext)}
                    for context, plaintext in chunk
                ]
            }
            answer = self._post(operation, self.key.encrypt_path, body)
            results = data_of(answer, operation).get("batch_results")
            if not isinstance(results, list) or len(results) != len(chunk):
                raise UnexpectedResponseError(f"{operation}: batch results do not match")
            for result in results:
                if not isinstance(result, dict) or result.get("error"):
                    raise UnexpectedResponseError(f"{operation}: an item was not encrypted")
                out.append(get_str(result, "ciphertext", operation))
        return out

    def open(self, items: Sequence[tuple[bytes, str]]) -> list[bytes | None]:
        """Plaintexts of (context, ciphertext) pairs; None for one the key server refused.

        A refused item (a ciphertext made for another context, or damaged) does not fail
        the others; errors that concern the whole request (permission, availability) raise.
        """
        out: list[bytes | None] = []
        operation = "transit batch decrypt"
        for start in range(0, len(items), ESCROW_BATCH_SIZE):
            chunk = items[start : start + ESCROW_BATCH_SIZE]
            body = {
                "batch_input": [
                    {"context": _b64(context), "ciphertext": ciphertext}
                    for context, ciphertext in chunk
                ]
            }
            answer = self._batch_decrypt(operation, body)
            results = data_of(answer, operation).get("batch_results")
            if not isinstance(results, list) or len(results) != len(chunk):
                raise UnexpectedResponseError(f"{operation}: batch results do not match")
            for result, error in zip(results, batch_item_errors(answer), strict=True):
                if error is not None or not isinstance(result, dict):
                    out.append(None)
                else:
                    out.append(_unb64(get_str(result, "plaintext", operation), operation))
        return out


class KeyAdminClient(_Base):
    """Rotation, automatic rotation and retention of the escrow key (key-administrator policy).

    Each change is noted as a ``KeyServerAction`` (``take_actions``) to record in the
    transparency log, where the auditor matches it to the key server's audit log.
    """

    def __init__(
        self,
        config: KeyServerConfig,
        token: str,
        *,
        key: EscrowKeyRef = EscrowKeyRef(),
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen dataclass, safe default
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(config, token, key=key, retry=retry, sleep=sleep, clock=clock, rand=rand)
        self.journal = ActionJournal(self._conn)

    def take_actions(self) -> list[KeyServerAction]:
        """The changes made through this client and not yet taken, to record them."""
        return self.journal.take()

    def _latest_version(self) -> int:
        return self.key_info().latest_version

    def key_info(self) -> KeyInfo:
        """The escrow key's versions and configuration."""
        operation = "transit read key"
        answer = self._conn.call(operation, lambda c: c.adapter.get(self.key.key_path))
        return parse_key_info(data_of(answer, operation), operation)

    def rotate(self) -> KeyInfo:
        """Add a new key version; new escrows use it, older versions still decrypt.

        Not retried: a lost answer could otherwise rotate twice.
        """
        with self.journal.action(
            ActionKind.ROTATION, self.key.name, key_version=self._latest_version
        ):
            self.journal.wrote(f"{self.key.key_path}/rotate")
            self._conn.call(
                "transit rotate key",
                lambda c: c.adapter.post(f"{self.key.key_path}/rotate"),
                retry=False,
            )
        return self.key_info()

    def set_auto_rotate_period(self, period: timedelta) -> KeyInfo:
        """Rotate on a schedule (transit ``auto_rotate_period``); zero turns it off.

        The key server refuses periods under one hour. Rotate at least yearly
        (NIST SP 800-57) and long before 2^32 encryptions per version (AES-GCM).
        """
        seconds = int(period.total_seconds())
        if seconds < 0 or seconds != period.total_seconds():
            raise InvalidRequestError(
                "the rotation period is a whole, non-negative number of seconds"
            )
        with self.journal.action(ActionKind.ROTATION_SCHEDULE, self.key.name):
            self._config({"auto_rotate_period": f"{seconds}s"})
        return self.key_info()

    def apply_retention(self, min_version: int) -> KeyInfo:
        """Crypto-shred: retire every key version below ``min_version``, irreversibly.

        Raises min_decryption_version (and min_encryption_version, which trimming
        requires) to ``min_version``, then trims the older versions out of the key
        ring. Escrow made with them can never be decrypted again, by anyone.
        The current version cannot be retired; lowering a retention is refused.
        """
        info = self.key_info()
        if isinstance(min_version, bool) or not 1 <= min_version <= info.latest_version:
            raise InvalidRequestError(
                f"retention must keep a version between 1 and the latest ({info.latest_version})"
            )
        if min_version < info.min_decryption_version or min_version < info.min_available_version:
            raise InvalidRequestError("retired key versions cannot be brought back")
        with self.journal.action(
            ActionKind.RETENTION, self.key.name, key_version=lambda: min_version
        ):
            self._config(
                {
                    "min_decryption_version": min_version,
                    "min_encryption_version": max(min_version, info.min_encryption_version),
                }
            )
            self.journal.wrote(f"{self.key.key_path}/trim")
            self._conn.call(
                "transit trim key",
                lambda c: c.adapter.post(
                    f"{self.key.key_path}/trim", json={"min_available_version": min_version}
                ),
            )
        after = self.key_info()
        if after.min_available_version != min_version or any(
            v < min_version for v in after.available_versions
        ):
            raise UnexpectedResponseError("transit trim key: old key versions are still present")
        _log.info("escrow key versions retired", version=min_version)
        return after

    def _config(self, params: dict[str, Any]) -> None:
        # Posted directly: hvac's update_key_configuration refuses
        # min_encryption_version == min_decryption_version, which the server accepts.
        self.journal.wrote(f"{self.key.key_path}/config")
        self._conn.call(
            "transit configure key",
            lambda c: c.adapter.post(f"{self.key.key_path}/config", json=params),
        )


def parse_key_info(data: dict[str, Any], operation: str) -> KeyInfo:
    """A transit key read (``keys/<name>``) as KeyInfo; UnexpectedResponseError if malformed."""
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise UnexpectedResponseError(f"{operation}: field 'keys' is not an object")
    try:
        versions = tuple(sorted(int(v) for v in keys))
    except ValueError:
        raise UnexpectedResponseError(f"{operation}: key versions are not numbers") from None
    return KeyInfo(
        name=get_str(data, "name", operation),
        key_type=get_str(data, "type", operation),
        derived=get_bool(data, "derived", operation),
        exportable=get_bool(data, "exportable", operation),
        allow_plaintext_backup=get_bool(data, "allow_plaintext_backup", operation),
        deletion_allowed=get_bool(data, "deletion_allowed", operation),
        latest_version=get_int(data, "latest_version", operation),
        min_decryption_version=get_int(data, "min_decryption_version", operation),
        min_encryption_version=get_int(data, "min_encryption_version", operation),
        min_available_version=get_int(data, "min_available_version", operation),
        available_versions=versions,
        auto_rotate_period=timedelta(seconds=get_int(data, "auto_rotate_period", operation)),
        created_at=tuple(
            (int(version), created)
            for version, created in sorted(keys.items(), key=lambda item: int(item[0]))
            if isinstance(created, int) and not isinstance(created, bool)
        ),
    )


def _health(conn: Connection) -> KeyServerHealth:
    operation = "health"

    def probe(client: Any) -> Any:
        # Every state answers 200 so that the body, not the status, says what is wrong.
        return client.adapter.get(
            "/v1/sys/health",
            params={"sealedcode": 200, "uninitcode": 200, "standbycode": 200},
        )

    answer = conn.call(operation, probe, retry=False)
    if not isinstance(answer, dict):
        raise UnexpectedResponseError(f"{operation}: unexpected answer from the key server")
    return KeyServerHealth(
        initialized=get_bool(answer, "initialized", operation),
        sealed=get_bool(answer, "sealed", operation),
        standby=get_bool(answer, "standby", operation),
        version=get_str(answer, "version", operation),
    )


def health(config: KeyServerConfig) -> KeyServerHealth:
    """``sys/health`` without a token: initialised, sealed, standby, version.

    Of a cluster (several addresses): the first node that is ready, else the first
    that answered; KeyServerUnavailableError only when no node answers.
    """
    answered: KeyServerHealth | None = None
    unavailable: KeyServerUnavailableError | None = None
    for address in config.addresses:
        conn = Connection(replace(config, address=address, addresses=()), None, retry=NO_RETRY)
        try:
            state = _health(conn)
        except KeyServerUnavailableError as exc:
            unavailable = unavailable or exc
            continue
        finally:
            conn.close()
        if state.ready:
            return state
        answered = answered or state
    if answered is not None:
        return answered
    assert unavailable is not None  # every address was tried and none answered
    raise unavailable
