"""Redis in trouble, for real: a private redis-server is hung with SIGSTOP, woken with
SIGCONT, and killed and restarted on its port between two bursts of requests.

What a client sees: catalog reads answer from PostgreSQL, rate limits fail open for one
skip window, and what cannot work without Redis (sessions, carts, logins, checkout)
answers 503 with `SERVICE_UNAVAILABLE` within a second - never a 5 s hang, never an
INTERNAL_SERVER_ERROR. After a restart the first requests succeed and `/readyz` is 200.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import func, select

from app import Container, build_event_worker
from persistence.db import Database
from persistence.redis.cart_store import _ADD
from persistence.search.postgres import PostgresSearchIndex
from persistence.tables import orders
from settings import Settings
from tests.client import LOG_IN, AppClient, GraphQLResponse, customer_token, running_app
from tests.factories import CatalogFactory, MadeProduct
from tests.redis_server import PrivateRedis, private_redis, reply_dropping_proxy
from tests.shop import ready_cart, stock, vid

T = TypeVar("T")

PRODUCT = '{ product(slug: "mug") { title variants { sku quantityAvailable } } }'
CART = "query($id: ID!) { cart(id: $id) { id totalQuantity } }"
CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { number status } userErrors { code } } }"""
VIEWER = "{ me { email } }"
# Generous for one 0.25 s timeout on a shared 2-core machine; a 5 s hang is far past it.
QUICK = 1.0


@pytest.fixture
def server() -> Iterator[PrivateRedis]:
    with private_redis() as private:
        yield private


@pytest.fixture
def trouble(settings: Settings, server: PrivateRedis) -> Settings:
    return settings.model_copy(
        update={
            "redis_url": SecretStr(server.url),
            "redis_timeout_seconds": 0.25,
            "rate_limit_capacity": 1e6,
        }
    )


@pytest.fixture
async def app(trouble: Settings, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(trouble) as client:
        yield client


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[900], stock=[5])


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


async def evalsha_calls(server: PrivateRedis) -> int:
    """How many scripts the server itself ran: what reached Redis, whoever sent it."""
    async with Redis.from_url(server.url) as direct:
        stats: dict[str, Any] = await direct.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def unavailable(response: GraphQLResponse) -> bool:
    return response.status == 503 and response.error_codes == ["SERVICE_UNAVAILABLE"]


async def order_count(db: Database) -> int:
    async with db.reader.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(orders))).scalar())


