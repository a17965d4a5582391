"""A request leaves no reference cycles behind on the server.

Cyclic garbage is only freed by full collections; with thousands of requests a
second it piles up and a full collection then pauses the server for seconds
(measured: p99 of 4 s under the benchmark before the executor's cycle was cut).
"""

from __future__ import annotations

import gc
from collections import Counter

from persistence.db import Database
from persistence.seed import seed_catalog
from tests.client import AppClient, screen_query
from tests.conftest import SEED_COLUMNS

SERVER_PACKAGES = (
    "domain.",
    "dataloaders.",
    "schema.",
    "resolvers.",
    "persistence.",
    "graphql.",
    "strawberry.",
)


async def test_screens_leave_no_cyclic_garbage(client: AppClient, db: Database) -> None:
    await seed_catalog(db, customer_columns=SEED_COLUMNS, products=40, seed=9)
    listing = await client.query(screen_query("listing_screen"), {"first": 20})
    slug = listing.data["products"]["edges"][0]["node"]["slug"]
    leftovers: Counter[str] = Counter()

    for name, variables in (("listing_screen", {"first": 20}), ("product_screen", {"slug": slug})):
        await client.query(screen_query(name), variables)  # warm caches and lazy imports
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            result = await client.query(screen_query(name), variables)
            gc.collect()
        finally:
            gc.set_debug(0)
        assert "errors" not in result.body
        leftovers.update(
            f"{type(o).__module__}.{type(o).__qualname__}"
            for o in gc.garbage
            if type(o).__module__.startswith(SERVER_PACKAGES)
        )
        gc.garbage.clear()

    assert leftovers == Counter()
