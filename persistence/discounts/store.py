"""Discounts in SQL: the candidates for a cart (one statement), who used what, and the
staff's writes (each one transaction with its outbox event)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, insert, or_, select
from sqlalchemy.exc import IntegrityError

from domain.discount_desk import DiscountCodeTaken
from domain.discounts import Discount, DiscountKind, DiscountScope, DiscountValue
from domain.events import DiscountChanged
from persistence.db import Database, aware
from persistence.events.outbox import emit
from persistence.tables import discount_redemptions, discounts

_COLUMNS = tuple(c for c in discounts.c if c.name != "created_at")


class SqlDiscountStore:
    """Implements domain.discount_desk.DiscountStore."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def in_force(self, codes: Sequence[str], now: datetime) -> Sequence[Discount]:
        automatic = (
            discounts.c.code.is_(None)
            & discounts.c.active
            & or_(discounts.c.ends_at.is_(None), discounts.c.ends_at > now)
        )
        return await self._select(
            or_(automatic, discounts.c.code.in_(list(codes))) if codes else automatic
        )

    async def automatic(self, now: datetime) -> Sequence[Discount]:
        return await self.in_force((), now)

    async def by_codes(self, codes: Sequence[str]) -> Sequence[Discount]:
        return await self._select(discounts.c.code.in_(list(codes))) if codes else []

    async def _select(self, condition: Any) -> list[Discount]:
        async with self._db.reader.connect() as connection:
            rows = (
                await connection.execute(
                    select(*_COLUMNS).where(condition).order_by(discounts.c.id)
                )
            ).mappings()
            return [discount_of(row) for row in rows]

    async def used_by(self, keys: Sequence[str], discount_ids: Collection[int]) -> frozenset[int]:
        if not keys or not discount_ids:
            return frozenset()
        async with self._db.reader.connect() as connection:
            found = await connection.execute(
                select(discount_redemptions.c.discount_id)
                .where(
                    discount_redemptions.c.buyer_key.in_(list(keys)),
                    discount_redemptions.c.discount_id.in_(list(discount_ids)),
                )
                .distinct()
            )
            return frozenset(int(row[0]) for row in found)

    async def create(self, discount: Discount) -> Discount:
        try:
            async with self._db.writer.begin() as connection:
                row = (
                    (
                        await connection.execute(
                            insert(discounts).values(**columns_of(discount)).returning(*_COLUMNS)
                        )
                    )
                    .mappings()
                    .one()
                )
                await emit(connection, DiscountChanged(discount=row["id"], change="created"))
        except IntegrityError as error:
            if "code" in str(error.orig):
                raise DiscountCodeTaken() from None
            raise
        return discount_of(row)


def columns_of(discount: Discount) -> dict[str, Any]:
    """The row of a discount, but its id and the count of uses (the store's)."""
    return {
        "title": discount.title,
        "code": discount.code,
        "value_type": discount.value.kind.value,
        "value": discount.value.amount,
        "scope": discount.scope.value,
        "product_ids": sorted(discount.product_ids),
        "category_ids": sorted(discount.category_ids),
        "minimum_subtotal": discount.minimum_subtotal,
        "starts_at": discount.starts_at,
        "ends_at": discount.ends_at,
        "usage_limit": discount.usage_limit,
        "once_per_customer": discount.once_per_customer,
        "active": discount.active,
    }


def discount_of(row: RowMapping) -> Discount:
    return Discount(
        id=row["id"],
        title=row["title"],
        code=row["code"],
        value=DiscountValue(DiscountKind(row["value_type"]), row["value"]),
        scope=DiscountScope(row["scope"]),
        product_ids=frozenset(row["product_ids"]),
        category_ids=frozenset(row["category_ids"]),
        minimum_subtotal=row["minimum_subtotal"],
        starts_at=None if row["starts_at"] is None else aware(row["starts_at"]),
        ends_at=None if row["ends_at"] is None else aware(row["ends_at"]),
        usage_limit=row["usage_limit"],
        times_used=row["times_used"],
        once_per_customer=row["once_per_customer"],
        active=row["active"],
    )
