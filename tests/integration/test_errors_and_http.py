"""Bad input gets a coded error, never a 500; unexpected failures are masked and logged."""

from __future__ import annotations

import logging

import pytest

from domain.catalog import Product, ProductFilter, ProductSortKey
from domain.pagination import Page, PageRequest, encode_cursor
from persistence.catalog.repository import CatalogRepository
from persistence.db import Database
from settings import Settings
from tests.client import AppClient, running_app
from tests.conftest import PRODUCTION_EXTRAS, TEST_REDIS_URL
from tests.factories import CatalogFactory


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("{ products(first: 101) { edges { cursor } } }", "INVALID_PAGE_SIZE"),
        ("{ products(first: -1) { edges { cursor } } }", "INVALID_PAGE_SIZE"),
        ('{ products(after: "not-a-cursor") { edges { cursor } } }', "INVALID_CURSOR"),
        (
            f'{{ products(after: "{encode_cursor("p:TITLE:asc", ("a", 1))}") {{ edges {{ cursor }} }} }}',
            "INVALID_CURSOR",
        ),
        (
            f'{{ products(sortKey: PRICE, after: "{encode_cursor("p:PRICE:asc", ("cheap", 1))}") {{ edges {{ cursor }} }} }}',
            "INVALID_CURSOR",
        ),
        ('{ products(filter: {priceMin: "ten"}) { edges { cursor } } }', "INVALID_PRICE"),
        ('{ products(filter: {priceMin: "1.001"}) { edges { cursor } } }', "INVALID_PRICE"),
        ('{ products(filter: {priceMin: "-1"}) { edges { cursor } } }', "INVALID_PRICE"),
        (
            '{ products(filter: {priceMin: "9", priceMax: "1"}) { edges { cursor } } }',
            "BAD_USER_INPUT",
        ),
        (
            '{ products(filter: {attributes: [{name: "fit", values: []}]}) { edges { cursor } } }',
            "BAD_USER_INPUT",
        ),
        ('{ node(id: "%%%") { id } }', "INVALID_ID"),
        ('{ product(id: "Z2lkOi8vc2hvcC9DYXRlZ29yeS8x") { id } }', "INVALID_ID"),
        ('{ product(slug: "a", id: "b") { id } }', "BAD_USER_INPUT"),
        ("{ product { id } }", "BAD_USER_INPUT"),
        ('{ product(slug: "x") { reviews(first: 500) { edges { cursor } } } }', None),
        ("{ categories(first: 1000) { edges { cursor } } }", "INVALID_PAGE_SIZE"),
        ('{ products(first: "x") { edges { cursor } } }', "GRAPHQL_VALIDATION_FAILED"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ products(", "GRAPHQL_PARSE_FAILED"),
    ],
)
async def test_bad_input_is_a_coded_error_not_a_500(
    client: AppClient, document: str, code: str | None
) -> None:
    result = await client.query(document)

    assert result.status == 200
    if code is None:  # an unknown product short-circuits before its reviews are read
        assert result.data == {"product": None}
        return
    assert result.error_codes == [code]
    assert "Traceback" not in str(result.body)


async def test_nested_page_size_is_checked(client: AppClient, db: Database) -> None:
    await CatalogFactory(db).product("Lamp")
    result = await client.query(
        '{ product(slug: "lamp") { reviews(first: 101) { edges { cursor } } } }'
    )

    assert result.error_codes == ["INVALID_PAGE_SIZE"]


async def test_too_deep_queries_are_refused(client: AppClient) -> None:
    deep = "{ categories { edges { node " + "{ children " * 15 + "{ slug }" + " }" * 15 + " } } }"

    result = await client.query(deep)

    assert result.error_codes == ["MAX_DEPTH_EXCEEDED"]


class ExplodingCatalog(CatalogRepository):
    async def list_products(
        self,
        product_filter: ProductFilter,
        sort_key: ProductSortKey,
        reverse: bool,
        page: PageRequest,
    ) -> Page[Product]:
        raise RuntimeError("connection string postgres://secret@db leaked")


@pytest.mark.parametrize("environment", ["production", "test"])
async def test_unexpected_errors_are_masked_with_an_id_and_logged_with_the_trace(
    database_url: str, clean: None, environment: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        environment=environment,
        database_url=database_url,
        redis_url=TEST_REDIS_URL,
        **PRODUCTION_EXTRAS,
    )
    async with running_app(settings) as client:
        client.container.catalog = ExplodingCatalog(client.container.db, client.container.pii)
        with caplog.at_level(logging.ERROR, logger="commerce.errors"):
            response = await client.http.post(
                "/graphql", json={"query": "{ products { edges { cursor } } }"}
            )

    body = response.json()
    error = body["errors"][0]
    assert response.status_code == 200
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret" not in response.text
    assert error["extensions"]["errorId"] in error["message"]
    logged = [r for r in caplog.records if error["extensions"]["errorId"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None


async def test_health_and_readiness(client: AppClient) -> None:
    assert (await client.http.get("/healthz")).json() == {"status": "ok"}
    ready = await client.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_graphiql_only_in_development(database_url: str, clean: None) -> None:
    browser = {"Accept": "text/html"}
    for environment, expected in (("development", 200), ("production", 404)):
        settings = Settings(
            environment=environment,
            database_url=database_url,
            redis_url=TEST_REDIS_URL,
            **PRODUCTION_EXTRAS,
        )
        async with running_app(settings) as client:
            response = await client.http.get("/graphql", headers=browser)
        assert response.status_code == expected, environment
        if expected == 200:
            assert "graphiql" in response.text.lower()


async def test_responses_carry_a_request_id(client: AppClient) -> None:
    echoed = await client.http.get("/healthz", headers={"X-Request-Id": "abc-123"})
    minted = await client.http.get("/healthz")

    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(minted.headers["x-request-id"]) == 32
