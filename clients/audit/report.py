"""The periodic audit report of one institution: volumes, screening, verdicts, reviews, anomalies.

Figures about messages come from the gateway's tables; who reviewed what comes
from the transparency log (grants and verdicts are log events, which the
auditor can verify); anomalies come from the reconciliation with the key
server's audit log. The report names staff and case references, never message
content (the gateway holds none).

The report is written in the staff language (sealpost.i18n), dates as they are in the
Netherlands. What it gathers stays in English (the JSON of ``--json`` is for scripts);
only its rendering as blocks, Markdown and PDF speaks the reader's language.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

from babel.numbers import format_decimal
from sqlalchemy import Connection, or_, select

from sealpost._internal.stats import nearest_rank
from sealpost.clients.audit.database import AuditSourceError, all_events, events
from sealpost.clients.audit.decisions import Decisions, decision_times
from sealpost.clients.audit.document import Block, Bullets, Heading, Paragraph, Table
from sealpost.clients.audit.reconcile import (
    Grant,
    Reason,
    Reconciliation,
    grant_from_event,
    millis,
    utc,
)
from sealpost.crypto.logaudit import LogAuditReport
from sealpost.crypto.logentry import COMPLAINT_REFERENCE_FIELD, LogAction
from sealpost.gateway.principals import ALL_INSTITUTIONS
from sealpost.gateway.storage.schema import institutions, messages, retrospective_requests
from sealpost.i18n import _, _n, staff
from sealpost.v1 import common_pb2

_DAY: Final = timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """Whole UTC days from ``first`` to ``last``, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        """Refuse an empty or reversed period."""
        if self.last < self.first:
            raise ValueError(_("the period ends before it begins"))

    @property
    def start_ms(self) -> int:
        """The first millisecond of the period."""
        return millis(datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC))

    @property
    def end_ms(self) -> int:
        """The first millisecond after the period."""
        after = self.last + _DAY
        return millis(datetime(after.year, after.month, after.day, tzinfo=UTC))

    def contains(self, ms: int) -> bool:
        """True when ``ms`` lies in the period."""
        return self.start_ms <= ms < self.end_ms

    def label(self) -> str:
        """Short, for titles and file footers: "2026-03-01 to 2026-03-31 (UTC)"."""
        return _(
            "{first} to {last} (UTC)", first=self.first.isoformat(), last=self.last.isoformat()
        )

    def spoken(self) -> str:
        """In words, in the staff language: "1 March 2026 to 31 March 2026 (UTC)"."""
        words = staff()
        return _(
            "{first} to {last} (UTC)", first=words.date(self.first), last=words.date(self.last)
        )


@dataclass(frozen=True)
class Waits:
    """Waiting times in the screening queue, in seconds."""

    count: int
    median: float | None
    p90: float | None
    longest: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Waits:
        """Nearest-rank median and 90th percentile of ``seconds``."""
        if not seconds:
            return cls(0, None, None, None)
        ordered = sorted(seconds)
        return cls(
            len(ordered), nearest_rank(ordered, 0.5), nearest_rank(ordered, 0.9), ordered[-1]
        )


@dataclass(frozen=True)
class Volume:
    """Messages of one direction accepted in the period."""

    direction: str
    messages: int = 0
    privileged: int = 0
    screened: int = 0
    delivered: int = 0
    withheld: int = 0
    rejected: int = 0
    waiting: int = 0


@dataclass
class Officer:
    """What one staff member did in the period, from the transparency log."""

    name: str
    grants: int = 0
    released: int = 0
    withheld: int = 0
    retrospective_grants: int = 0


@dataclass(frozen=True)
class Withholdings:
    """One institution's withholdings of one reason category in the period, from the log."""

    institution: str
    #: The reason category, as the report names it ("public order").
    reason: str
    #: Withheld in the period (VERDICT_RECORDED, VERDICT_WITHHOLD).
    withheld: int = 0
    #: Released in the period after a complaint (whenever they were withheld).
    released_after_complaint: int = 0


@dataclass(frozen=True)
class ComplaintRelease:
    """A withheld message released after a complaint in the period: when, who, which decision."""

    time: str
    message: str
    released_by: str
    complaint_reference: str
    #: The reason category it had been withheld for.
    reason: str


@dataclass(frozen=True)
class Retrospective:
    """One retrospective request filed or decided in the period."""

    request_id: str
    detainee_id: str
    requested_by: str
    status: str
    decided_by: str
    case_reference: str
    filed: str
    covers: str


@dataclass(frozen=True)
class Anomaly:
    """Something the reconciliation flagged about this institution's messages."""

    kind: str
    time: str
    message: str
    who: str
    detail: str


@dataclass(frozen=True)
class LogCheck:
    """The transparency log's verification, as figures the report puts into words."""

    status: Literal["not_checked", "verified", "failed"]
    entries: int = 0
    heads: int = 0
    size: int = 0
    findings: int = 0
    #: The first finding: its kind, where, and its detail.
    first: str = ""


@dataclass(frozen=True)
class Coverage:
    """The span of the key-server audit log the reconciliation read."""

    first: datetime | None
    last: datetime | None
    leeway_s: float


