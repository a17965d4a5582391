"""Search through the graph on PostgreSQL: matching, ranking, paging, errors, indexing."""

from __future__ import annotations

import asyncio

import pytest

from persistence.db import Database
from tests.client import AppClient
from tests.factories import CatalogFactory

SEARCH = """
query($q: String!, $first: Int, $after: String, $filter: ProductFilter,
      $sortKey: SearchSortKey!, $reverse: Boolean!) {
  search(query: $q, first: $first, after: $after, filter: $filter, sortKey: $sortKey,
         reverse: $reverse) {
    edges { cursor node { title } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""


async def _search(
    client: AppClient,
    q: str,
    *,
    first: int = 20,
    after: str | None = None,
    filter: dict[str, object] | None = None,
    sort: str = "RELEVANCE",
    reverse: bool = False,
) -> dict[str, object]:
    result = await client.query(
        SEARCH,
        {
            "q": q,
            "first": first,
            "after": after,
            "filter": filter,
            "sortKey": sort,
            "reverse": reverse,
        },
    )
    data: dict[str, object] = result.data["search"]
    return data


def _titles(data: dict[str, object]) -> list[str]:
    edges = data["edges"]
    assert isinstance(edges, list)
    return [edge["node"]["title"] for edge in edges]


@pytest.fixture
def make(db: Database) -> CatalogFactory:
    return CatalogFactory(db)


async def _index(client: AppClient) -> None:
    await client.container.search.rebuild()


async def test_title_outranks_brand_and_category_which_outrank_description(
    client: AppClient, make: CatalogFactory
) -> None:
    lamps = await make.category("lamps")
    aurora_range = await make.category("aurora-range", parent=lamps)
    await make.product("Plain Floor Light", category=lamps, description="Glows like an aurora.")
    await make.product("Desk Light", category=lamps, brand="Aurora")
    await make.product("Wall Light", category=aurora_range)
    await make.product("Aurora Lamp", category=lamps)
    await make.product("Unrelated Kettle", category=lamps)
    await _index(client)

    titles = _titles(await _search(client, "aurora"))

    assert titles[0] == "Aurora Lamp"
    assert set(titles[1:3]) == {"Desk Light", "Wall Light"}
    assert titles[3:] == ["Plain Floor Light"]


async def test_a_typo_and_a_prefix_still_find_the_product(
    client: AppClient, make: CatalogFactory
) -> None:
    await make.product("Lumo Television 55")
    await make.product("Quiet Headphones")
    await make.product("Garden Hose")
    await _index(client)

    assert _titles(await _search(client, "televsion")) == ["Lumo Television 55"]
    assert _titles(await _search(client, "head")) == ["Quiet Headphones"]
    assert _titles(await _search(client, "televisions")) == ["Lumo Television 55"]  # stemmed
    assert _titles(await _search(client, "zebra")) == []


async def test_filters_narrow_the_results(client: AppClient, make: CatalogFactory) -> None:
    audio = await make.category("audio")
    headphones = await make.category("headphones", parent=audio)
    await make.product("Cheap Headphones", category=headphones, prices=[1_500], brand="Sona")
    await make.product(
        "Studio Headphones",
        category=headphones,
        prices=[30_000],
        brand="Vox",
        attributes={"type": "Over-ear"},
    )
    await make.product("Sold Out Headphones", category=headphones, stock=[0], brand="Vox")
    await make.product("Headphones Stand", brand="Vox")  # no category
    await _index(client)

    async def titles(filter: dict[str, object]) -> set[str]:
        return set(_titles(await _search(client, "headphones", filter=filter)))

    assert await titles({"category": "audio"}) == {
        "Cheap Headphones",
        "Studio Headphones",
        "Sold Out Headphones",
    }
    assert await titles({"brands": ["Sona"]}) == {"Cheap Headphones"}
    assert await titles({"priceMin": "100.00", "priceMax": "400.00"}) == {"Studio Headphones"}
    assert await titles({"inStock": False}) == {"Sold Out Headphones"}
    assert await titles({"attributes": [{"name": "type", "values": ["Over-ear"]}]}) == {
        "Studio Headphones"
    }
    assert await titles({"brands": ["Vox"], "inStock": True}) == {
        "Studio Headphones",
        "Headphones Stand",
    }


async def test_pages_through_every_result_once_in_every_order(
    client: AppClient, make: CatalogFactory
) -> None:
    for n in range(23):
        await make.product(f"Lamp {n:02d}", prices=[1_000 + (n * 7) % 5 * 100])
    await _index(client)

    for sort, reverse in (
        ("RELEVANCE", False),
        ("PRICE", False),
        ("TITLE", True),
        ("RATING", False),
        ("CREATED_AT", True),
    ):
        whole = _titles(await _search(client, "lamp", first=100, sort=sort, reverse=reverse))
        pages, after = [], None
        while True:
            data = await _search(client, "lamp", first=5, after=after, sort=sort, reverse=reverse)
            pages += _titles(data)
            assert data["totalCount"] == 23
            info = data["pageInfo"]
            assert isinstance(info, dict)
            if not info["hasNextPage"]:
                break
            after = info["endCursor"]
        assert pages == whole, sort
        assert len(set(pages)) == 23


async def test_archived_products_are_not_found_and_reindexing_follows_changes(
    client: AppClient, make: CatalogFactory, db: Database
) -> None:
    from sqlalchemy import update

    from persistence.tables import products

    kept = await make.product("Brass Lamp")
    gone = await make.product("Brass Kettle")
    await make.product("Brass Bell", status="archived")
    await _index(client)
    assert set(_titles(await _search(client, "brass"))) == {"Brass Lamp", "Brass Kettle"}

    async with db.writer.begin() as connection:
        await connection.execute(
            update(products).where(products.c.id == gone.id).values(status="archived")
        )
        await connection.execute(
            update(products)
            .where(products.c.id == kept.id)
            .values(title="Copper Lamp", description="Warm light.")
        )
    await client.container.cache.invalidate_products([gone.id, kept.id])
    await client.container.search.index_products([gone.id, kept.id])

    assert _titles(await _search(client, "brass")) == []
    assert _titles(await _search(client, "copper")) == ["Copper Lamp"]
    await client.container.search.index_products([gone.id, kept.id])  # idempotent
    assert _titles(await _search(client, "copper")) == ["Copper Lamp"]


async def test_every_response_says_which_engine_answered(
    client: AppClient, make: CatalogFactory
) -> None:
    await make.product("Lamp")
    await _index(client)

    result = await client.query('{ search(query: "lamp") { totalCount } }')

    assert result.data == {"search": {"totalCount": 1}}
    assert result.body["extensions"]["search"] == {"engine": "postgres", "fallbackReason": None}
    plain = await client.query("{ __typename }")
    assert "search" not in plain.body.get("extensions", {})


@pytest.mark.parametrize(
    ("arguments", "code", "field"),
    [
        ('query: "lamp", first: 101', "INVALID_PAGE_SIZE", "first"),
        ('query: "lamp", first: -1', "INVALID_PAGE_SIZE", "first"),
        ('query: "lamp", after: "bm90LWEtY3Vyc29y"', "INVALID_CURSOR", "after"),
        (f'query: "{"a" * 201}"', "BAD_USER_INPUT", "query"),
        ('query: "lamp", filter: {priceMin: "abc"}', "INVALID_PRICE", "filter.priceMin"),
    ],
)
async def test_bad_arguments_are_errors_with_codes(
    client: AppClient, arguments: str, code: str, field: str
) -> None:
    result = await client.query(f"{{ search({arguments}) {{ totalCount }} }}")

    assert result.status == 200
    assert result.error_codes == [code]
    assert result.errors[0]["extensions"]["field"] == field


async def test_a_cursor_of_another_ordering_is_refused(
    client: AppClient, make: CatalogFactory
) -> None:
    for n in range(3):
        await make.product(f"Lamp {n}")
    await _index(client)
    first = await _search(client, "lamp", first=1, sort="PRICE")
    cursor = first["pageInfo"]["endCursor"]  # type: ignore[index]

    for sort, reverse in (("RELEVANCE", False), ("PRICE", True)):
        result = await client.query(
            SEARCH,
            {"q": "lamp", "first": 1, "after": cursor, "sortKey": sort, "reverse": reverse},
        )
        assert result.error_codes == ["INVALID_CURSOR"]


async def test_concurrent_reindexes_of_one_product_all_succeed_and_the_last_state_wins(
    db: Database, make: CatalogFactory, clean: None
) -> None:
    """Two workers' search indexers handle events about one product at once (a flash
    sale's StockChanged events): none may fail on the other's write, and the document
    ends as the catalog is."""
    from sqlalchemy import select, update

    from persistence.search.postgres import PostgresSearchIndex
    from persistence.tables import inventory_levels, search_documents

    tee = await make.product("Race Tee", stock=[3])  # no document yet: every writer inserts
    indexes = [PostgresSearchIndex(db) for _ in range(6)]

    await asyncio.gather(*(index.index_products([tee.id]) for index in indexes))
    async with db.writer.begin() as connection:
        await connection.execute(
            update(inventory_levels)
            .where(inventory_levels.c.variant_id == tee.variant_ids[0])
            .values(available=0)
        )
    await asyncio.gather(*(index.index_products([tee.id]) for index in indexes))

    async with db.reader.connect() as connection:
        stored = (
            (
                await connection.execute(
                    select(search_documents.c.in_stock).where(
                        search_documents.c.product_id == tee.id
                    )
                )
            )
            .scalars()
            .all()
        )
    assert stored == [False]
