"""The transparency log as the gateway keeps it: leaves, perfect-subtree nodes and tree heads.

Pure hashing and proofs come from sealpost.crypto.merkle (RFC 9162); this
module stores them in the gateway's database, in the same transaction as the
change they record, so that a state change and its log entry commit together
or not at all. One writer at a time: the ``log_size`` row is locked (SQLite
takes the write lock at BEGIN) while leaves are appended. Group commit defers
a batch's appends to its end (``Deferred``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    SmallInteger,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from sealpost.crypto import logentry, merkle
from sealpost.crypto.keys import Signer
from sealpost.crypto.logentry import LogEvent
from sealpost.gateway.errors import InvalidArgument
from sealpost.gateway.storage.direct import Direct
from sealpost.gateway.storage.schema import (
    gateway_state,
    log_leaves,
    log_nodes,
    log_scopes,
    tree_heads,
)
from sealpost.v1 import log_pb2

LOG_SIZE = "log_size"
#: Most node keys fetched in one query (the largest lookup shape).
_FETCH_CHUNK = 256

# Statements built once and run on the driver (see gateway/store/__init__.py).
_S_SIZE = select(gateway_state.c.value).where(gateway_state.c.name == LOG_SIZE)
_Q_SIZE = {False: Direct(_S_SIZE), True: Direct(_S_SIZE.with_for_update())}
_Q_SET_SIZE = Direct(
    update(gateway_state).where(gateway_state.c.name == LOG_SIZE).values(value=bindparam("p_size"))
)
_Q_INSERT_LEAVES = Direct(insert(log_leaves))
_Q_INSERT_SCOPES = Direct(insert(log_scopes))
_Q_INSERT_NODES = Direct(insert(log_nodes))
_Q_INSERT_HEAD = Direct(insert(tree_heads))
#: A send reads the newest head for its proof, a batch the largest size a head covers.
_Q_LATEST_HEAD = Direct(select(tree_heads.c.signed).order_by(tree_heads.c.id.desc()).limit(1))
_Q_NEWEST_HEAD_SIZE = Direct(select(func.max(tree_heads.c.tree_size)))
#: SQLite's node lookups by the number of keys they take: 1, 2, 4 ... ``_FETCH_CHUNK``.
_Q_NODES: dict[int, Direct[Any]] = {}
#: PostgreSQL's node lookup: the keys as two arrays, one statement for any number.
_NODE_KEYS = select(
    func.unnest(bindparam("levels", type_=ARRAY(SmallInteger))).label("level"),
    func.unnest(bindparam("idxs", type_=ARRAY(BigInteger))).label("idx"),
).subquery("wanted")
_Q_NODES_ARRAYS = Direct(
    select(log_nodes.c.level, log_nodes.c.idx, log_nodes.c.hash).join(
        _NODE_KEYS,
        and_(log_nodes.c.level == _NODE_KEYS.c.level, log_nodes.c.idx == _NODE_KEYS.c.idx),
    )
)


def node_lookup(dialect: str, keys: Sequence[merkle.NodeKey]) -> tuple[Direct[Any], dict[str, Any]]:
    """The statement and parameters that fetch the nodes ``keys`` (1 to ``_FETCH_CHUNK``).

    Both databases must answer every key from the primary key: a row-value ``(level,
    idx) IN (...)`` makes SQLite scan the whole table, so each append and proof would
    grow with the log. SQLite gets ``WHERE (level = ? AND idx = ?) OR ...``, one term
    per key, the number of terms rounded up to a power of two (the last key repeated)
    so that a handful of statements serve every lookup, each compiled once.
    PostgreSQL gets the keys as two arrays joined to the table: one statement with two
    parameters, which the driver prepares once (it re-parses, and the server re-plans,
    a statement with more than 50 parameters on every call).
    """
    if not 0 < len(keys) <= _FETCH_CHUNK:
        raise ValueError(f"a node lookup takes 1 to {_FETCH_CHUNK} keys")
    if dialect == "postgresql":
        return _Q_NODES_ARRAYS, {
            "levels": [level for level, _ in keys],
            "idxs": [index for _, index in keys],
        }
    terms = 1 << (len(keys) - 1).bit_length()
    query = _Q_NODES.get(terms)
    if query is None:
        query = _Q_NODES[terms] = Direct(
            select(log_nodes.c.level, log_nodes.c.idx, log_nodes.c.hash).where(
                or_(
                    *(
                        and_(
                            log_nodes.c.level == bindparam(f"l{n}"),
                            log_nodes.c.idx == bindparam(f"i{n}"),
                        )
                        for n in range(terms)
                    )
                )
            )
        )
    padded = [*keys, *[keys[-1]] * (terms - len(keys))]
    parameters: dict[str, Any] = {}
    for n, (level, index) in enumerate(padded):
        parameters[f"l{n}"] = level
        parameters[f"i{n}"] = index
    return query, parameters


class SqlNodeStore:
    """merkle.NodeStore over the ``log_nodes`` table, within one connection."""

    def __init__(self, connection: Connection) -> None:
        """Read and write nodes through ``connection`` (its transaction)."""
        self._connection = connection

    def get_many(self, keys: Sequence[merkle.NodeKey]) -> list[bytes]:
        """The hashes of ``keys`` in order; KeyError for an absent node (``node_lookup``)."""
        found: dict[tuple[int, int], bytes] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _FETCH_CHUNK):
            chunk = unique[start : start + _FETCH_CHUNK]
            query, parameters = node_lookup(self._connection.dialect.name, chunk)
            for level, index, hash_ in query.rows(self._connection, parameters):
                found[level, index] = hash_
        try:
            return [found[key] for key in keys]
        except KeyError as exc:
            raise KeyError(f"log node {exc.args[0]} is missing") from exc

    def put_many(self, runs: Sequence[merkle.NodeRun]) -> None:
        """Insert the new nodes; an existing node makes the insert fail (append-only)."""
        rows = [{"level": lvl, "idx": idx, "hash": h} for run in runs for lvl, idx, h in run.rows()]
        if rows:
            _Q_INSERT_NODES.execute_many(self._connection, rows)


@dataclass(frozen=True)
class Appended:
    """A leaf as appended: its index and canonical bytes."""

    index: int
    leaf: bytes

    def entry(self) -> log_pb2.LogEntry:
        """The API form."""
        return log_pb2.LogEntry(index=self.index, leaf=self.leaf)


def size(connection: Connection, *, for_update: bool = False) -> int:
    """The number of leaves; with ``for_update`` the row stays locked until commit."""
    _flush(connection)
    value = _Q_SIZE[for_update].scalar(connection, {})
    if value is None:
        connection.execute(insert(gateway_state).values(name=LOG_SIZE, value=0))
        return 0
    return int(value)


#: The institutions an entry concerns; PUBLIC for what every auditor may read, and the
#: empty set for what only national auditors read in full (docs/transparency-log.md).
Scope = frozenset[str]
PUBLIC: Scope = frozenset({"*"})
NATIONAL: Scope = frozenset()
#: A leaf as stored: its bytes and its scope.
_Leaf = tuple[bytes, Scope]


def append(
    connection: Connection, events: Sequence[LogEvent], scopes: Sequence[Scope] = ()
) -> list[Appended]:
    """Append events in order, in the caller's transaction; returns their indices and leaves.

    ``scopes`` gives each event's institutions (NATIONAL when not given). Within a
    ``Deferred`` batch the leaves are numbered at once but written at the end of the
    transaction, together with every other leaf of the batch.
    """
    if not events:
        return []
    if scopes and len(scopes) != len(events):
        raise ValueError("one scope per event")
    leaves: list[_Leaf] = [
        (logentry.encode_event(event), scopes[i] if scopes else NATIONAL)
        for i, event in enumerate(events)
    ]
    pending: _Pending | None = connection.info.get(_PENDING)
    if pending is None:
        start = size(connection, for_update=True)
        _write(connection, start, leaves)
    else:
        if pending.start is None:
            pending.start = size(connection, for_update=True)
        start = pending.start + len(pending.leaves)
        pending.leaves.extend(leaves)
    return [Appended(start + i, leaf) for i, (leaf, _scope) in enumerate(leaves)]


def _write(connection: Connection, start: int, leaves: Sequence[_Leaf]) -> None:
    """Store leaves ``start...`` with their new nodes and the new size (the size row is locked)."""
    merkle.MerkleTree(SqlNodeStore(connection), start).append_many([leaf for leaf, _ in leaves])
    _Q_INSERT_LEAVES.execute_many(
        connection, [{"idx": start + i, "leaf": leaf} for i, (leaf, _) in enumerate(leaves)]
    )
    scopes = [
        {"idx": start + i, "institution_id": institution}
        for i, (_, scope) in enumerate(leaves)
        for institution in sorted(scope)
    ]
    if scopes:
        _Q_INSERT_SCOPES.execute_many(connection, scopes)
    _Q_SET_SIZE.execute(connection, {"p_size": start + len(leaves)})


# --------------------------------------------------------------------------- deferred appends

#: Where a connection keeps its deferred leaves (``Connection.info``) while a batch runs.
_PENDING = "sealpost.translog.pending"


@dataclass
class _Pending:
    """Leaves numbered but not yet written: ``start`` is the stored size when first asked."""

    start: int | None = None
    leaves: list[_Leaf] = field(default_factory=list)
    #: A job of the batch wants a signed head covering it when the batch commits.
    head_wanted: bool = False


@dataclass(frozen=True)
class Mark:
    """The deferred log as it was when a savepoint began (see ``Deferred.rewind``)."""

    start: int | None
    leaves: list[_Leaf]
    count: int


class Deferred:
    """Appends of one write transaction, written together just before it commits.

    Group commit runs hundreds of jobs in one transaction, and most of them append one
    leaf. Written one by one, each leaf costs five statements (read and lock the size,
    read a sibling node, insert nodes, insert the leaf, update the size); deferred, the
    whole batch costs those five once, and its Merkle nodes are computed in one pass.
    The indices are handed out at once, from the size read (and locked) at the first
    append, so receipts and stored log indices do not change. Anything in this module
    that reads the log on the same connection writes the pending leaves first, and a
    job undone by its savepoint is undone here too (``mark``/``rewind``).
    """

    def __init__(
        self, connection: Connection, sign_head: Callable[[Connection], object] | None = None
    ) -> None:
        """Defer the appends made through ``connection`` until ``flush``.

        ``sign_head`` signs a head in the batch's transaction after its leaves are
        written, when a job asked for one (``want_head``): one head for the whole batch.
        """
        self._connection = connection
        self._pending = _Pending()
        self._sign_head = sign_head
        connection.info[_PENDING] = self._pending

    def mark(self) -> Mark:
        """The state to go back to if the savepoint about to begin is rolled back."""
        pending = self._pending
        return Mark(pending.start, pending.leaves, len(pending.leaves))

    def rewind(self, mark: Mark) -> None:
        """Forget what was appended since ``mark``: its savepoint was rolled back.

        Leaves written by a flush inside that savepoint were rolled back with it, so
        they become pending again, exactly as at the mark.
        """
        self._pending.start = mark.start
        self._pending.leaves = mark.leaves[: mark.count]

    def flush(self) -> None:
        """Write the pending leaves (in the caller's transaction), then the wanted head."""
        _flush(self._connection)
        if self._pending.head_wanted and self._sign_head is not None:
            self._sign_head(self._connection)

    def close(self) -> None:
        """Stop deferring on this connection (pending leaves are dropped: flush first).

        A connection lost meanwhile is left alone: asking it would raise an error of its
        own in place of the loss, and what it held went with it.
        """
        if not self._connection.invalidated:
            self._connection.info.pop(_PENDING, None)


def want_head(connection: Connection) -> None:
    """Ask for a signed head covering this transaction's appends when its batch commits.

    Under group commit (``Deferred`` with a signer) the batch signs one head for all the
    jobs that asked, so that their answers can carry a proof without a second round
    trip; elsewhere this does nothing, and a head comes with the next periodic signing.
    """
    pending: _Pending | None = connection.info.get(_PENDING)
    if pending is not None:
        pending.head_wanted = True


def _flush(connection: Connection) -> None:
    pending: _Pending | None = connection.info.get(_PENDING)
    if pending is None or not pending.leaves:
        return
    assert pending.start is not None
    _write(connection, pending.start, pending.leaves)
    pending.start += len(pending.leaves)
    pending.leaves = []  # a new list: a Mark keeps the old one


def root(connection: Connection, tree_size: int) -> bytes:
    """The root hash of the first ``tree_size`` leaves."""
    _flush(connection)
    current = size(connection)
    return merkle.MerkleTree(SqlNodeStore(connection), current).root(tree_size)


def sign_head(
    connection: Connection, log_keys: Signer, log_key_id: bytes, now_ms: int
) -> log_pb2.SignedTreeHead:
    """Sign and store a head covering every leaf appended so far."""
    _flush(connection)
    tree_size = size(connection)
    root_hash = merkle.MerkleTree(SqlNodeStore(connection), tree_size).root()
    head = logentry.sign_tree_head(tree_size, root_hash, now_ms, log_key_id, log_keys)
    _Q_INSERT_HEAD.execute(
        connection,
        {
            "tree_size": tree_size,
            "root_hash": root_hash,
            "timestamp_ms": now_ms,
            "signed": head.SerializeToString(deterministic=True),
        },
    )
    return head


def newest_head_size(connection: Connection) -> int | None:
    """The largest tree size a stored head covers (None: no head yet)."""
    value = _Q_NEWEST_HEAD_SIZE.scalar(connection, {})
    return None if value is None else int(value)


def stored_size(connection: Connection) -> int:
    """The number of leaves as committed, for a read that changes nothing (monitoring)."""
    value = _Q_SIZE[False].scalar(connection, {})
    return 0 if value is None else int(value)


def newest_head_summary(connection: Connection) -> tuple[int, int] | None:
    """(tree size, timestamp in ms) of the most recently stored head (None: no head yet)."""
    row = connection.execute(
        select(tree_heads.c.tree_size, tree_heads.c.timestamp_ms)
        .order_by(tree_heads.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))


def needs_head(connection: Connection) -> bool:
    """True when the log holds leaves that no stored head covers (a read; decides nothing)."""
    _flush(connection)
    current = _Q_SIZE[False].scalar(connection, {})
    covered = newest_head_size(connection)
    return bool(current) and (covered is None or int(current) > covered)


def sign_head_if_grown(
    connection: Connection, log_keys: Signer, log_key_id: bytes, now_ms: int
) -> log_pb2.SignedTreeHead | None:
    """Sign and store a head if the log has grown since the newest head; None otherwise.

    Decided in the caller's write transaction with the size row locked (SQLite holds the
    write lock from BEGIN), so gateway processes signing side by side never sign two heads
    for one size, and no append slips in between the check and the head (SPEC P13).
    """
    current = size(connection, for_update=True)
    covered = newest_head_size(connection)
    if current == 0 or (covered is not None and current <= covered):
        return None
    return sign_head(connection, log_keys, log_key_id, now_ms)


def latest_head(connection: Connection) -> log_pb2.SignedTreeHead | None:
    """The most recently stored signed tree head."""
    row = _Q_LATEST_HEAD.scalar(connection, {})
    return None if row is None else log_pb2.SignedTreeHead.FromString(row)


def heads(connection: Connection, min_tree_size: int, limit: int) -> list[log_pb2.SignedTreeHead]:
    """Stored signed tree heads in the order they were made."""
    rows = connection.execute(
        select(tree_heads.c.signed)
        .where(tree_heads.c.tree_size >= min_tree_size)
        .order_by(tree_heads.c.id)
        .limit(limit)
    ).scalars()
    return [log_pb2.SignedTreeHead.FromString(row) for row in rows]


def inclusion_proof(connection: Connection, index: int, tree_size: int) -> log_pb2.InclusionProof:
    """RFC 9162 section 2.1.3 proof for ``index`` in the tree of ``tree_size``."""
    _flush(connection)
    current = size(connection)
    if not 0 <= index < tree_size <= current:
        raise InvalidArgument(f"need 0 <= leaf_index < tree_size <= {current}")
    path = merkle.MerkleTree(SqlNodeStore(connection), current).inclusion_proof(index, tree_size)
    return log_pb2.InclusionProof(leaf_index=index, tree_size=tree_size, path=path)


def consistency_proof(connection: Connection, first: int, second: int) -> log_pb2.ConsistencyProof:
    """RFC 9162 section 2.1.4 proof that ``first`` is a prefix of ``second``."""
    _flush(connection)
    current = size(connection)
    if not 0 <= first <= second <= current:
        raise InvalidArgument(f"need 0 <= first_size <= second_size <= {current}")
    path = merkle.MerkleTree(SqlNodeStore(connection), current).consistency_proof(first, second)
    return log_pb2.ConsistencyProof(first_size=first, second_size=second, path=path)


def entries(connection: Connection, start: int, end: int) -> list[log_pb2.LogEntry]:
    """Stored leaves in [start, end)."""
    _flush(connection)
    rows = connection.execute(
        select(log_leaves.c.idx, log_leaves.c.leaf)
        .where(log_leaves.c.idx >= start, log_leaves.c.idx < end)
        .order_by(log_leaves.c.idx)
    )
    return [log_pb2.LogEntry(index=row.idx, leaf=row.leaf) for row in rows]


def entries_at(connection: Connection, indices: Sequence[int]) -> list[log_pb2.LogEntry]:
    """Stored leaves at ``indices`` (those that exist), in index order."""
    _flush(connection)
    if not indices:
        return []
    rows = connection.execute(
        select(log_leaves.c.idx, log_leaves.c.leaf)
        .where(log_leaves.c.idx.in_(sorted(set(indices))))
        .order_by(log_leaves.c.idx)
    )
    return [log_pb2.LogEntry(index=row.idx, leaf=row.leaf) for row in rows]


def scopes(connection: Connection, start: int, end: int) -> dict[int, Scope]:
    """The scope of each stored entry in [start, end) that has one."""
    _flush(connection)
    found: dict[int, set[str]] = {}
    rows = connection.execute(
        select(log_scopes.c.idx, log_scopes.c.institution_id).where(
            log_scopes.c.idx >= start, log_scopes.c.idx < end
        )
    )
    for row in rows:
        found.setdefault(int(row.idx), set()).add(str(row.institution_id))
    return {index: frozenset(institutions) for index, institutions in found.items()}


def head_of_size(connection: Connection, tree_size: int) -> log_pb2.SignedTreeHead | None:
    """The newest stored signed head of exactly ``tree_size`` leaves, if any."""
    row = connection.execute(
        select(tree_heads.c.signed)
        .where(tree_heads.c.tree_size == tree_size)
        .order_by(tree_heads.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return None if row is None else log_pb2.SignedTreeHead.FromString(row)
