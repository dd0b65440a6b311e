"""AuditService: signed tree heads, proofs and (for auditors) the log's entries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from sealpost.crypto import merkle
from sealpost.gateway import translog
from sealpost.gateway.errors import InvalidArgument
from sealpost.gateway.services.context import CALLER, Context, stored_int
from sealpost.v1 import audit_pb2, audit_pb2_grpc, log_pb2

MAX_ENTRIES = 1000
MAX_HEADS = 1000


class AuditService(audit_pb2_grpc.AuditServiceServicer):
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
        self, request: audit_pb2.GetTreeHeadRequest, context: Any
    ) -> audit_pb2.GetTreeHeadResponse:
        """The newest signed head, or a fresh one on request (or when none exists yet)."""
        head = None if request.fresh else await self.ctx.db.aread(translog.latest_head)
        if head is None:
            head = await self.ctx.write(
                lambda c: translog.sign_head(
                    c, self.ctx.directory.keys.log, self.ctx.directory.log.id, self.ctx.clock()
                )
            )
        return audit_pb2.GetTreeHeadResponse(tree_head=head)

    async def ListTreeHeads(  # noqa: N802
        self, request: audit_pb2.ListTreeHeadsRequest, context: Any
    ) -> audit_pb2.ListTreeHeadsResponse:
        """Stored heads in the order they were signed."""
        limit = min(request.limit or MAX_HEADS, MAX_HEADS)
        min_size = stored_int(request.min_tree_size, "min_tree_size")
        heads = await self.ctx.db.aread(lambda c: translog.heads(c, min_size, limit))
        return audit_pb2.ListTreeHeadsResponse(tree_heads=heads)

    async def GetInclusionProof(  # noqa: N802
        self, request: audit_pb2.GetInclusionProofRequest, context: Any
    ) -> audit_pb2.GetInclusionProofResponse:
        """RFC 9162 inclusion proof."""
        proof = await self.ctx.db.aread(
            lambda c: translog.inclusion_proof(c, request.leaf_index, request.tree_size)
        )
        return audit_pb2.GetInclusionProofResponse(proof=proof)

    async def GetConsistencyProof(  # noqa: N802
        self, request: audit_pb2.GetConsistencyProofRequest, context: Any
    ) -> audit_pb2.GetConsistencyProofResponse:
        """RFC 9162 consistency proof."""
        proof = await self.ctx.db.aread(
            lambda c: translog.consistency_proof(c, request.first_size, request.second_size)
        )
        return audit_pb2.GetConsistencyProofResponse(proof=proof)

    async def GetEntries(  # noqa: N802
        self, request: audit_pb2.GetEntriesRequest, context: Any
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
