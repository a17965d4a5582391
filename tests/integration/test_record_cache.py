"""Product and variant records are read through Redis, invalidated on demand, and
a Redis outage costs the client nothing."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import update

from persistence.db import Database
from persistence.tables import inventory_levels, product_variants, products
from settings import Settings
from tests.client import AppClient, running_app
from tests.conftest import TEST_REDIS_URL
from tests.factories import CatalogFactory

QUERY = '{ product(slug: "mug") { title variants { sku price { amount } quantityAvailable } } }'


async def test_records_come_from_redis_until_invalidated(client: AppClient, db: Database) -> None:
    made = await CatalogFactory(db).product("Mug", prices=[900])
    cold = await client.query(QUERY)
    async with db.writer.begin() as connection:
        await connection.execute(
            update(products).where(products.c.id == made.id).values(title="Mug v2")
        )
        await connection.execute(
            update(product_variants)
            .where(product_variants.c.product_id == made.id)
            .values(price=1200)
        )

    warm = await client.query(QUERY)
    await client.container.cache.invalidate_products([made.id], ["mug"])
    fresh = await client.query(QUERY)

    assert warm.statements < cold.statements
    assert warm.data == cold.data  # served from the cache
    assert fresh.data["product"]["title"] == "Mug v2"
    assert fresh.data["product"]["variants"][0]["price"] == {"amount": "12.00"}


async def test_stock_is_never_cached(client: AppClient, db: Database) -> None:
    made = await CatalogFactory(db).product("Mug", stock=[5])
    await client.query(QUERY)
    async with db.writer.begin() as connection:
        await connection.execute(
            update(inventory_levels)
            .where(inventory_levels.c.variant_id == made.variant_ids[0])
            .values(available=1)
        )

    result = await client.query(QUERY)

    assert result.data["product"]["variants"][0]["quantityAvailable"] == 1


@pytest.mark.parametrize("redis_url", ["redis://127.0.0.1:1/0"])
async def test_redis_down_falls_back_to_the_database_with_a_warning(
    database_url: str, db: Database, clean: None, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await CatalogFactory(db).product("Mug", prices=[900])
    settings = Settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        expose_statement_count=True,
    )

    with caplog.at_level(logging.WARNING, logger="persistence.redis.record_cache"):
        async with running_app(settings) as client:
            first = await client.query(QUERY)
            second = await client.query(QUERY)
            ready = await client.http.get("/readyz")

    assert (
        first.data
        == second.data
        == {
            "product": {
                "title": "Mug",
                "variants": [
                    {"sku": "MUG-0", "price": {"amount": "9.00"}, "quantityAvailable": 10}
                ],
            }
        }
    )
    assert any("redis unavailable" in r.getMessage() for r in caplog.records)
    assert ready.status_code == 503
    assert ready.json()["database"] == "ok"
    assert ready.json()["redis"].startswith("error")


async def test_catalog_reads_go_to_the_read_replica_url(
    database_url: str, db: Database, clean: None
) -> None:
    await CatalogFactory(db).product("Mug", prices=[900])
    replica = database_url.replace("127.0.0.1", "localhost")
    settings = Settings(
        environment="test",
        database_url=database_url,
        database_read_url=replica,
        redis_url=TEST_REDIS_URL,
        expose_statement_count=True,
    )

    async with running_app(settings) as client:
        result = await client.query(QUERY)
        reader, writer = client.container.db.reader.url, client.container.db.writer.url

    assert (reader.host, writer.host) == ("localhost", "127.0.0.1")
    assert result.data["product"]["title"] == "Mug"
    assert result.statements > 0  # counted on the replica's engine
