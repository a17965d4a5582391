"""shipping zones and methods; orders record the method charged

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

- shipping_zones: a named set of countries.
- shipping_zone_countries: one row per country, the country the primary key, so a
  country is in at most one zone.
- shipping_methods: per zone, a title, a price, an optional subtotal range (both ends
  inclusive) and a delivery estimate in days.
- orders.shipping_method_title / shipping_method_handle: the method charged, as it was
  (null for orders placed before this revision).

No rows are written: the default zone ("rest of world", from SHIPPING_FLAT_RATE and
FREE_SHIPPING_THRESHOLD) is built in, so a store behaves as before until staff add zones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            name,
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        )
        for name in ("created_at", "updated_at")
    ]


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("shipping_method_title", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("shipping_method_handle", sa.String(length=64), nullable=True))
    op.create_table(
        "shipping_zones",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_zones")),
    )
    op.create_table(
        "shipping_zone_countries",
        sa.Column("country_code", sa.String(length=2), nullable=False),
        sa.Column("zone_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["zone_id"],
            ["shipping_zones.id"],
            name=op.f("fk_shipping_zone_countries_zone_id_shipping_zones"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("country_code", name=op.f("pk_shipping_zone_countries")),
    )
    op.create_index(
        "ix_shipping_zone_countries_zone_id", "shipping_zone_countries", ["zone_id"]
    )
    op.create_table(
        "shipping_methods",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("zone_id", Id, nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("min_subtotal", sa.BigInteger(), nullable=True),
        sa.Column("max_subtotal", sa.BigInteger(), nullable=True),
        sa.Column("min_delivery_days", sa.SmallInteger(), nullable=False),
        sa.Column("max_delivery_days", sa.SmallInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        *_timestamps(),
        sa.CheckConstraint("price >= 0", name=op.f("ck_shipping_methods_price")),
        sa.CheckConstraint(
            "min_subtotal IS NULL OR max_subtotal IS NULL OR min_subtotal <= max_subtotal",
            name=op.f("ck_shipping_methods_subtotal_range"),
        ),
        sa.CheckConstraint(
            "min_delivery_days >= 0 AND min_delivery_days <= max_delivery_days",
            name=op.f("ck_shipping_methods_delivery_days"),
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"],
            ["shipping_zones.id"],
            name=op.f("fk_shipping_methods_zone_id_shipping_zones"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_methods")),
    )
    op.create_index("ix_shipping_methods_zone_id", "shipping_methods", ["zone_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_shipping_methods_zone_id", table_name="shipping_methods")
    op.drop_table("shipping_methods")
    op.drop_index("ix_shipping_zone_countries_zone_id", table_name="shipping_zone_countries")
    op.drop_table("shipping_zone_countries")
    op.drop_table("shipping_zones")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("shipping_method_handle")
        batch.drop_column("shipping_method_title")