async def test_a_hung_redis_answers_every_request_within_a_second_with_the_right_code(
    app: AppClient,
    server: PrivateRedis,
    mug: MadeProduct,
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cart_id = await ready_cart(app, [(mug, 1)])
    token = await customer_token(app, "ann@example.com")
    scripts_before = await evalsha_calls(server)

    server.hang()
    try:
        with caplog.at_level(logging.WARNING):
            catalog, catalog_s = await timed(app.query(PRODUCT))
            cart, cart_s = await timed(app.query(CART, {"id": cart_id}))
            viewer, viewer_s = await timed(app.query(VIEWER, token=token))
            login, login_s = await timed(
                app.query(LOG_IN, {"email": "ann@example.com", "password": "correct horse"})
            )
            checkout, checkout_s = await timed(
                app.query(
                    CHECKOUT,
                    {
                        "input": {
                            "cartId": cart_id,
                            "idempotencyKey": "hung-redis-key-1",
                            "paymentMethod": "pm_card_visa",
                        }
                    },
                )
            )
            catalog_again, again_s = await timed(app.query(PRODUCT))
            hung_ready, ready_s = await timed(app.http.get("/readyz"))
            partial = await app.query(PRODUCT.replace("} } }", "} } me { email } }"), token=token)
    finally:
        server.wake()
    await asyncio.sleep(0.3)  # let the woken server drain what was sent while it slept
    scripts_while_hung = await evalsha_calls(server) - scripts_before

    assert catalog.data == {
        "product": {"title": "Mug", "variants": [{"sku": "MUG-0", "quantityAvailable": 5}]}
    }
    assert catalog_again.data == catalog.data
    # A screen that is more than its signed-in part keeps the rest: a 200 with the error.
    assert partial.status == 200 and partial.error_codes == ["SERVICE_UNAVAILABLE"]
    assert partial.body["data"] == {**catalog.data, "me": None}
    for response in (cart, viewer, login, checkout):
        assert unavailable(response), response.body
        assert response.body["data"] is None
    assert (hung_ready.status_code, hung_ready.json()["redis"]) == (503, "error: TimeoutError")
    assert max(catalog_s, cart_s, viewer_s, login_s, checkout_s, again_s, ready_s) < QUICK, (
        catalog_s,
        cart_s,
        viewer_s,
        login_s,
        checkout_s,
        again_s,
        ready_s,
    )
    # Six requests, one rate-limit script: the limiter's skip window held for the rest.
    assert scripts_while_hung <= 1
    limiter_logs = [r for r in caplog.records if "rate limiter unavailable" in r.getMessage()]
    assert len(limiter_logs) == 1
    assert app.container.rate_limiter.failures == 1
    assert app.container.rate_limiter.skipped >= 5
    # Nothing half-written: no order, no stock taken.
    assert await order_count(db) == 0
    assert await stock(db, mug) == 5

    woken_cart = await app.query(CART, {"id": cart_id})
    woken_viewer = await app.query(VIEWER, token=token)
    woken_login = await app.query(LOG_IN, {"email": "ann@example.com", "password": "correct horse"})
    woken_checkout = await app.query(
        CHECKOUT,
        {
            "input": {
                "cartId": cart_id,
                "idempotencyKey": "woken-redis-key-1",
                "paymentMethod": "pm_card_visa",
            }
        },
    )

    assert (await app.http.get("/readyz")).status_code == 200
    assert woken_cart.data["cart"] == {"id": cart_id, "totalQuantity": 1}
    assert woken_viewer.data == {"me": {"email": "ann@example.com"}}
    assert woken_login.data["customerAccessTokenCreate"]["userErrors"] == []
    assert woken_checkout.data["checkoutComplete"]["order"]["status"] == "PAID"
    assert await stock(db, mug) == 4


async def test_after_a_restart_the_first_requests_succeed_and_readyz_is_200_at_once(
    settings: Settings, server: PrivateRedis, mug: MadeProduct, clean: None
) -> None:
    limited = settings.model_copy(
        update={
            "redis_url": SecretStr(server.url),
            "rate_limit_capacity": 1000,
            "rate_limit_restore_rate": 0.001,
        }
    )
    async with running_app(limited) as app:
        cart_id = await ready_cart(app, [(mug, 1)])
        # A burst that leaves several connections in the pool.
        before = await asyncio.gather(*(app.query(CART, {"id": cart_id}) for _ in range(8)))
        assert all(r.data["cart"]["totalQuantity"] == 1 for r in before)

        server.restart()  # no persistence: the cart and the buckets are gone with it

        ready = await app.http.get("/readyz")
        after = await asyncio.gather(*(app.query(CART, {"id": cart_id}) for _ in range(8)))
        new_cart = await ready_cart(app, [(mug, 2)])
        read_back = await app.query(CART, {"id": new_cart})
        limiter = app.container.rate_limiter

    assert ready.status_code == 200, ready.json()
    assert ready.json()["redis"] == "ok"
    failed = [r for r in after if r.errors]
    assert failed == []  # not one "Connection closed by server"
    assert all(r.data["cart"] is None for r in after)  # gone with the server's memory
    assert read_back.data["cart"]["totalQuantity"] == 2
    # Every request after the restart was charged by the limiter, none let through blind.
    charged = [r.body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] for r in after]
    assert all(points < 1000 for points in charged), charged
    assert limiter.failures == 0


ADD_LINES = """mutation($input: CartLinesAddInput!) { cartLinesAdd(input: $input) {
  cart { totalQuantity } userErrors { code } } }"""
SEARCH = "query($q: String!) { search(query: $q, first: 5) { edges { node { title } } } }"


async def test_a_connection_the_server_closed_is_replaced_and_the_cart_write_applies_once(
    app: AppClient, server: PrivateRedis, mug: MadeProduct
) -> None:
    cart_id = await ready_cart(app, [(mug, 1)])
    async with Redis.from_url(server.url) as direct:
        # What a restart, a proxy or `timeout` does to pooled connections, data kept.
        killed = await direct.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1

    added = await app.query(
        ADD_LINES, {"input": {"cartId": cart_id, "lines": [{"variantId": vid(mug)}]}}
    )
    read_back = await app.query(CART, {"id": cart_id})

    assert added.data["cartLinesAdd"] == {"cart": {"totalQuantity": 2}, "userErrors": []}
    assert read_back.data["cart"]["totalQuantity"] == 2  # retried once, applied once
    # The request's first command (its rate-limit take) met the dead connection and was
    # retried, not let through blind.
    assert app.container.rate_limiter.failures == 0


