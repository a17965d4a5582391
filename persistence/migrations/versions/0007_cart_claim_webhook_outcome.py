"""one live order per cart; webhook events record what they did

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

A partial unique index on orders(cart_id) over the statuses that hold a cart, so a cart
becomes at most one order whatever idempotency keys its checkouts carry (checkout inserts
with ON CONFLICT against it). Failed, cancelled and expired orders stay out of it, so
their cart can be checked out again. Both PostgreSQL and SQLite support partial indexes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen here (the app's copy is domain.orders.CART_HOLDING_STATUSES): a migration must
# keep meaning what it meant when it ran.
HOLDS_CART = "status IN ('PENDING_PAYMENT', 'PAID', 'FULFILLED', 'REFUNDED')"


def upgrade() -> None:
    # Orders placed before this revision may already share a cart (the bug it fixes).
    # Changing their status here would rewrite money records behind the operator's
    # back, so the upgrade refuses and names one such cart instead.
    duplicates = op.get_bind().execute(
        sa.text(
            f"SELECT cart_id FROM orders WHERE {HOLDS_CART} GROUP BY cart_id HAVING COUNT(*) > 1"
        )
    )
    carts = [row[0] for row in duplicates]
    if carts:
        raise RuntimeError(
            f"{len(carts)} carts have several live orders (e.g. {carts[0]!r}); resolve them "
            "(refund and cancel the extra orders) before upgrading to 0007"
        )
    op.create_index(
        "uq_orders_cart_holding",
        "orders",
        ["cart_id"],
        unique=True,
        postgresql_where=sa.text(HOLDS_CART),
        sqlite_where=sa.text(HOLDS_CART),
    )
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("outcome", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("outcome")
    op.drop_index("uq_orders_cart_holding", table_name="orders")
