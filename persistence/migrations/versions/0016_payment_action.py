"""orders that wait for the customer's payment action; the payment reconciler's mark

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

- orders.status (and order_status_changes.status) widen to 32 characters and take
  PAYMENT_ACTION_REQUIRED (3-D Secure: the gateway waits for the customer).
- orders.payment_action_secret_encrypted (Fernet, like the email) and
  payment_action_type: what the buyer's client needs to finish the payment.
- orders.payment_checked_at: when the reconciler last asked the gateway about it.
- uq_orders_cart_holding: an order waiting for the customer's action holds its cart.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Frozen here, as in 0007: a migration keeps meaning what it meant when it ran.
HOLDS_CART_BEFORE = "status IN ('PENDING_PAYMENT', 'PAID', 'FULFILLED', 'REFUNDED')"
HOLDS_CART = (
    "status IN ('PENDING_PAYMENT', 'PAYMENT_ACTION_REQUIRED', 'PAID', 'FULFILLED', 'REFUNDED')"
)
STATUSES_BEFORE = (
    "status IN ('PENDING_PAYMENT', 'PAID', 'FULFILLED', 'PAYMENT_FAILED', 'CANCELLED', "
    "'REFUNDED')"
)
STATUSES = (
    "status IN ('PENDING_PAYMENT', 'PAYMENT_ACTION_REQUIRED', 'PAID', 'FULFILLED', "
    "'PAYMENT_FAILED', 'CANCELLED', 'REFUNDED')"
)


def _cart_index(predicate: str) -> None:
    op.create_index(
        "uq_orders_cart_holding",
        "orders",
        ["cart_id"],
        unique=True,
        postgresql_where=sa.text(predicate),
        sqlite_where=sa.text(predicate),
    )


def upgrade() -> None:
    op.drop_index("uq_orders_cart_holding", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_status"), type_="check")
        batch.alter_column(
            "status", existing_type=sa.String(length=20), type_=sa.String(length=32)
        )
        batch.create_check_constraint(op.f("ck_orders_status"), sa.text(STATUSES))
        batch.add_column(sa.Column("payment_action_secret_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("payment_action_type", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("payment_checked_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("order_status_changes") as batch:
        batch.alter_column(
            "status", existing_type=sa.String(length=20), type_=sa.String(length=32)
        )
    _cart_index(HOLDS_CART)


def downgrade() -> None:
    # An order still waiting for its customer's action has no status before 0016.
    waiting = op.get_bind().execute(
        sa.text("SELECT COUNT(*) FROM orders WHERE status = 'PAYMENT_ACTION_REQUIRED'")
    )
    if waiting.scalar():
        raise RuntimeError(
            "some orders are PAYMENT_ACTION_REQUIRED; settle them (payments-reconcile, or "
            "let them expire) before downgrading below 0016"
        )
    op.drop_index("uq_orders_cart_holding", table_name="orders")
    with op.batch_alter_table("order_status_changes") as batch:
        batch.alter_column(
            "status", existing_type=sa.String(length=32), type_=sa.String(length=20)
        )
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("payment_checked_at")
        batch.drop_column("payment_action_type")
        batch.drop_column("payment_action_secret_encrypted")
        batch.drop_constraint(op.f("ck_orders_status"), type_="check")
        batch.alter_column(
            "status", existing_type=sa.String(length=32), type_=sa.String(length=20)
        )
        batch.create_check_constraint(op.f("ck_orders_status"), sa.text(STATUSES_BEFORE))
    _cart_index(HOLDS_CART_BEFORE)
