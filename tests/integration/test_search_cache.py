"""Search answers cached in Redis until the index changes; never a stale answer after a
re-index, never a cached fallback, and search goes on when Redis is down."""

from __future__ import annotations

import socket

from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import update

from persistence.db import Database
from persistence.search.postgres import PostgresSearchIndex
from persistence.tables import inventory_levels, products
from settings import Settings
from tests.client import AppClient, running_app
from tests.factories import CatalogFactory

STOCK_FACET = """query($q: String!) { search(query: $q, first: 5) {
  facets { name values { value count } } } }"""
SEARCH = """query($q: String!) { search(query: $q, first: 5) {
  totalCount facets { name } edges { node { title availableForSale } } } }"""


async def test_a_repeated_search_costs_only_the_live_stock_until_the_index_changes(
    client: AppClient, db: Database
) -> None:
    kettle = await CatalogFactory(db).product(
        "Copper Kettle", prices=[4500], description="Stovetop"
    )
    await client.container.search.index_products([kettle.id])

    first = await client.query(SEARCH, {"q": "kettle"})
    again = await client.query(SEARCH, {"q": "kettle"})
    async with db.writer.begin() as connection:
        await connection.execute(
            update(products).where(products.c.id == kettle.id).values(title="Copper Teapot")
        )
    await client.container.search.index_products([kettle.id])  # what the indexer does
    after = await client.query(SEARCH, {"q": "kettle"})

    assert first.data == again.data
    assert first.data["search"]["totalCount"] == 1
    assert again.statements == 1  # stock, always live; ids, total and facets from Redis
    assert after.data["search"]["totalCount"] == 0  # the re-index ended the cached answer
    assert after.statements >= 1


async def test_fallback_answers_are_not_cached(
    settings: Settings, db: Database, redis: Redis, clean: None
) -> None:
    kettle = await CatalogFactory(db).product("Copper Kettle")
    await PostgresSearchIndex(db).index_products([kettle.id])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    elastic = settings.model_copy(
        update={"elasticsearch_url": SecretStr(f"http://127.0.0.1:{closed}")}
    )

    async with running_app(elastic) as app_client:
        answer = await app_client.query(SEARCH, {"q": "kettle"})

    assert answer.body["extensions"]["search"]["fallbackReason"]
    assert [key async for key in redis.scan_iter("*:search:*")] == []


async def test_search_answers_when_redis_is_down(
    settings: Settings, db: Database, clean: None
) -> None:
    kettle = await CatalogFactory(db).product("Copper Kettle")
    await PostgresSearchIndex(db).index_products([kettle.id])
    nowhere = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)

    async with running_app(settings, redis=nowhere) as app_client:
        answer = await app_client.query(SEARCH, {"q": "kettle"})
    await nowhere.aclose()

    assert answer.status == 200
    assert answer.data["search"]["edges"] == [
        {"node": {"title": "Copper Kettle", "availableForSale": True}}
    ]


async def test_a_stock_move_that_changes_no_document_keeps_the_cached_answers(
    client: AppClient, db: Database
) -> None:
    kettle = await CatalogFactory(db).product("Copper Kettle", stock=[10])
    index = client.container.search
    assert await index.index_products([kettle.id]) == 1  # new document
    await client.query(SEARCH, {"q": "kettle"})  # cached now

    still_in_stock = await index.index_products([kettle.id])  # what a sale of 1 of 10 sends
    repeat = await client.query(SEARCH, {"q": "kettle"})
    async with db.writer.begin() as connection:
        await connection.execute(
            update(inventory_levels)
            .where(inventory_levels.c.variant_id == kettle.variant_ids[0])
            .values(available=0)
        )
    sold_out = await index.index_products([kettle.id])
    after = await client.query(STOCK_FACET, {"q": "kettle"})

    assert still_in_stock == 0 and repeat.statements == 1  # the cached answer stands
    assert sold_out == 1
    assert after.statements == 1  # recomputed (no products selected): inStock moved
    facets = {f["name"]: f["values"] for f in after.data["search"]["facets"]}
    assert facets["inStock"] == [{"value": "false", "count": 1}]
