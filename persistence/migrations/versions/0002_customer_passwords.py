"""customer passwords, reviews by customer

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases (SQLite >= 3.35 drops columns itself): batch mode
# would rebuild the table on SQLite and lose the expression index on lower(email).
def upgrade() -> None:
    op.add_column("customers", sa.Column("password_hash", sa.String(length=255), nullable=True))
    op.create_index(
        "ix_reviews_customer_newest", "reviews", ["customer_id", "created_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_reviews_customer_newest", table_name="reviews")
    op.drop_column("customers", "password_hash")
