"""Hand-overs of the directory key, each signed by the key handing over and the one taking over.

GetDirectory returns them, oldest first, so that a client that pinned an earlier
directory key follows the rotation (docs/protocol.md, "Rotating the directory key").

Revision ID: 0009_directory_successions
Revises: 0008_verdict_time
Create Date: 2026-12-04 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_directory_successions"
down_revision = "0008_verdict_time"
branch_labels = None
depends_on = None
#: Expand-only: it adds, so code of the revision before still runs on it.
contract = False


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "directory_successions",
        sa.Column("id", sa.LargeBinary(32), primary_key=True),
        sa.Column("previous_key_id", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("next_key_id", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("succession", sa.LargeBinary(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("directory_successions")
