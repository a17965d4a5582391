"""What a document may cost a server before it runs: no schema hints in production
errors, codes from the rules that raised them, a size limit, and in-process caches
bounded by bytes."""

from __future__ import annotations

import gc
import hashlib
import tracemalloc
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.persisted_queries import document_hash
from persistence.redis.persisted_documents import RedisDocumentStore
from resolvers.extensions.documents import DocumentCache
from settings import Settings
from tests.client import AppClient, running_app
from tests.conftest import PRODUCTION_EXTRAS

EDGES = "edges { cursor }"
MISSPELLED = [
    ("{ prodcts(first: 1) { id } }", {}, "GRAPHQL_VALIDATION_FAILED"),
    ("{ products(frist: 1) { " + EDGES + " } }", {}, "GRAPHQL_VALIDATION_FAILED"),
    ("{ products(first: 1, sortKey: TITEL) { " + EDGES + " } }", {}, "GRAPHQL_VALIDATION_FAILED"),
    (
        "{ products(first: 1) { edges { node { ...F } } } } fragment F on Prodct { id }",
        {},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    (
        "{ products(first: 1, filter: {inStok: true}) { " + EDGES + " } }",
        {},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    (
        "query($s: ProductSortKeys!) { products(first: 1, sortKey: $s) { " + EDGES + " } }",
        {"s": "TITEL"},
        "BAD_USER_INPUT",
    ),
    (
        "query($f: ProductFilter) { products(first: 1, filter: $f) { " + EDGES + " } }",
        {"f": {"inStok": True}},
        "BAD_USER_INPUT",
    ),
    ("query($f: ProdctFilter) { products(first: 1) { " + EDGES + " } }", {}, None),
]


def _messages(body: dict[str, Any]) -> str:
    return " ".join(error["message"] for error in body.get("errors", []))


@pytest.mark.parametrize(("document", "variables", "code"), MISSPELLED)
async def test_production_errors_suggest_nothing(
    settings: Settings, clean: None, document: str, variables: dict[str, Any], code: str | None
) -> None:
    production = settings.model_copy(update={"environment": "production", **PRODUCTION_EXTRAS})
    development = settings.model_copy(update={"environment": "development"})
    async with running_app(production) as client:
        hidden = await client.query(document, variables)
        again = await client.query(document, variables)  # from the validation cache
    async with running_app(development) as client:
        shown = await client.query(document, variables)

    assert "Did you mean" in _messages(shown.body)
    assert "Did you mean" not in _messages(hidden.body) + _messages(again.body)
    assert hidden.error_codes == again.error_codes == shown.error_codes
    if code is not None:
        assert set(hidden.error_codes) == {code}
    assert "INTERNAL_SERVER_ERROR" not in hidden.error_codes


async def test_codes_come_from_the_rule_not_the_message(client: AppClient) -> None:
    unused = await client.query("query($n: Int) { __typename }")
    commented = await client.query("#\n" * 10_001 + "{ __typename }")

    # A validation rule about a variable is a validation failure, not bad input.
    assert unused.error_codes == ["GRAPHQL_VALIDATION_FAILED"]
    # Comments are tokens too: padding a document with them hits the token limit.
    assert commented.error_codes == ["MAX_TOKENS_EXCEEDED"]


@pytest.mark.parametrize("padding", ["#" + "x" * 70_000 + "\n", " " * 70_000])
async def test_a_query_over_the_size_limit_is_refused_unparsed(
    client: AppClient, padding: str
) -> None:
    for accept in ("application/json", "application/graphql-response+json"):
        response = await client.http.post(
            "/graphql", json={"query": padding + "{ __typename }"}, headers={"Accept": accept}
        )
        assert response.status_code == 413
        error = response.json()["errors"][0]
        assert error["extensions"] == {"code": "QUERY_TOO_LARGE", "maximum": 65_536}
    assert len(_documents(client)) == 0  # nothing was parsed or kept


async def test_a_large_document_is_never_registered_as_a_persisted_query(
    client: AppClient, redis: Redis
) -> None:
    document = "#" + "x" * 70_000 + "\n{ __typename }"
    persisted = {"version": 1, "sha256Hash": hashlib.sha256(document.encode()).hexdigest()}

    register = await client.http.post(
        "/graphql", json={"query": document, "extensions": {"persistedQuery": persisted}}
    )
    lookup = await client.http.post("/graphql", json={"extensions": {"persistedQuery": persisted}})

    assert register.status_code == 413
    assert register.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_LARGE"
    assert lookup.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert [key async for key in redis.scan_iter("apq:*")] == []


def _dense_document(variant: int) -> str:
    """About 50 KB and 9,000 tokens (under both limits) of aliases: dense AST."""
    aliases = " ".join(f"a{variant}_{i}:__typename" for i in range(3_000))
    return "{ " + aliases + " }"


async def test_many_distinct_documents_stay_within_the_cache_bound(
    settings: Settings, clean: None
) -> None:
    bound = 8 * 1024 * 1024
    configured = settings.model_copy(update={"document_cache_bytes": bound})
    documents = [_dense_document(k) for k in range(6)]  # ~22 MB if all were kept
    async with running_app(configured) as client:
        tracemalloc.start()
        try:
            for document in documents:
                result = await client.query(document)
                assert result.error_codes == ["MAX_ALIASES_EXCEEDED"]
            gc.collect()  # a token list is a cycle: count what is held, not garbage
            retained, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        cache = _documents(client)

    assert 0 < len(cache) < len(documents)
    assert cache.bytes_used <= bound
    # What the worker really holds after six 3.5 MB documents: about the bound.
    assert retained < 2 * bound


async def test_the_persisted_query_lru_is_bounded_by_bytes(redis: Redis, clean: None) -> None:
    store = RedisDocumentStore(redis, ttl_seconds=60, lru_bytes=100_000, timeout_seconds=1.0)

    for k in range(50):
        body = f"# {k}\n" + "x" * 10_000
        await store.put(document_hash(body), body)

    assert 0 < store.lru_bytes_used <= 100_000
    assert await store.get(document_hash(body)) == body


def _documents(client: AppClient) -> DocumentCache:
    view = next(route.endpoint for route in client.app.routes if route.path == "/graphql")
    cache = view.schema.documents
    assert isinstance(cache, DocumentCache)
    return cache


async def test_storing_persisted_queries_is_paid_from_the_bucket(
    settings: Settings, redis: Redis, clean: None
) -> None:
    # given: a bucket of 100 points that barely refills, and documents of no query cost
    # padded to 60 KB (60 points each to store)
    limited = settings.model_copy(
        update={"rate_limit_capacity": 100, "rate_limit_restore_rate": 0.001}
    )
    async with running_app(limited) as shop:
        answers = []
        for n in range(5):
            document = "#" + f"{n}" * 60_000 + "\n{ __typename }"
            persisted = {"version": 1, "sha256Hash": hashlib.sha256(document.encode()).hexdigest()}
            # when
            answers.append(
                await shop.http.post(
                    "/graphql",
                    json={"query": document, "extensions": {"persistedQuery": persisted}},
                )
            )

    # then: every query ran, but only what the bucket paid for was stored
    assert [a.json()["data"] for a in answers] == [{"__typename": "Query"}] * 5
    assert len([key async for key in redis.scan_iter("apq:*")]) == 1
