"""account tokens (password resets, email verifications), verified emails, sealed mail bodies

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

- `account_tokens`: single-use tokens mailed to a customer, kept only as the SHA-256 of
  the token; an email verification also holds the address it proves (Fernet, like
  orders' emails). Redeeming is a conditional UPDATE of `used_at`.
- `customers.email_verified_at`: when the current address was proven. Accounts that
  existed before this revision start unverified.
- `notifications.body_encrypted`: bodies are written encrypted from now on (a reset mail
  carries a token); `body` becomes nullable and keeps the rows written before, which
  hold order summaries and stock levels, never a token or an address.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "account_tokens",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("customer_id", Id, nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email_encrypted", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "purpose IN ('password_reset', 'email_verification')",
            name=op.f("ck_account_tokens_purpose"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_account_tokens_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_tokens_token_hash")),
    )
    op.create_index(
        "ix_account_tokens_customer_purpose", "account_tokens", ["customer_id", "purpose"]
    )
    # Plain ALTER TABLE (as in 0002): batch mode would rebuild customers on SQLite and
    # lose the expression index on lower(email).
    op.add_column(
        "customers", sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True)
    )
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("body_encrypted", sa.Text(), nullable=True))
        batch.alter_column("body", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    # Bodies written encrypted cannot go back to clear text without the key: they are
    # dropped with their column, and `body` is made NOT NULL again over an empty string.
    op.execute(sa.text("UPDATE notifications SET body = '' WHERE body IS NULL"))
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("body", existing_type=sa.Text(), nullable=False)
        batch.drop_column("body_encrypted")
    op.drop_column("customers", "email_verified_at")
    op.drop_index("ix_account_tokens_customer_purpose", table_name="account_tokens")
    op.drop_table("account_tokens")
