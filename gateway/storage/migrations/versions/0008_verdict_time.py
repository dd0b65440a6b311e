"""When each verdict was recorded, for the screeners' time to a decision.

``messages.verdict_at_ms`` is set with the verdict (RecordVerdict). Messages decided
before this revision have none: their time is in the log's VERDICT_RECORDED entry, which
``sealpost audit report`` reads; ``sealpost review decisions`` counts only what has one.

Revision ID: 0008_verdict_time
Revises: 0007_triage
Create Date: 2026-12-04 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_verdict_time"
down_revision = "0007_triage"
branch_labels = None
depends_on = None
#: Expand-only: it adds, so code of the revision before still runs on it.
contract = False


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("verdict_at_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("verdict_at_ms")