async def test_a_cart_write_redis_could_not_confirm_is_whole_or_absent_never_half(
    app: AppClient, server: PrivateRedis, db: Database, clean: None
) -> None:
    factory = CatalogFactory(db)
    mug, cup = await factory.product("Mug", stock=[5]), await factory.product("Cup", stock=[5])
    cart_id = await ready_cart(app, [(mug, 1)])
    lines = [{"variantId": vid(mug), "quantity": 2}, {"variantId": vid(cup), "quantity": 3}]

    server.hang()
    try:
        added, seconds = await timed(
            app.query(ADD_LINES, {"input": {"cartId": cart_id, "lines": lines}})
        )
    finally:
        server.wake()
    await asyncio.sleep(0.3)
    after = await app.query(CART, {"id": cart_id})

    assert unavailable(added) and seconds < QUICK
    # One script: both lines or neither (a hung server may still run what it held).
    assert after.data["cart"]["totalQuantity"] in (1, 6), after.data


async def test_a_hung_redis_costs_persisted_queries_and_search_one_timeout_per_window(
    app: AppClient, server: PrivateRedis, db: Database, clean: None
) -> None:
    kettle = await CatalogFactory(db).product("Copper Kettle")
    await PostgresSearchIndex(db).index_products([kettle.id])
    unknown = [
        hashlib.sha256(f"query Q{i} {{ __typename }}".encode()).hexdigest() for i in range(6)
    ]

    server.hang()
    try:
        misses = []
        started = time.monotonic()
        for sha256_hash in unknown:
            extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hash}}
            misses.append(await app.http.post("/graphql", json={"extensions": extensions}))
        apq_s = time.monotonic() - started
        searches = []
        started = time.monotonic()
        for _ in range(6):
            searches.append(await app.query(SEARCH, {"q": "kettle"}))
        search_s = time.monotonic() - started
    finally:
        server.wake()

    codes = {r.json()["errors"][0]["extensions"]["code"] for r in misses}
    assert codes == {"PERSISTED_QUERY_NOT_FOUND"}  # a miss: the client sends the query
    assert all(
        r.data["search"]["edges"] == [{"node": {"title": "Copper Kettle"}}] for r in searches
    )
    # Six lookups and six searches, each path paying one 0.25 s timeout, not six.
    assert apq_s < QUICK and search_s < QUICK, (apq_s, search_s)
    assert app.container.search.window.failures == 1  # type: ignore[attr-defined]


async def test_the_event_workers_blocking_read_waits_out_its_block_time(
    trouble: Settings, server: PrivateRedis, clean: None
) -> None:
    container = Container.create(trouble.model_copy(update={"event_consumer_block_ms": 800}))
    try:
        consumer = build_event_worker(container).consumers[0]
        await consumer.ensure_groups()
        read, seconds = await timed(consumer.poll_once())  # nothing to read: blocks 0.8 s
    finally:
        await container.close()

    assert read == 0
    assert 0.7 < seconds < 2.0


async def test_a_cart_script_whose_reply_was_lost_is_not_applied_twice_by_the_retry(
    settings: Settings, server: PrivateRedis, mug: MadeProduct, clean: None
) -> None:
    add_one = {"lines": [{"variantId": vid(mug), "quantity": 1}]}
    async with reply_dropping_proxy(server.port) as proxy:
        proxied = settings.model_copy(update={"redis_url": SecretStr(proxy.url)})
        async with running_app(proxied) as app:
            cart_id = await ready_cart(app, [(mug, 1)])
            add = {"input": {"cartId": cart_id, **add_one}}
            await app.query(ADD_LINES, add)  # 2; the script is loaded now
            proxy.drop_reply_to(hashlib.sha1(_ADD.encode()).hexdigest().encode())
            lost_reply = await app.query(ADD_LINES, add)
            read_back = await app.query(CART, {"id": cart_id})

    assert proxy.dropped == 1
    # The script ran, its reply was lost, the client retried on a fresh connection:
    # the second run saw the first one's write id and did not add the line again.
    assert lost_reply.data["cartLinesAdd"] == {"cart": {"totalQuantity": 3}, "userErrors": []}
    assert read_back.data["cart"]["totalQuantity"] == 3