@dataclass
class InstitutionReport:
    """Everything one report shows, ready for Markdown, PDF or JSON."""

    institution_id: str
    institution_name: str
    period: Period
    generated_at: datetime
    volumes: list[Volume]
    decided_waits: Waits
    open_waits: Waits
    verdicts: dict[str, int]
    withhold_reasons: dict[str, int]
    officers: list[Officer]
    retrospective: list[Retrospective]
    #: None when no key-server audit log was given.
    anomalies: list[Anomaly] | None
    reconciled: str = ""
    refused_decrypts: int = 0
    log_integrity: str = ""
    notes: list[str] = field(default_factory=list)
    #: The figures behind ``log_integrity`` and ``reconciled`` (English, for JSON); the
    #: document puts them into the reader's language. A report made without them shows
    #: those two sentences as written.
    log_check: LogCheck | None = None
    coverage: Coverage | None = None
    #: Withholdings per institution and reason category, with complaint releases.
    withholdings: list[Withholdings] = field(default_factory=list)
    complaint_releases: list[ComplaintRelease] = field(default_factory=list)
    #: Time to a decision per institution and screener, from the log alone.
    decisions: Decisions = field(default_factory=Decisions)
    #: Every institution the report covers (id -> name), in the order asked for; the
    #: report shows nothing of any other.
    institutions: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> Volume:
        """All directions together."""
        sums = Counter[str]()
        for volume in self.volumes:
            for key, value in asdict(volume).items():
                if isinstance(value, int):
                    sums[key] += value
        return Volume("all", **sums)

    @property
    def anomaly_counts(self) -> dict[str, int]:
        """How many anomalies of each kind, most frequent first (empty when not checked)."""
        counts = Counter(a.kind for a in self.anomalies or ())
        return dict(counts.most_common())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        data = asdict(self)
        del data["log_check"], data["coverage"]
        data["anomaly_counts"] = self.anomaly_counts
        data["period"] = {"from": self.period.first.isoformat(), "to": self.period.last.isoformat()}
        data["generated_at"] = self.generated_at.isoformat()
        data["decisions"]["measured_at"] = utc(self.decisions.measured_at_ms).isoformat()
        return data


# --------------------------------------------------------------------------- gathering


def _name(enum: Any, value: int | None, prefix: str) -> str:
    if value is None:
        return ""
    try:
        return str(enum.Name(value)).removeprefix(prefix).lower().replace("_", " ")
    except ValueError:
        return str(value)


_DIRECTIONS: Final = {
    common_pb2.DIRECTION_INBOUND: "inbound (to detainees)",
    common_pb2.DIRECTION_OUTBOUND: "outbound (from detainees)",
}


def _volumes(rows: Sequence[Any]) -> list[Volume]:
    out: list[Volume] = []
    for direction, label in _DIRECTIONS.items():
        mine = [r for r in rows if r.direction == direction]
        out.append(
            Volume(
                direction=label,
                messages=len(mine),
                privileged=sum(1 for r in mine if r.privileged),
                screened=sum(1 for r in mine if r.queued_at_ms is not None),
                delivered=sum(1 for r in mine if r.state == common_pb2.MESSAGE_STATE_DELIVERED),
                withheld=sum(1 for r in mine if r.state == common_pb2.MESSAGE_STATE_WITHHELD),
                rejected=sum(1 for r in mine if r.state == common_pb2.MESSAGE_STATE_REJECTED),
                waiting=sum(1 for r in mine if r.state == common_pb2.MESSAGE_STATE_QUEUED),
            )
        )
    return out


@dataclass
class _LogFacts:
    grants: list[Grant] = field(default_factory=list)
    #: message id -> (time_ms, actor, verdict name, reason name) of its first verdict.
    verdicts: dict[bytes, tuple[int, str, str, str]] = field(default_factory=dict)
    #: Every verdict event in the period about the institutions' messages:
    #: (actor, verdict name, reason name, message id).
    verdicts_in_period: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    #: Releases after a complaint in the period: (time_ms, actor, message id, reference).
    complaint_releases: list[tuple[int, str, bytes, str]] = field(default_factory=list)


def _log_facts(connection: Connection, own: Mapping[bytes, str], period: Period) -> _LogFacts:
    facts = _LogFacts()
    wanted = (LogAction.REVIEW_GRANTED, LogAction.VERDICT_RECORDED, LogAction.MESSAGE_RELEASED)
    for index, event in events(connection, wanted):
        message = event.message_id()
        if message is None or bytes.fromhex(message) not in own:
            continue
        mid = bytes.fromhex(message)
        if event.action is LogAction.MESSAGE_RELEASED:
            reference = event.extra.get(COMPLAINT_REFERENCE_FIELD)
            if reference is not None and period.contains(event.time_ms):
                facts.complaint_releases.append((event.time_ms, event.actor, mid, reference))
            continue
        if event.action is LogAction.REVIEW_GRANTED:
            grant = grant_from_event(index, event)
            if grant is not None and period.contains(grant.time_ms):
                facts.grants.append(grant)
            continue
        verdict = event.extra.get("verdict", "")
        reason = event.extra.get("reason", "")
        facts.verdicts.setdefault(mid, (event.time_ms, event.actor, verdict, reason))
        if period.contains(event.time_ms):
            facts.verdicts_in_period.append((event.actor, verdict, reason, mid))
    return facts


