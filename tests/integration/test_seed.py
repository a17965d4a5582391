"""The demo catalog: deterministic, realistic, and refused on a non-empty catalog."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.engine import RowMapping

from persistence.db import Database
from persistence.seed import catalog_is_empty, seed_catalog
from persistence.tables import (
    categories,
    customers,
    inventory_levels,
    metadata,
    product_rating_summaries,
    product_variants,
    products,
    reviews,
)
from tests.conftest import SEED_COLUMNS


async def _dump(db: Database) -> dict[str, list[tuple[object, ...]]]:
    async with db.reader.connect() as connection:
        return {
            table.name: [
                _comparable(table, row)
                for row in (
                    await connection.execute(select(table).order_by(*table.primary_key))
                ).mappings()
            ]
            for table in metadata.sorted_tables
        }


def _comparable(table: Table, row: RowMapping) -> tuple[object, ...]:
    # A Fernet token is random on every encryption: compare what it holds.
    if table is customers:
        return (SEED_COLUMNS.customer(row), row["email_index"])
    return tuple(row.values())


async def test_seed_is_deterministic(db: Database, clean: None) -> None:
    await seed_catalog(db, customer_columns=SEED_COLUMNS, products=40, seed=3)
    first = await _dump(db)
    async with db.writer.begin() as connection:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        await connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    await seed_catalog(db, customer_columns=SEED_COLUMNS, products=40, seed=3)

    assert await _dump(db) == first


async def test_seed_builds_a_realistic_catalog_and_refuses_to_run_twice(
    db: Database, clean: None
) -> None:
    assert await catalog_is_empty(db)
    report = await seed_catalog(db, customer_columns=SEED_COLUMNS, products=300, seed=11)

    async with db.reader.connect() as connection:
        per_product = Counter(
            (await connection.execute(select(product_variants.c.product_id))).scalars().all()
        )
        review_counts = dict(
            (
                await connection.execute(
                    select(
                        product_rating_summaries.c.product_id,
                        product_rating_summaries.c.rating_count,
                    )
                )
            ).all()
        )
        actual_reviews = (
            await connection.execute(select(func.count()).select_from(reviews))
        ).scalar_one()
        sold_out = (
            await connection.execute(select(func.count()).where(inventory_levels.c.available == 0))
        ).scalar_one()
        roots = (
            await connection.execute(select(func.count()).where(categories.c.parent_id.is_(None)))
        ).scalar_one()
        attribute_names = {
            frozenset(a["name"] for a in attrs)
            for attrs in (await connection.execute(select(products.c.attributes))).scalars().all()
        }

    assert report.products == 300 and report.variants == sum(per_product.values())
    assert min(per_product.values()) >= 1 and max(per_product.values()) <= 6
    assert len(per_product) == 300
    assert (
        all(0 <= n <= 50 for n in review_counts.values())
        and sum(review_counts.values()) == actual_reviews
    )
    assert 0 < sold_out < report.variants
    assert roots >= 5
    assert len(attribute_names) >= 5  # attributes differ by kind of product
    assert not await catalog_is_empty(db)
    with pytest.raises(RuntimeError, match="not empty"):
        await seed_catalog(db, customer_columns=SEED_COLUMNS, products=10)
