"""orders: status token hash, cancel reason, status history and fulfilments

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

- orders.status_token_hash: SHA-256 of the token a guest polls the order with (unique;
  null for orders placed before this revision: they have no token).
- orders.cancel_reason: why a cancelled order was cancelled (staff's words, or expiry).
- order_status_changes: one row per status an order entered. Existing orders get what
  is known of theirs: PENDING_PAYMENT at created_at and, if they moved on, their current
  status at updated_at (the steps in between were never recorded).
- fulfillments and fulfillment_lines: shipments of some units of some lines.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _created_at(name: str) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.text("CURRENT_TIMESTAMP"),
        nullable=False,
    )


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("status_token_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("cancel_reason", sa.String(length=500), nullable=True))
    op.create_index(
        "uq_orders_status_token_hash", "orders", ["status_token_hash"], unique=True
    )
    op.create_table(
        "order_status_changes",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        _created_at("at"),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_status_changes_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_status_changes")),
    )
    op.create_index(
        "ix_order_status_changes_order_id", "order_status_changes", ["order_id", "id"]
    )
    op.execute(
        "INSERT INTO order_status_changes (order_id, status, at) "
        "SELECT id, 'PENDING_PAYMENT', created_at FROM orders ORDER BY id"
    )
    op.execute(
        "INSERT INTO order_status_changes (order_id, status, at) "
        "SELECT id, status, updated_at FROM orders WHERE status <> 'PENDING_PAYMENT' ORDER BY id"
    )
    op.create_table(
        "fulfillments",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("tracking_company", sa.String(length=255), nullable=True),
        sa.Column("tracking_number", sa.String(length=255), nullable=True),
        sa.Column("tracking_url", sa.String(length=2048), nullable=True),
        _created_at("created_at"),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_fulfillments_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfillments")),
    )
    op.create_index("ix_fulfillments_order_id", "fulfillments", ["order_id", "id"])
    op.create_table(
        "fulfillment_lines",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("fulfillment_id", Id, nullable=False),
        sa.Column("order_line_id", Id, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_fulfillment_lines_positive")),
        sa.ForeignKeyConstraint(
            ["fulfillment_id"],
            ["fulfillments.id"],
            name=op.f("fk_fulfillment_lines_fulfillment_id_fulfillments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_line_id"],
            ["order_lines.id"],
            name=op.f("fk_fulfillment_lines_order_line_id_order_lines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfillment_lines")),
    )
    op.create_index(
        "ix_fulfillment_lines_fulfillment_id", "fulfillment_lines", ["fulfillment_id"]
    )
    op.create_index("ix_fulfillment_lines_order_line_id", "fulfillment_lines", ["order_line_id"])


def downgrade() -> None:
    op.drop_index("ix_fulfillment_lines_order_line_id", table_name="fulfillment_lines")
    op.drop_index("ix_fulfillment_lines_fulfillment_id", table_name="fulfillment_lines")
    op.drop_table("fulfillment_lines")
    op.drop_index("ix_fulfillments_order_id", table_name="fulfillments")
    op.drop_table("fulfillments")
    op.drop_index("ix_order_status_changes_order_id", table_name="order_status_changes")
    op.drop_table("order_status_changes")
    op.drop_index("uq_orders_status_token_hash", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("cancel_reason")
        batch.drop_column("status_token_hash")