def _withholdings(
    own: Mapping[bytes, str], scope: Sequence[str], facts: _LogFacts
) -> tuple[list[Withholdings], list[ComplaintRelease]]:
    """Withholdings per institution and reason category, and the releases after a complaint."""
    withheld = Counter(
        (own[m], _reason_label(r))
        for _a, v, r, m in facts.verdicts_in_period
        if v == "VERDICT_WITHHOLD"
    )
    releases: list[ComplaintRelease] = []
    released = Counter[tuple[str, str]]()
    for time_ms, actor, mid, reference in facts.complaint_releases:
        reason = _reason_label(facts.verdicts.get(mid, (0, "", "", ""))[3])
        releases.append(
            ComplaintRelease(
                time=utc(time_ms).strftime("%Y-%m-%d %H:%M:%S"),
                message=mid.hex(),
                released_by=actor.removeprefix("staff:"),
                complaint_reference=reference,
                reason=reason,
            )
        )
        released[(own[mid], reason)] += 1
    order = {institution: n for n, institution in enumerate(scope)}
    keys = sorted(withheld.keys() | released.keys(), key=lambda k: (order[k[0]], k[1]))
    rows = [Withholdings(i, r, withheld[(i, r)], released[(i, r)]) for i, r in keys]
    return rows, releases


def _officers(facts: _LogFacts) -> list[Officer]:
    officers: dict[str, Officer] = {}

    def officer(actor: str) -> Officer:
        name = actor.removeprefix("staff:")
        return officers.setdefault(name, Officer(name))

    for grant in facts.grants:
        entry = officer(grant.actor)
        entry.grants += 1
        if grant.retrospective_request:
            entry.retrospective_grants += 1
    for actor, verdict, _reason, _message in facts.verdicts_in_period:
        entry = officer(actor)
        if verdict == "VERDICT_RELEASE":
            entry.released += 1
        elif verdict == "VERDICT_WITHHOLD":
            entry.withheld += 1
    return sorted(officers.values(), key=lambda o: (-o.grants, o.name))


def _waits(
    connection: Connection, scope: Sequence[str], period: Period, facts: _LogFacts, now_ms: int
) -> tuple[Waits, Waits]:
    rows = connection.execute(
        select(
            messages.c.message_id,
            messages.c.queued_at_ms,
            messages.c.state,
            messages.c.state_changed_at_ms,
        ).where(
            messages.c.institution_id.in_(scope),
            messages.c.queued_at_ms >= period.start_ms,
            messages.c.queued_at_ms < period.end_ms,
        )
    ).all()
    decided: list[float] = []
    waiting: list[float] = []
    horizon = min(now_ms, period.end_ms)
    for row in rows:
        verdict = facts.verdicts.get(bytes(row.message_id))
        if verdict is not None:
            decided.append(max(0, verdict[0] - row.queued_at_ms) / 1000)
        elif row.state == common_pb2.MESSAGE_STATE_QUEUED:
            waiting.append(max(0, horizon - row.queued_at_ms) / 1000)
        else:
            decided.append(max(0, row.state_changed_at_ms - row.queued_at_ms) / 1000)
    return Waits.of(decided), Waits.of(waiting)


def _retrospective(
    connection: Connection, scope: Sequence[str], period: Period
) -> list[Retrospective]:
    t = retrospective_requests.c
    in_period = [
        (t.created_at_ms >= period.start_ms) & (t.created_at_ms < period.end_ms),
        (t.decided_at_ms >= period.start_ms) & (t.decided_at_ms < period.end_ms),
    ]
    rows = connection.execute(
        select(retrospective_requests)
        .where(t.institution_id.in_(scope), or_(*in_period))
        .order_by(t.created_at_ms, t.id)
    ).all()
    return [
        Retrospective(
            request_id=row.id,
            detainee_id=row.detainee_id,
            requested_by=row.requested_by.removeprefix("staff:"),
            status=_name(common_pb2.RetrospectiveStatus, row.status, "RETROSPECTIVE_STATUS_"),
            decided_by=(row.decided_by or "").removeprefix("staff:"),
            case_reference=row.case_reference,
            filed=utc(row.created_at_ms).strftime("%Y-%m-%d %H:%M"),
            covers=f"{utc(row.period_start_ms):%Y-%m-%d} to {utc(row.period_end_ms):%Y-%m-%d}",
        )
        for row in rows
    ]


#: Decrypts that had a grant, but outside its bounded time or its legal basis (SPEC P14).
_OUTSIDE_GRANT: Final = frozenset(
    {
        Reason.GRANT_EXPIRED,
        Reason.NOT_QUEUED,
        Reason.LEFT_QUEUE,
        Reason.NO_APPROVAL,
        Reason.APPROVAL_EXPIRED,
    }
)


