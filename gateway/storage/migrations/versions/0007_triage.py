"""Triage: a sealed summary on each queued message, and sealed watch lists.

``messages.triage_seal`` holds the terminal's summary of a message waiting for a
screener, sealed at the key server for the institution's screeners (the gateway cannot
read it, and every summary has the same size). ``watch_lists`` holds each institution's
and each detainee's list of names and code words, sealed the same way; every change is
logged with the ciphertext's digest (docs/review.md, "Triage").

Revision ID: 0007_triage
Revises: 0006_withhold_reason_told
Create Date: 2026-12-04 17:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_triage"
down_revision = "0006_withhold_reason_told"
branch_labels = None
depends_on = None
#: Expand-only: it adds, so code of the revision before still runs on it.
contract = False


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("triage_seal", sa.String(1024), nullable=True))
    op.create_table(
        "watch_lists",
        sa.Column("institution_id", sa.String(64), nullable=False),
        sa.Column("detainee_id", sa.String(64), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name="fk_watch_lists_institution_id_institutions",
        ),
        sa.PrimaryKeyConstraint("institution_id", "detainee_id", name="pk_watch_lists"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("watch_lists")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("triage_seal")
