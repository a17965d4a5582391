"""Redis round trips and SQL statements per request, warm, for each benchmarked screen:
the per-request figures of docs/deploy.md's capacity model.

    TEST_DATABASE_URL=... TEST_REDIS_URL=... python scripts/redis_round_trips.py

Against a migrated PostgreSQL and a Redis (the test services): it EMPTIES both (like the
test fixtures), seeds 60 products, then sends each screen's document (bench/queries) in
process over ASGI, as a guest, in production mode with the sandbox gateway, three times
to warm it, and counts one more: each command sent alone is a round trip, and so is each
pipeline (however many commands it carries).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from sqlalchemy import text

from persistence.db import create_database
from persistence.seed import seed_catalog
from persistence.tables import metadata
from settings import Settings
from tests.client import AppClient, running_app, screen_query
from tests.conftest import (
    SEED_COLUMNS,
    TEST_GIFT_CARD_CODE_KEY,
    TEST_PII_INDEX_KEY,
    TEST_PII_KEY,
    TEST_STATUS_TOKEN_KEY,
)
from tests.shop import ADDRESS, CREATE_CART, SET_ADDRESS


class RoundTrips:
    count = 0


class CountedPipeline(Pipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        RoundTrips.count += 1
        return await super().execute(raise_on_error)


class CountingRedis(Redis):
    async def execute_command(self, *args: Any, **options: Any) -> Any:
        RoundTrips.count += 1
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return CountedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )


async def _empty(database_url: str, redis: Redis) -> None:
    db = create_database(database_url)
    try:
        names = ", ".join(table.name for table in metadata.sorted_tables)
        async with db.writer.begin() as connection:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        await seed_catalog(db, customer_columns=SEED_COLUMNS, products=60, seed=3)
    finally:
        await db.dispose()
    await redis.flushdb()


async def _measure(
    client: AppClient, document: str, variables: Callable[[], dict[str, Any]]
) -> tuple[int, int]:
    for _ in range(3):
        warm = await client.query(document, variables())
        assert "errors" not in warm.body, warm.body
    before = RoundTrips.count
    response = await client.query(document, variables())
    assert "errors" not in response.body, response.body
    return RoundTrips.count - before, response.statements


async def main() -> None:
    database_url, redis_url = os.environ["TEST_DATABASE_URL"], os.environ["TEST_REDIS_URL"]
    redis = CountingRedis.from_url(redis_url)
    await _empty(database_url, redis)
    settings = Settings(
        environment="production",
        database_url=database_url,
        redis_url=redis_url,
        expose_statement_count=True,
        rate_limit_capacity=1e12,
        rate_limit_restore_rate=1,
        payment_gateway="test",
        pii_encryption_keys=TEST_PII_KEY,
        pii_index_key=TEST_PII_INDEX_KEY,
        order_status_token_key=TEST_STATUS_TOKEN_KEY,
        gift_card_code_key=TEST_GIFT_CARD_CODE_KEY,
    )
    async with running_app(settings, redis=redis) as client:
        await client.container.search.rebuild()  # what `app.py seed` does after seeding
        listing = await client.query(
            "{ products(first: 60, filter: {inStock: true}) "
            "{ edges { node { slug title variants { id quantityAvailable } } } } }"
        )
        nodes = [e["node"] for e in listing.data["products"]["edges"]]
        variants = [
            v["id"] for n in nodes for v in n["variants"][:1] if v["quantityAvailable"] >= 5
        ]
        word = nodes[0]["title"].split()[-1].lower()
        lines = [{"variantId": v, "quantity": 1} for v in variants[:10]]
        cart = (await client.query(CREATE_CART, {"lines": lines})).data["cartCreate"]["cart"]["id"]
        await client.query(SET_ADDRESS, {"id": cart, "a": ADDRESS})
        keys = iter(range(10**6))

        async def fresh_cart() -> str:
            made = await client.query(CREATE_CART, {"lines": lines[:1]})
            cart_id: str = made.data["cartCreate"]["cart"]["id"]
            await client.query(SET_ADDRESS, {"id": cart_id, "a": ADDRESS})
            return cart_id

        carts = [await fresh_cart() for _ in range(4)]
        screens: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
            ("listing screen", "listing_screen", lambda: {"first": 20}),
            ("product screen", "product_screen", lambda: {"slug": nodes[0]["slug"]}),
            ("cart read (10 lines)", "cart_read", lambda: {"id": cart}),
            (
                "cartLinesAdd",
                "cart_lines_add",
                lambda: {"input": {"cartId": cart, "lines": [lines[0]]}},
            ),
            (
                "checkoutComplete",
                "checkout_complete",
                lambda: {
                    "input": {
                        "cartId": carts.pop(),
                        "idempotencyKey": f"round-trips-{next(keys)}",
                        "paymentMethod": "pm_card_visa",
                    }
                },
            ),
            ("search screen, cached", "search", lambda: {"query": word, "first": 20}),
        ]
        print("| screen | Redis round trips | SQL statements |")
        print("|---|---:|---:|")
        for title, name, variables in screens:
            trips, statements = await _measure(client, screen_query(name), variables)
            print(f"| {title} | {trips} | {statements} |")
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
