"""The gateway's tables, in SQLAlchemy Core.

Times are integer milliseconds since the Unix epoch (UTC) and enums are the
API v1 enum numbers, so both databases store exactly the same values. Alembic
migrations in gateway/storage/migrations create these tables; a test checks
that the migrated schema and this module agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(64)
TIME = BigInteger
KEY_ID = LargeBinary(32)
MESSAGE_ID = LargeBinary(16)
#: The longest sealed triage summary a terminal may store (a transit ciphertext).
TRIAGE_SEAL_CHARS = 1024
#: The longest sealed watch list (a transit ciphertext of at most 192 KiB of entries).
WATCH_LIST_SEALED_CHARS = 262_144

institutions = Table(
    "institutions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at_ms", TIME, nullable=False),
)

regimes = Table(
    "regimes",
    metadata,
    Column("name", ID, primary_key=True),
    Column("policy", SmallInteger, nullable=False),
    Column("description", String(500), nullable=False, default=""),
    Column("updated_at_ms", TIME, nullable=False),
    #: Whether relatives are told the reason category of a withholding in this regime.
    Column("tell_relatives_reason", Boolean, nullable=False, server_default=false()),
)

detainees = Table(
    "detainees",
    metadata,
    Column("id", ID, primary_key=True),
    Column("institution_id", ID, ForeignKey("institutions.id"), nullable=False, index=True),
    Column("regime", ID, ForeignKey("regimes.name"), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("created_at_ms", TIME, nullable=False),
    Column("updated_at_ms", TIME, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("created_at_ms", TIME, nullable=False),
)

key_records = Table(
    "key_records",
    metadata,
    Column("id", KEY_ID, primary_key=True),
    Column("purpose", SmallInteger, nullable=False),
    Column("subject", ID, nullable=False),
    Column("record", LargeBinary, nullable=False),
    Column("not_before", TIME, nullable=False),
    Column("not_after", TIME, nullable=False),
    Column("created_at_ms", TIME, nullable=False),
    Column("revoked_at_ms", TIME),
    Column("revocation", LargeBinary),
    Index("ix_key_records_purpose_subject", "purpose", "subject"),
)

#: Hand-overs of the directory key (docs/protocol.md, "Rotating the directory key"): the
#: serialised DirectorySuccession, by the ids of the records handed over from and to.
directory_successions = Table(
    "directory_successions",
    metadata,
    Column("id", KEY_ID, primary_key=True),
    Column("previous_key_id", KEY_ID, nullable=False, unique=True),
    Column("next_key_id", KEY_ID, nullable=False, unique=True),
    Column("succession", LargeBinary, nullable=False),
    Column("created_at_ms", TIME, nullable=False),
)

correspondents = Table(
    "correspondents",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
    Column("kind", String(100), nullable=False),
    Column("evidence_reference", String(200), nullable=False),
    Column("verified_by", String(200), nullable=False),
    Column("verified_at_ms", TIME, nullable=False),
    Column("revoked_at_ms", TIME),
    Column("revoked_by", String(200)),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    # Not a foreign key: a request may name an id nobody is held under, and is answered
    # exactly as one that waits (docs/gateway.md, "Contact requests").
    Column("detainee_id", ID, nullable=False, index=True),
    Column("relationship", String(200), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("requested_at_ms", TIME, nullable=False),
    Column("decided_by", String(200)),
    Column("decided_at_ms", TIME),
    Column("note", String(1000)),
    UniqueConstraint("account_id", "detainee_id"),
)

mailbox_keys = Table(
    "mailbox_keys",
    metadata,
    Column("key_id", KEY_ID, ForeignKey("key_records.id"), primary_key=True),
    Column("institution_id", ID, ForeignKey("institutions.id"), primary_key=True),
    Column("detainee_id", ID, ForeignKey("detainees.id"), nullable=False, index=True),
    Column("wrapped_secret", LargeBinary, nullable=False),
    Column("wrapped_to_key_id", KEY_ID, nullable=False),
    Column("created_at_ms", TIME, nullable=False),
)

handovers = Table(
    "handovers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("detainee_id", ID, ForeignKey("detainees.id"), nullable=False, index=True),
    Column("from_institution_id", ID, ForeignKey("institutions.id"), nullable=False),
    Column("to_institution_id", ID, ForeignKey("institutions.id"), nullable=False),
    Column("created_at_ms", TIME, nullable=False),
    Column("completed_at_ms", TIME),
)

screening_orders = Table(
    "screening_orders",
    metadata,
    Column("id", ID, primary_key=True),
    Column("detainee_id", ID, ForeignKey("detainees.id"), nullable=False, index=True),
    Column("legal_ground", SmallInteger, nullable=False),
    Column("direction", SmallInteger, nullable=False),
    Column("starts_at_ms", TIME, nullable=False),
    Column("ends_at_ms", TIME, nullable=False),
    Column("ordered_by", String(200), nullable=False),
    Column("note", String(1000), nullable=False, default=""),
    Column("created_at_ms", TIME, nullable=False),
    Column("ended_early_at_ms", TIME),
)

messages = Table(
    "messages",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("message_id", MESSAGE_ID, nullable=False, unique=True),
    Column("direction", SmallInteger, nullable=False),
    Column("detainee_id", ID, ForeignKey("detainees.id"), nullable=False, index=True),
    Column("institution_id", ID, ForeignKey("institutions.id"), nullable=False),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("sender_key_id", KEY_ID, nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("envelope_digest", LargeBinary(32), nullable=False),
    Column("privileged", Boolean, nullable=False),
    Column("state", SmallInteger, nullable=False),
    Column("accepted_at_ms", TIME, nullable=False),
    Column("state_changed_at_ms", TIME, nullable=False),
    Column("queued_at_ms", TIME),
    Column("escrow", LargeBinary),
    Column("verdict", SmallInteger),
    Column("withhold_reason", SmallInteger),
    Column("verdict_note", Text),
    Column("verdict_by", String(200)),
    Column("delivered_at_ms", TIME),
    Column("delivery_reference", String(200)),
    Column("log_index", BigInteger),
    #: The MESSAGE_RELEASED log entry: a terminal delivers only on its proof.
    Column("release_log_index", BigInteger),
    #: The MESSAGE_ESCROWED log entry: escrow audits draw their sample in this order.
    Column("escrow_log_index", BigInteger, index=True),
    #: Whether the relative is told the withholding's reason category: the regime's
    #: setting for the detainee when the message was withheld (NULL until then).
    Column("withhold_reason_told", Boolean),
    #: The terminal's sealed triage summary for a queued message (docs/review.md, "Triage").
    Column("triage_seal", String(TRIAGE_SEAL_CHARS)),
    #: When the verdict was recorded (the screeners' time to a decision).
    Column("verdict_at_ms", TIME),
    Index("ix_messages_institution_id_state", "institution_id", "state"),
)

feed = Table(
    "feed",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("audience", String(80), nullable=False),
    Column("message_id", MESSAGE_ID, nullable=False),
    Index("ix_feed_audience_seq", "audience", "seq"),
)

challenges = Table(
    "challenges",
    metadata,
    Column("challenge", LargeBinary(32), primary_key=True),
    Column("key_id", KEY_ID, nullable=False),
    Column("expires_at_ms", TIME, nullable=False, index=True),
)

#: One-time codes with which another device joins an account (RelativeService
#: CreateDeviceLink): kept as digests, each used once, valid for minutes.
device_links = Table(
    "device_links",
    metadata,
    Column("code_digest", LargeBinary(32), primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("expires_at_ms", TIME, nullable=False, index=True),
)

#: The e-mail address a relative asked to be told at when there is news, with no
#: content (RelativeService SetNotifications); kept for that only, removed on request.
notification_addresses = Table(
    "notification_addresses",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
    Column("email", String(254), nullable=False),
    Column("language", String(8), nullable=False),
    Column("created_at_ms", TIME, nullable=False),
    #: News older than this has been told (or predates the address).
    Column("notified_at_ms", TIME, nullable=False),
    #: When the last notice went out; none is sent within the quiet period after it.
    Column("last_sent_at_ms", TIME),
)

terminals = Table(
    "terminals",
    metadata,
    Column("id", ID, primary_key=True),
    Column("institution_id", ID, ForeignKey("institutions.id"), nullable=False, index=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("certificate", Text, nullable=False),
    Column("issued_at_ms", TIME, nullable=False),
    Column("expires_at_ms", TIME, nullable=False),
    Column("revoked_at_ms", TIME),
)

grants = Table(
    "grants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("message_id", MESSAGE_ID, nullable=False, index=True),
    Column("staff", String(200), nullable=False),
    Column("legal_basis", SmallInteger, nullable=False),
    Column("retrospective_request_id", ID),
    Column("granted_at_ms", TIME, nullable=False),
    Column("log_index", BigInteger, nullable=False),
)

retrospective_requests = Table(
    "retrospective_requests",
    metadata,
    Column("id", ID, primary_key=True),
    Column("detainee_id", ID, ForeignKey("detainees.id"), nullable=False, index=True),
    Column("institution_id", ID, ForeignKey("institutions.id"), nullable=False),
    Column("direction", SmallInteger, nullable=False),
    Column("period_start_ms", TIME, nullable=False),
    Column("period_end_ms", TIME, nullable=False),
    Column("case_reference", String(200), nullable=False),
    Column("reason", String(2000), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("decided_by", String(200)),
    Column("decided_at_ms", TIME),
    Column("valid_until_ms", TIME),
    Column("note", String(2000)),
    Column("created_at_ms", TIME, nullable=False),
)

#: Staff members' roles and institutions as their identity tokens showed them, each change
#: recorded in the transparency log before the member's first call with it.
staff_members = Table(
    "staff_members",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("subject", String(200), nullable=False),
    Column("roles", String(200), nullable=False),
    Column("institutions", String(4000), nullable=False),
    Column("recorded_at_ms", TIME, nullable=False),
    Column("log_index", BigInteger, nullable=False),
)

#: Triage watch lists, sealed at the key server; each change is an ADMIN_ACTION log entry
#: with the ciphertext's digest (docs/review.md, "Watch lists"). ``detainee_id`` is empty
#: for an institution's own list.
watch_lists = Table(
    "watch_lists",
    metadata,
    Column("institution_id", ID, ForeignKey("institutions.id"), primary_key=True),
    Column("detainee_id", ID, primary_key=True),
    Column("sealed", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at_ms", TIME, nullable=False),
    Column("log_index", BigInteger, nullable=False),
)

log_leaves = Table(
    "log_leaves",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("leaf", LargeBinary, nullable=False),
)

#: Which institutions each log entry concerns ("*": every auditor may read it). An auditor
#: scoped to some institutions gets the other entries as leaf hashes only.
log_scopes = Table(
    "log_scopes",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("institution_id", ID, primary_key=True),
)

log_nodes = Table(
    "log_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

tree_heads = Table(
    "tree_heads",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("tree_size", BigInteger, nullable=False, index=True),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("timestamp_ms", TIME, nullable=False),
    Column("signed", LargeBinary, nullable=False),
)

#: Witnesses' countersignatures of stored heads (gateway/witnesses.py, SPEC P13).
cosignatures = Table(
    "cosignatures",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("head_id", BigInteger, ForeignKey("tree_heads.id"), nullable=False),
    #: The cosigned head's size, kept here for the "no regression" rule and listings.
    Column("tree_size", BigInteger, nullable=False, index=True),
    Column("witness_key_id", KEY_ID, nullable=False),
    #: 1: an institution key (its terminal), 2: an auditor's configured witness key.
    Column("witness_kind", SmallInteger, nullable=False),
    #: The institution id, or the auditor witness's configured name.
    Column("witness_name", String(200), nullable=False),
    Column("cosigned_at_ms", TIME, nullable=False),
    #: The serialised sealpost.v1.Cosignature, exactly as handed in.
    Column("cosignature", LargeBinary, nullable=False),
    Column("received_at_ms", TIME, nullable=False),
    UniqueConstraint("head_id", "witness_key_id"),
    Index("ix_cosignatures_witness_key_id_tree_size", "witness_key_id", "tree_size"),
)

#: Small named counters and flags, such as the log's size, locked while appending.
gateway_state = Table(
    "gateway_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
