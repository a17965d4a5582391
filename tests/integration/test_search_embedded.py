"""The embedded mode (SQLite file, in-process Redis) answers the same search field."""

from __future__ import annotations

from pathlib import Path

from persistence.db import create_database
from persistence.migrate import upgrade
from persistence.seed import seed_catalog
from settings import Settings
from tests.client import running_app, screen_query
from tests.conftest import SEED_COLUMNS, TEST_PII_INDEX_KEY, TEST_PII_KEY


async def test_search_on_sqlite_with_facets_paging_and_typos(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    await upgrade(url)
    db = create_database(url)
    try:
        await seed_catalog(db, customer_columns=SEED_COLUMNS, products=120, seed=9)
    finally:
        await db.dispose()
    settings = Settings(
        environment="development",
        database_url=url,
        data_dir=str(tmp_path),
        pii_encryption_keys=TEST_PII_KEY,
        pii_index_key=TEST_PII_INDEX_KEY,
    )

    async with running_app(settings) as client:
        assert client.container.search.engine == "sqlite"
        await client.container.search.rebuild()
        first = await client.query(screen_query("search"), {"query": "quality", "first": 5})
        after = first.data["search"]["pageInfo"]["endCursor"]
        second = await client.query(
            screen_query("search"), {"query": "quality", "first": 5, "after": after}
        )
        typo = await client.query('{ search(query: "televsion") { totalCount } }')

    page = first.data["search"]
    assert first.body["extensions"]["search"] == {"engine": "sqlite", "fallbackReason": None}
    assert len(page["edges"]) == 5 and page["totalCount"] > 5
    assert {f["name"] for f in page["facets"]} >= {"category", "brand", "price", "inStock"}
    ids = [e["node"]["id"] for e in page["edges"] + second.data["search"]["edges"]]
    assert len(set(ids)) == 10
    assert typo.data["search"]["totalCount"] > 0
