"""Read the key server's file audit device: who used the escrow key, and who changed what around it.

The audit device writes one JSON object per line, a "request" entry before
the key server acts and a "response" entry after. Sealpost's escrow mount is
tuned with ``audit_non_hmac_request_keys=["context"]``, so the derivation
context, the message id, appears in clear; data keys, ciphertexts and tokens
stay HMAC-ed. The auditor's reconciliation (spec P6) pairs every decrypt here
with a grant in the transparency log.

Besides encrypts and decrypts, ``parse_audit_entries`` classifies every entry
that changes the escrow key or the policies, logins, tokens and audit devices
around it (``ChangeKind``, spec P14), and every entry that takes the key out
(export, backup, raw storage). The auditor matches each change to an
administrative action recorded in the transparency log. ``classify`` is the
one table of those paths.

Lines about other paths are skipped; a line that is not a JSON object, or an
escrow or change entry without its identifying fields, raises AuditLogError
naming the line, because a log that cannot be read completely cannot be
reconciled. Pure: lines in, events out; ``read_audit_log`` is the only I/O.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from sealpost.escrow.client import EscrowKeyRef
from sealpost.escrow.errors import AuditLogError

_HMAC_PREFIX: Final = "hmac-sha256:"
_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z")


class AuditOperation(StrEnum):
    """The escrow-key operation an entry records."""

    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"


class ChangeKind(StrEnum):
    """What a key-server request changed (or took out) around the escrow key (spec P14)."""

    #: ``<mount>/keys/<key>`` written: created (or re-created) with the given settings.
    KEY_CREATE = "key-create"
    #: ``<mount>/keys/<key>/config`` and other writes below the key: rotation period,
    #: minimum versions, exportable, deletion allowed...
    KEY_CONFIG = "key-config"
    KEY_ROTATE = "key-rotate"
    KEY_TRIM = "key-trim"
    KEY_DELETE = "key-delete"
    #: ``<mount>/export/...`` and ``byok-export``: the key material leaves the server.
    KEY_EXPORT = "key-export"
    KEY_BACKUP = "key-backup"
    KEY_RESTORE = "key-restore"
    KEY_IMPORT = "key-import"
    #: ``sys/raw``: the storage itself, key material included.
    RAW_STORAGE = "raw-storage"
    #: The escrow mount enabled, disabled, moved or tuned (its audit settings too).
    MOUNT = "mount"
    #: ``sys/policies/acl/*`` and ``sys/policy/*``: any policy, since any can grant decrypt.
    POLICY = "policy"
    #: ``sys/auth/*`` and an auth method's roles and configuration.
    AUTH_METHOD = "auth-method"
    #: ``auth/<method>/users/*``: staff logins (userpass), their passwords and policies.
    STAFF_LOGIN = "staff-login"
    #: ``identity/entity*`` and ``identity/group*``: metadata and policies of staff entities.
    IDENTITY = "identity"
    #: ``identity/oidc/*``: the roles, keys and issuer of staff identity tokens.
    IDENTITY_TOKENS = "identity-tokens"
    #: ``auth/token/roles/*``: the token role terminals get their tokens through.
    TOKEN_ROLE = "token-role"  # noqa: S105 - a kind, not a secret
    #: ``auth/token/create/<role>``: a token made through a role (terminals).
    TOKEN_CREATE = "token-create"  # noqa: S105 - a kind, not a secret
    #: ``auth/token/revoke*`` (not ``revoke-self``): a token cut off by someone else.
    TOKEN_REVOKE = "token-revoke"  # noqa: S105 - a kind, not a secret
    AUDIT_DEVICE = "audit-device"
    #: ``sys/generate-root/*``: a new root token.
    ROOT_TOKEN = "root-token"  # noqa: S105 - a kind, not a secret


class AuditEntryType(StrEnum):
    """The audit device logs each request before, and its response after, the key server acts."""

    REQUEST = "request"
    RESPONSE = "response"


class AuditOutcome(StrEnum):
    """What the response says; requests are REQUESTED."""

    REQUESTED = "requested"
    SUCCEEDED = "succeeded"
    #: A batch with at least one item refused: the other items may have been decrypted.
    PARTIAL = "partial"
    #: Refused as a whole (permission denied, wrong context, retired version...).
    REFUSED = "refused"


@dataclass(frozen=True)
class EscrowAuditEvent:
    """One audit entry about the escrow key."""

    line_number: int
    time: datetime
    entry_type: AuditEntryType
    operation: AuditOperation
    request_id: str
    #: The key server's entity id: set for staff logins, empty for terminal tokens.
    entity_id: str
    display_name: str
    policies: tuple[str, ...]
    #: Terminal tokens carry their institution in token metadata.
    institution_id: str | None
    batch: bool
    #: Contexts as logged (base64), in request order.
    contexts: tuple[str, ...]
    #: Decoded message ids, aligned with ``contexts``; None where a context is not clear base64
    #: (HMAC-ed because the mount is not tuned, or sent malformed).
    message_ids: tuple[bytes | None, ...]
    outcome: AuditOutcome
    error: str | None
    remote_address: str


@dataclass(frozen=True)
class KeyServerChange:
    """One audit entry that changes, or takes out, something around the escrow key."""

    line_number: int
    time: datetime
    entry_type: AuditEntryType
    kind: ChangeKind
    request_id: str
    #: The request path as logged, without ``/v1/``.
    path: str
    #: The operation as logged: create, update, delete, read.
    operation: str
    entity_id: str
    display_name: str
    policies: tuple[str, ...]
    #: Names of the request's parameters (their string values are HMAC-ed).
    parameters: tuple[str, ...]
    #: Parameters the audit device logs in clear (booleans and numbers), e.g. ("exportable",
    #: "true"): enough to see a key made exportable.
    clear_settings: tuple[tuple[str, str], ...]
    outcome: AuditOutcome
    error: str | None
    remote_address: str

    def setting(self, name: str) -> str | None:
        """The clear value of parameter ``name`` ("true", "3", ...), if logged in clear."""
        return dict(self.clear_settings).get(name)


#: Either kind of entry ``parse_audit_entries`` yields.
AuditEvent = EscrowAuditEvent | KeyServerChange

_WRITES: Final = frozenset({"create", "update", "delete"})
#: Entries that take key material out are reconciled even though they only read.
_READ_KINDS: Final = frozenset(
    {ChangeKind.KEY_EXPORT, ChangeKind.KEY_BACKUP, ChangeKind.RAW_STORAGE}
)
#: The entry an audit device writes about itself when it starts (no token, no response).
_SELF_TEST_PATH: Final = "sys/audit/test"

#: The one table of paths that change something around the escrow key, first match wins.
#: ``{m}`` and ``{k}`` stand for the escrow mount and key; a None kind stops the search
#: (a login, a token's own renewal: not a change).
_RULES: Final[tuple[tuple[str, ChangeKind | None], ...]] = (
    (r"{m}/keys/{k}", ChangeKind.KEY_CREATE),  # KEY_DELETE for a delete
    (r"{m}/keys/{k}/(import|import_version)", ChangeKind.KEY_IMPORT),
    (r"{m}/keys/{k}/rotate", ChangeKind.KEY_ROTATE),
    (r"{m}/keys/{k}/trim", ChangeKind.KEY_TRIM),
    (r"{m}/keys/{k}/.+", ChangeKind.KEY_CONFIG),
    (r"{m}/(export|byok-export)/[^/]+/{k}(/.*)?", ChangeKind.KEY_EXPORT),
    (r"{m}/backup/{k}", ChangeKind.KEY_BACKUP),
    # A backup may carry its own name: every restore on the escrow mount counts.
    (r"{m}/restore(/.*)?", ChangeKind.KEY_RESTORE),
    (r"{m}/(config|cache-config)(/.*)?", ChangeKind.MOUNT),
    (r"sys/mounts/{m}(/.*)?", ChangeKind.MOUNT),
    (r"sys/remount", ChangeKind.MOUNT),
    (r"sys/(policies/acl|policy)/.+", ChangeKind.POLICY),
    (r"sys/auth/.+", ChangeKind.AUTH_METHOD),
    (r"sys/(audit/.+|config/auditing(/.*)?)", ChangeKind.AUDIT_DEVICE),
    (r"sys/generate-root(/.*)?", ChangeKind.ROOT_TOKEN),
    (r"sys/raw(/.*)?", ChangeKind.RAW_STORAGE),
    (r"auth/token/roles/.+", ChangeKind.TOKEN_ROLE),
    (r"auth/token/create/.+", ChangeKind.TOKEN_CREATE),
    (r"auth/token/revoke(-accessor|-orphan)?(/.*)?", ChangeKind.TOKEN_REVOKE),
    (r"auth/token/.*", None),
    (r"auth/[^/]+/login(/.*)?", None),
    (r"auth/[^/]+/users/.+", ChangeKind.STAFF_LOGIN),
    (r"auth/[^/]+/.+", ChangeKind.AUTH_METHOD),
    (r"identity/(entity|entity-alias|group|group-alias|persona)(/.*)?", ChangeKind.IDENTITY),
    # Login MFA: a second factor added, reset or no longer enforced changes who can sign in.
    (r"identity/mfa/.+", ChangeKind.IDENTITY),
    (r"identity/oidc/(introspect|\.well-known|token)(/.*)?", None),
    (r"identity/oidc/.+", ChangeKind.IDENTITY_TOKENS),
)


@functools.lru_cache(maxsize=8)
def _rules(key: EscrowKeyRef) -> tuple[tuple[re.Pattern[str], ChangeKind | None], ...]:
    names = {"m": re.escape(key.mount), "k": re.escape(key.name)}
    return tuple(
        (re.compile(pattern.replace("{m}", names["m"]).replace("{k}", names["k"])), kind)
        for pattern, kind in _RULES
    )


def classify(path: str, operation: str, key: EscrowKeyRef) -> ChangeKind | None:
    """The change a request makes around the escrow key, or None if it makes none (spec P14).

    Writes (create, update, delete) to the paths of ``_RULES`` count; reads count only
    when they take key material out (export, backup, raw storage). Encrypts, decrypts,
    logins and a token's own renewal are not changes.
    """
    path = path.strip("/")
    for pattern, kind in _rules(key):
        if pattern.fullmatch(path):
            if kind is None:
                return None
            if kind is ChangeKind.KEY_CREATE and operation == "delete":
                return ChangeKind.KEY_DELETE
            if operation in _WRITES or (kind in _READ_KINDS and operation == "read"):
                return kind
            return None
    return None


def _parse_time(value: object, line: int) -> datetime:
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise AuditLogError("time is not RFC 3339 UTC", line_number=line)
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{match.group(1)}.{fraction}+00:00")


def _message_id(context: str) -> bytes | None:
    if not context or context.startswith(_HMAC_PREFIX):
        return None
    try:
        return base64.b64decode(context.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def _contexts(data: object) -> tuple[bool, tuple[str, ...]]:
    """(batch?, contexts) from a request's data, batch and single forms."""
    if not isinstance(data, dict):
        return False, ()
    batch = data.get("batch_input")
    if isinstance(batch, list):
        items = [i.get("context") if isinstance(i, dict) else None for i in batch]
        return True, tuple(c if isinstance(c, str) else "" for c in items)
    context = data.get("context")
    return False, (context if isinstance(context, str) else "",)


