"""gift cards

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

- gift_cards: the keyed digest of the code (unique; the code itself is never stored), its
  last 4 characters, the initial and current balance in minor units (CHECK 0 <= balance
  <= initial), the currency, an optional expiry and an enabled flag.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gift_cards",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("last_characters", sa.String(length=4), nullable=False),
        sa.Column("initial_balance", sa.BigInteger(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "initial_balance > 0", name=op.f("ck_gift_cards_initial_balance_positive")
        ),
        sa.CheckConstraint(
            "balance >= 0 AND balance <= initial_balance",
            name=op.f("ck_gift_cards_balance_in_range"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_cards")),
        sa.UniqueConstraint("code_digest", name=op.f("uq_gift_cards_code_digest")),
    )


def downgrade() -> None:
    op.drop_table("gift_cards")
