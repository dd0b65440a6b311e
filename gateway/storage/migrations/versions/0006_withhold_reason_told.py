"""Telling relatives why: a regime's setting, and what each withholding disclosed.

``regimes.tell_relatives_reason`` says whether relatives are told the reason category
of a message withheld in that regime (default off); ``messages.withhold_reason_told``
keeps the setting that held for the detainee when the message was withheld. Every
regime told nothing before this revision, so messages withheld until now told nothing.

Revision ID: 0006_withhold_reason_told
Revises: 0005_notification_addresses
Create Date: 2026-12-04 15:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_withhold_reason_told"
down_revision = "0005_notification_addresses"
branch_labels = None
depends_on = None
#: A contract: code before it would withhold messages without what the relative was
#: told, which the auditor's replay then finds missing.
contract = True

#: MESSAGE_STATE_WITHHELD (the API's enum; a migration does not import the code it upgrades).
_WITHHELD = 6


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("regimes") as batch:
        batch.add_column(
            sa.Column(
                "tell_relatives_reason", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("withhold_reason_told", sa.Boolean(), nullable=True))
    messages = sa.table("messages", sa.column("state"), sa.column("withhold_reason_told"))
    op.execute(
        messages.update()
        .where(messages.c.state == _WITHHELD)
        .values(withhold_reason_told=sa.false())
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("withhold_reason_told")
    with op.batch_alter_table("regimes") as batch:
        batch.drop_column("tell_relatives_reason")
