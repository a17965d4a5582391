"""Small factories that write exactly the rows a test needs, with readable defaults."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from persistence.db import Database
from persistence.tables import (
    categories,
    customers,
    inventory_levels,
    product_images,
    product_rating_summaries,
    product_variants,
    products,
    reviews,
)
from tests.conftest import SEED_COLUMNS

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass
class MadeProduct:
    id: int
    slug: str
    variant_ids: list[int] = field(default_factory=list)


@dataclass
class CatalogFactory:
    db: Database
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def _insert(self, table: Any, values: dict[str, Any]) -> int:
        async with self.db.writer.begin() as connection:
            result = await connection.execute(insert(table).values(**values).returning(table.c[0]))
            return int(result.scalar_one())

    async def category(self, slug: str, parent: int | None = None, position: int = 0) -> int:
        async with self.db.writer.begin() as connection:
            parent_path = "/"
            if parent is not None:
                parent_path = (
                    await connection.execute(
                        select(categories.c.path).where(categories.c.id == parent)
                    )
                ).scalar_one()
            new_id = (
                await connection.execute(
                    insert(categories)
                    .values(
                        slug=slug,
                        name=slug.replace("-", " ").title(),
                        parent_id=parent,
                        path="?",
                        position=position,
                    )
                    .returning(categories.c.id)
                )
            ).scalar_one()
            await connection.execute(
                update(categories)
                .where(categories.c.id == new_id)
                .values(path=f"{parent_path}{new_id}/")
            )
            return int(new_id)

    async def product(
        self,
        title: str,
        *,
        category: int | None = None,
        brand: str = "Acme",
        status: str = "active",
        attributes: dict[str, str] | None = None,
        prices: list[int] | None = None,
        stock: list[int] | None = None,
        created_at: datetime | None = None,
        images: int = 1,
        description: str | None = None,
    ) -> MadeProduct:
        n = next(self._sequence)
        prices = prices or [1000]
        stock = stock if stock is not None else [10] * len(prices)
        slug = title.lower().replace(" ", "-")
        product_id = await self._insert(
            products,
            {
                "slug": slug,
                "title": title,
                "description": f"About {title}." if description is None else description,
                "brand": brand,
                "category_id": category,
                "status": status,
                "attributes": [{"name": k, "value": v} for k, v in (attributes or {}).items()],
                "price_min": min(prices),
                "price_max": max(prices),
                "currency_code": "USD",
                "created_at": created_at or T0 + timedelta(minutes=n),
                "updated_at": created_at or T0 + timedelta(minutes=n),
            },
        )
        made = MadeProduct(id=product_id, slug=slug)
        async with self.db.writer.begin() as connection:
            for position, (price, units) in enumerate(zip(prices, stock, strict=True)):
                variant_id = (
                    await connection.execute(
                        insert(product_variants)
                        .values(
                            product_id=product_id,
                            sku=f"{slug}-{position}".upper(),
                            title=f"Size {position}",
                            options=[{"name": "Size", "value": str(position)}],
                            price=price,
                            compare_at_price=price + 500 if position == 0 else None,
                            currency_code="USD",
                            position=position,
                        )
                        .returning(product_variants.c.id)
                    )
                ).scalar_one()
                made.variant_ids.append(int(variant_id))
                await connection.execute(
                    insert(inventory_levels).values(variant_id=variant_id, available=units)
                )
            for position in range(images):
                await connection.execute(
                    insert(product_images).values(
                        product_id=product_id,
                        url=f"https://img.test/{slug}/{position}.jpg",
                        alt=title,
                        position=position,
                    )
                )
        return made

    async def customer(self, email: str | None = None, name: str = "Ann Reader") -> int:
        n = next(self._sequence)
        stored = SEED_COLUMNS.stored(email=email or f"c{n}@example.com", display_name=name)
        return await self._insert(customers, dict(stored))

    async def review(
        self,
        product_id: int,
        *,
        rating: int = 5,
        customer: int | None = None,
        age_days: int = 0,
        title: str = "Good",
    ) -> int:
        customer = customer or await self.customer()
        review_id = await self._insert(
            reviews,
            {
                "product_id": product_id,
                "customer_id": customer,
                "rating": rating,
                "title": title,
                "body": "Worth it.",
                "created_at": T0 + timedelta(days=100 - age_days),
            },
        )
        await self._summarise(product_id)
        return review_id

    async def _summarise(self, product_id: int) -> None:
        async with self.db.writer.begin() as connection:
            count, total = (
                await connection.execute(
                    select(func.count(), func.coalesce(func.sum(reviews.c.rating), 0)).where(
                        reviews.c.product_id == product_id
                    )
                )
            ).one()
            await connection.execute(
                delete(product_rating_summaries).where(
                    product_rating_summaries.c.product_id == product_id
                )
            )
            await connection.execute(
                insert(product_rating_summaries).values(
                    product_id=product_id,
                    rating_count=count,
                    rating_sum=total,
                    rating_average=round(total / count, 2) if count else 0.0,
                )
            )