def _key_server_anomalies(reconciliation: Reconciliation, period: Period) -> list[Anomaly]:
    """Findings about the key server as a whole: unrecorded changes, disagreeing devices."""
    out: list[Anomaly] = []
    changes = reconciliation.changes
    for item in changes.unmatched if changes is not None else ():
        change = item.change
        if period.contains(change.time_ms):
            out.append(
                Anomaly(
                    kind="key-server change not recorded",
                    time=change.time.strftime("%Y-%m-%d %H:%M:%S"),
                    message=f"{change.kind.value} {change.path}",
                    who=change.who,
                    detail=f"{item.reason.value}{': ' + item.detail if item.detail else ''} "
                    f"[{change.source}]",
                )
            )
    devices = reconciliation.devices
    for finding in devices.findings if devices is not None else ():
        if period.contains(int(finding.time.timestamp() * 1000)):
            missing = ", ".join(finding.missing_from)
            out.append(
                Anomaly(
                    kind="audit devices disagree",
                    time=finding.time.strftime("%Y-%m-%d %H:%M:%S"),
                    message=finding.what,
                    who=", ".join(finding.present_in),
                    detail=(f"missing from {missing}" if missing else "described differently")
                    + f" [request {finding.request_id}, {finding.entry_type.value}]",
                )
            )
    return out


def _anomalies(
    reconciliation: Reconciliation,
    own: Collection[bytes],
    known: set[bytes],
    period: Period,
) -> tuple[list[Anomaly], int]:
    """The reconciliation's findings about this institution (or the key server) in the period.

    Decrypts without a grant, or outside their grant, of the institution's messages (or
    of no known message); grants never used; escrows of its privileged messages; and
    the key server's own findings, which concern every institution.
    """
    out: list[Anomaly] = []
    for item in reconciliation.unmatched:
        decrypt = item.decrypt
        if not period.contains(decrypt.time_ms):
            continue
        mid = decrypt.message_id
        if mid is not None and mid in known and mid not in own:
            continue
        where = "" if mid is None or mid in known else " (not a message of this gateway)"
        out.append(
            Anomaly(
                kind="decrypt outside its grant"
                if item.reason in _OUTSIDE_GRANT
                else "decrypt without a grant",
                time=decrypt.time.strftime("%Y-%m-%d %H:%M:%S"),
                message=(mid.hex() if mid else "unreadable") + where,
                who=decrypt.who,
                detail=f"{item.reason.value}{': ' + item.detail if item.detail else ''} "
                f"[{decrypt.source}]",
            )
        )
    for grant in reconciliation.unused_grants:
        if grant.message_id in own and period.contains(grant.time_ms):
            out.append(
                Anomaly(
                    kind="grant never used",
                    time=utc(grant.time_ms).strftime("%Y-%m-%d %H:%M:%S"),
                    message=grant.message_id.hex(),
                    who=grant.officer,
                    detail=f"grant {grant.grant_id}, log index {grant.log_index}",
                )
            )
    for escrow in reconciliation.privileged_escrows:
        if escrow.message_id in own and period.contains(escrow.time_ms):
            out.append(
                Anomaly(
                    kind="escrow of a privileged message",
                    time=escrow.time.strftime("%Y-%m-%d %H:%M:%S"),
                    message=escrow.message_id.hex(),
                    who=escrow.display_name or "(no identity)",
                    detail=f"privileged mail carries no escrow [{escrow.source}]",
                )
            )
    out += _key_server_anomalies(reconciliation, period)
    refused = sum(
        1
        for d in reconciliation.refused
        if period.contains(d.time_ms) and (d.message_id is None or d.message_id in own)
    )
    return out, refused


def _log_check(log: LogAuditReport | None) -> LogCheck:
    if log is None:
        return LogCheck("not_checked")
    if log.ok:
        return LogCheck("verified", log.leaf_count, log.valid_head_count, log.attested_size)
    first = log.first
    assert first is not None
    return LogCheck(
        "failed",
        log.leaf_count,
        log.valid_head_count,
        log.attested_size,
        len(log.findings),
        f"{first.kind.value} at {first.where()}: {first.detail}",
    )


def _integrity(check: LogCheck) -> str:
    """The log's verification in English, as JSON keeps it."""
    if check.status == "not_checked":
        return (
            "Not checked in this run: pass --log-key or --directory-key to verify the "
            "transparency log first."
        )
    if check.status == "verified":
        return (
            f"Verified: {check.entries} log entries; the stored entries reproduce all "
            f"{check.heads} signed tree heads (up to size {check.size}); no fork."
        )
    return f"FAILED: {check.findings} finding(s); first: {check.first}"


def _integrity_words(check: LogCheck) -> tuple[str, str]:
    """The log's verification in the staff language: a word for the summary, a sentence."""
    if check.status == "not_checked":
        return _("Not checked"), _(
            "Not checked in this run: pass --log-key or --directory-key to verify the "
            "transparency log first."
        )
    if check.status == "verified":
        return _("Verified"), _(
            "Verified: {entries} log entries; the stored entries reproduce all {heads} signed "
            "tree heads (up to size {size}); no fork.",
            entries=check.entries,
            heads=check.heads,
            size=check.size,
        )
    return _("FAILED"), _n(
        "FAILED: {count} finding; first: {first}",
        "FAILED: {count} findings; first: {first}",
        check.findings,
        first=check.first,
    )


