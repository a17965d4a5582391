"""What a country may ship by: one statement on the AUTOCOMMIT reader."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import RowMapping, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.shipping import ShippingMethod
from persistence.db import Database
from persistence.tables import shipping_methods, shipping_zone_countries


def method_from_row(row: RowMapping) -> ShippingMethod:
    return ShippingMethod(
        id=row["id"],
        zone_id=row["zone_id"],
        title=row["title"],
        price=row["price"],
        min_subtotal=row["min_subtotal"],
        max_subtotal=row["max_subtotal"],
        min_delivery_days=row["min_delivery_days"],
        max_delivery_days=row["max_delivery_days"],
        active=bool(row["active"]),
    )


_METHOD_COLUMNS = [c for c in shipping_methods.c if c.name not in {"created_at", "updated_at"}]


class SqlShippingRates:
    """Implements domain.shipping.ShippingRates."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def methods_for_country(self, country_code: str) -> Sequence[ShippingMethod] | None:
        # The country's row LEFT JOIN its zone's active methods: a zone that ships
        # nothing there still answers (one row of nulls), unlike a country in no zone.
        query = (
            select(shipping_zone_countries.c.zone_id.label("zone"), *_METHOD_COLUMNS)
            .select_from(
                shipping_zone_countries.outerjoin(
                    shipping_methods,
                    and_(
                        shipping_methods.c.zone_id == shipping_zone_countries.c.zone_id,
                        shipping_methods.c.active.is_(True),
                    ),
                )
            )
            .where(shipping_zone_countries.c.country_code == country_code)
            .order_by(shipping_methods.c.id)
        )

        # May lag (a cart's shipping options); checkout runs inside current_reads().
        async def found(connection: AsyncConnection) -> Sequence[RowMapping]:
            return (await connection.execute(query)).mappings().all()

        rows = await self._db.read(found)
        if not rows:
            return None
        return [method_from_row(row) for row in rows if row["id"] is not None]
