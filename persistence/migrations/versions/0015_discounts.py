"""discounts, what orders used of discounts and gift cards

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

- discounts: a code (canonical, unique; null for an automatic discount), its value (basis
  points, minor units or free shipping), its scope (whole order, products or categories,
  the ids as JSON arrays), a minimum subtotal, dates, a usage limit with the count taken
  (CHECK 0 <= times_used), once per customer, active.
- discount_redemptions: who used a once-per-customer discount on which order (unique per
  discount and buyer: the guard against one buyer's concurrent checkouts).
- order_discount_allocations: what each discount took off each order line (line id) or
  off shipping (no line id), as it was when the order was placed.
- order_gift_card_payments: what each gift card paid of an order, and when it was
  credited back (once: a declined payment or a cancellation).
- orders: discount_total and gift_card_total (subtotal - discounts + shipping + tax =
  total; total - gift cards = what the card gateway charges).
- gift_cards: a staff note.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.text("CURRENT_TIMESTAMP"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "discounts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("value_type", sa.String(length=20), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("product_ids", Json, nullable=False),
        sa.Column("category_ids", Json, nullable=False),
        sa.Column("minimum_subtotal", sa.BigInteger(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.Column("times_used", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "once_per_customer", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "value_type IN ('PERCENTAGE', 'FIXED_AMOUNT', 'FREE_SHIPPING')",
            name=op.f("ck_discounts_value_type"),
        ),
        sa.CheckConstraint(
            "scope IN ('ORDER', 'PRODUCTS', 'CATEGORIES')", name=op.f("ck_discounts_scope")
        ),
        sa.CheckConstraint(
            "value >= 0 AND times_used >= 0 AND (usage_limit IS NULL OR usage_limit > 0) "
            "AND (minimum_subtotal IS NULL OR minimum_subtotal >= 0)",
            name=op.f("ck_discounts_amounts"),
        ),
        sa.CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at",
            name=op.f("ck_discounts_dates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discounts")),
        sa.UniqueConstraint("code", name=op.f("uq_discounts_code")),
    )
    op.create_table(
        "discount_redemptions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("discount_id", Id, nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("buyer_key", sa.String(length=80), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["discount_id"],
            ["discounts.id"],
            name=op.f("fk_discount_redemptions_discount_id_discounts"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_discount_redemptions_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discount_redemptions")),
        sa.UniqueConstraint(
            "discount_id", "buyer_key", name="uq_discount_redemptions_discount_buyer"
        ),
    )
    op.create_index(
        "ix_discount_redemptions_order_id", "discount_redemptions", ["order_id"], unique=False
    )
    op.create_index(
        "ix_discount_redemptions_buyer_key", "discount_redemptions", ["buyer_key"], unique=False
    )
    op.create_table(
        "order_discount_allocations",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("order_line_id", Id, nullable=True),
        sa.Column("discount_id", Id, nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_order_discount_allocations_amount")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_discount_allocations_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_line_id"],
            ["order_lines.id"],
            name=op.f("fk_order_discount_allocations_order_line_id_order_lines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["discount_id"],
            ["discounts.id"],
            name=op.f("fk_order_discount_allocations_discount_id_discounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_discount_allocations")),
    )
    op.create_index(
        "ix_order_discount_allocations_order_id",
        "order_discount_allocations",
        ["order_id"],
        unique=False,
    )
    op.create_table(
        "order_gift_card_payments",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("gift_card_id", Id, nullable=False),
        sa.Column("last_characters", sa.String(length=4), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("credited_back_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_order_gift_card_payments_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_gift_card_payments_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["gift_card_id"],
            ["gift_cards.id"],
            name=op.f("fk_order_gift_card_payments_gift_card_id_gift_cards"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_gift_card_payments")),
        sa.UniqueConstraint("order_id", "gift_card_id", name="uq_order_gift_card_payments_card"),
    )
    op.create_index(
        "ix_order_gift_card_payments_gift_card_id",
        "order_gift_card_payments",
        ["gift_card_id"],
        unique=False,
    )
    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("discount_total", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(
            sa.Column(
                "gift_card_total", sa.BigInteger(), server_default=sa.text("0"), nullable=False
            )
        )
        batch.create_check_constraint(
            op.f("ck_orders_paid_parts"),
            "discount_total >= 0 AND gift_card_total >= 0 AND gift_card_total <= total",
        )
    with op.batch_alter_table("gift_cards") as batch:
        batch.add_column(sa.Column("note", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gift_cards") as batch:
        batch.drop_column("note")
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_paid_parts"), type_="check")
        batch.drop_column("gift_card_total")
        batch.drop_column("discount_total")
    op.drop_index("ix_order_gift_card_payments_gift_card_id", table_name="order_gift_card_payments")
    op.drop_table("order_gift_card_payments")
    op.drop_index(
        "ix_order_discount_allocations_order_id", table_name="order_discount_allocations"
    )
    op.drop_table("order_discount_allocations")
    op.drop_index("ix_discount_redemptions_buyer_key", table_name="discount_redemptions")
    op.drop_index("ix_discount_redemptions_order_id", table_name="discount_redemptions")
    op.drop_table("discount_redemptions")
    op.drop_table("discounts")