def _outcome(entry: dict[str, Any], batch: bool) -> tuple[AuditOutcome, str | None]:
    error = entry.get("error")
    if isinstance(error, str) and error.strip():
        return AuditOutcome.REFUSED, " ".join(error.replace("*", " ").split())
    response = entry.get("response")
    data = response.get("data") if isinstance(response, dict) else None
    status = data.get("http_status_code") if isinstance(data, dict) else None
    if isinstance(status, int) and status >= 400:
        # A batch answered in part: the body (HMAC-ed here) names which items failed.
        return (AuditOutcome.PARTIAL if batch else AuditOutcome.REFUSED), f"HTTP {status}"
    return AuditOutcome.SUCCEEDED, None


def _str_field(container: object, key: str) -> str:
    value = container.get(key) if isinstance(container, dict) else None
    return value if isinstance(value, str) else ""


def _identifying(
    entry: dict[str, Any], line: int, what: str
) -> tuple[str, AuditEntryType, dict[str, Any]]:
    """(request id, entry type, auth) of an entry that must be read, or AuditLogError."""
    request = entry["request"]
    request_id = _str_field(request, "id")
    if not request_id:
        raise AuditLogError(f"{what} entry without a request id", line_number=line)
    kind = entry.get("type")
    if kind not in (AuditEntryType.REQUEST.value, AuditEntryType.RESPONSE.value):
        raise AuditLogError(f"{what} entry is neither request nor response", line_number=line)
    auth = entry.get("auth")
    return request_id, AuditEntryType(kind), auth if isinstance(auth, dict) else {}


