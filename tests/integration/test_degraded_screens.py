"""Optional parts of a screen fail soft: the screen stays, the part is empty, and
`extensions.degraded` says which part and why.

Each failure is injected through the real app on PostgreSQL: the container builds a
catalog repository (or search index) that raises for one method, everything else is
the real thing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from app import Components
from domain.catalog import Category, Product, ProductImage
from domain.pagination import Page, PageRequest
from domain.search import SearchIndex, SearchRequest, SearchResult
from persistence.catalog.repository import CatalogRepository
from persistence.db import Database
from schema.global_id import encode_gid
from settings import Settings
from tests.client import AppClient, GraphQLResponse, running_app, screen_query
from tests.factories import CatalogFactory


class ReplicaDown(ConnectionError):
    """What a dead read replica looks like to a repository call."""


class RelatedFails(CatalogRepository):
    async def related_products(
        self, product_ids: Sequence[int], first: int
    ) -> dict[int, list[Product]]:
        raise ReplicaDown("related ranking unavailable")


class ReviewsFail(CatalogRepository):
    async def newest_reviews(
        self, product_ids: Sequence[int], page: PageRequest
    ) -> dict[int, Page[Any]]:
        raise ReplicaDown("reviews unavailable")


class ImagesFail(CatalogRepository):
    async def images_by_product_ids(
        self, product_ids: Sequence[int]
    ) -> dict[int, list[ProductImage]]:
        raise ReplicaDown("images unavailable")


class CategoriesFail(CatalogRepository):
    async def categories_by_ids(self, ids: Sequence[int]) -> dict[int, Category]:
        raise ReplicaDown("categories unavailable")


class FacetsFail:
    """The configured index, except that faceting fails (the costly part of a search)."""

    def __init__(self, inner: SearchIndex) -> None:
        self._inner = inner
        self.engine = inner.engine
        self.asked: list[SearchRequest] = []

    async def search(self, request: SearchRequest) -> SearchResult:
        self.asked.append(request)
        if request.with_facets:
            raise TimeoutError("facet aggregation timed out")
        return await self._inner.search(request)

    async def index_products(self, product_ids: Sequence[int]) -> int:
        return await self._inner.index_products(product_ids)

    async def rebuild(self) -> int:
        return await self._inner.rebuild()


AppWith = Callable[[Components], Any]


@pytest.fixture
def make(db: Database) -> CatalogFactory:
    return CatalogFactory(db)


@pytest.fixture
def app_with(settings: Settings, clean: None) -> AppWith:
    @asynccontextmanager
    async def start(components: Components) -> AsyncIterator[AppClient]:
        async with running_app(settings, components=components) as client:
            yield client

    return start


async def _shelf(make: CatalogFactory, count: int = 4) -> list[str]:
    """`count` reviewed products in one category (so each has related products)."""
    lamps = await make.category("lamps")
    slugs = []
    for n in range(count):
        made = await make.product(f"Lamp {n}", category=lamps, prices=[1000 + n, 2000], images=2)
        await make.review(made.id, rating=1 + n % 5)
        slugs.append(made.slug)
    return slugs


def _degraded(result: GraphQLResponse) -> list[dict[str, Any]]:
    assert result.status == 200
    assert "INTERNAL_SERVER_ERROR" not in result.error_codes
    assert result.errors == []
    entries: list[dict[str, Any]] = result.body["extensions"]["degraded"]
    for entry in entries:
        assert len(entry.pop("errorId")) == 32
    return entries


def _assert_core_product(product: dict[str, Any], title: str) -> None:
    assert product["title"] == title
    assert product["priceRange"]["minVariantPrice"]["amount"]
    assert len(product["variants"]) == 2
    assert all(v["price"]["amount"] for v in product["variants"])


async def test_a_healthy_product_screen_has_no_degraded_entry(
    client: AppClient, make: CatalogFactory
) -> None:
    slugs = await _shelf(make)

    result = await client.query(screen_query("product_screen"), {"slug": slugs[0]})

    assert result.data["product"]["related"]
    assert result.data["product"]["reviews"]["edges"]
    assert "degraded" not in result.body.get("extensions", {})


async def test_failing_related_products_leave_the_product_and_say_so(
    app_with: AppWith, make: CatalogFactory
) -> None:
    slugs = await _shelf(make)

    async with app_with(Components(catalog=RelatedFails)) as client:
        result = await client.query(screen_query("product_screen"), {"slug": slugs[0]})
        aliased = await client.query(
            '{ product(slug: "lamp-0") { title alike: related(first: 3) { slug } } }'
        )

    product = result.data["product"]
    _assert_core_product(product, "Lamp 0")
    assert product["reviews"]["edges"]  # the other optional parts are unharmed
    assert product["related"] == []
    assert _degraded(result) == [{"path": ["product", "related"], "reason": "RELATED_UNAVAILABLE"}]
    assert aliased.data == {"product": {"title": "Lamp 0", "alike": []}}
    assert _degraded(aliased) == [{"path": ["product", "alike"], "reason": "RELATED_UNAVAILABLE"}]


async def test_failing_reviews_give_an_empty_connection(
    app_with: AppWith, make: CatalogFactory
) -> None:
    slugs = await _shelf(make)

    async with app_with(Components(catalog=ReviewsFail)) as client:
        result = await client.query(screen_query("product_screen"), {"slug": slugs[0]})

    product = result.data["product"]
    _assert_core_product(product, "Lamp 0")
    assert product["related"]
    assert product["ratingSummary"] == {"average": 1.0, "count": 1}  # from the product row
    assert product["reviews"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }
    assert _degraded(result) == [{"path": ["product", "reviews"], "reason": "REVIEWS_UNAVAILABLE"}]


async def test_a_failing_review_batch_degrades_each_product_of_a_listing_and_logs_once(
    app_with: AppWith, make: CatalogFactory, caplog: pytest.LogCaptureFixture
) -> None:
    await _shelf(make, count=20)
    document = """{ products(first: 20) { edges { node {
        title variants { price { amount } } reviews(first: 3) { edges { node { rating } } } } } } }"""

    async with app_with(Components(catalog=ReviewsFail)) as client:
        with caplog.at_level(logging.ERROR, logger="commerce.degraded"):
            result = await client.query(document)

    nodes = [e["node"] for e in result.data["products"]["edges"]]
    assert [n["title"] for n in nodes] == [f"Lamp {n}" for n in range(20)]
    assert all(n["variants"] and n["reviews"] == {"edges": []} for n in nodes)
    assert _degraded(result) == [
        {"path": ["products", "edges", i, "node", "reviews"], "reason": "REVIEWS_UNAVAILABLE"}
        for i in range(20)
    ]
    logged = [r for r in caplog.records if r.name == "commerce.degraded"]
    assert len(logged) == 1  # one failed batch, one log line (with its traceback)
    assert logged[0].exc_info is not None


async def test_failing_images_of_a_listing_batch_leave_every_product(
    app_with: AppWith, make: CatalogFactory
) -> None:
    await _shelf(make, count=20)

    async with app_with(Components(catalog=ImagesFail)) as client:
        result = await client.query(screen_query("listing_screen"), {"first": 20})
        aliased = await client.query(
            "{ products(first: 2) { items: edges { product: node { ...Card } } } }"
            " fragment Card on Product { title pics: images { url } }"
        )

    nodes = [e["node"] for e in result.data["products"]["edges"]]
    assert len(nodes) == 20
    for n, node in enumerate(nodes):
        _assert_core_product(node, f"Lamp {n}")
        assert node["category"]["slug"] == "lamps"
        assert node["images"] == []
    assert _degraded(result) == [
        {"path": ["products", "edges", i, "node", "images"], "reason": "IMAGES_UNAVAILABLE"}
        for i in range(20)
    ]
    assert aliased.data["products"]["items"][1]["product"] == {"title": "Lamp 1", "pics": []}
    assert _degraded(aliased) == [
        {"path": ["products", "items", i, "product", "pics"], "reason": "IMAGES_UNAVAILABLE"}
        for i in range(2)
    ]


async def test_failing_images_degrade_single_products_related_ones_and_nodes(
    app_with: AppWith, make: CatalogFactory
) -> None:
    made = await _shelf(make, count=3)
    ids = [encode_gid("Product", n) for n in (1, 2)]

    async with app_with(Components(catalog=ImagesFail)) as client:
        screen = await client.query(
            '{ product(slug: "lamp-0") { title images { url } related { slug images { url } } } }'
        )
        nodes = await client.query(
            "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Product { title images { url } } } }",
            {"ids": ids},
        )

    product = screen.data["product"]
    assert product["images"] == [] and len(product["related"]) == 2
    assert {r["slug"] for r in product["related"]} == set(made[1:])
    assert _degraded(screen) == [
        {"path": ["product", "images"], "reason": "IMAGES_UNAVAILABLE"},
        {"path": ["product", "related", 0, "images"], "reason": "IMAGES_UNAVAILABLE"},
        {"path": ["product", "related", 1, "images"], "reason": "IMAGES_UNAVAILABLE"},
    ]
    assert nodes.data["nodes"] == [
        {"title": "Lamp 0", "images": []},
        {"title": "Lamp 1", "images": []},
    ]
    assert sorted(e["path"][1] for e in _degraded(nodes)) == [0, 1]


async def test_failing_categories_give_a_null_category(
    app_with: AppWith, make: CatalogFactory
) -> None:
    slugs = await _shelf(make)

    async with app_with(Components(catalog=CategoriesFail)) as client:
        result = await client.query(screen_query("product_screen"), {"slug": slugs[0]})

    product = result.data["product"]
    _assert_core_product(product, "Lamp 0")
    assert product["category"] is None
    assert product["related"]
    assert _degraded(result) == [
        {"path": ["product", "category"], "reason": "CATEGORY_UNAVAILABLE"}
    ]


async def test_failing_categories_give_a_null_parent(
    app_with: AppWith, make: CatalogFactory
) -> None:
    home = await make.category("home")
    await make.category("desk-lamps", parent=home)

    async with app_with(Components(catalog=CategoriesFail)) as client:
        result = await client.query('{ category(slug: "desk-lamps") { name up: parent { slug } } }')

    assert result.data == {"category": {"name": "Desk Lamps", "up": None}}
    assert _degraded(result) == [{"path": ["category", "up"], "reason": "CATEGORY_UNAVAILABLE"}]


async def test_a_search_whose_facets_fail_still_returns_its_results(
    app_with: AppWith, make: CatalogFactory
) -> None:
    await _shelf(make)
    wrapped: list[FacetsFail] = []

    def facets_fail(index: SearchIndex) -> SearchIndex:
        wrapped.append(FacetsFail(index))
        return wrapped[0]

    async with app_with(Components(search=facets_fail)) as client:
        await client.container.search.rebuild()
        result = await client.query(screen_query("search"), {"query": "lamp", "first": 20})
        without_facets = await client.query('{ search(query: "lamp") { totalCount } }')

    search = result.data["search"]
    assert len(search["edges"]) == 4
    assert search["totalCount"] == 4
    assert search["facets"] == []
    assert _degraded(result) == [{"path": ["search", "facets"], "reason": "FACETS_UNAVAILABLE"}]
    assert [r.with_facets for r in wrapped[0].asked] == [True, False, False]
    assert without_facets.data == {"search": {"totalCount": 4}}
    assert "degraded" not in without_facets.body.get("extensions", {})


async def test_a_degraded_answer_is_never_publicly_cached(
    app_with: AppWith, make: CatalogFactory
) -> None:
    await _shelf(make)
    query = {"query": '{ product(slug: "lamp-0") { title related { slug } } }'}

    async with app_with(Components(catalog=RelatedFails)) as client:
        degraded = await client.http.get("/graphql", params=query)
    async with app_with(Components()) as client:
        healthy = await client.http.get("/graphql", params=query)

    assert degraded.status_code == 200
    assert degraded.json()["extensions"]["degraded"][0]["reason"] == "RELATED_UNAVAILABLE"
    assert degraded.headers["cache-control"] == "private, no-store"
    assert healthy.headers["cache-control"].startswith("public")


async def test_bad_arguments_to_an_optional_field_are_still_client_errors(
    app_with: AppWith, make: CatalogFactory
) -> None:
    await _shelf(make)

    async with app_with(Components(catalog=ReviewsFail)) as client:
        result = await client.query(
            '{ product(slug: "lamp-0") { title reviews(after: "not-a-cursor") { edges { cursor } } } }'
        )

    assert result.status == 200
    assert result.error_codes == ["INVALID_CURSOR"]
    assert "degraded" not in result.body.get("extensions", {})


async def test_batched_operations_each_report_only_their_own_degradations(
    settings: Settings, clean: None, make: CatalogFactory
) -> None:
    await _shelf(make)
    batched = settings.model_copy(update={"graphql_batch_max": 2})
    body = [
        {"query": '{ product(slug: "lamp-0") { title related { slug } } }'},
        {"query": '{ product(slug: "lamp-1") { title alike: related { slug } } }'},
    ]

    async with running_app(batched, components=Components(catalog=RelatedFails)) as client:
        response = await client.http.post("/graphql", json=body)

    first, second = response.json()
    assert first["data"] == {"product": {"title": "Lamp 0", "related": []}}
    assert [e["path"] for e in first["extensions"]["degraded"]] == [["product", "related"]]
    assert second["data"] == {"product": {"title": "Lamp 1", "alike": []}}
    assert [e["path"] for e in second["extensions"]["degraded"]] == [["product", "alike"]]
