"""The state follows the log: release entries, staff roles as recorded, each entry's scope.

Revision ID: 0002_state_log
Revises: 0001
Create Date: 2026-12-04 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_state_log"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # A contact request may name an id nobody is held under (no detention-status oracle).
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_contacts_detainee_id_detainees", type_="foreignkey")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("release_log_index", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("escrow_log_index", sa.BigInteger(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_messages_escrow_log_index"), ["escrow_log_index"], unique=False
        )
    op.create_table(
        "staff_members",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("institutions", sa.String(length=4000), nullable=False),
        sa.Column("recorded_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_staff_members")),
    )
    op.create_table(
        "log_scopes",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("institution_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("idx", "institution_id", name=op.f("pk_log_scopes")),
    )


def downgrade() -> None:
    """Undo this revision."""
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_contacts_detainee_id_detainees", "detainees", ["detainee_id"], ["id"]
        )
    op.drop_table("log_scopes")
    op.drop_table("staff_members")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_escrow_log_index"))
        batch_op.drop_column("escrow_log_index")
        batch_op.drop_column("release_log_index")
