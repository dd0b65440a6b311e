"""The escrow audit: checks that escrowed keys open the messages they were escrowed for.

A terminal could hand in an escrow blob that does not open to the message's data key,
and nothing would notice until a screener needed it. An escrow auditor asks the gateway
for a sample drawn from a fresh signed tree head (``AuditService/GrantEscrowAudit``);
every sampled message gets a logged grant of its own legal basis before its blob is
handed out. For each, this tool checks the grant and the escrow entry in the log,
decrypts the escrowed key at the key server with the auditor's own identity (so the
key server's audit log names them, and reconcile matches the decrypt to the grant),
and checks the key against the sender's commitment in the envelope's signed header.
It never opens content. docs/audit.md, "Escrow audit".
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sealpost.clients.audit.remote import trusted_log_key
from sealpost.clients.staff import StaffClient
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto import logentry
from sealpost.crypto.errors import CryptoError, ProofError
from sealpost.crypto.keyrecords import DirectoryPin
from sealpost.crypto.logaudit import TrustedLogKey
from sealpost.escrow.blob import EscrowedKey
from sealpost.escrow.errors import EscrowError
from sealpost.i18n import _
from sealpost.v1 import audit_pb2, common_pb2, log_pb2

Progress = Callable[[str], None]
_BASIS = common_pb2.LegalBasis.Name(common_pb2.LEGAL_BASIS_ESCROW_AUDIT)


class KeyDecrypter(Protocol):
    """The key server, as the escrow auditor's own identity (escrow.client.EscrowClient)."""

    def decrypt(self, message_id: bytes, ciphertext: str) -> bytes:
        """Recover one data key."""
        ...