def _reconciled(coverage: Coverage) -> str:
    """What the reconciliation read, in English, as JSON keeps it."""
    if coverage.first is None or coverage.last is None:
        return "the key-server audit log holds no escrow entries"
    return (
        f"key-server audit log from {coverage.first:%Y-%m-%d %H:%M:%S} to "
        f"{coverage.last:%Y-%m-%d %H:%M:%S} UTC, clock leeway {coverage.leeway_s:g} s"
    )


def _scope(connection: Connection, asked: str | Sequence[str]) -> dict[str, str]:
    """The institutions a report covers (id -> name), each known to the database."""
    ids = [asked] if isinstance(asked, str) else list(dict.fromkeys(asked))
    if not ids:
        raise AuditSourceError(_("name at least one institution"))
    names = {
        row.id: row.name
        for row in connection.execute(
            select(institutions.c.id, institutions.c.name).where(institutions.c.id.in_(ids))
        )
    }
    for institution_id in ids:
        if institution_id not in names:
            raise AuditSourceError(
                _("no institution {institution} in the database", institution=repr(institution_id))
            )
    return {institution_id: names[institution_id] for institution_id in ids}


def gather(
    connection: Connection,
    scope: str | Sequence[str],
    period: Period,
    *,
    now: datetime,
    reconciliation: Reconciliation | None = None,
    log: LogAuditReport | None = None,
) -> InstitutionReport:
    """Collect the report's figures from the database (read only) and the given checks.

    ``scope`` is the institution, or the institutions, the report covers: nothing of any
    other institution is counted or named.
    """
    names = _scope(connection, scope)
    ids = list(names)
    rows = connection.execute(
        select(
            messages.c.message_id,
            messages.c.direction,
            messages.c.privileged,
            messages.c.state,
            messages.c.queued_at_ms,
        ).where(
            messages.c.institution_id.in_(ids),
            messages.c.accepted_at_ms >= period.start_ms,
            messages.c.accepted_at_ms < period.end_ms,
        )
    ).all()
    own = {
        bytes(row.message_id): row.institution_id
        for row in connection.execute(
            select(messages.c.message_id, messages.c.institution_id).where(
                messages.c.institution_id.in_(ids)
            )
        )
    }
    facts = _log_facts(connection, own, period)
    decided, waiting = _waits(connection, ids, period, facts, millis(now))
    decisions = decision_times(
        all_events(connection), ids, period.start_ms, period.end_ms, millis(now)
    )
    verdicts = Counter(v for _a, v, _r, _m in facts.verdicts_in_period)
    reasons = Counter(r for _a, v, r, _m in facts.verdicts_in_period if v == "VERDICT_WITHHOLD")
    anomalies: list[Anomaly] | None = None
    coverage: Coverage | None = None
    reconciled = ""
    refused = 0
    if reconciliation is not None:
        known = _known_messages(connection, reconciliation)
        anomalies, refused = _anomalies(reconciliation, own, known, period)
        covered = reconciliation.period
        coverage = Coverage(
            covered[0] if covered else None,
            covered[1] if covered else None,
            reconciliation.leeway_ms / 1000,
        )
        reconciled = _reconciled(coverage)
    check = _log_check(log)
    withholdings, complaint_releases = _withholdings(own, ids, facts)
    return InstitutionReport(
        institution_id=", ".join(ids),
        institution_name=", ".join(names.values()),
        period=period,
        generated_at=now,
        volumes=_volumes(rows),
        decided_waits=decided,
        open_waits=waiting,
        verdicts={_verdict_label(k): v for k, v in sorted(verdicts.items())},
        withhold_reasons={_reason_label(k): v for k, v in sorted(reasons.items())},
        officers=_officers(facts),
        retrospective=_retrospective(connection, ids, period),
        anomalies=anomalies,
        reconciled=reconciled,
        refused_decrypts=refused,
        log_integrity=_integrity(check),
        log_check=check,
        coverage=coverage,
        withholdings=withholdings,
        complaint_releases=complaint_releases,
        decisions=decisions,
        institutions=names,
    )


def _reason_label(name: str) -> str:
    """``WITHHOLD_REASON_PUBLIC_ORDER`` as "public order"."""
    return name.removeprefix("WITHHOLD_REASON_").lower().replace("_", " ") or "unspecified"


def _verdict_label(name: str) -> str:
    return {"VERDICT_RELEASE": "released", "VERDICT_WITHHOLD": "withheld"}.get(name, name)


def _known_messages(connection: Connection, reconciliation: Reconciliation) -> set[bytes]:
    """Which message ids named by unmatched decrypts exist in this gateway at all."""
    wanted = list({u.decrypt.message_id for u in reconciliation.unmatched if u.decrypt.message_id})
    found: set[bytes] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            bytes(m)
            for m in connection.execute(
                select(messages.c.message_id).where(messages.c.message_id.in_(chunk))
            ).scalars()
        )
    return found


