"""AuditService: signed tree heads, proofs, (for auditors) the log's entries, and cosignatures."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from sealpost.crypto import merkle, sample
from sealpost.crypto.logentry import LogAction
from sealpost.gateway import store, translog, witnesses
from sealpost.gateway.errors import InvalidArgument, NotFound
from sealpost.gateway.principals import Role
from sealpost.gateway.services import common
from sealpost.gateway.services.context import CALLER, Context, stored_int
from sealpost.v1 import audit_pb2, common_pb2, envelope_pb2, keys_pb2, log_pb2

MAX_ENTRIES = 1000
MAX_HEADS = 1000


class AuditService:
    """Read access to the transparency log."""

    def __init__(self, ctx: Context) -> None:
        """Serve with the shared context."""
        self.ctx = ctx

    def sign_head(self) -> log_pb2.SignedTreeHead:
        """Sign and store a head over every committed leaf."""

        def sign(connection: Connection) -> log_pb2.SignedTreeHead:
            return translog.sign_head(
                connection, self.ctx.directory.keys.log, self.ctx.directory.log.id, self.ctx.clock()
            )

        return self.ctx.db.write(sign)

    async def GetTreeHead(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.GetTreeHeadRequest
    ) -> audit_pb2.GetTreeHeadResponse:
        """The newest signed head with its cosignatures so far, or a fresh one on request."""
        if not request.fresh:
            cosigned = await self.ctx.db.aread(witnesses.latest_cosigned_head)
            if cosigned is not None:
                return audit_pb2.GetTreeHeadResponse(
                    tree_head=cosigned.tree_head, cosignatures=cosigned.cosignatures
                )
        head = await self.ctx.write(
            lambda c: translog.sign_head(
                c, self.ctx.directory.keys.log, self.ctx.directory.log.id, self.ctx.clock()
            )
        )
        return audit_pb2.GetTreeHeadResponse(tree_head=head)

    async def ListTreeHeads(  # noqa: N802
        self, request: audit_pb2.ListTreeHeadsRequest
    ) -> audit_pb2.ListTreeHeadsResponse:
        """Stored heads in the order they were signed."""
        limit = min(request.limit or MAX_HEADS, MAX_HEADS)
        min_size = stored_int(request.min_tree_size, "min_tree_size")
        heads = await self.ctx.db.aread(lambda c: translog.heads(c, min_size, limit))
        return audit_pb2.ListTreeHeadsResponse(tree_heads=heads)

    async def GetInclusionProof(  # noqa: N802
        self, request: audit_pb2.GetInclusionProofRequest
    ) -> audit_pb2.GetInclusionProofResponse:
        """RFC 9162 inclusion proof."""
        proof = await self.ctx.db.aread(
            lambda c: translog.inclusion_proof(c, request.leaf_index, request.tree_size)
        )
        return audit_pb2.GetInclusionProofResponse(proof=proof)

    async def GetConsistencyProof(  # noqa: N802
        self, request: audit_pb2.GetConsistencyProofRequest
    ) -> audit_pb2.GetConsistencyProofResponse:
        """RFC 9162 consistency proof."""
        proof = await self.ctx.db.aread(
            lambda c: translog.consistency_proof(c, request.first_size, request.second_size)
        )
        return audit_pb2.GetConsistencyProofResponse(proof=proof)

    async def GetEntries(  # noqa: N802
        self, request: audit_pb2.GetEntriesRequest
    ) -> audit_pb2.GetEntriesResponse:
        """Leaves in [start, end), at most 1000."""
        if not request.start < request.end <= request.start + MAX_ENTRIES:
            raise InvalidArgument(f"need start < end <= start + {MAX_ENTRIES}")
        end = stored_int(request.end, "end")
        caller = CALLER.get()

        def read(connection: Connection) -> list[log_pb2.LogEntry]:
            entries = translog.entries(connection, request.start, end)
            if caller.national:
                return entries
            # SPEC P11: an auditor scoped to some institutions reads their entries and the
            # public ones in full, and every other entry as its leaf hash only.
            readable = caller.institutions | translog.PUBLIC
            scopes = translog.scopes(connection, request.start, end)
            for entry in entries:
                if not scopes.get(entry.index, translog.NATIONAL) & readable:
                    entry.leaf_hash = merkle.leaf_hash(entry.leaf)
                    entry.ClearField("leaf")
            return entries

        return audit_pb2.GetEntriesResponse(entries=await self.ctx.db.aread(read))

    async def SubmitCosignature(  # noqa: N802
        self, request: audit_pb2.SubmitCosignatureRequest
    ) -> audit_pb2.SubmitCosignatureResponse:
        """Store a witness's cosignature of a head this gateway signed (gateway/witnesses.py)."""
        caller = CALLER.get()
        if not request.HasField("tree_head") or not request.HasField("cosignature"):
            raise InvalidArgument("tree_head and cosignature are required")
        key_id = common.key_id(request.cosignature.witness_key_id, "cosignature.witness_key_id")
        tree_head = request.tree_head.tree_head
        now = self.ctx.clock()
        institution_key = None
        if caller.has(Role.TERMINAL):

            def institution_record(connection: Connection) -> Any:
                try:
                    _record, verified = common.verified_record(
                        self.ctx, connection, key_id, keys_pb2.KEY_PURPOSE_INSTITUTION, now
                    )
                except NotFound:
                    return None
                return verified

            institution_key = await self.ctx.db.aread(institution_record)
        witness = witnesses.witness_for(
            caller,
            key_id,
            institution_key=institution_key,
            auditors=self.ctx.auditor_witnesses,
        )
        verified = witnesses.verify(witness, tree_head, request.cosignature)
        size = await self.ctx.write(
            lambda c: witnesses.accept(c, witness, tree_head, request.cosignature, verified, now)
        )
        return audit_pb2.SubmitCosignatureResponse(witness_tree_size=size)

    async def GetCosignatures(  # noqa: N802
        self, request: audit_pb2.GetCosignaturesRequest
    ) -> audit_pb2.GetCosignaturesResponse:
        """Cosigned heads of at least ``min_tree_size``, oldest first, with their cosignatures."""
        limit = min(request.limit or MAX_HEADS, MAX_HEADS)
        min_size = stored_int(request.min_tree_size, "min_tree_size")
        heads = await self.ctx.db.aread(lambda c: witnesses.cosigned_heads(c, min_size, limit))
        return audit_pb2.GetCosignaturesResponse(tree_heads=heads)

    async def GrantEscrowAudit(  # noqa: N802
        self, request: audit_pb2.GrantEscrowAuditRequest
    ) -> audit_pb2.GrantEscrowAuditResponse:
        """Grant the decrypt of the escrowed keys of a sample a signed tree head draws.

        The sample is drawn from the root of the named head (crypto/sample.py), so neither
        the terminal that handed the blobs in nor the auditor chooses it. Each message gets
        a grant with the escrow-audit basis, logged and signed into a head before any blob
        leaves (SPEC P6); the auditor's tool checks each key against the sender's
        commitment and never opens content (docs/audit.md, "Escrow audit").
        """
        caller = CALLER.get()
        if not 0 < request.count <= sample.MAX_SAMPLE:
            raise InvalidArgument(f"count: 1 to {sample.MAX_SAMPLE} messages")
        size = stored_int(request.tree_size, "tree_size")
        count = request.count
        now = self.ctx.clock()
        basis = common_pb2.LegalBasis.Name(common_pb2.LEGAL_BASIS_ESCROW_AUDIT)

        def grant(connection: Connection) -> audit_pb2.GrantEscrowAuditResponse:
            sample_head = translog.head_of_size(connection, size)
            if sample_head is None:
                raise NotFound("no signed tree head of that size is stored")
            root = log_pb2.TreeHead.FromString(sample_head.tree_head).root_hash
            population = store.escrowed_count(connection, size)
            drawn = [
                store.escrowed_at(connection, size, position)
                for position in sample.escrow_audit_sample(root, size, population, count)
            ]
            granted = []
            for row in [item.message for item in drawn]:
                grant_id = store.new_id("gr")
                appended = store.log(
                    connection,
                    LogAction.REVIEW_GRANTED,
                    caller.actor,
                    now,
                    [
                        ("message", row.message_id.hex()),
                        ("grant", grant_id),
                        ("detainee", row.detainee_id),
                    ],
                    scope=frozenset({row.institution_id}),
                    legal_basis=basis,
                    key_server_entity=caller.staff_subject or "unknown",
                    sample_tree_size=str(size),
                    sample_size=str(count),
                )
                store.add_grant(
                    connection,
                    row.message_id,
                    caller.actor,
                    common_pb2.LEGAL_BASIS_ESCROW_AUDIT,
                    None,
                    now,
                    appended.index,
                    grant_id,
                )
                granted.append((grant_id, appended))
            # SPEC P6: every grant is in a signed head before a blob leaves the gateway.
            head = translog.sign_head(
                connection, self.ctx.directory.keys.log, self.ctx.directory.log.id, now
            )
            head_size = log_pb2.TreeHead.FromString(head.tree_head).tree_size
            escrow_entries = {
                e.index: e
                for e in translog.entries_at(connection, [d.escrow_log_index for d in drawn])
            }
            response = audit_pb2.GrantEscrowAuditResponse(
                sample_head=sample_head, population=population, tree_head=head
            )
            for item, (grant_id, appended) in zip(drawn, granted, strict=True):
                response.items.add(
                    message_id=item.message.message_id,
                    envelope_header=envelope_pb2.Envelope.FromString(item.message.envelope).header,
                    escrow=envelope_pb2.EscrowBlob.FromString(item.escrow),
                    escrow_entry=escrow_entries[item.escrow_log_index],
                    escrow_proof=translog.inclusion_proof(connection, item.escrow_log_index, size),
                    grant_id=grant_id,
                    grant_entry=appended.entry(),
                    grant_proof=translog.inclusion_proof(connection, appended.index, head_size),
                )
            return response

        return await self.ctx.write(grant)