def _policies(auth: dict[str, Any]) -> tuple[str, ...]:
    policies = auth.get("policies")
    return tuple(p for p in policies if isinstance(p, str)) if isinstance(policies, list) else ()


def _clear_settings(data: object) -> tuple[tuple[str, str], ...]:
    """Top-level parameters whose values are logged in clear (booleans, numbers)."""
    if not isinstance(data, dict):
        return ()
    out = []
    for name, value in data.items():
        if isinstance(value, bool):
            out.append((str(name), "true" if value else "false"))
        elif isinstance(value, int | float):
            out.append((str(name), str(value)))
    return tuple(sorted(out))


def _change(entry: dict[str, Any], kind: ChangeKind, path: str, line: int) -> KeyServerChange:
    request_id, entry_type, auth = _identifying(entry, line, "key-server change")
    request = entry["request"]
    data = request.get("data")
    if entry_type is AuditEntryType.REQUEST:
        outcome, error = AuditOutcome.REQUESTED, None
    else:
        outcome, error = _outcome(entry, batch=False)
    return KeyServerChange(
        line_number=line,
        time=_parse_time(entry.get("time"), line),
        entry_type=entry_type,
        kind=kind,
        request_id=request_id,
        path=path,
        operation=_str_field(request, "operation"),
        entity_id=_str_field(auth, "entity_id"),
        display_name=_str_field(auth, "display_name"),
        policies=_policies(auth),
        parameters=tuple(sorted(str(k) for k in data)) if isinstance(data, dict) else (),
        clear_settings=_clear_settings(data),
        outcome=outcome,
        error=error,
        remote_address=_str_field(request, "remote_address"),
    )