# --------------------------------------------------------------------------- the document


def duration(seconds: float | None) -> str:
    """A waiting time for people: "45 s", "12 min", "3 h 05 min", "2 d 4 h"."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return _("{seconds} s", seconds=s)
    if s < 3600:
        return _("{minutes} min", minutes=s // 60)
    if s < 86400:
        return _("{hours} h {minutes:02d} min", hours=s // 3600, minutes=s % 3600 // 60)
    return _("{days} d {hours} h", days=s // 86400, hours=s % 86400 // 3600)


def _share(part: int, whole: int) -> str:
    if not whole:
        return _("{part} of {whole}", part=part, whole=0)
    percent = format_decimal(100 * part / whole, "0.0", locale=staff().language)
    return _("{part} of {whole} ({percent}%)", part=part, whole=whole, percent=percent)


def _direction_words(direction: str) -> str:
    """A volume's direction, as gathered, in the staff language."""
    words = {
        "inbound (to detainees)": _("inbound (to detainees)"),
        "outbound (from detainees)": _("outbound (from detainees)"),
        "all": _("all"),
    }
    return words.get(direction, direction)


def _verdict_words(verdict: str) -> str:
    """A verdict label, as gathered, in the staff language."""
    return {"released": _("released"), "withheld": _("withheld")}.get(verdict, verdict)


def _reason_words(reason: str) -> str:
    """A withholding reason, as gathered, in the staff language."""
    words = {
        "order and security": _("order and security"),
        "public order": _("public order"),
        "crime prevention": _("crime prevention"),
        "victim protection": _("victim protection"),
        "unspecified": _("unspecified"),
    }
    return words.get(reason, reason)


def _status_words(status: str) -> str:
    """A retrospective request's status, as gathered, in the staff language."""
    words = {
        "pending": _("pending"),
        "approved": _("approved"),
        "rejected": _("rejected"),
        "expired": _("expired"),
        "unspecified": _("unspecified"),
    }
    return words.get(status, status)


def _kind_words(kind: str) -> str:
    """An anomaly's kind, as gathered, in the staff language."""
    words = {
        "decrypt without a grant": _("decrypt without a grant"),
        "decrypt outside its grant": _("decrypt outside its grant"),
        "grant never used": _("grant never used"),
        "escrow of a privileged message": _("escrow of a privileged message"),
        "key-server change not recorded": _("key-server change not recorded"),
        "audit devices disagree": _("audit devices disagree"),
    }
    return words.get(kind, kind)


def _log_words(report: InstitutionReport) -> tuple[str, str]:
    """The log's verification: a word for the summary and a sentence."""
    if report.log_check is not None:
        return _integrity_words(report.log_check)
    return report.log_integrity.split(":")[0], report.log_integrity


def _reconciled_words(report: InstitutionReport) -> str:
    """What the reconciliation read, as a sentence in the staff language."""
    coverage = report.coverage
    if coverage is None:
        return _("Checked against the {what}.", what=report.reconciled)
    if coverage.first is None or coverage.last is None:
        return _("Checked against the key-server audit log, which holds no escrow entries.")
    words = staff()
    return _(
        "Checked against the key-server audit log from {first} to {last}, clock leeway {leeway} s.",
        first=words.datetime(coverage.first),
        last=words.datetime(coverage.last),
        leeway=format_decimal(coverage.leeway_s, locale=words.language),
    )


def _summary(report: InstitutionReport) -> Table:
    total = report.total
    unscreenable = total.messages - total.privileged
    anomalies = (
        _("not checked (no key-server audit log given)")
        if report.anomalies is None
        else str(len(report.anomalies))
        + (
            " ("
            + ", ".join(f"{n} {_kind_words(kind)}" for kind, n in report.anomaly_counts.items())
            + ")"
            if report.anomalies
            else ""
        )
    )
    verdicts = ", ".join(f"{v} {_verdict_words(k)}" for k, v in report.verdicts.items())
    rows = (
        (_("Messages accepted"), str(total.messages)),
        (_("Privileged (lawyers; cannot be screened)"), str(total.privileged)),
        (_("Screened (entered the screening queue)"), _share(total.screened, unscreenable)),
        (_("Verdicts"), verdicts or _("none")),
        (_("Released after a complaint"), str(len(report.complaint_releases))),
        (_("Review grants"), str(sum(o.grants for o in report.officers))),
        (_("Still waiting for a verdict"), str(report.open_waits.count)),
        (_("Retrospective requests"), str(len(report.retrospective))),
        (_("Anomalies"), anomalies),
        (_("Transparency log"), _log_words(report)[0]),
    )
    return Table((_("Item"), _("Value")), rows, (3, 4))


def _named(institution_id: str, name: str) -> str:
    return institution_id if name == institution_id else f"{name} ({institution_id})"


def title(report: InstitutionReport) -> str:
    """The report's title, in the staff language."""
    if len(report.institutions) > 1:
        return _(
            "Sealpost audit report: {institution}",
            institution=", ".join(_named(i, n) for i, n in report.institutions.items()),
        )
    if report.institution_name != report.institution_id:
        return _(
            "Sealpost audit report: {name} ({institution})",
            name=report.institution_name,
            institution=report.institution_id,
        )
    return _("Sealpost audit report: {institution}", institution=report.institution_id)


