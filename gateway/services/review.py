"""ReviewService: the screening queue, lawful access grants, verdicts and retrospective requests.

A screener may open a message only with a legal basis (gateway/policy.py,
SPEC P5), never a privileged one (P4). The grant is appended to the
transparency log and included in a signed tree head, in the same transaction,
before the escrowed key is returned (P6); the review tool then asks the key
server to decrypt with the screener's own identity, so the key server's audit
log names the person too. Retrospective access needs a second officer's
approval, never one's own, and is time-bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy import Connection

from sealpost._internal.stats import spread
from sealpost.crypto.logentry import (
    COMPLAINT_REFERENCE_FIELD,
    WATCH_LIST_OPERATION,
    LogAction,
    watch_list_digest,
)
from sealpost.gateway import policy, states, store, translog
from sealpost.gateway.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from sealpost.gateway.principals import Principal
from sealpost.gateway.services import common
from sealpost.gateway.services.context import (
    CALLER,
    Context,
    millis,
    page_after,
    page_size,
    timestamp,
)
from sealpost.gateway.storage import schema
from sealpost.v1 import common_pb2, envelope_pb2, keys_pb2, log_pb2, review_pb2

#: Longest time an approval of a retrospective request stays valid.
MAX_APPROVAL_MS: Final = 30 * 24 * 3600 * 1000
#: Longest period a retrospective request may cover.
MAX_PERIOD_MS: Final = 366 * 24 * 3600 * 1000
#: The longest complaint reference (a case number, not a decision's text).
COMPLAINT_MAX_CHARS: Final = 200
DIRECTIONS: Final = {
    common_pb2.DIRECTION_INBOUND: [policy.INBOUND],
    common_pb2.DIRECTION_OUTBOUND: [policy.OUTBOUND],
    common_pb2.DIRECTION_BOTH: [policy.INBOUND, policy.OUTBOUND],
}


def _scope(caller: Principal) -> frozenset[str] | None:
    return None if caller.national else caller.institutions


def _basis_name(basis: int) -> str:
    return common_pb2.LegalBasis.Name(basis)  # type: ignore[arg-type]


class ReviewService:
    """The screeners' and approvers' API."""

    def __init__(self, ctx: Context) -> None:
        """Serve with the shared context."""
        self.ctx = ctx

    # ----------------------------------------------------------------- queue

    def _queue_item(
        self, connection: Connection, row: store.MessageRow, now: int
    ) -> review_pb2.QueueItem:
        detainee = store.detainee(connection, row.detainee_id)
        basis = (
            common_pb2.LEGAL_BASIS_REGIME_SCREEN_ALL
            if detainee.policy == policy.SCREEN_ALL
            else common_pb2.LEGAL_BASIS_SCREENING_ORDER
        )
        queued = row.queued_at_ms or row.accepted_at_ms
        return review_pb2.QueueItem(
            message_id=row.message_id,
            detainee_id=row.detainee_id,
            institution_id=row.institution_id,
            direction=row.direction,
            accepted_at=timestamp(row.accepted_at_ms),
            waited_seconds=max(0, (now - queued) // 1000),
            legal_basis=basis,
            triage_seal=row.triage_seal or "",
        )

    async def ListQueue(  # noqa: N802 - gRPC method name
        self, request: review_pb2.ListQueueRequest
    ) -> review_pb2.ListQueueResponse:
        """Queued messages in the caller's institutions, oldest first, with their wait."""
        caller = CALLER.get()
        scope = frozenset({request.institution_id}) if request.institution_id else _scope(caller)
        limit = page_size(request.page.page_size)
        after = _queue_position(request.page.page_token)
        now = self.ctx.clock()

        def list_queue(connection: Connection) -> review_pb2.ListQueueResponse:
            rows = store.queue(connection, scope, request.detainee_id, limit, after)
            return review_pb2.ListQueueResponse(
                items=[self._queue_item(connection, r, now) for r in rows],
                next_page_token=(
                    f"{rows[-1].queued_at_ms}.{rows[-1].seq}" if len(rows) == limit else ""
                ),
            )

        return await self.ctx.db.aread(list_queue)

    # ----------------------------------------------------------------- grants

    async def GrantAccess(  # noqa: N802
        self, request: review_pb2.GrantAccessRequest
    ) -> review_pb2.GrantAccessResponse:
        """Check the legal basis, log the grant in a signed head, then hand out the escrow."""
        caller = CALLER.get()
        message_id = common.message_id(request.message_id)
        retro_id = request.retrospective_request_id
        now = self.ctx.clock()
        grant_id = store.new_id("gr")

        def grant(connection: Connection) -> review_pb2.GrantAccessResponse:
            row = store.message(connection, message_id)
            detainee = store.detainee(connection, row.detainee_id)
            window = None
            if retro_id:
                retro = store.retrospective(connection, retro_id)
                if retro.requested_by != caller.actor:
                    raise PermissionDenied("only the officer who filed the request may use it")
                window = store.retrospective_windows(connection, retro_id, row.detainee_id)
                if window is None:
                    raise PermissionDenied("the retrospective request is about another detainee")
            basis = policy.review_basis(
                privileged=row.privileged,
                state=row.state,
                regime_policy=detainee.policy,
                direction=row.direction,
                accepted_at_ms=row.accepted_at_ms,
                now_ms=now,
                orders=store.order_windows(connection, row.detainee_id),
                retrospective=window,
            )
            if row.escrow is None:
                raise FailedPrecondition("the message has no escrowed key")
            extra = {
                "legal_basis": _basis_name(basis),
                "key_server_entity": caller.staff_subject or "unknown",
            }
            if retro_id:
                extra["retrospective_request"] = retro_id
            appended = store.log(
                connection,
                LogAction.REVIEW_GRANTED,
                caller.actor,
                now,
                [
                    ("message", message_id.hex()),
                    ("grant", grant_id),
                    ("detainee", row.detainee_id),
                ],
                scope=frozenset({row.institution_id}),
                **extra,
            )
            store.add_grant(
                connection,
                message_id,
                caller.actor,
                basis,
                retro_id or None,
                now,
                appended.index,
                grant_id,
            )
            # SPEC P6: the grant is in a signed head before the escrow leaves the gateway.
            head = translog.sign_head(
                connection, self.ctx.directory.keys.log, self.ctx.directory.log.id, now
            )
            size = log_pb2.TreeHead.FromString(head.tree_head).tree_size
            proof = translog.inclusion_proof(connection, appended.index, size)
            (sender,) = store.key_records_by_id(connection, [row.sender_key_id])
            display = store.account(connection, row.account_id).display_name
            return review_pb2.GrantAccessResponse(
                grant_id=grant_id,
                legal_basis=basis,  # type: ignore[arg-type]
                envelope=envelope_pb2.Envelope.FromString(row.envelope),
                escrow=envelope_pb2.EscrowBlob.FromString(row.escrow),
                sender_key=keys_pb2.KeyRecord.FromString(sender.record),
                grant_entry=appended.entry(),
                tree_head=head,
                inclusion_proof=proof,
                sender_display_name=display if row.direction == policy.INBOUND else "",
                detainee_id=row.detainee_id,
                direction=row.direction,
                accepted_at_ms=row.accepted_at_ms,
            )

        return await self.ctx.write(grant)

    async def RecordVerdict(  # noqa: N802
        self, request: review_pb2.RecordVerdictRequest
    ) -> review_pb2.RecordVerdictResponse:
        """Release a queued message, or withhold it with a reason code and a note."""
        caller = CALLER.get()
        message_id = common.message_id(request.message_id)
        verdict = common.enum_value(request.verdict, common_pb2.Verdict, "verdict")
        note = common.text(request.note, "note", max_chars=2000, required=False)
        if verdict == common_pb2.VERDICT_WITHHOLD:
            common.enum_value(request.reason, common_pb2.WithholdReason, "reason")
        elif request.reason:
            raise InvalidArgument("a reason is given only when withholding")
        now = self.ctx.clock()

        def record(connection: Connection) -> int:
            row = store.message(connection, message_id)
            if row.state != states.QUEUED:
                raise FailedPrecondition("only messages in the screening queue get a verdict")
            if not store.has_grant(connection, message_id, caller.actor):
                raise PermissionDenied("open the message (a logged grant) before deciding on it")
            target = states.RELEASED if verdict == common_pb2.VERDICT_RELEASE else states.WITHHELD
            subjects = [("message", message_id.hex()), ("detainee", row.detainee_id)]
            extra = {"verdict": common_pb2.Verdict.Name(verdict)}  # type: ignore[arg-type]
            if request.reason:
                extra["reason"] = common_pb2.WithholdReason.Name(request.reason)
            scope = frozenset({row.institution_id})
            store.log(
                connection,
                LogAction.VERDICT_RECORDED,
                caller.actor,
                now,
                subjects,
                scope=scope,
                **extra,
            )
            action = (
                LogAction.MESSAGE_RELEASED
                if target == states.RELEASED
                else LogAction.MESSAGE_WITHHELD
            )
            moved = store.log(connection, action, caller.actor, now, subjects, scope=scope)
            # What the relative may be told of a withholding follows the regime now.
            told = (
                store.detainee(connection, row.detainee_id).tell_relatives_reason
                if target == states.WITHHELD
                else None
            )
            store.set_state(
                connection,
                row,
                target,
                now,
                verdict=verdict,
                withhold_reason=request.reason or None,
                verdict_note=note,
                verdict_by=caller.actor,
                verdict_at_ms=now,
                release_log_index=moved.index if target == states.RELEASED else None,
                withhold_reason_told=told,
            )
            if target == states.RELEASED and row.direction == policy.OUTBOUND:
                store.add_feed(connection, store.account_audience(row.account_id), message_id)
            return target

        state = await self.ctx.write(record)
        return review_pb2.RecordVerdictResponse(state=state)  # type: ignore[arg-type]

    async def ReleaseWithheld(  # noqa: N802
        self, request: review_pb2.ReleaseWithheldRequest
    ) -> review_pb2.ReleaseWithheldResponse:
        """Release a withheld message after a successful complaint, naming the decision."""
        caller = CALLER.get()
        message_id = common.message_id(request.message_id)
        complaint = common.text(
            request.complaint_reference, "complaint_reference", max_chars=COMPLAINT_MAX_CHARS
        )
        now = self.ctx.clock()

        def release(connection: Connection) -> int:
            row = store.message(connection, message_id)
            target = states.release_after_complaint(row.state, privileged=row.privileged)
            detainee = store.detainee(connection, row.detainee_id)
            policy.check_complaint_release(
                detainee_status=detainee.status,
                detainee_institution=detainee.institution_id,
                message_institution=row.institution_id,
            )
            moved = store.log(
                connection,
                LogAction.MESSAGE_RELEASED,
                caller.actor,
                now,
                [("message", message_id.hex()), ("detainee", row.detainee_id)],
                scope=frozenset({row.institution_id}),
                **{COMPLAINT_REFERENCE_FIELD: complaint},
            )
            store.set_state(connection, row, target, now, release_log_index=moved.index)
            if row.direction == policy.OUTBOUND:
                store.add_feed(connection, store.account_audience(row.account_id), message_id)
            return target

        state = await self.ctx.write(release)
        return review_pb2.ReleaseWithheldResponse(state=state)  # type: ignore[arg-type]

    # ----------------------------------------------------------------- time to a decision

    async def GetDecisionTimes(  # noqa: N802
        self, request: review_pb2.GetDecisionTimesRequest
    ) -> review_pb2.GetDecisionTimesResponse:
        """Time from the queue to a verdict per institution and screener, and what waits now."""
        caller = CALLER.get()
        scope = frozenset({request.institution_id}) if request.institution_id else _scope(caller)
        now = self.ctx.clock()
        since = millis(request.since, "since") if request.HasField("since") else 0
        until = millis(request.until, "until") if request.HasField("until") else now + 1
        if until <= since:
            raise InvalidArgument("until must be after since")

        def read(connection: Connection) -> review_pb2.GetDecisionTimesResponse:
            return decision_times(
                store.decisions(connection, scope, since, until),
                store.waiting_since(connection, scope),
                now,
            )

        return await self.ctx.db.aread(read)

    # ----------------------------------------------------------------- watch lists

    async def GetWatchLists(  # noqa: N802
        self, request: review_pb2.GetWatchListsRequest
    ) -> review_pb2.GetWatchListsResponse:
        """An institution's sealed watch lists: its own and its detainees' (or one detainee's).

        Without ``institution_id``, one detainee's: the lists of the institution holding
        the detainee now, which must be in the caller's scope.
        """
        caller = CALLER.get()
        only = [request.detainee_id] if request.detainee_id else None

        def read(connection: Connection) -> list[store.WatchListRow]:
            if request.institution_id:
                institution = common.identifier(request.institution_id, "institution_id")
            elif request.detainee_id:
                institution = store.detainee(connection, request.detainee_id).institution_id
                if not caller.covers(institution):
                    raise PermissionDenied("outside your institutions")
            else:
                raise InvalidArgument("institution_id or detainee_id is required")
            return store.watch_lists_of(connection, institution, only)

        rows = await self.ctx.db.aread(read)
        return review_pb2.GetWatchListsResponse(lists=[common.watch_list(r) for r in rows])

    async def SetWatchList(  # noqa: N802
        self, request: review_pb2.SetWatchListRequest
    ) -> review_pb2.SetWatchListResponse:
        """Replace a watch list with a new sealed version, logged with its digest only."""
        caller = CALLER.get()
        institution = common.identifier(request.institution_id, "institution_id")
        detainee_id = request.detainee_id
        sealed = common.sealed(request.sealed, "sealed", max_chars=schema.WATCH_LIST_SEALED_CHARS)
        now = self.ctx.clock()

        def put(connection: Connection) -> tuple[store.WatchListRow, int]:
            store.institution(connection, institution)
            if detainee_id:
                detainee = store.detainee(connection, detainee_id)
                policy.check_watch_list_detainee(
                    detainee_status=detainee.status,
                    detainee_institution=detainee.institution_id,
                    institution=institution,
                )
            current = store.watch_list(connection, institution, detainee_id)
            version = current.version if current is not None else 0
            if request.replaces_version != version:
                raise FailedPrecondition(
                    f"the list is at version {version}, not {request.replaces_version}: "
                    "it was changed meanwhile; read it again"
                )
            subjects = [("institution", institution)]
            if detainee_id:
                subjects.append(("detainee", detainee_id))
            appended = store.log(
                connection,
                LogAction.ADMIN_ACTION,
                caller.actor,
                now,
                subjects,
                scope=frozenset({institution}),
                operation=WATCH_LIST_OPERATION,
                version=str(version + 1),
                sealed_digest=watch_list_digest(sealed).hex(),
            )
            row = store.WatchListRow(
                institution_id=institution,
                detainee_id=detainee_id,
                sealed=sealed,
                version=version + 1,
                updated_by=caller.actor,
                updated_at_ms=now,
                log_index=appended.index,
            )
            store.put_watch_list(connection, row)
            return row, appended.index

        row, index = await self.ctx.write(put)
        return review_pb2.SetWatchListResponse(list=common.watch_list(row), log_index=index)

    # ----------------------------------------------------------------- retrospective access

    @staticmethod
    def _request(row: store.RetrospectiveRequestRow) -> review_pb2.RetrospectiveRequest:
        return review_pb2.RetrospectiveRequest(
            request_id=row.id,
            detainee_id=row.detainee_id,
            direction=row.direction,
            period_start=timestamp(row.period_start_ms),
            period_end=timestamp(row.period_end_ms),
            case_reference=row.case_reference,
            reason=row.reason,
            requested_by=row.requested_by,
            status=row.status,
            decided_by=row.decided_by or "",
            decided_at=timestamp(row.decided_at_ms),
            valid_until=timestamp(row.valid_until_ms),
            institution_id=row.institution_id,
        )

    async def FileRetrospectiveRequest(  # noqa: N802
        self, request: review_pb2.FileRetrospectiveRequestRequest
    ) -> review_pb2.FileRetrospectiveRequestResponse:
        """Ask for access to a detainee's past messages, for a stated case and reason."""
        caller = CALLER.get()
        detainee_id = common.identifier(request.detainee_id, "detainee_id")
        direction = common.enum_value(request.direction, common_pb2.Direction, "direction")
        start = millis(request.period_start, "period_start")
        end = millis(request.period_end, "period_end")
        if not start < end <= start + MAX_PERIOD_MS:
            raise InvalidArgument("period_end must follow period_start, within 366 days")
        case = common.text(request.case_reference, "case_reference")
        reason = common.text(request.reason, "reason", max_chars=2000)
        now = self.ctx.clock()

        def file(connection: Connection) -> review_pb2.RetrospectiveRequest:
            detainee = store.detainee(connection, detainee_id)
            request_id = store.file_retrospective(
                connection,
                detainee_id,
                detainee.institution_id,
                direction,
                start,
                end,
                case,
                reason,
                caller.actor,
                now,
            )
            store.log(
                connection,
                LogAction.RETROSPECTIVE_REQUESTED,
                caller.actor,
                now,
                [("retrospective_request", request_id), ("detainee", detainee_id)],
                scope=frozenset({detainee.institution_id}),
                case_reference=case,
                direction=common_pb2.Direction.Name(direction),  # type: ignore[arg-type]
                period_start_ms=str(start),
                period_end_ms=str(end),
            )
            return self._request(store.retrospective(connection, request_id))

        return review_pb2.FileRetrospectiveRequestResponse(request=await self.ctx.write(file))

    async def ListRetrospectiveRequests(  # noqa: N802
        self, request: review_pb2.ListRetrospectiveRequestsRequest
    ) -> review_pb2.ListRetrospectiveRequestsResponse:
        """Requests at the caller's institutions, optionally by status."""
        scope = _scope(CALLER.get())
        limit = page_size(request.page.page_size)
        status = common.enum_filter(request.status, common_pb2.RetrospectiveStatus, "status")
        rows = await self.ctx.db.aread(
            lambda c: store.retrospectives(c, scope, status, limit, request.page.page_token)
        )
        return review_pb2.ListRetrospectiveRequestsResponse(
            requests=[self._request(r) for r in rows],
            next_page_token=rows[-1].id if len(rows) == limit else "",
        )

    async def DecideRetrospectiveRequest(  # noqa: N802
        self, request: review_pb2.DecideRetrospectiveRequestRequest
    ) -> review_pb2.DecideRetrospectiveRequestResponse:
        """Four eyes: a different officer approves (time-bound) or rejects."""
        caller = CALLER.get()
        request_id = common.identifier(request.request_id, "request_id")
        note = common.text(request.note, "note", max_chars=2000, required=False)
        now = self.ctx.clock()
        valid_until: int | None = None
        if request.approve:
            valid_until = millis(request.valid_until, "valid_until")
            if not now < valid_until <= now + MAX_APPROVAL_MS:
                raise InvalidArgument("valid_until must lie in the next 30 days")

        def decide(connection: Connection) -> review_pb2.RetrospectiveRequest:
            current = store.retrospective(connection, request_id)
            if current.requested_by == caller.actor:
                raise PermissionDenied("nobody approves or rejects their own request")
            status = (
                common_pb2.RETROSPECTIVE_STATUS_APPROVED
                if request.approve
                else common_pb2.RETROSPECTIVE_STATUS_REJECTED
            )
            store.decide_retrospective(
                connection, request_id, status, caller.actor, valid_until, note, now
            )
            action = (
                LogAction.RETROSPECTIVE_APPROVED
                if request.approve
                else LogAction.RETROSPECTIVE_REJECTED
            )
            extra = {"valid_until_ms": str(valid_until)} if valid_until else {}
            store.log(
                connection,
                action,
                caller.actor,
                now,
                [("retrospective_request", request_id), ("detainee", current.detainee_id)],
                scope=frozenset({current.institution_id}),
                **extra,
            )
            return self._request(store.retrospective(connection, request_id))

        return review_pb2.DecideRetrospectiveRequestResponse(request=await self.ctx.write(decide))

    async def ListRetrospectiveMessages(  # noqa: N802
        self, request: review_pb2.ListRetrospectiveMessagesRequest
    ) -> review_pb2.ListRetrospectiveMessagesResponse:
        """Messages an approved, unexpired request of the caller covers."""
        caller = CALLER.get()
        request_id = common.identifier(request.request_id, "request_id")
        limit = page_size(request.page.page_size)
        after = page_after(request.page.page_token)
        now = self.ctx.clock()

        def list_messages(connection: Connection) -> review_pb2.ListRetrospectiveMessagesResponse:
            retro = store.retrospective(connection, request_id)
            if retro.requested_by != caller.actor:
                raise PermissionDenied("only the officer who filed the request may use it")
            if retro.status != common_pb2.RETROSPECTIVE_STATUS_APPROVED:
                raise FailedPrecondition("the request is not approved")
            if retro.valid_until_ms is None or retro.valid_until_ms <= now:
                raise FailedPrecondition("the approval has expired")
            rows = store.messages_in_period(
                connection,
                retro.detainee_id,
                DIRECTIONS[retro.direction],
                retro.period_start_ms,
                retro.period_end_ms,
                after,
                limit,
            )
            items = []
            for row in rows:
                item = self._queue_item(connection, row, now)
                item.legal_basis = common_pb2.LEGAL_BASIS_RETROSPECTIVE_REQUEST
                items.append(item)
            return review_pb2.ListRetrospectiveMessagesResponse(
                items=items, next_page_token=str(rows[-1].seq) if len(rows) == limit else ""
            )

        return await self.ctx.db.aread(list_messages)


