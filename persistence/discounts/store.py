"""Discounts in SQL: the candidates for a cart (one statement), who used what, and the
staff's writes (each one transaction with its outbox event)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.discount_desk import (
    DISCOUNTS_ORDERING,
    DiscountCodeTaken,
    DiscountMissing,
    UsageLimitBelowUses,
)
from domain.discounts import Discount, DiscountKind, DiscountScope, DiscountValue
from domain.events import DiscountChanged
from domain.pagination import Page, PageRequest, encode_cursor
from persistence.cursor_keys import cursor_id
from persistence.db import Database, aware
from persistence.events.outbox import emit
from persistence.tables import categories, discount_redemptions, discounts, products

_COLUMNS = tuple(c for c in discounts.c if c.name != "created_at")


class SqlDiscountStore:
    """Implements domain.discount_desk.DiscountStore."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def automatic(self, now: datetime) -> Sequence[Discount]:
        return await self._select(
            discounts.c.code.is_(None)
            & discounts.c.active
            & or_(discounts.c.ends_at.is_(None), discounts.c.ends_at > now)
        )

    async def by_codes(self, codes: Sequence[str]) -> Sequence[Discount]:
        return await self._select(discounts.c.code.in_(list(codes))) if codes else []

    async def _select(self, condition: Any) -> list[Discount]:
        # May lag: carts keep these for DISCOUNT_CACHE_SECONDS anyway; checkout runs
        # inside current_reads(), which sends this to the primary.
        async def found(connection: AsyncConnection) -> list[Discount]:
            rows = (
                await connection.execute(
                    select(*_COLUMNS).where(condition).order_by(discounts.c.id)
                )
            ).mappings()
            return [discount_of(row) for row in rows]

        return await self._db.read(found)

    async def used_by(self, keys: Sequence[str], discount_ids: Collection[int]) -> frozenset[int]:
        if not keys or not discount_ids:
            return frozenset()
        async with self._db.primary_reader.connect() as connection:  # what checkout counts
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
            _raise_if_code_taken(error)
            raise
        return discount_of(row)

    async def by_id(self, discount_id: int) -> Discount | None:
        # The primary: staff read a discount to change it right after writing it.
        async with self._db.writer.connect() as connection:
            row = (
                (await connection.execute(select(*_COLUMNS).where(discounts.c.id == discount_id)))
                .mappings()
                .one_or_none()
            )
            return None if row is None else discount_of(row)

    async def update(self, discount: Discount) -> Discount:
        # Every column but times_used, which checkout counts concurrently: writing back a
        # value read earlier would lose the uses taken meanwhile. The limit is compared
        # with the count in the WHERE, so a use taken after any read still counts.
        condition = discounts.c.id == discount.id
        if discount.usage_limit is not None:
            condition = condition & (discounts.c.times_used <= discount.usage_limit)
        try:
            async with self._db.writer.begin() as connection:
                row = (
                    (
                        await connection.execute(
                            update(discounts)
                            .where(condition)
                            .values(**columns_of(discount), updated_at=func.now())
                            .returning(*_COLUMNS)
                        )
                    )
                    .mappings()
                    .one_or_none()
                )
                if row is None:
                    await self._refusal(connection, discount.id)
                assert row is not None
                await emit(connection, DiscountChanged(discount=row["id"], change="updated"))
        except IntegrityError as error:
            _raise_if_code_taken(error)
            raise
        return discount_of(row)

    async def deactivate(self, discount_id: int) -> Discount:
        async with self._db.writer.begin() as connection:
            row = (
                (
                    await connection.execute(
                        update(discounts)
                        .where(discounts.c.id == discount_id)
                        .values(active=False, updated_at=func.now())
                        .returning(*_COLUMNS)
                    )
                )
                .mappings()
                .one_or_none()
            )
            if row is None:
                raise DiscountMissing()
            await emit(connection, DiscountChanged(discount=row["id"], change="deactivated"))
        return discount_of(row)

    async def page(self, request: PageRequest) -> Page[Discount]:
        statement = select(*_COLUMNS).order_by(discounts.c.id.desc()).limit(request.first + 1)
        if request.after is not None:
            statement = statement.where(discounts.c.id < cursor_id(request.after[0]))
        async with self._db.writer.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return Page.from_rows(
            [discount_of(row) for row in rows],
            first=request.first,
            after=request.after,
            cursor_of=lambda d: encode_cursor(DISCOUNTS_ORDERING, (d.id,)),
        )

    async def existing(
        self, product_ids: Collection[int], category_ids: Collection[int]
    ) -> tuple[frozenset[int], frozenset[int]]:
        async with self._db.primary_reader.connect() as connection:  # a staff edit's check
            found_products = (
                await connection.execute(
                    select(products.c.id).where(products.c.id.in_(list(product_ids)))
                )
                if product_ids
                else None
            )
            found_categories = (
                await connection.execute(
                    select(categories.c.id).where(categories.c.id.in_(list(category_ids)))
                )
                if category_ids
                else None
            )
            return (
                frozenset() if found_products is None else frozenset(found_products.scalars()),
                frozenset() if found_categories is None else frozenset(found_categories.scalars()),
            )

    @staticmethod
    async def _refusal(connection: AsyncConnection, discount_id: int) -> None:
        """Why a conditional UPDATE matched no row: no such discount, or its count of uses
        is above the new limit."""
        found = await connection.scalar(select(discounts.c.id).where(discounts.c.id == discount_id))
        if found is None:
            raise DiscountMissing()
        raise UsageLimitBelowUses()


def _raise_if_code_taken(error: IntegrityError) -> None:
    if "code" in str(error.orig):
        raise DiscountCodeTaken() from None


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