def blocks(report: InstitutionReport) -> list[Block]:
    """The report as document blocks (Markdown and PDF are rendered from these)."""
    out: list[Block] = [
        Heading(1, title(report)),
        Paragraph(
            _(
                "Period: {period}. Produced {produced} (Dutch time) with sealpost audit report, "
                "from the gateway's database (read only), its transparency log and the key "
                "server's audit log. It names staff and case references but never message "
                "content.",
                period=report.period.spoken(),
                produced=staff().datetime(report.generated_at),
            )
        ),
        Heading(2, _("Summary")),
        _summary(report),
        Heading(2, _("Volumes")),
        Table(
            (
                _("Direction"),
                _("Messages"),
                _("Privileged"),
                _("Screened"),
                _("Delivered"),
                _("Withheld"),
                _("Rejected"),
                _("Waiting"),
            ),
            tuple(
                (
                    _direction_words(v.direction),
                    str(v.messages),
                    str(v.privileged),
                    str(v.screened),
                    str(v.delivered),
                    str(v.withheld),
                    str(v.rejected),
                    str(v.waiting),
                )
                for v in [*report.volumes, report.total]
            ),
            (4, 2, 2, 2, 2, 2, 2, 2),
        ),
        Heading(2, _("Screening queue waiting times")),
        Paragraph(
            _(
                "From entering the queue to the verdict, for messages queued in the period; "
                "for messages still waiting, up to the end of the period or the time of this "
                "report, whichever comes first."
            )
        ),
        Table(
            ("", _("Messages"), _("Median"), _("90th percentile"), _("Longest")),
            tuple(
                (label, str(w.count), duration(w.median), duration(w.p90), duration(w.longest))
                for label, w in (
                    (_("decided"), report.decided_waits),
                    (_("still waiting"), report.open_waits),
                )
            ),
            (3, 2, 2, 2, 2),
        ),
    ]
    out += _decision_blocks(report)
    out.append(Heading(2, _("Verdicts")))
    verdict_rows = [(_verdict_words(k), str(v)) for k, v in report.verdicts.items()]
    verdict_rows += [
        (_("withheld: {reason}", reason=_reason_words(k)), str(v))
        for k, v in report.withhold_reasons.items()
    ]
    out.append(
        Table((_("Verdict"), _("Count")), tuple(verdict_rows), (4, 1))
        if verdict_rows
        else Paragraph(_("No verdicts were recorded in the period."))
    )
    out += _withholding_blocks(report)
    out.append(Heading(2, _("Reviews per officer")))
    out.append(
        Table(
            (_("Officer"), _("Grants"), _("Released"), _("Withheld"), _("Retrospective grants")),
            tuple(
                (
                    o.name,
                    str(o.grants),
                    str(o.released),
                    str(o.withheld),
                    str(o.retrospective_grants),
                )
                for o in report.officers
            ),
            (4, 2, 2, 2, 3),
        )
        if report.officers
        else Paragraph(_("No officer opened a message of this institution in the period."))
    )
    out.append(Heading(2, _("Retrospective requests")))
    out.append(
        Table(
            (
                _("Request"),
                _("Detainee"),
                _("Filed by"),
                _("Status"),
                _("Decided by"),
                _("Case"),
                _("Filed"),
                _("Covers"),
            ),
            tuple(
                (
                    r.request_id,
                    r.detainee_id,
                    r.requested_by,
                    _status_words(r.status),
                    r.decided_by or "-",
                    r.case_reference,
                    r.filed,
                    r.covers,
                )
                for r in report.retrospective
            ),
        )
        if report.retrospective
        else Paragraph(_("No retrospective request was filed or decided in the period."))
    )
    out += _anomaly_blocks(report)
    out += [
        Heading(2, _("Transparency log")),
        Paragraph(_log_words(report)[1]),
        Heading(2, _("How to read this report")),
        Bullets(
            (
                _(
                    "Screened: non-privileged messages that entered the screening queue (regime "
                    "or screening order). Privileged messages carry no escrow and cannot be "
                    "opened."
                ),
                _(
                    "Grants and verdicts are counted from the transparency log, which the "
                    "auditor verifies with sealpost audit verify; volumes come from the message "
                    "table."
                ),
                _(
                    "A decrypt without a grant means the key server decrypted a message key for "
                    "someone the gateway never granted access to that message: investigate it."
                ),
                _(
                    "A decrypt outside its grant came more than 15 minutes after the grant, or "
                    "after its legal basis ended (the message left the screening queue, or the "
                    "retrospective approval expired): the grant no longer covered it."
                ),
                _(
                    "A grant never used is informational: an officer was granted access but the "
                    "key server shows no decrypt (for example, the review was abandoned)."
                ),
                _(
                    "A key-server change not recorded changed the escrow key, a policy, a login, "
                    "a token or an audit device without an administrative action in the log; an "
                    "escrow of a privileged message should never exist; audit devices that "
                    "disagree mean one copy of the key server's audit log lacks an entry."
                ),
                _("See docs/audit.md for the checks and their limits."),
            )
        ),
    ]
    return out