def _queue_position(token: str) -> tuple[int, int] | None:
    """The queue position a ListQueue page token stands for: (queued_at_ms, seq)."""
    if not token:
        return None
    queued_at, dot, seq = token.partition(".")
    if not dot:
        raise InvalidArgument("page_token is not one this gateway issued")
    return page_after(queued_at), page_after(seq)


def decision_times(
    decided: Sequence[store.DecisionRow], waiting: Sequence[tuple[str, int]], now_ms: int
) -> review_pb2.GetDecisionTimesResponse:
    """Figures per institution and per screener there (nearest-rank, seconds)."""
    by_institution: dict[str, list[float]] = {}
    by_screener: dict[tuple[str, str], list[float]] = {}
    for row in decided:
        if row.queued_at_ms is None or row.verdict_at_ms is None:
            continue
        seconds = max(0, row.verdict_at_ms - row.queued_at_ms) / 1000
        by_institution.setdefault(row.institution_id, []).append(seconds)
        by_screener.setdefault((row.institution_id, row.verdict_by or ""), []).append(seconds)
    queued: dict[str, list[float]] = {}
    for institution, queued_at in waiting:
        queued.setdefault(institution, []).append(max(0, now_ms - queued_at) / 1000)
    response = review_pb2.GetDecisionTimesResponse()
    for institution in sorted(set(by_institution) | set(queued)):
        count, median, p90 = spread(by_institution.get(institution, []))
        waits = queued.get(institution, [])
        response.institutions.add(
            institution_id=institution,
            verdicts=count,
            median_seconds=median or 0.0,
            p90_seconds=p90 or 0.0,
            undecided=len(waits),
            oldest_undecided_seconds=max(waits, default=0.0),
        )
    for (institution, screener), values in sorted(by_screener.items()):
        count, median, p90 = spread(values)
        response.screeners.add(
            institution_id=institution,
            screener=screener,
            verdicts=count,
            median_seconds=median or 0.0,
            p90_seconds=p90 or 0.0,
        )
    return response
