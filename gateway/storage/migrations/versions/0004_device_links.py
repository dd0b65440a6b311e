"""Device links: one-time codes with which another device joins a relative's account.

Revision ID: 0004_device_links
Revises: 0003_witness_cosignatures
Create Date: 2026-12-04 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_device_links"
down_revision = "0003_witness_cosignatures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "device_links",
        sa.Column("code_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_device_links_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("code_digest", name=op.f("pk_device_links")),
    )
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_links_account_id"), ["account_id"])
        batch_op.create_index(batch_op.f("ix_device_links_expires_at_ms"), ["expires_at_ms"])


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_links_expires_at_ms"))
        batch_op.drop_index(batch_op.f("ix_device_links_account_id"))
    op.drop_table("device_links")
