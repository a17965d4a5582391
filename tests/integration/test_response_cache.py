"""The response cache: anonymous persisted catalog GETs answered from stored bodies,
purged by the catalog's events in every process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from pydantic import SecretStr
from redis.asyncio import Redis

from app import Components, build_event_worker
from domain.catalog import Product
from domain.response_cache import CachedResponse, ResponseHit, ResponseMiss
from persistence.catalog.repository import CatalogRepository
from persistence.db import Database
from schema.global_id import encode_gid
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.factories import CatalogFactory
from tests.shop import staff_token

LISTING = """query Listing($first: Int, $reverse: Boolean) {
  products(first: $first, reverse: $reverse) { edges { node { id title
    ratingSummary { count } variants { id quantityAvailable } } } } }"""
PRODUCT = """query Product($slug: String!) { product(slug: $slug) { title
  variants { quantityAvailable } ratingSummary { average count } } }"""
BOTH_KEYS = "query Both($id: ID, $slug: String) { product(id: $id, slug: $slug) { title } }"
CART = 'query Cart { cart(id: "nope") { id } }'
ADJUST = """mutation($input: InventoryAdjustInput!) { inventoryAdjust(input: $input) {
  variant { quantityAvailable } userErrors { code } } }"""
RETITLE = """mutation($input: ProductUpdateInput!) { productUpdate(input: $input) {
  product { title } userErrors { code } } }"""
REVIEW = """mutation($p: ID!) { reviewCreate(input: {productId: $p, rating: 4, title: "Good",
  body: "Fine."}) { review { id } userErrors { code } } }"""
QUICK_WORKER = {"event_relay_poll_seconds": 0.05, "event_consumer_block_ms": 100}
LAG_BOUND_SECONDS = 5.0  # relay poll + consumer + purge + tail; ~0.2 s when quiet


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def persisted(document: str) -> str:
    return json.dumps({"persistedQuery": {"version": 1, "sha256Hash": sha(document)}})


async def register(client: AppClient, *documents: str) -> None:
    for document in documents:
        body = {"query": document, "extensions": json.loads(persisted(document))}
        response = await client.http.post("/graphql", json=body)
        assert response.status_code == 200, response.text


async def get(
    client: AppClient,
    document: str,
    variables: str | dict[str, Any] | None = None,
    **headers: str,
) -> httpx.Response:
    params = {"extensions": persisted(document)}
    if variables is not None:
        params["variables"] = variables if isinstance(variables, str) else json.dumps(variables)
    return await client.http.get("/graphql", params=params, headers=headers)


def state(response: httpx.Response) -> str | None:
    return response.headers.get("x-response-cache")


async def within(seconds: float, condition: Callable[[], Awaitable[bool]]) -> float:
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_a_second_get_is_a_hit_with_no_sql_and_the_same_bytes_and_tags(
    client: AppClient, db: Database
) -> None:
    kettle = await CatalogFactory(db).product("Kettle", prices=[3000, 3500])
    await register(client, LISTING)

    miss = await get(client, LISTING, '{"first": 5, "reverse": false}')
    hit = await get(client, LISTING, '{"reverse": false, "first": 5}')  # other key order
    other = await get(client, LISTING, {"first": 4})

    assert (state(miss), state(hit), state(other)) == ("miss", "hit", "miss")
    assert hit.content == miss.content and hit.headers["etag"] == miss.headers["etag"]
    assert hit.json()["data"]["products"]["edges"][0]["node"]["title"] == "Kettle"
    assert "throttleStatus" not in hit.json()["extensions"]["cost"]  # not one client's
    assert miss.headers["x-sql-statements"] != "0" and hit.headers["x-sql-statements"] == "0"
    assert hit.headers["cache-control"] == "public, max-age=60"
    assert hit.headers["content-type"].startswith("application/json")
    tags = hit.headers["surrogate-key"].split(" ")
    assert {
        "products",
        f"product:{kettle.id}",
        *(f"variant:{v}" for v in kettle.variant_ids),
    } <= set(tags)
    assert hit.headers["cache-tag"] == ",".join(tags)
    spec = await get(
        client,
        LISTING,
        '{"first": 5, "reverse": false}',
        Accept="application/graphql-response+json",
    )
    assert spec.headers["content-type"].startswith("application/graphql-response+json")
    assert state(spec) == "hit"


async def test_if_none_match_gets_304_without_a_body_and_hostile_headers_are_harmless(
    client: AppClient, db: Database
) -> None:
    await CatalogFactory(db).product("Kettle")
    await register(client, LISTING)
    first = await get(client, LISTING, {"first": 3})
    etag = first.headers["etag"]

    same = await get(client, LISTING, {"first": 3}, **{"If-None-Match": etag})
    listed = await get(client, LISTING, {"first": 3}, **{"If-None-Match": f'"x", W/{etag}'})
    other = await get(client, LISTING, {"first": 3}, **{"If-None-Match": '"not-it"'})
    huge = await get(client, LISTING, {"first": 3}, **{"If-None-Match": '"a",' * 25_000 + etag})

    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    assert listed.status_code == 304
    assert other.status_code == 200 and other.content == first.content
    assert huge.status_code == 200 and huge.content == first.content  # only its start is read


async def test_viewers_posts_errors_carts_and_big_variables_are_never_cached(
    client: AppClient, db: Database
) -> None:
    made = await CatalogFactory(db).product("Kettle")
    await register(client, LISTING, BOTH_KEYS, CART)
    token = await customer_token(client, "ann@example.com")
    big = {"first": 3, "padding": "x" * 5_000}  # unknown variables are ignored by graphql

    signed_in = [
        await get(client, LISTING, {"first": 3}, Authorization=f"Bearer {token}") for _ in range(2)
    ]
    errors = [
        await get(client, BOTH_KEYS, {"slug": made.slug, "id": encode_gid("Product", made.id)})
        for _ in range(2)
    ]
    carts = [await get(client, CART) for _ in range(2)]
    posted = [
        await client.http.post(
            "/graphql",
            json={"extensions": json.loads(persisted(LISTING)), "variables": {"first": 3}},
        )
        for _ in range(2)
    ]
    large = [await get(client, LISTING, big) for _ in range(2)]

    for response in [*signed_in, *errors, *carts, *posted, *large]:
        assert state(response) is None, response.text
        assert response.headers["cache-control"] == "private, no-store" or response in large
        assert "surrogate-key" not in response.headers
    assert errors[1].json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert large[1].status_code == 200 and large[1].headers["x-sql-statements"] != "0"


async def test_an_answer_over_the_entry_limit_is_served_but_not_kept(
    settings: Settings, db: Database, clean: None
) -> None:
    factory = CatalogFactory(db)
    for n in range(12):
        await factory.product(f"Kettle number {n} with a rather long title", prices=[1000, 2000])
    small = settings.model_copy(update={"response_cache_max_entry_bytes": 1_024})
    async with running_app(small) as client:
        await register(client, LISTING)
        answers = [await get(client, LISTING, {"first": 12}) for _ in range(2)]
        few = [await get(client, LISTING, {"first": 1}) for _ in range(2)]

    assert all(len(a.content) > 1_024 and state(a) is None for a in answers)
    assert answers[1].headers["cache-control"] == "public, max-age=60"  # still a CDN's
    assert [state(a) for a in few] == ["miss", "hit"]


async def test_the_setting_turns_it_off(settings: Settings, db: Database, clean: None) -> None:
    await CatalogFactory(db).product("Kettle")
    async with running_app(settings.model_copy(update={"response_cache_enabled": False})) as client:
        await register(client, LISTING)
        answers = [await get(client, LISTING, {"first": 3}) for _ in range(2)]

    assert [state(a) for a in answers] == [None, None]
    assert answers[0].headers["etag"] == answers[1].headers["etag"]  # the edge's own ETag


async def test_stock_to_zero_a_retitle_and_a_review_reach_the_cached_answers_within_the_bound(
    settings: Settings, db: Database, clean: None
) -> None:
    kettle = await CatalogFactory(db).product("Kettle", prices=[3000], stock=[5])
    async with running_app(settings.model_copy(update=QUICK_WORKER)) as client:
        boss = await staff_token(client, db)
        ann = await customer_token(client, "ann@example.com")
        await register(client, LISTING, PRODUCT)
        worker = build_event_worker(client.container)
        await worker.start()
        try:
            listing = {"first": 5}
            product = {"slug": kettle.slug}
            await get(client, LISTING, listing)
            await get(client, PRODUCT, product)
            assert state(await get(client, LISTING, listing)) == "hit"
            assert state(await get(client, PRODUCT, product)) == "hit"

            def node(response: httpx.Response) -> dict[str, Any]:
                return response.json()["data"]["products"]["edges"][0]["node"]

            adjusted = await client.query(
                ADJUST,
                {
                    "input": {
                        "variantId": encode_gid("ProductVariant", kettle.variant_ids[0]),
                        "setQuantity": 0,
                    }
                },
                token=boss,
            )
            assert adjusted.data["inventoryAdjust"]["userErrors"] == []

            async def sold_out() -> bool:
                found = await get(client, LISTING, listing)
                return node(found)["variants"][0]["quantityAvailable"] == 0

            stock_lag = await within(LAG_BOUND_SECONDS, sold_out)
            assert state(await get(client, LISTING, listing)) == "hit"  # cached again

            retitled = await client.query(
                RETITLE,
                {"input": {"id": encode_gid("Product", kettle.id), "title": "Enamel Kettle"}},
                token=boss,
            )
            assert retitled.data["productUpdate"]["userErrors"] == []

            async def renamed() -> bool:
                found = await get(client, PRODUCT, product)
                return found.json()["data"]["product"]["title"] == "Enamel Kettle"

            title_lag = await within(LAG_BOUND_SECONDS, renamed)
            reviewed = await client.query(
                REVIEW, {"p": encode_gid("Product", kettle.id)}, token=ann
            )
            assert reviewed.data["reviewCreate"]["userErrors"] == []

            async def rated() -> bool:
                found = await get(client, LISTING, listing)
                return node(found)["ratingSummary"]["count"] == 1

            review_lag = await within(LAG_BOUND_SECONDS, rated)
        finally:
            await worker.stop()

    assert max(stock_lag, title_lag, review_lag) < LAG_BOUND_SECONDS


async def test_a_purge_reaches_the_in_process_layer_of_every_server(
    settings: Settings, db: Database, redis: Redis, clean: None
) -> None:
    kettle = await CatalogFactory(db).product("Kettle", prices=[3000], stock=[5])
    quick = settings.model_copy(update=QUICK_WORKER)
    async with running_app(quick) as one, running_app(quick) as two:
        boss = await staff_token(one, db)
        await register(one, LISTING)
        first = await get(one, LISTING, {"first": 5})
        from_redis = await get(two, LISTING, {"first": 5})  # two's own layer is empty
        local = two.container.response_cache.local  # type: ignore[union-attr]

        async def following() -> bool:  # two's tail has started reading the purges
            return local.usable

        await within(LAG_BOUND_SECONDS, following)
        await get(two, LISTING, {"first": 5})  # now kept in two's own layer too
        from_memory = await get(two, LISTING, {"first": 5})
        assert (state(first), state(from_redis), state(from_memory)) == ("miss", "hit", "hit")
        assert len(local) == 1
        worker = build_event_worker(one.container)  # one worker, for both servers
        await worker.start()
        try:
            await one.query(
                ADJUST,
                {
                    "input": {
                        "variantId": encode_gid("ProductVariant", kettle.variant_ids[0]),
                        "setQuantity": 0,
                    }
                },
                token=boss,
            )

            async def both_sold_out() -> bool:
                answers = [await get(server, LISTING, {"first": 5}) for server in (one, two)]
                edges = [a.json()["data"]["products"]["edges"][0]["node"] for a in answers]
                return all(e["variants"][0]["quantityAvailable"] == 0 for e in edges)

            lag = await within(LAG_BOUND_SECONDS, both_sold_out)
        finally:
            await worker.stop()
        purges = [server.container.response_store.purges_seen for server in (one, two)]  # type: ignore[union-attr]

    assert lag < LAG_BOUND_SECONDS
    assert all(seen >= 1 for seen in purges)  # each server's tail saw the purge


async def test_an_answer_computed_across_a_purge_is_not_stored(
    client: AppClient, db: Database
) -> None:
    await CatalogFactory(db).product("Kettle")
    await register(client, LISTING)
    cache = client.container.response_cache
    store = client.container.response_store
    assert cache is not None and store is not None
    body = CachedResponse.of(b'{"data":{}}', ("products",))
    started = await cache.look_up("some-key")
    await store.purge(["products"])  # an event lands while the answer is computed
    late = await cache.keep(started, body)  # type: ignore[arg-type]
    again = await cache.look_up("some-key")
    in_time = await cache.keep(again, body)  # type: ignore[arg-type]

    assert isinstance(started, ResponseMiss) and isinstance(again, ResponseMiss)
    assert late is False  # it may hold what the purge removed
    assert in_time is True and isinstance(await cache.look_up("some-key"), ResponseHit)


class RelatedFails(CatalogRepository):
    async def related_products(
        self, product_ids: Sequence[int], first: int
    ) -> dict[int, list[Product]]:
        raise ConnectionError("related ranking unavailable")


RELATED = "query Related($slug: String!) { product(slug: $slug) { title related { slug } } }"


async def test_a_degraded_answer_is_not_kept_and_a_healthy_one_then_is(
    settings: Settings, db: Database, clean: None
) -> None:
    made = await CatalogFactory(db).product("Lamp")
    async with running_app(settings, components=Components(catalog=RelatedFails)) as client:
        await register(client, RELATED)
        degraded = [await get(client, RELATED, {"slug": made.slug}) for _ in range(2)]
    async with running_app(settings) as client:
        healthy = [await get(client, RELATED, {"slug": made.slug}) for _ in range(2)]

    assert all("degraded" in d.json()["extensions"] and state(d) is None for d in degraded)
    assert degraded[1].headers["cache-control"] == "private, no-store"
    assert [state(h) for h in healthy] == ["miss", "hit"]
    assert "degraded" not in healthy[1].json()["extensions"]


async def test_redis_down_serves_every_request_uncached(
    settings: Settings, db: Database, clean: None
) -> None:
    await CatalogFactory(db).product("Kettle")
    async with running_app(settings) as client:
        await register(client, LISTING)
    broken = settings.model_copy(update={"redis_url": SecretStr("redis://127.0.0.1:1/0")})
    async with running_app(broken) as client:
        answers = [await get(client, LISTING, {"first": 3}) for _ in range(3)]

    # The document store is down too: the client is told to send its query (APQ).
    assert all(a.status_code == 200 and state(a) is None for a in answers)
    assert all(a.headers["cache-control"] == "private, no-store" for a in answers)


async def test_hostile_cache_candidates_get_a_coded_error_and_are_never_kept(
    client: AppClient, db: Database
) -> None:
    await CatalogFactory(db).product("Kettle")
    await register(client, PRODUCT, LISTING)
    extensions = persisted(PRODUCT)
    hostile: list[dict[str, str]] = [
        {"extensions": extensions, "variables": json.dumps({"slug": "ket\x00tle"})},
        {"extensions": extensions, "variables": json.dumps({"slug": "ket\x07\x1btle"})},
        # Past MAX_INPUT_STRING_LENGTH and the cache's 4 KB of variables (httpx refuses
        # URLs of 64 KB, so 100k characters cannot be sent in a GET).
        {"extensions": extensions, "variables": json.dumps({"slug": "k" * 20_000})},
        {"extensions": extensions, "variables": json.dumps({"slug": 12})},
        {"extensions": extensions, "variables": "[1, 2]"},
        {"extensions": extensions, "variables": "{not json"},
        {"extensions": persisted(LISTING), "variables": json.dumps({"first": "١٢"})},
        {"extensions": "[1]", "variables": "{}"},
        {"extensions": '{"persistedQuery": {"version": 1, "sha256Hash": "١٢"}}'},
        {"extensions": extensions, "variables": json.dumps({"slug": "k"}), "operationName": "\x00"},
    ]
    for params in hostile:
        for _ in range(2):  # the second would be a hit if the first had been kept
            response = await client.http.get("/graphql", params=params)
            assert response.status_code < 500, (params, response.text)
            assert state(response) != "hit", params
            errors = response.json().get("errors")
            assert errors, (params, response.text)
            codes = {e.get("extensions", {}).get("code") for e in errors}
            assert None not in codes and "INTERNAL_SERVER_ERROR" not in codes, (params, codes)