def _institution_words(institution: str) -> str:
    """An institution's id, or the words for all of the report's institutions together."""
    return _("all institutions") if institution == ALL_INSTITUTIONS else institution


def _decision_blocks(report: InstitutionReport) -> list[Block]:
    """Time to a decision per institution (and all together) and per screener."""
    decisions = report.decisions
    out: list[Block] = [
        Heading(2, _("Time to a decision")),
        Paragraph(
            _(
                "Verdicts recorded in the period, from the message entering the screening "
                "queue to its verdict, counted from the transparency log alone; the screener "
                "is the verdict's author. Still undecided: messages in the queue without a "
                "verdict at {moment} (Dutch time: the end of the period, or the time of this "
                "report if that comes first), however long ago they were queued.",
                moment=staff().datetime(utc(decisions.measured_at_ms)),
            )
        ),
    ]
    rows = [*decisions.institutions]
    if decisions.national is not None:
        rows.append(decisions.national)
    out.append(
        Table(
            (
                _("Institution"),
                _("Verdicts"),
                _("Median"),
                _("90th percentile"),
                _("Still undecided"),
                _("Oldest undecided"),
            ),
            tuple(
                (
                    _institution_words(d.institution),
                    str(d.verdicts),
                    duration(d.median_s),
                    duration(d.p90_s),
                    str(d.undecided),
                    duration(d.oldest_undecided_s),
                )
                for d in rows
            ),
            (4, 2, 2, 2, 2, 2),
        )
    )
    out.append(Heading(3, _("Per screener")))
    out.append(
        Table(
            (_("Screener"), _("Institution"), _("Verdicts"), _("Median"), _("90th percentile")),
            tuple(
                (
                    s.screener,
                    s.institution,
                    str(s.verdicts),
                    duration(s.median_s),
                    duration(s.p90_s),
                )
                for s in decisions.screeners
            ),
            (4, 3, 2, 2, 2),
        )
        if decisions.screeners
        else Paragraph(_("No screener recorded a verdict in the period."))
    )
    return out


def _withholding_blocks(report: InstitutionReport) -> list[Block]:
    out: list[Block] = [
        Heading(2, _("Withholdings and complaints")),
        Paragraph(
            _(
                "Per institution and reason category: messages withheld in the period, and "
                "withheld messages released in the period after a successful complaint "
                "(whenever they were withheld); counted from the transparency log."
            )
        ),
    ]
    if not report.withholdings:
        out.append(
            Paragraph(_("No message was withheld or released after a complaint in the period."))
        )
        return out
    out.append(
        Table(
            (
                _("Institution"),
                _("Reason category"),
                _("Withheld"),
                _("Released after a complaint"),
            ),
            tuple(
                (
                    w.institution,
                    _reason_words(w.reason),
                    str(w.withheld),
                    str(w.released_after_complaint),
                )
                for w in report.withholdings
            ),
            (3, 4, 2, 3),
        )
    )
    if report.complaint_releases:
        out.append(
            Bullets(
                tuple(
                    _(
                        "{time} UTC: message {message} ({reason}) released by {officer} after "
                        "complaint {reference}",
                        time=r.time,
                        message=r.message,
                        reason=_reason_words(r.reason),
                        officer=r.released_by,
                        reference=r.complaint_reference,
                    )
                    for r in report.complaint_releases
                )
            )
        )
    return out


def _anomaly_blocks(report: InstitutionReport) -> list[Block]:
    out: list[Block] = [Heading(2, _("Anomalies from the reconciliation"))]
    if report.anomalies is None:
        out.append(
            Paragraph(
                _(
                    "Not checked: no key-server audit log was given (--audit-log). Without it "
                    "this report cannot show decrypts made outside the gateway."
                )
            )
        )
        return out
    out.append(Paragraph(_reconciled_words(report)))
    if report.anomalies:
        out.append(
            Table(
                (_("Kind"), _("Count")),
                tuple((_kind_words(kind), str(n)) for kind, n in report.anomaly_counts.items()),
            )
        )
        # A list rather than a table: message ids and identities stay whole on the page.
        out.append(
            Bullets(
                tuple(
                    _(
                        "{time} UTC, {kind}: message {message}; {who}; {detail}",
                        time=a.time,
                        kind=_kind_words(a.kind),
                        message=a.message,
                        who=a.who,
                        detail=a.detail,
                    )
                    for a in report.anomalies
                )
            )
        )
    else:
        out.append(
            Paragraph(
                _(
                    "None found: every decrypt matches a grant within its time and legal basis, "
                    "every grant was used, every key-server change is recorded, no privileged "
                    "message was escrowed, and the audit devices agree."
                )
            )
        )
    if report.refused_decrypts:
        out.append(
            Paragraph(
                _(
                    "The key server refused {count} decrypt request(s) about this institution's "
                    "messages (informational).",
                    count=report.refused_decrypts,
                )
            )
        )
    return out
