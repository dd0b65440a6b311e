"""Notification addresses: where a relative is told, with no content, that there is news.

Revision ID: 0005_notification_addresses
Revises: 0004_device_links
Create Date: 2026-12-04 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_notification_addresses"
down_revision = "0004_device_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "notification_addresses",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("notified_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_sent_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_notification_addresses_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_notification_addresses")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("notification_addresses")
