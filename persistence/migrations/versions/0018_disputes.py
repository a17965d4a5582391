"""disputes

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03

- orders: disputed_at, dispute_reason, dispute_amount: set once, when the gateway reports
  that the buyer disputed the payment (`charge.dispute.created`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("disputed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("dispute_reason", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("dispute_amount", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("dispute_amount")
        batch.drop_column("dispute_reason")
        batch.drop_column("disputed_at")