@dataclass(frozen=True)
class CheckedKey:
    """One sampled message: which terminal escrowed it, and whether its key opens it."""

    message_id: bytes
    terminal: str
    ok: bool
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON object."""
        return {
            "messageId": self.message_id.hex(),
            "terminal": self.terminal,
            "ok": self.ok,
            "problem": self.problem,
        }


@dataclass
class EscrowAuditReport:
    """The sample, where it came from, and what each key showed."""

    sample_tree_size: int
    population: int
    checked: list[CheckedKey] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every sampled key opens its message."""
        return all(c.ok for c in self.checked)

    def by_terminal(self) -> dict[str, tuple[int, int]]:
        """(checked, bad) per terminal that escrowed a sampled message."""
        out: dict[str, tuple[int, int]] = {}
        for check in self.checked:
            seen, bad = out.get(check.terminal, (0, 0))
            out[check.terminal] = (seen + 1, bad + (not check.ok))
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object."""
        return {
            "ok": self.ok,
            "sampleTreeSize": self.sample_tree_size,
            "population": self.population,
            "terminals": {
                terminal: {"checked": seen, "bad": bad}
                for terminal, (seen, bad) in self.by_terminal().items()
            },
            "checked": [c.to_json() for c in self.checked],
        }

    def lines(self) -> list[str]:
        """A summary per terminal, then every bad key."""
        figures = {
            "checked": len(self.checked),
            "size": self.sample_tree_size,
            "population": self.population,
        }
        lines = [
            _(
                "OK: {checked} escrowed keys checked, drawn by the tree head of size {size} "
                "from {population} escrowed messages",
                **figures,
            )
            if self.ok
            else _(
                "FAIL: {checked} escrowed keys checked, drawn by the tree head of size {size} "
                "from {population} escrowed messages",
                **figures,
            )
        ]
        for terminal, (seen, bad) in self.by_terminal().items():
            lines.append(
                _(
                    "  {terminal}: {checked} checked, {bad} do not open their message",
                    terminal=terminal,
                    checked=seen,
                    bad=bad,
                )
            )
        lines += [
            _(
                "  BAD {message} escrowed by {terminal}: {problem}",
                message=c.message_id.hex(),
                terminal=c.terminal,
                problem=c.problem,
            )
            for c in self.checked
            if not c.ok
        ]
        return lines


def _verified_head(head: log_pb2.SignedTreeHead, key: TrustedLogKey) -> logentry.VerifiedTreeHead:
    assert key.key_id is not None
    return logentry.verify_tree_head(head, key.public_key, key.key_id)


def _entry(
    entry: log_pb2.LogEntry,
    proof: log_pb2.InclusionProof,
    head: logentry.VerifiedTreeHead,
    action: logentry.LogAction,
    message_id: bytes,
) -> logentry.LogEvent:
    logentry.verify_entry_inclusion(entry.leaf, entry.index, proof, head)
    event = logentry.decode_event(entry.leaf)
    if event.action is not action or event.message_id() != message_id.hex():
        raise ProofError(f"the log entry is not the {action.name} of this message")
    return event


def check_item(
    item: audit_pb2.EscrowAuditItem,
    *,
    sample_head: logentry.VerifiedTreeHead,
    grant_head: logentry.VerifiedTreeHead,
    keys: KeyDecrypter,
) -> CheckedKey:
    """Check one sampled message: the log entries first, then its key (no content opened).

    Raises CryptoError when the gateway's proofs do not check out (the audit cannot go
    on); returns a failed CheckedKey when the escrowed key itself is wrong.
    """
    message_id = item.message_id
    grant = _entry(
        item.grant_entry,
        item.grant_proof,
        grant_head,
        logentry.LogAction.REVIEW_GRANTED,
        message_id,
    )
    if grant.extra.get("legal_basis") != _BASIS:
        raise ProofError("the grant is not an escrow-audit grant")
    escrowed = _entry(
        item.escrow_entry,
        item.escrow_proof,
        sample_head,
        logentry.LogAction.MESSAGE_ESCROWED,
        message_id,
    )
    terminal = escrowed.actor
    try:
        blob = EscrowedKey.from_proto(item.escrow)
    except EscrowError as exc:
        return CheckedKey(message_id, terminal, False, f"the escrow blob is malformed: {exc}")
    digest = logentry.escrow_digest(blob.to_bytes()).hex()
    if not hmac.compare_digest(digest, escrowed.extra.get(logentry.ESCROW_DIGEST_FIELD, "")):
        raise ProofError("the escrow blob is not the one the log recorded for this message")
    if blob.message_id != message_id:
        return CheckedKey(message_id, terminal, False, "the escrow blob names another message")
    header = crypto_envelope.parse_header(item.envelope_header)
    if not hmac.compare_digest(header.message_id, message_id):
        raise ProofError("the envelope header is another message's")
    try:
        dek = keys.decrypt(message_id, blob.ciphertext)
    except EscrowError as exc:
        return CheckedKey(message_id, terminal, False, f"the key server cannot open it: {exc}")
    try:
        crypto_envelope.verify_dek_commitment(header, dek)
    except CryptoError:
        return CheckedKey(
            message_id, terminal, False, "the escrowed key is not the key the sender committed to"
        )
    finally:
        del dek
    return CheckedKey(message_id, terminal, True)


def run_escrow_audit(
    client: StaffClient,
    keys: KeyDecrypter,
    pin: DirectoryPin,
    count: int,
    progress: Progress | None = None,
) -> EscrowAuditReport:
    """Draw a sample from a fresh signed head and check every sampled key."""
    say = progress or (lambda _line: None)
    log_key = trusted_log_key(client, pin)
    fresh: audit_pb2.GetTreeHeadResponse = client.call(
        "audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True)
    )
    head = _verified_head(fresh.tree_head, log_key)
    say(
        _(
            "drawing {count} escrowed messages with the tree head of size {size}",
            count=count,
            size=head.tree_size,
        )
    )
    reply: audit_pb2.GrantEscrowAuditResponse = client.call(
        "audit",
        "GrantEscrowAudit",
        audit_pb2.GrantEscrowAuditRequest(tree_size=head.tree_size, count=count),
    )
    sample_head = _verified_head(reply.sample_head, log_key)
    if (sample_head.tree_size, sample_head.root_hash) != (head.tree_size, head.root_hash):
        raise ProofError("the gateway drew the sample from another head than the one asked for")
    grant_head = _verified_head(reply.tree_head, log_key)
    report = EscrowAuditReport(sample_head.tree_size, reply.population)
    for item in reply.items:
        report.checked.append(
            check_item(item, sample_head=sample_head, grant_head=grant_head, keys=keys)
        )
    say(_("{count} keys checked", count=len(report.checked)))
    return report
