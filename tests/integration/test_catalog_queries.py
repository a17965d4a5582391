"""The catalog graph as a storefront sees it: lookups, lists, pages, filters, reviews."""

from __future__ import annotations

import pytest

from persistence.db import Database
from tests.client import AppClient
from tests.factories import CatalogFactory

PRODUCT_FIELDS = """
  id slug title brand availableForSale
  priceRange { minVariantPrice { amount currencyCode } maxVariantPrice { amount } }
  variants { id sku price { amount currencyCode } compareAtPrice { amount } quantityAvailable availableForSale
             selectedOptions { name value } }
  attributes { name value }
  category { slug }
"""

LIST = """
query($first: Int, $after: String, $filter: ProductFilter, $sortKey: ProductSortKeys!, $reverse: Boolean!) {
  products(first: $first, after: $after, filter: $filter, sortKey: $sortKey, reverse: $reverse) {
    edges { cursor node { slug title } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _slugs(
    client: AppClient,
    *,
    filter: dict[str, object] | None = None,
    sort: str = "ID",
    reverse: bool = False,
    first: int = 100,
) -> list[str]:
    result = await client.query(
        LIST, {"first": first, "filter": filter, "sortKey": sort, "reverse": reverse}
    )
    return [edge["node"]["slug"] for edge in result.data["products"]["edges"]]


@pytest.fixture
def make(db: Database) -> CatalogFactory:
    return CatalogFactory(db)


async def test_product_by_slug_and_by_id_shows_prices_stock_and_options(
    client: AppClient, make: CatalogFactory
) -> None:
    tv = await make.category("tvs")
    made = await make.product(
        "Lumo 55",
        category=tv,
        prices=[49_999, 59_999],
        stock=[0, 3],
        attributes={"resolution": "4K"},
    )

    by_slug = (await client.query(f'{{ product(slug: "lumo-55") {{ {PRODUCT_FIELDS} }} }}')).data[
        "product"
    ]
    by_id = (
        await client.query(f'{{ product(id: "{by_slug["id"]}") {{ {PRODUCT_FIELDS} }} }}')
    ).data["product"]

    assert by_slug == by_id
    assert by_slug["priceRange"] == {
        "minVariantPrice": {"amount": "499.99", "currencyCode": "USD"},
        "maxVariantPrice": {"amount": "599.99"},
    }
    assert [v["quantityAvailable"] for v in by_slug["variants"]] == [0, 3]
    assert [v["availableForSale"] for v in by_slug["variants"]] == [False, True]
    assert by_slug["availableForSale"] is True
    assert by_slug["variants"][0]["compareAtPrice"] == {"amount": "504.99"}
    assert by_slug["variants"][1]["compareAtPrice"] is None
    assert by_slug["variants"][0]["selectedOptions"] == [{"name": "Size", "value": "0"}]
    assert by_slug["attributes"] == [{"name": "resolution", "value": "4K"}]
    assert by_slug["category"] == {"slug": "tvs"}
    assert by_slug["variants"][0]["sku"] == f"{made.slug}-0".upper()


async def test_unknown_draft_and_archived_products_are_null(
    client: AppClient, make: CatalogFactory
) -> None:
    await make.product("Secret Draft", status="draft")
    await make.product("Old Thing", status="archived")

    for slug in ("secret-draft", "old-thing", "no-such-product"):
        result = await client.query(f'{{ product(slug: "{slug}") {{ id }} }}')
        assert result.data == {"product": None}
    assert await _slugs(client) == []


async def test_node_and_nodes_resolve_every_type_and_null_for_unknown(
    client: AppClient, make: CatalogFactory
) -> None:
    category = await make.category("books")
    made = await make.product("Dune", category=category)
    await make.review(made.id, rating=4)
    product = (
        await client.query(
            '{ product(slug: "dune") { id variants { id } category { id } reviews(first: 1) { edges { node { id } } } } }'
        )
    ).data["product"]
    ids = [
        product["id"],
        product["variants"][0]["id"],
        product["category"]["id"],
        product["reviews"]["edges"][0]["node"]["id"],
    ]

    result = await client.query(
        "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }",
        {"ids": [*ids, ids[0][:-2] + "zz"]},
    )

    typenames = [n and n["__typename"] for n in result.data["nodes"]]
    assert typenames == ["Product", "ProductVariant", "Category", "Review", None]
    assert [n["id"] for n in result.data["nodes"][:4]] == ids
    single = await client.query(
        "query($id: ID!) { node(id: $id) { ... on Product { slug } } }", {"id": ids[0]}
    )
    assert single.data == {"node": {"slug": "dune"}}


async def test_every_sort_key_pages_through_all_products_without_gaps_or_repeats(
    client: AppClient, make: CatalogFactory
) -> None:
    for i, (title, price) in enumerate(
        [("Delta", 300), ("alpha", 100), ("Charlie", 300), ("Bravo", 200), ("Echo", 50)]
    ):
        made = await make.product(title, prices=[price])
        for _ in range(i % 3):
            await make.review(made.id, rating=1 + i)

    for sort in ("ID", "TITLE", "PRICE", "CREATED_AT", "RATING"):
        for reverse in (False, True):
            expected = await _slugs(client, sort=sort, reverse=reverse)
            walked: list[str] = []
            after = None
            for _ in range(10):
                page = (
                    await client.query(
                        LIST, {"first": 2, "after": after, "sortKey": sort, "reverse": reverse}
                    )
                ).data["products"]
                walked += [e["node"]["slug"] for e in page["edges"]]
                assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
                after = page["pageInfo"]["endCursor"]
                if not page["pageInfo"]["hasNextPage"]:
                    break
            assert walked == expected, (sort, reverse)
            assert len(set(walked)) == 5

    assert await _slugs(client, sort="PRICE") == ["echo", "alpha", "bravo", "delta", "charlie"]
    assert await _slugs(client, sort="PRICE", reverse=True) == [
        "charlie",
        "delta",
        "bravo",
        "alpha",
        "echo",
    ]


async def test_filters_combine_and_category_includes_descendants(
    client: AppClient, make: CatalogFactory
) -> None:
    clothing = await make.category("clothing")
    shirts = await make.category("shirts", parent=clothing)
    oxford = await make.category("oxford", parent=shirts)
    books = await make.category("books")
    await make.product(
        "Plain Tee", category=shirts, brand="Basic", prices=[1500], attributes={"fit": "slim"}
    )
    await make.product(
        "Oxford Shirt",
        category=oxford,
        brand="Tailor",
        prices=[6000],
        attributes={"fit": "regular"},
    )
    await make.product(
        "Sold Out Shirt",
        category=shirts,
        brand="Basic",
        prices=[2500],
        stock=[0],
        attributes={"fit": "slim"},
    )
    await make.product("A Novel", category=books, brand="Pages", prices=[1200])

    assert await _slugs(client, filter={"category": "clothing"}) == [
        "plain-tee",
        "oxford-shirt",
        "sold-out-shirt",
    ]
    assert await _slugs(client, filter={"category": "oxford"}) == ["oxford-shirt"]
    assert await _slugs(client, filter={"category": "no-such-category"}) == []
    assert await _slugs(client, filter={"brands": ["Basic", "Pages"]}) == [
        "plain-tee",
        "sold-out-shirt",
        "a-novel",
    ]
    assert await _slugs(client, filter={"priceMin": "15.00", "priceMax": "25"}) == [
        "plain-tee",
        "sold-out-shirt",
    ]
    assert await _slugs(client, filter={"inStock": True, "category": "shirts"}) == [
        "plain-tee",
        "oxford-shirt",
    ]
    assert await _slugs(client, filter={"inStock": False}) == ["sold-out-shirt"]
    assert await _slugs(client, filter={"attributes": [{"name": "fit", "values": ["slim"]}]}) == [
        "plain-tee",
        "sold-out-shirt",
    ]
    assert await _slugs(
        client,
        filter={
            "attributes": [{"name": "fit", "values": ["slim", "regular"]}],
            "inStock": True,
            "brands": ["Tailor"],
        },
    ) == ["oxford-shirt"]


async def test_category_tree_and_its_products(client: AppClient, make: CatalogFactory) -> None:
    home = await make.category("home")
    kitchen = await make.category("kitchen", parent=home, position=1)
    await make.category("lighting", parent=home, position=0)
    await make.product("Pan", category=kitchen)
    await make.product("Lamp Shade", category=home)

    result = await client.query(
        """{ category(slug: "home") { slug parent { slug } children { slug parent { slug } }
              products(first: 10) { edges { node { slug } } } }
             kitchen: category(slug: "kitchen") { products(filter: {category: "home"}) { edges { node { slug } } } }
             missing: category(slug: "nope") { slug }
             categories(first: 10, rootsOnly: true) { edges { node { slug } } } }"""
    )

    home_data = result.data["category"]
    assert home_data["parent"] is None
    assert [c["slug"] for c in home_data["children"]] == ["lighting", "kitchen"]
    assert home_data["children"][0]["parent"] == {"slug": "home"}
    assert [e["node"]["slug"] for e in home_data["products"]["edges"]] == ["pan", "lamp-shade"]
    assert [e["node"]["slug"] for e in result.data["kitchen"]["products"]["edges"]] == ["pan"]
    assert result.data["missing"] is None
    assert [e["node"]["slug"] for e in result.data["categories"]["edges"]] == ["home"]


async def test_categories_page_with_cursors(client: AppClient, make: CatalogFactory) -> None:
    for slug in ("a", "b", "c"):
        await make.category(slug)
    first = (
        await client.query(
            "{ categories(first: 2) { edges { node { slug } } pageInfo { endCursor hasNextPage } } }"
        )
    ).data
    cursor = first["categories"]["pageInfo"]["endCursor"]
    second = (
        await client.query(
            "query($a: String) { categories(first: 2, after: $a) { edges { node { slug } } pageInfo { hasNextPage } } }",
            {"a": cursor},
        )
    ).data

    assert [e["node"]["slug"] for e in first["categories"]["edges"]] == ["a", "b"]
    assert first["categories"]["pageInfo"]["hasNextPage"] is True
    assert second["categories"] == {
        "edges": [{"node": {"slug": "c"}}],
        "pageInfo": {"hasNextPage": False},
    }


async def test_reviews_newest_first_with_pages_and_rating_summary(
    client: AppClient, make: CatalogFactory
) -> None:
    made = await make.product("Kettle")
    for age, rating in [(5, 3), (1, 5), (9, 4)]:
        await make.review(made.id, rating=rating, age_days=age, title=f"{age} days old")
    query = """query($after: String) { product(slug: "kettle") { ratingSummary { average count }
        reviews(first: 2, after: $after) { edges { node { rating title authorName createdAt } }
                                           pageInfo { hasNextPage endCursor } } } }"""

    page1 = (await client.query(query)).data["product"]
    page2 = (await client.query(query, {"after": page1["reviews"]["pageInfo"]["endCursor"]})).data[
        "product"
    ]

    assert page1["ratingSummary"] == {"average": 4.0, "count": 3}
    assert [e["node"]["title"] for e in page1["reviews"]["edges"]] == ["1 days old", "5 days old"]
    assert page1["reviews"]["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["title"] for e in page2["reviews"]["edges"]] == ["9 days old"]
    assert page2["reviews"]["pageInfo"]["hasNextPage"] is False
    assert page1["reviews"]["edges"][0]["node"]["authorName"] == "Ann Reader"


async def test_related_is_same_category_best_rated_excluding_itself(
    client: AppClient, make: CatalogFactory
) -> None:
    audio, other = await make.category("audio"), await make.category("other")
    me = await make.product("Me Phones", category=audio)
    ok = await make.product("Ok Phones", category=audio)
    best = await make.product("Best Phones", category=audio)
    await make.product("Hidden Phones", category=audio, status="draft")
    await make.product("Elsewhere", category=other)
    await make.review(me.id, rating=5)
    await make.review(ok.id, rating=3)
    await make.review(best.id, rating=5)

    result = await client.query('{ product(slug: "me-phones") { related(first: 8) { slug } } }')

    assert [p["slug"] for p in result.data["product"]["related"]] == ["best-phones", "ok-phones"]
