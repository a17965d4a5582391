"""The database itself refuses impossible data, whatever code path writes it."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from persistence.db import Database
from persistence.tables import customers, inventory_levels, product_variants, products, reviews
from tests.conftest import SEED_COLUMNS
from tests.factories import CatalogFactory


@pytest.fixture
async def made(db: Database, clean: None) -> tuple[CatalogFactory, int, int]:
    factory = CatalogFactory(db)
    product = await factory.product("Lamp", stock=[2])
    return factory, product.id, product.variant_ids[0]


async def _refused(db: Database, statement: object) -> None:
    with pytest.raises(IntegrityError):
        async with db.writer.begin() as connection:
            await connection.execute(statement)  # type: ignore[call-overload]


async def test_stock_can_never_go_below_zero(
    db: Database, made: tuple[CatalogFactory, int, int]
) -> None:
    _, _, variant_id = made
    await _refused(
        db,
        update(inventory_levels)
        .where(inventory_levels.c.variant_id == variant_id)
        .values(available=inventory_levels.c.available - 3),
    )


async def test_emails_are_unique_ignoring_case(
    db: Database, made: tuple[CatalogFactory, int, int]
) -> None:
    factory, _, _ = made
    await factory.customer("Ann@Example.com")
    other = SEED_COLUMNS.stored(email="ann@example.COM", display_name="Other Ann")
    await _refused(db, insert(customers).values(other))


async def test_one_review_per_customer_per_product_and_ratings_1_to_5(
    db: Database, made: tuple[CatalogFactory, int, int]
) -> None:
    factory, product_id, _ = made
    customer = await factory.customer()
    await factory.review(product_id, customer=customer)
    await _refused(
        db,
        insert(reviews).values(
            product_id=product_id, customer_id=customer, rating=4, title="t", body="b"
        ),
    )
    other = await factory.customer()
    for rating in (0, 6):
        await _refused(
            db,
            insert(reviews).values(
                product_id=product_id, customer_id=other, rating=rating, title="t", body="b"
            ),
        )


async def test_skus_and_slugs_are_unique_and_prices_not_negative(
    db: Database, made: tuple[CatalogFactory, int, int]
) -> None:
    _, product_id, _ = made
    await _refused(
        db,
        insert(product_variants).values(
            product_id=product_id,
            sku="LAMP-0",
            title="Dup",
            options=[],
            price=1,
            currency_code="USD",
        ),
    )
    await _refused(
        db,
        insert(product_variants).values(
            product_id=product_id, sku="NEW", title="Neg", options=[], price=-1, currency_code="USD"
        ),
    )
    await _refused(
        db, insert(products).values(slug="lamp", title="Lamp 2", attributes=[], currency_code="USD")
    )
    await _refused(
        db,
        insert(products).values(
            slug="odd", title="Odd", attributes=[], currency_code="USD", status="deleted"
        ),
    )
