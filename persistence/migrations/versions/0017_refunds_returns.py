"""refunds and returns

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03

- orders.refunded_total: what refunds took or hold (PENDING included), CHECK 0 <= it <=
  total: the conditional guard that refunds never exceed what was paid.
- order_refunds: a refund of some units, the shipping or an amount (PENDING, SUCCEEDED,
  FAILED), split between gift cards and the card gateway; unique per order and (hashed)
  idempotency key; outcome_unknown once the gateway was asked and did not answer.
  order_refund_lines: its units per order line. order_refund_gift_cards:
  what it put back on each gift card.
- order_returns: a shopper's return (REQUESTED, APPROVED, DECLINED, RECEIVED) and the
  refund that paid it; order_return_lines: its units per order line.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=None if nullable else sa.text("CURRENT_TIMESTAMP"),
        nullable=nullable,
    )


def _fk(column: str, table: str, source: str, ondelete: str | None = "CASCADE") -> object:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{table}.id"],
        name=op.f(f"fk_{source}_{column}_{table}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("refunded_total", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch.create_check_constraint(
            op.f("ck_orders_refunded"), "refunded_total >= 0 AND refunded_total <= total"
        )
    op.create_table(
        "order_refunds",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("gift_card_amount", sa.BigInteger(), nullable=False),
        sa.Column("card_amount", sa.BigInteger(), nullable=False),
        sa.Column("shipping", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("restock", sa.Boolean(), nullable=False),
        sa.Column("gateway_refund_id", sa.String(length=255), nullable=True),
        _timestamp("created_at"),
        _timestamp("settled_at", nullable=True),
        sa.Column(
            "outcome_unknown", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('PENDING', 'SUCCEEDED', 'FAILED')", name=op.f("ck_order_refunds_status")
        ),
        sa.CheckConstraint(
            "amount > 0 AND gift_card_amount >= 0 AND card_amount >= 0 "
            "AND gift_card_amount + card_amount = amount",
            name=op.f("ck_order_refunds_amounts"),
        ),
        _fk("order_id", "orders", "order_refunds"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refunds")),
        sa.UniqueConstraint("public_id", name=op.f("uq_order_refunds_public_id")),
        sa.UniqueConstraint("order_id", "idempotency_key", name="uq_order_refunds_order_key"),
    )
    op.create_table(
        "order_refund_lines",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("refund_id", Id, nullable=False),
        sa.Column("order_line_id", Id, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_refund_lines_positive")),
        _fk("refund_id", "order_refunds", "order_refund_lines"),
        _fk("order_line_id", "order_lines", "order_refund_lines"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refund_lines")),
    )
    op.create_index(
        "ix_order_refund_lines_refund_id", "order_refund_lines", ["refund_id"], unique=False
    )
    op.create_table(
        "order_refund_gift_cards",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("refund_id", Id, nullable=False),
        sa.Column("gift_card_id", Id, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_order_refund_gift_cards_positive")),
        _fk("refund_id", "order_refunds", "order_refund_gift_cards"),
        _fk("gift_card_id", "gift_cards", "order_refund_gift_cards", ondelete=None),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refund_gift_cards")),
    )
    op.create_index(
        "ix_order_refund_gift_cards_refund_id",
        "order_refund_gift_cards",
        ["refund_id"],
        unique=False,
    )
    op.create_table(
        "order_returns",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("decline_reason", sa.String(length=500), nullable=True),
        sa.Column("refund_id", Id, nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "status IN ('REQUESTED', 'APPROVED', 'DECLINED', 'RECEIVED')",
            name=op.f("ck_order_returns_status"),
        ),
        _fk("order_id", "orders", "order_returns"),
        _fk("refund_id", "order_refunds", "order_returns", ondelete=None),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_returns")),
        sa.UniqueConstraint("public_id", name=op.f("uq_order_returns_public_id")),
    )
    op.create_index(
        "ix_order_returns_order_id", "order_returns", ["order_id", "id"], unique=False
    )
    op.create_table(
        "order_return_lines",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("return_id", Id, nullable=False),
        sa.Column("order_line_id", Id, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_return_lines_positive")),
        _fk("return_id", "order_returns", "order_return_lines"),
        _fk("order_line_id", "order_lines", "order_return_lines"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_return_lines")),
    )
    op.create_index(
        "ix_order_return_lines_return_id", "order_return_lines", ["return_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_order_return_lines_return_id", table_name="order_return_lines")
    op.drop_table("order_return_lines")
    op.drop_index("ix_order_returns_order_id", table_name="order_returns")
    op.drop_table("order_returns")
    op.drop_index("ix_order_refund_gift_cards_refund_id", table_name="order_refund_gift_cards")
    op.drop_table("order_refund_gift_cards")
    op.drop_index("ix_order_refund_lines_refund_id", table_name="order_refund_lines")
    op.drop_table("order_refund_lines")
    op.drop_table("order_refunds")
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_refunded"), type_="check")
        batch.drop_column("refunded_total")
