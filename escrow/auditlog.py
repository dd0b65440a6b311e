"""Read the key server's file audit device: who encrypted or decrypted which message's key.

The audit device writes one JSON object per line, a "request" entry before
the key server acts and a "response" entry after. Sealpost's escrow mount is
tuned with ``audit_non_hmac_request_keys=["context"]``, so the derivation
context, the message id, appears in clear; data keys, ciphertexts and tokens
stay HMAC-ed. The auditor's reconciliation (spec P6) pairs every decrypt here
with a grant in the transparency log.

Lines about other paths are skipped; a line that is not a JSON object, or an
escrow entry without its identifying fields, raises AuditLogError naming the
line, because a log that cannot be read completely cannot be reconciled.
"""

from __future__ import annotations

import base64
import binascii
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


def _event(entry: dict[str, Any], operation: AuditOperation, line: int) -> EscrowAuditEvent:
    request = entry["request"]
    request_id = _str_field(request, "id")
    if not request_id:
        raise AuditLogError("escrow entry without a request id", line_number=line)
    kind = entry.get("type")
    if kind not in (AuditEntryType.REQUEST.value, AuditEntryType.RESPONSE.value):
        raise AuditLogError("escrow entry is neither request nor response", line_number=line)
    entry_type = AuditEntryType(kind)
    auth = entry.get("auth")
    auth = auth if isinstance(auth, dict) else {}
    policies = auth.get("policies")
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
        policies=tuple(p for p in policies if isinstance(p, str))
        if isinstance(policies, list)
        else (),
        institution_id=institution if isinstance(institution, str) else None,
        batch=batch,
        contexts=contexts,
        message_ids=tuple(_message_id(c) for c in contexts),
        outcome=outcome,
        error=error,
        remote_address=_str_field(request, "remote_address"),
    )


def parse_audit_lines(
    lines: Iterable[str | bytes],
    *,
    key: EscrowKeyRef = EscrowKeyRef(),  # noqa: B008 - frozen dataclass, safe default
) -> Iterator[EscrowAuditEvent]:
    """Escrow-key events from audit lines (1-based line numbers); other lines are skipped."""
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
        operation = paths.get(path) if isinstance(path, str) else None
        if operation is not None:
            yield _event(entry, operation, number)


def read_audit_log(
    path: Path,
    *,
    key: EscrowKeyRef = EscrowKeyRef(),  # noqa: B008 - frozen dataclass, safe default
) -> Iterator[EscrowAuditEvent]:
    """``parse_audit_lines`` over a file, read line by line (audit logs grow large)."""
    with path.open("rb") as handle:
        yield from parse_audit_lines(handle, key=key)
