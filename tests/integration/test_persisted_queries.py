"""Automatic persisted queries over GET and POST: miss, register, hit, and refusals."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
from redis.asyncio import Redis

from persistence.db import Database
from settings import Settings
from tests.client import AppClient, running_app
from tests.factories import CatalogFactory

TITLES = "query Titles { products(first: 5) { edges { node { title } } } }"
TITLES_HASH = hashlib.sha256(TITLES.encode()).hexdigest()
GRAPHQL_RESPONSE = {"Accept": "application/graphql-response+json"}


def persisted(sha256_hash: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256_hash}}


async def apq_get(
    client: AppClient, query: str | None = None, sha256_hash: str = TITLES_HASH, **headers: str
) -> httpx.Response:
    params = {"extensions": json.dumps(persisted(sha256_hash))}
    if query is not None:
        params["query"] = query
    return await client.http.get("/graphql", params=params, headers=headers)


async def apq_post(
    client: AppClient, query: str | None = None, sha256_hash: str = TITLES_HASH
) -> httpx.Response:
    body: dict[str, Any] = {"extensions": persisted(sha256_hash)}
    if query is not None:
        body["query"] = query
    return await client.http.post("/graphql", json=body)


def code(response: httpx.Response) -> str | None:
    errors = response.json().get("errors") or [{}]
    return errors[0].get("extensions", {}).get("code")


async def test_a_get_misses_registers_then_hits_and_is_publicly_cacheable(
    client: AppClient, db: Database
) -> None:
    await CatalogFactory(db).product("Teapot", prices=[3000])

    miss = await apq_get(client)
    registered = await apq_get(client, TITLES)
    hit = await apq_get(client)

    assert miss.status_code == 200
    assert code(miss) == "PERSISTED_QUERY_NOT_FOUND"
    assert miss.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert miss.headers["cache-control"] == "private, no-store"  # a miss is never cached
    titles = {"products": {"edges": [{"node": {"title": "Teapot"}}]}}
    assert registered.json() == {"data": titles, "extensions": registered.json()["extensions"]}
    assert hit.json()["data"] == titles
    assert hit.headers["cache-control"].startswith("public, max-age=")
    assert hit.headers["etag"] == registered.headers["etag"]


async def test_a_registered_document_is_shared_through_redis_by_every_server(
    client: AppClient, settings: Settings, redis: Redis
) -> None:
    await apq_post(client, TITLES)

    assert await redis.get(f"apq:{TITLES_HASH}") == TITLES.encode()
    async with running_app(settings) as other_server:  # its own, empty, in-process LRU
        hit = await apq_post(other_server)
    assert "errors" not in hit.json()
    assert hit.json()["data"] == {"products": {"edges": []}}


async def test_a_miss_over_graphql_response_json_is_a_400_the_client_retries_on(
    client: AppClient,
) -> None:
    miss = await apq_get(client, **GRAPHQL_RESPONSE)

    assert miss.status_code == 400
    assert code(miss) == "PERSISTED_QUERY_NOT_FOUND"
    assert "data" not in miss.json()


async def test_a_hash_that_does_not_match_the_query_is_refused_and_not_stored(
    client: AppClient, redis: Redis
) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()

    mismatch = await apq_post(client, TITLES, sha256_hash=wrong)
    later = await apq_post(client, sha256_hash=wrong)

    assert code(mismatch) == "PROVIDED_SHA_DOES_NOT_MATCH"
    assert "data" not in mismatch.json() or mismatch.json()["data"] is None
    assert code(later) == "PERSISTED_QUERY_NOT_FOUND"
    assert await redis.keys("apq:*") == []


async def test_documents_that_do_not_parse_or_validate_are_not_registered(
    client: AppClient, redis: Redis
) -> None:
    for broken in ("{ products(first: 5) {", "{ nonsense }"):
        sha = hashlib.sha256(broken.encode()).hexdigest()
        sent = await apq_post(client, broken, sha256_hash=sha)
        again = await apq_post(client, sha256_hash=sha)

        assert code(sent) in ("GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED")
        assert code(again) == "PERSISTED_QUERY_NOT_FOUND"
    assert await redis.keys("apq:*") == []


async def test_malformed_persisted_query_extensions_are_bad_input(client: AppClient) -> None:
    for extension in (
        {"persistedQuery": {"version": 2, "sha256Hash": TITLES_HASH}},
        {"persistedQuery": {"version": 1, "sha256Hash": "not-a-hash"}},
        {"persistedQuery": "yes"},
    ):
        response = await client.http.post("/graphql", json={"extensions": extension})
        assert response.status_code == 200
        assert code(response) == "BAD_USER_INPUT"


async def test_a_batch_resolves_each_operation_on_its_own(
    database_url: str, clean: None, settings: Settings
) -> None:
    batching = settings.model_copy(update={"graphql_batch_max": 10})
    async with running_app(batching) as client:
        await apq_post(client, TITLES)
        response = await client.http.post(
            "/graphql",
            json=[
                {"extensions": persisted(TITLES_HASH)},
                {"extensions": persisted("0" * 64)},
                {"query": "{ __typename }"},
            ],
        )
    first, second, third = response.json()
    assert first["data"] == {"products": {"edges": []}}
    assert second["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert third["data"] == {"__typename": "Query"}


async def test_redis_down_means_misses_and_the_query_still_runs(
    database_url: str, clean: None, settings: Settings
) -> None:
    nowhere = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    async with running_app(settings, redis=nowhere) as client:
        miss = await apq_post(client)
        sent = await apq_post(client, TITLES)
    await nowhere.aclose()

    assert code(miss) == "PERSISTED_QUERY_NOT_FOUND"
    assert sent.json()["data"] == {"products": {"edges": []}}
