"""A search page costs a constant number of SQL statements, whatever its size.

search(query, first: N) with totalCount, facets and the listing screen's product fields
(variants, stock, images, category, rating), counted by the engines' listener:
  cold cache: 6 = one search statement (on PostgreSQL the page of ids, the total and
              every facet over the documents matched once), then the listing's
              loaders: products, variants, images, categories, stock;
  warm cache: 2 = the search statement + stock (never cached).
(The embedded SQLite index runs the page and the facets as two statements.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from persistence.db import Database
from persistence.seed import seed_catalog
from settings import Settings
from tests.client import AppClient, running_app, screen_query
from tests.conftest import SEED_COLUMNS

SEARCH_COLD, SEARCH_WARM = 6, 2


@pytest.fixture
async def seeded(settings: Settings, db: Database, clean: None) -> AsyncIterator[AppClient]:
    """The search statements themselves: the search answer cache is off here."""
    await seed_catalog(db, customer_columns=SEED_COLUMNS, products=300, seed=3)
    async with running_app(settings.model_copy(update={"search_cache_ttl_seconds": 0})) as client:
        await client.container.search.rebuild()
        yield client


async def _flush_cache(client: AppClient) -> None:
    redis = client.container.redis
    keys = [key async for key in redis.scan_iter(f"{client.container.settings.cache_namespace}:*")]
    if keys:
        await redis.delete(*keys)


async def test_a_search_page_with_facets_costs_the_same_for_5_and_20_results(
    seeded: AppClient,
) -> None:
    counts = {}
    for n in (5, 20):
        await _flush_cache(seeded)
        variables = {"query": "quality", "first": n}
        cold = await seeded.query(screen_query("search"), variables)
        warm = await seeded.query(screen_query("search"), variables)
        search = cold.data["search"]
        assert len(search["edges"]) == n
        assert search["totalCount"] > 20
        assert {f["name"] for f in search["facets"]} >= {"category", "brand", "price", "inStock"}
        assert all(e["node"]["variants"] and e["node"]["category"] for e in search["edges"])
        assert warm.data == cold.data
        counts[n] = (cold.statements, warm.statements)

    assert counts[5] == counts[20] == (SEARCH_COLD, SEARCH_WARM)


async def test_without_totals_and_facets_one_search_statement(seeded: AppClient) -> None:
    document = '{ search(query: "quality", first: 20) { edges { node { id title } } } }'
    await seeded.query(document)  # warm the product cache

    result = await seeded.query(document)

    assert len(result.data["search"]["edges"]) == 20
    assert result.statements == 1
