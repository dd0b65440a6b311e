"""Witness cosignatures: the countersignatures terminals and auditors hand in for tree heads.

Revision ID: 0003_witness_cosignatures
Revises: 0002_state_log
Create Date: 2026-12-04 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_witness_cosignatures"
down_revision = "0002_state_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "cosignatures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("head_id", sa.BigInteger(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("witness_key_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("witness_kind", sa.SmallInteger(), nullable=False),
        sa.Column("witness_name", sa.String(length=200), nullable=False),
        sa.Column("cosigned_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("cosignature", sa.LargeBinary(), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["head_id"], ["tree_heads.id"], name=op.f("fk_cosignatures_head_id_tree_heads")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cosignatures")),
        sa.UniqueConstraint(
            "head_id", "witness_key_id", name=op.f("uq_cosignatures_head_id_witness_key_id")
        ),
    )
    with op.batch_alter_table("cosignatures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cosignatures_tree_size"), ["tree_size"], unique=False)
        batch_op.create_index(
            "ix_cosignatures_witness_key_id_tree_size",
            ["witness_key_id", "tree_size"],
            unique=False,
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("cosignatures", schema=None) as batch_op:
        batch_op.drop_index("ix_cosignatures_witness_key_id_tree_size")
        batch_op.drop_index(batch_op.f("ix_cosignatures_tree_size"))
    op.drop_table("cosignatures")
