"""The session-token key kept in the key server, as a KV version 2 secret rotated on a schedule.

Every gateway of a deployment reads the same secret (``<prefix>-gateway/session-token-key``,
readable by the gateway policy only), so a token one gateway made verifies at another. The
secret's versions are the key's versions:

- the newest version and the one before verify; older versions verify nothing (a token
  lives 15 minutes, a key a day by default);
- the newest version makes tokens once it is ``activation_delay`` old; until then the one
  before still makes them. Each gateway refreshes every minute or so, so by the time any
  gateway makes a token with a new key, every gateway verifies with it;
- a rotation writes version N+1 with check-and-set N (the mount requires check-and-set on
  every write): of gateways rotating together one wins, the others read its key. The first
  version is written with check-and-set 0, so gateways starting together end with one key.

``token_keys`` answers from memory. ``load``, ``refresh`` and ``rotate`` call the key server
and block (run them in a thread); they replace the one immutable ``TokenKeys`` only when
every read succeeded, so a failure leaves the keys in use unchanged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sealpost._internal.logs import get_logger
from sealpost.crypto.auth import SESSION_TOKEN_KEY_BYTES, new_session_token_key
from sealpost.escrow._transport import Connection, data_of, get_int
from sealpost.escrow.errors import (
    EscrowError,
    InvalidRequestError,
    NotFoundError,
    UnexpectedResponseError,
)
from sealpost.gateway.auth import TOKEN_TTL_MS, TokenKeys
from sealpost.gateway.errors import Unavailable

_log = get_logger("sealpost.gateway.tokenkeys")

#: The secret's path on the gateway's KV mount; the gateway policy names exactly this path.
DEFAULT_PATH: Final = "session-token-key"
#: Format of the stored value: ``{"format": 1, "token_key": "<64 hex digits>"}``.
STORED_FORMAT: Final = 1
#: How long a new key only verifies before it makes tokens: more than the refresh interval.
DEFAULT_ACTIVATION_DELAY: Final = timedelta(minutes=3)
_TOKEN_TTL: Final = timedelta(milliseconds=TOKEN_TTL_MS)
#: Part of the key server's refusal when a check-and-set write lost to another writer.
_CAS_MISMATCH: Final = "check-and-set"


@dataclass(frozen=True, repr=False)
class KeyVersion:
    """One version of the session-token key and when the key server stored it."""

    version: int
    key: bytes
    #: Seconds since the epoch, by the key server's clock.
    created_at: float

    def __repr__(self) -> str:
        """Never show the key."""
        return f"KeyVersion(version={self.version}, key=<secret>)"


@dataclass(frozen=True)
class SecretMetadata:
    """What the KV metadata says of the secret: its newest version and the versions alive."""

    current_version: int
    #: Version -> creation time (seconds since the epoch), of versions neither deleted nor
    #: destroyed.
    alive: Mapping[int, float]
    #: Versions deleted or destroyed (still listed in the metadata).
    gone: frozenset[int]


@dataclass(frozen=True)
class TokenKeyStatus:
    """The outcome of a successful load, refresh or rotation, for logs and health checks."""

    #: The newest version of the key, and the version that makes tokens now.
    newest_version: int
    issuing_version: int
    #: When the newest version was stored (seconds since the epoch, key server's clock).
    newest_created_at: float
    #: When this status was taken (the gateway's clock).
    loaded_at: float
    #: Versions this call wrote (0 when another gateway rotated, or nothing was due).
    written: int = 0


# --- pure rules ------------------------------------------------------------------------------


def parse_time(text: object, what: str) -> float:
    """An RFC 3339 timestamp of the key server (``2026-01-02T03:04:05.123456789Z``) in seconds."""
    if not isinstance(text, str) or not text:
        raise UnexpectedResponseError(f"{what}: no creation time")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UnexpectedResponseError(f"{what}: malformed creation time") from None


def parse_metadata(data: Mapping[str, Any], where: str) -> SecretMetadata:
    """The ``data`` of a KV v2 ``metadata/<path>`` answer."""
    current = get_int(dict(data), "current_version", where)
    versions = data.get("versions")
    if not isinstance(versions, dict):
        raise UnexpectedResponseError(f"{where}: no list of versions")
    alive: dict[int, float] = {}
    gone: set[int] = set()
    for name, entry in versions.items():
        if not isinstance(name, str) or not name.isdigit() or not isinstance(entry, dict):
            raise UnexpectedResponseError(f"{where}: malformed list of versions")
        if entry.get("destroyed") is True or entry.get("deletion_time"):
            gone.add(int(name))
        else:
            alive[int(name)] = parse_time(entry.get("created_time"), f"{where} version {name}")
    if current < 0 or (current > 0 and current not in alive and current not in gone):
        raise UnexpectedResponseError(f"{where}: version {current} is not listed")
    return SecretMetadata(current, alive, frozenset(gone))


def parse_stored_key(data: object, where: str) -> bytes:
    """The key in a stored value; UnexpectedResponseError saying what is wrong (never the value)."""
    if not isinstance(data, dict):
        raise UnexpectedResponseError(f"{where} is malformed: not an object")
    stored_format = data.get("format")
    if stored_format != STORED_FORMAT:
        raise UnexpectedResponseError(
            f"{where} is malformed: format {stored_format!r} is not {STORED_FORMAT} "
            "(written by another program, or a newer gateway)"
        )
    text = data.get("token_key")
    if not isinstance(text, str):
        raise UnexpectedResponseError(f"{where} is malformed: no token_key")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise UnexpectedResponseError(
            f"{where} is malformed: token_key is not hexadecimal"
        ) from None
    if len(key) != SESSION_TOKEN_KEY_BYTES:
        raise UnexpectedResponseError(
            f"{where} is malformed: token_key has {len(key)} bytes, not {SESSION_TOKEN_KEY_BYTES}"
        )
    return key


def stored_value(key: bytes) -> dict[str, Any]:
    """What is stored for ``key`` (the inverse of ``parse_stored_key``)."""
    return {"format": STORED_FORMAT, "token_key": key.hex()}


def rotation_due(newest_created_at: float, now: float, period: timedelta) -> bool:
    """Whether the newest version is at least ``period`` old."""
    return now - newest_created_at >= period.total_seconds()


def issuing_key(
    newest: KeyVersion, previous: KeyVersion | None, now: float, activation_delay: timedelta
) -> KeyVersion:
    """The version that makes tokens at ``now``: the newest once it is old enough.

    Without a previous version (the first key), the newest makes tokens at once.
    """
    if previous is not None and now - newest.created_at < activation_delay.total_seconds():
        return previous
    return newest


def keys_in_use(
    newest: KeyVersion, previous: KeyVersion | None, now: float, activation_delay: timedelta
) -> TokenKeys:
    """The keys to use at ``now``: newest and previous verify, ``issuing_key`` makes tokens."""
    issuer = issuing_key(newest, previous, now, activation_delay)
    other = previous if issuer is newest else newest
    return TokenKeys(current=issuer.key, previous=other.key if other else None)


def check_periods(rotation_period: timedelta, activation_delay: timedelta) -> None:
    """ValueError unless a scheduled rotation leaves every live token verifiable.

    A token made just before the newest key starts making tokens lives 15 minutes more:
    the next rotation must come later than that, or it signs relatives out.
    """
    if activation_delay < timedelta(0):
        raise ValueError("activation_delay must not be negative")
    if rotation_period <= activation_delay + _TOKEN_TTL:
        raise ValueError(
            "rotation_period must exceed activation_delay plus a session token's lifetime "
            "(15 minutes), or scheduled rotations sign relatives out"
        )


# --- the key server --------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class _Loaded:
    newest: KeyVersion
    previous: KeyVersion | None


class KeyServerTokenKeys:
    """A ``TokenKeySource`` whose keys live in a KV v2 secret of the key server.

    Call ``load`` once at start (it creates the first key if there is none), then
    ``refresh`` every minute or so; ``rotate`` writes a new key at once.
    """

    def __init__(
        self,
        connection: Connection,
        mount: str,
        path: str = DEFAULT_PATH,
        rotation_period: timedelta = timedelta(days=1),
        clock: Callable[[], float] = time.time,
        *,
        activation_delay: timedelta = DEFAULT_ACTIVATION_DELAY,
        new_key: Callable[[], bytes] = new_session_token_key,
    ) -> None:
        """``connection`` holds a token with the gateway policy; ``clock`` gives epoch seconds."""
        check_periods(rotation_period, activation_delay)
        if not mount.strip("/") or not path.strip("/"):
            raise ValueError("mount and path must be given")
        self._conn = connection
        self._mount = mount.strip("/")
        self._path = path.strip("/")
        self.rotation_period = rotation_period
        self.activation_delay = activation_delay
        self._clock = clock
        self._new_key = new_key
        self._lock = threading.Lock()
        self._keys: TokenKeys | None = None
        self._status: TokenKeyStatus | None = None

    def __repr__(self) -> str:
        return f"KeyServerTokenKeys(secret={self.secret!r})"

    @property
    def secret(self) -> str:
        """The secret's name, ``<mount>/<path>``, for messages."""
        return f"{self._mount}/{self._path}"

    # --- TokenKeySource ---

    def token_keys(self) -> TokenKeys:
        """The keys in memory (no call to the key server); Unavailable before the first load."""
        keys = self._keys
        if keys is None:
            raise Unavailable("the session-token keys are not loaded yet")
        return keys

    def status(self) -> TokenKeyStatus | None:
        """The outcome of the last successful load, refresh or rotation; None before any."""
        return self._status

    # --- operations ---

    def load(self) -> TokenKeyStatus:
        """Read the newest version and the one before; create version 1 if there is none."""
        with self._lock:
            return self._run("load", rotate=0)

    def refresh(self) -> TokenKeyStatus:
        """Rotate if the newest version is ``rotation_period`` old, then read the keys again.

        On failure (an ``EscrowError``) the keys in memory stay as they were; the failure is
        logged and raised, for the caller to report the key server as unhealthy.
        """
        with self._lock:
            return self._run("refresh", rotate=0, on_schedule=True)

    def rotate(self, *, revoke_issued: bool = False) -> TokenKeyStatus:
        """Write a new version now; after a suspected leak, ``revoke_issued`` writes two.

        With one new version, tokens already made still verify for their 15 minutes. With
        ``revoke_issued`` no key from before this call verifies anything: every relative
        signs in again, and tokens made with a leaked key are refused.
        """
        with self._lock:
            return self._run("rotate", rotate=2 if revoke_issued else 1)

    def _run(self, operation: str, *, rotate: int, on_schedule: bool = False) -> TokenKeyStatus:
        try:
            return self._sync(rotate, on_schedule)
        except EscrowError as exc:
            _log.warning(
                "session-token keys not updated; the keys in memory stay",
                reason=operation,
                error_type=type(exc).__name__,
                status=exc.status,
            )
            raise

    def _sync(self, rotate: int, on_schedule: bool) -> TokenKeyStatus:
        written = 0
        meta = self._metadata()
        if meta is None or meta.current_version == 0:
            written += self._write(meta.current_version if meta else 0, "first key")
            meta = self._require_metadata()
        target = meta.current_version + rotate
        if on_schedule:
            created = meta.alive.get(meta.current_version)
            if created is None or rotation_due(created, self._clock(), self.rotation_period):
                target = meta.current_version + 1
        # Each write adds a version, ours or (having lost a check-and-set) another gateway's.
        while meta.current_version < target:
            before = meta.current_version
            written += self._write(before, "by hand" if rotate else "schedule")
            meta = self._require_metadata()
            if meta.current_version <= before:
                raise UnexpectedResponseError(f"{self.secret}: a write added no version")
        loaded = self._read_pair(meta)
        now = self._clock()
        keys = keys_in_use(loaded.newest, loaded.previous, now, self.activation_delay)
        issuer = issuing_key(loaded.newest, loaded.previous, now, self.activation_delay)
        status = TokenKeyStatus(
            newest_version=loaded.newest.version,
            issuing_version=issuer.version,
            newest_created_at=loaded.newest.created_at,
            loaded_at=now,
            written=written,
        )
        self._keys, self._status = keys, status
        return status

    # --- KV v2 requests ---

    def _metadata(self) -> SecretMetadata | None:
        operation = f"read {self.secret} metadata"
        url = f"/v1/{self._mount}/metadata/{self._path}"
        try:
            answer = self._conn.call(operation, lambda c: c.adapter.get(url))
        except NotFoundError:
            return None
        return parse_metadata(data_of(answer, operation), operation)

    def _require_metadata(self) -> SecretMetadata:
        meta = self._metadata()
        if meta is None or meta.current_version == 0:
            raise UnexpectedResponseError(f"{self.secret}: no version after a write")
        return meta

    def _write(self, cas: int, reason: str) -> int:
        """Write a fresh key as version ``cas + 1``: 1 if written, 0 if another writer won."""
        operation = f"write {self.secret}"
        url = f"/v1/{self._mount}/data/{self._path}"
        body = {"options": {"cas": cas}, "data": stored_value(self._new_key())}
        try:
            self._conn.call(operation, lambda c: c.adapter.post(url, json=body))
        except InvalidRequestError as exc:
            if _CAS_MISMATCH not in str(exc):
                raise
            _log.info("session-token key written by another gateway first", version=cas + 1)
            return 0
        _log.info("session-token key written", version=cas + 1, reason=reason)
        return 1

    def _read_version(self, version: int, created_at: float) -> KeyVersion:
        where = f"session-token key {self.secret} version {version}"
        url = f"/v1/{self._mount}/data/{self._path}"
        answer = self._conn.call(
            f"read {where}", lambda c: c.adapter.get(url, params={"version": version})
        )
        data = data_of(answer, where).get("data")
        return KeyVersion(version, parse_stored_key(data, where), created_at)

    def _read_pair(self, meta: SecretMetadata) -> _Loaded:
        newest = meta.current_version
        if newest not in meta.alive:
            raise NotFoundError(
                f"session-token key {self.secret} version {newest} is deleted: "
                "rotate to write a new one"
            )
        previous = None
        if newest - 1 in meta.alive:
            previous = self._read_version(newest - 1, meta.alive[newest - 1])
        return _Loaded(self._read_version(newest, meta.alive[newest]), previous)
