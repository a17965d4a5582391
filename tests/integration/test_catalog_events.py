"""Staff edits reach what shoppers read through the events: the relay and the consumers
re-index search and drop stale cache entries within seconds, with no help from the write."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from app import build_event_worker
from persistence.db import Database
from schema.global_id import encode_gid
from settings import Settings
from tests.client import running_app
from tests.events import eventually
from tests.factories import CatalogFactory
from tests.shop import staff_token

RETITLE = """mutation($input: ProductUpdateInput!) { productUpdate(input: $input) {
  product { title } userErrors { code } } }"""
PRODUCT = "query($slug: String!) { product(slug: $slug) { title } }"
SEARCH = "query($q: String!) { search(query: $q, first: 5) { edges { node { title } } } }"
QUICK_WORKER = {"event_relay_poll_seconds": 0.05, "event_consumer_block_ms": 100}


async def test_a_product_retitled_by_staff_reaches_the_cache_and_search_within_seconds(
    settings: Settings, db: Database, redis: Redis, clean: None
) -> None:
    kettle = await CatalogFactory(db).product(
        "Copper Kettle", prices=[4500], description="Stovetop, 1.7 litres"
    )
    async with running_app(settings.model_copy(update=QUICK_WORKER)) as client:
        await client.container.search.index_products([kettle.id])
        boss = await staff_token(client, db)
        assert (await client.query(PRODUCT, {"slug": kettle.slug})).data["product"]["title"] == (
            "Copper Kettle"
        )
        cached = {key: await redis.get(key) for key in await redis.keys("*product*")}

        retitled = await client.query(
            RETITLE,
            {"input": {"id": encode_gid("Product", kettle.id), "title": "Enamel Kettle"}},
            token=boss,
        )
        # A reader that loaded the old row before the commit writes it back after the
        # write's own invalidation: the classic stale-cache race.
        for key, value in cached.items():
            await redis.set(key, value)

        async def title() -> str:
            return (await client.query(PRODUCT, {"slug": kettle.slug})).data["product"]["title"]

        async def search_titles(words: str) -> list[str]:
            found = await client.query(SEARCH, {"q": words})
            return [edge["node"]["title"] for edge in found.data["search"]["edges"]]

        assert retitled.data["productUpdate"]["userErrors"] == []
        assert await title() == "Copper Kettle"  # stale, until the events arrive
        assert await search_titles("enamel") == []

        worker = build_event_worker(client.container)
        started = time.monotonic()
        await worker.start()
        try:

            async def caught_up() -> bool:
                return await title() == "Enamel Kettle" and await search_titles("enamel") == [
                    "Enamel Kettle"
                ]

            await eventually(caught_up, seconds=5)
            elapsed = time.monotonic() - started
        finally:
            await worker.stop()
        old_words = await search_titles("copper")

    assert elapsed < 5
    assert old_words == []