def _event(entry: dict[str, Any], operation: AuditOperation, line: int) -> EscrowAuditEvent:
    request_id, entry_type, auth = _identifying(entry, line, "escrow")
    request = entry["request"]
    metadata = auth.get("metadata")
    institution = metadata.get("institution_id") if isinstance(metadata, dict) else None
    batch, contexts = _contexts(request.get("data"))
    if entry_type is AuditEntryType.REQUEST:
        outcome, error = AuditOutcome.REQUESTED, None
    else:
        outcome, error = _outcome(entry, batch)
    return EscrowAuditEvent(
        line_number=line,
        time=_parse_time(entry.get("time"), line),
        entry_type=entry_type,
        operation=operation,
        request_id=request_id,
        entity_id=_str_field(auth, "entity_id"),
        display_name=_str_field(auth, "display_name"),
        policies=_policies(auth),
        institution_id=institution if isinstance(institution, str) else None,
        batch=batch,
        contexts=contexts,
        message_ids=tuple(_message_id(c) for c in contexts),
        outcome=outcome,
        error=error,
        remote_address=_str_field(request, "remote_address"),
    )


def _is_self_test(entry: dict[str, Any], path: str) -> bool:
    """The line an audit device writes about itself on start: no token, no client."""
    auth = entry.get("auth")
    token = isinstance(auth, dict) and (auth.get("client_token") or auth.get("accessor"))
    return path == _SELF_TEST_PATH and not token


def _entries(
    lines: Iterable[str | bytes], key: EscrowKeyRef, *, changes: bool
) -> Iterator[AuditEvent]:
    paths = {
        f"{key.mount}/encrypt/{key.name}": AuditOperation.ENCRYPT,
        f"{key.mount}/decrypt/{key.name}": AuditOperation.DECRYPT,
    }
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            if not text.strip():
                continue
            entry = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise AuditLogError("not valid JSON", line_number=number) from None
        if not isinstance(entry, dict):
            raise AuditLogError("not a JSON object", line_number=number)
        request = entry.get("request")
        path = request.get("path") if isinstance(request, dict) else None
        if not isinstance(path, str):
            continue
        operation = paths.get(path)
        if operation is not None:
            yield _event(entry, operation, number)
            continue
        if not changes or _is_self_test(entry, path):
            continue
        kind = classify(path, _str_field(request, "operation"), key)
        if kind is not None:
            yield _change(entry, kind, path, number)


def parse_audit_lines(
    lines: Iterable[str | bytes],
    *,
    key: EscrowKeyRef = EscrowKeyRef(),  # noqa: B008 - frozen dataclass, safe default
) -> Iterator[EscrowAuditEvent]:
    """Escrow-key events from audit lines (1-based line numbers); other lines are skipped."""
    for event in _entries(lines, key, changes=False):
        assert isinstance(event, EscrowAuditEvent)
        yield event


def parse_audit_entries(
    lines: Iterable[str | bytes],
    *,
    key: EscrowKeyRef = EscrowKeyRef(),  # noqa: B008 - frozen dataclass, safe default
) -> Iterator[AuditEvent]:
    """Escrow-key events and key-server changes (``classify``) from audit lines, in order."""
    yield from _entries(lines, key, changes=True)


def read_audit_log(
    path: Path,
    *,
    key: EscrowKeyRef = EscrowKeyRef(),  # noqa: B008 - frozen dataclass, safe default
) -> Iterator[EscrowAuditEvent]:
    """``parse_audit_lines`` over a file, read line by line (audit logs grow large)."""
    with path.open("rb") as handle:
        yield from parse_audit_lines(handle, key=key)


def read_audit_entries(
    path: Path,
    *,
    key: EscrowKeyRef = EscrowKeyRef(),  # noqa: B008 - frozen dataclass, safe default
) -> Iterator[AuditEvent]:
    """``parse_audit_entries`` over a file, read line by line."""
    with path.open("rb") as handle:
        yield from parse_audit_entries(handle, key=key)
