"""The demo catalog: deterministic, realistic, and refused on a non-empty catalog."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import Table, func, insert, select
from sqlalchemy.engine import RowMapping

from commands import _seed
from domain.discounts import DiscountableLine, DiscountKind, DiscountScope, category_lineage
from domain.gift_cards import canonical_code, code_digest
from persistence.db import Database
from persistence.discounts.store import SqlDiscountStore
from persistence.seed import catalog_is_empty, seed_catalog
from persistence.tables import (
    categories,
    customers,
    discounts,
    gift_cards,
    inventory_levels,
    metadata,
    product_rating_summaries,
    product_variants,
    products,
    reviews,
)
from settings import Settings
from tests.conftest import SEED_COLUMNS, TEST_GIFT_CARD_CODE_KEY


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


async def test_the_demo_has_a_welcome_code_and_a_sale_on_a_whole_category_tree(
    db: Database, clean: None
) -> None:
    report = await seed_catalog(db, customer_columns=SEED_COLUMNS, products=60, seed=5)

    store = SqlDiscountStore(db)
    in_force = [
        *await store.automatic(datetime.now(UTC)),
        *await store.by_codes(["WELCOME10"]),
    ]
    async with db.reader.connect() as connection:
        root = (
            await connection.execute(
                select(categories.c.id, categories.c.path)
                .where(categories.c.parent_id.is_(None))
                .order_by(categories.c.position, categories.c.id)
                .limit(1)
            )
        ).one()
        paths = (
            (
                await connection.execute(
                    select(categories.c.path).where(categories.c.path.like(f"{root.path}%"))
                )
            )
            .scalars()
            .all()
        )
        elsewhere = (
            (
                await connection.execute(
                    select(categories.c.path).where(categories.c.path.not_like(f"{root.path}%"))
                )
            )
            .scalars()
            .all()
        )

    assert report.discounts == 2
    welcome, sale = sorted(in_force, key=lambda d: d.code is None)
    assert (welcome.code, welcome.value.kind, welcome.value.amount) == (
        "WELCOME10",
        DiscountKind.PERCENTAGE,
        1000,
    )
    assert welcome.scope is DiscountScope.ORDER and welcome.active
    assert sale.automatic and sale.value.amount == 1500 and sale.active
    assert (sale.scope, sale.category_ids) == (DiscountScope.CATEGORIES, {root.id})
    assert len(paths) > 1 and elsewhere  # the root has descendants, and there is more

    def line_in(path: str) -> DiscountableLine:
        return DiscountableLine(1, 1, category_lineage(path), 1_000)

    assert all(sale.covers(line_in(path)) for path in paths)
    assert not any(sale.covers(line_in(path)) for path in elsewhere)


async def test_the_demo_discounts_stay_out_when_staff_made_discounts(
    db: Database, clean: None
) -> None:
    async with db.writer.begin() as connection:
        await connection.execute(
            insert(discounts).values(
                title="Theirs",
                code="WELCOME10",
                value_type="FREE_SHIPPING",
                value=0,
                scope="ORDER",
                product_ids=[],
                category_ids=[],
            )
        )

    report = await seed_catalog(db, customer_columns=SEED_COLUMNS, products=20, seed=5)

    async with db.reader.connect() as connection:
        titles = (await connection.execute(select(discounts.c.title))).scalars().all()
    assert report.discounts == 0 and titles == ["Theirs"]


async def test_the_seed_command_prints_one_gift_card_it_issued(
    settings: Settings, clean: None, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    await _seed(settings, products=20, seed=2, if_empty=False)

    printed = capsys.readouterr().out
    found = re.search(
        r"^gift card: ([A-Z0-9]{4}(?:-[A-Z0-9]{4}){3}) \(50\.00 USD\)$", printed, re.M
    )
    assert found, printed
    assert "2 discounts" in printed
    code = canonical_code(found.group(1))
    assert code is not None
    async with db.reader.connect() as connection:
        (card,) = (await connection.execute(select(gift_cards))).mappings().all()
    # digested with the configured key, as giftCardCreate would: the printed code opens it
    assert card["code_digest"] == code_digest(code, TEST_GIFT_CARD_CODE_KEY.encode())
    assert (card["balance"], card["currency_code"], card["enabled"]) == (5_000, "USD", True)
    assert code not in " ".join(str(v) for v in card.values())
