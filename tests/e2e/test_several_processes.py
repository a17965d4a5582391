"""Two API servers (separate ports, as behind a load balancer) and two event workers on
one PostgreSQL and one Redis, in production mode, paying through one local Stripe fake:

- a flash sale split across both servers sells exactly the stock, one charge per order;
- one server SIGKILLed mid-sale: every checkout it cut off, retried with the same
  idempotency key on the other server, ends with exactly one order and one charge, and a
  buyer who never retries is settled by a worker's reconciler;
- after each sale every event was handled exactly once by each consumer group, whichever
  worker's consumer got it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from persistence.db import Database
from persistence.events.consumer import DEAD_LETTER_STREAM
from persistence.tables import notifications, orders, outbox
from schema.global_id import encode_gid
from tests.e2e.processes import AppProcess, app_processes
from tests.e2e.server import production_env
from tests.events import eventually
from tests.factories import CatalogFactory, MadeProduct
from tests.fakes.stripe_server import StripeFake, running_stripe_fake
from tests.shop import ADDRESS, CREATE_CART, SET_ADDRESS, stock, vid

pytestmark = pytest.mark.e2e

CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { number status } userErrors { code } } }"""
CHARGES = "/v1/payment_intents"
# Answers that mean "not decided yet: send the same request again".
RETRY_CODES = {"CHECKOUT_IN_PROGRESS", "PAYMENT_PENDING"}
BUYER_SECONDS = 90.0  # one buyer's checkout, retries included, on a loaded machine


@dataclass
class Shop:
    servers: list[AppProcess]
    workers: list[AppProcess]
    stripe: StripeFake
    db: Database
    redis: Redis
    clients: list[httpx.AsyncClient] = field(default_factory=list)


@pytest.fixture
async def shop(
    db: Database, redis: Redis, clean: None, database_url: str, tmp_path: Path
) -> AsyncIterator[Shop]:
    with running_stripe_fake() as stripe:
        env = production_env(database_url)
        env.update(
            PAYMENT_GATEWAY="stripe",
            STRIPE_API_KEY=stripe.api_key,
            STRIPE_API_BASE=stripe.url,
            STRIPE_WEBHOOK_SECRET="whsec_multiprocess_test",
            # One client address sends every request here: a bucket no test can empty.
            # (Not a fast refill instead: the script's clock is each server's, taken
            # before the round trip, so under load a later script may carry an earlier
            # time, and a huge rate turns that into a huge charge.)
            RATE_LIMIT_CAPACITY="1000000000000",
            RATE_LIMIT_RESTORE_RATE="1",
            # PostgreSQL here is shared (max_connections 100): up to 4 x 3 per process.
            DATABASE_POOL_SIZE="3",
            # Generous on a shared 2-core machine: slowness must not pass for a crash.
            REDIS_TIMEOUT_SECONDS="2",
            REQUEST_TIMEOUT_SECONDS="40",
            GATEWAY_TIMEOUT_SECONDS="30",
            # A cut-off checkout's key is resumable this soon (production: 30 s).
            CHECKOUT_LOCK_SECONDS="4",
            CHECKOUT_WAIT_SECONDS="5",
            EVENT_CONSUMER_BLOCK_MS="200",
            EVENT_RELAY_POLL_SECONDS="0.1",
            PAYMENT_RECONCILE_GRACE_SECONDS="3",
            PAYMENT_RECONCILE_EVERY_SECONDS="1",
        )
        with app_processes(tmp_path, env, servers=2, workers=2) as (servers, workers):
            await asyncio.gather(*(p.ready() for p in servers + workers))
            async with (
                httpx.AsyncClient(base_url=servers[0].url, timeout=60) as first,
                httpx.AsyncClient(base_url=servers[1].url, timeout=60) as second,
            ):
                yield Shop(servers, workers, stripe, db, redis, [first, second])


async def _gql(client: httpx.AsyncClient, document: str, variables: dict[str, Any]) -> Any:
    response = await client.post("/graphql", json={"query": document, "variables": variables})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


async def _carts(shop: Shop, made: MadeProduct, count: int) -> list[str]:
    """`count` guest carts of one unit each, made alternately on each server."""
    gate = asyncio.Semaphore(16)

    async def one(n: int) -> str:
        client = shop.clients[n % 2]
        async with gate:
            created = await _gql(
                client, CREATE_CART, {"lines": [{"variantId": vid(made), "quantity": 1}]}
            )
            cart_id: str = created["cartCreate"]["cart"]["id"]
            await _gql(client, SET_ADDRESS, {"id": cart_id, "a": ADDRESS})
        return cart_id

    return list(await asyncio.gather(*(one(n) for n in range(count))))


@dataclass
class Answer:
    """What one buyer finally got, and what it took."""

    cart_id: str
    status: str | None = None  # the order's, when there is one
    codes: list[str] = field(default_factory=list)
    http: list[int] = field(default_factory=list)
    cut: int = 0  # requests that died with the connection (no answer)


async def _buy(
    cart_id: str,
    key: str,
    first: httpx.AsyncClient,
    fallback: httpx.AsyncClient | None,
) -> Answer:
    """A client that follows the README: a request without an answer, or answered
    CHECKOUT_IN_PROGRESS / PAYMENT_PENDING, is sent again with the same key; after a
    lost connection, to the other server. With no fallback the buyer gives up."""
    answer = Answer(cart_id)
    client = first
    variables = {
        "input": {"cartId": cart_id, "idempotencyKey": key, "paymentMethod": "pm_card_visa"}
    }
    deadline = time.monotonic() + BUYER_SECONDS
    while time.monotonic() < deadline:
        try:
            response = await client.post(
                "/graphql", json={"query": CHECKOUT, "variables": variables}
            )
        except httpx.TransportError:
            answer.cut += 1
            if fallback is None:
                return answer
            client = fallback
            continue
        answer.http.append(response.status_code)
        body = response.json()
        if body.get("data") is None:  # refused whole: the codes say why
            answer.codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
            return answer
        payload = body["data"]["checkoutComplete"]
        answer.codes = [e["code"] for e in payload["userErrors"]]
        answer.status = payload["order"]["status"] if payload["order"] else None
        if not RETRY_CODES & set(answer.codes):
            return answer
        await asyncio.sleep(0.2)
    raise AssertionError(f"no final answer for cart {cart_id} in {BUYER_SECONDS:g} s: {answer}")


async def _orders_by_cart(db: Database) -> dict[str, list[tuple[str, str]]]:
    """Every order (public id, status) of every cart, by the cart's global id."""
    async with db.reader.connect() as connection:
        rows = (
            await connection.execute(select(orders.c.cart_id, orders.c.public_id, orders.c.status))
        ).all()
    found: dict[str, list[tuple[str, str]]] = {}
    for cart_id, public_id, status in rows:
        found.setdefault(encode_gid("Cart", cart_id), []).append((public_id, status))
    return found


def _charges_by_order(stripe: StripeFake) -> Counter[str]:
    """How many PaymentIntents the gateway created for each order."""
    return Counter(intent["metadata"]["order_id"] for intent in stripe.payment_intents.values())


async def _confirmations(db: Database) -> list[str]:
    async with db.reader.connect() as connection:
        statement = select(notifications.c.key).where(notifications.c.kind == "order_confirmation")
        return sorted((await connection.execute(statement)).scalars().all())


async def _settled(shop: Shop) -> bool:
    """Every outbox row relayed, every group of every stream caught up and acknowledged."""
    async with shop.db.reader.connect() as connection:
        waiting = (
            await connection.execute(select(func.count()).where(outbox.c.published_at.is_(None)))
        ).scalar_one()
    if waiting:
        return False
    for stream in await _event_streams(shop.redis):
        last = (await shop.redis.xinfo_stream(stream))["last-generated-id"]
        for group in await shop.redis.xinfo_groups(stream):
            if group["pending"] or group["last-delivered-id"] != last:
                return False
    return True


async def _event_streams(redis: Redis) -> list[str]:
    found = [key.decode() async for key in redis.scan_iter("events:*", _type="stream")]
    return sorted(stream for stream in found if stream != DEAD_LETTER_STREAM)


async def _assert_each_event_handled_once_per_group(shop: Shop, paid: set[str]) -> None:
    await eventually(lambda: _settled(shop), seconds=60)
    await eventually(lambda: _confirmation_count_is(shop.db, len(paid)), seconds=30)
    worker_pids = {str(w.pid) for w in shop.workers}
    consumed: set[str] = set()
    handled: Counter[str] = Counter()
    for stream in await _event_streams(shop.redis):
        event_ids = [int(fields[b"id"]) for _id, fields in await shop.redis.xrange(stream)]
        assert len(event_ids) == len(set(event_ids)), f"{stream}: a row was relayed twice"
        for group in await shop.redis.xinfo_groups(stream):
            name = group["name"].decode()
            consumers = await shop.redis.xinfo_consumers(stream, name)
            # Redis lists a consumer in a group once it was handed an entry of it.
            pids = {c["name"].decode().split("-")[-2] for c in consumers}
            assert pids <= worker_pids and bool(pids) == bool(event_ids), (stream, name, pids)
            consumed |= pids
            assert all(c["pending"] == 0 for c in consumers)
            counts = await shop.redis.mget([f"events:done:{{{name}}}:{i}" for i in event_ids])
            assert counts == [b"1"] * len(event_ids), f"{stream}/{name}: handled {counts}"
            handled[name] += len(event_ids)
    assert consumed == worker_pids  # both workers took their share
    assert handled["notifications"] >= len(paid)  # OrderPaid reaches its group
    assert await shop.redis.xlen(DEAD_LETTER_STREAM) == 0
    assert await _confirmations(shop.db) == sorted(paid)  # one per paid order, no other


async def _confirmation_count_is(db: Database, count: int) -> bool:
    return len(await _confirmations(db)) == count


async def test_a_flash_sale_split_across_two_servers_sells_exactly_the_stock(shop: Shop) -> None:
    units, buyers = 30, 80
    tee = await CatalogFactory(shop.db).product("Flash Tee", prices=[2500], stock=[units])
    carts = await _carts(shop, tee, buyers)

    # Each cart is checked out on the server that did not create it: carts are in Redis.
    answers = await asyncio.gather(
        *(
            _buy(cart_id, f"flash-{n:03d}", shop.clients[(n + 1) % 2], None)
            for n, cart_id in enumerate(carts)
        )
    )

    placed = await _orders_by_cart(shop.db)
    paid = {public_id for held in placed.values() for public_id, status in held if status == "PAID"}
    assert [a for a in answers if a.cut or a.http != [200]] == []  # no 5xx, none dropped
    assert Counter(a.status for a in answers if a.status) == {"PAID": units}
    assert Counter(tuple(a.codes) for a in answers) == {
        (): units,
        ("OUT_OF_STOCK",): buyers - units,
    }
    assert len(paid) == units and await stock(shop.db, tee) == 0
    for a in answers:  # an order for each buyer who paid, none for the others
        assert len(placed.get(a.cart_id, [])) == (1 if a.status == "PAID" else 0)
    assert _charges_by_order(shop.stripe) == dict.fromkeys(paid, 1)  # one charge per order
    await _assert_each_event_handled_once_per_group(shop, paid)
    for process in shop.servers + shop.workers:
        assert "Traceback" not in process.output(), process.output()


async def test_a_server_killed_mid_sale_leaves_every_retried_checkout_one_order_and_one_charge(
    shop: Shop,
) -> None:
    units, buyers, hung = 20, 50, 4
    mug = await CatalogFactory(shop.db).product("Flash Mug", prices=[1800], stock=[units])
    carts = await _carts(shop, mug, buyers)
    doomed, survivor = shop.clients
    keys = [f"sale-{n:03d}" for n in range(buyers)]

    # The first checkouts on the doomed server are charged, and the answers withheld:
    # the crash comes between the charge and the order hearing of it. Buyer 0 never
    # comes back; the others retry on the surviving server.
    shop.stripe.hang_next(hung)
    first = [
        asyncio.create_task(_buy(carts[n], keys[n], doomed, None if n == 0 else survivor))
        for n in range(hung)
    ]
    await eventually(lambda: len(shop.stripe.requests_to(CHARGES)) >= hung, seconds=30)
    rest = [
        asyncio.create_task(_buy(carts[n], keys[n], shop.clients[n % 2], survivor))
        for n in range(hung, buyers)
    ]
    await eventually(lambda: len(shop.stripe.requests_to(CHARGES)) >= hung + 6, seconds=30)
    shop.servers[0].crash()  # mid-sale: its other requests are wherever they are
    answers = await asyncio.gather(*first, *rest)
    gave_up, retried = answers[0], answers[1:]

    # The reconciler (a worker) finds buyer 0's charge by its order id and settles it.
    async def abandoned_order_paid() -> bool:
        held = (await _orders_by_cart(shop.db)).get(gave_up.cart_id, [])
        return [status for _id, status in held] == ["PAID"]

    await eventually(abandoned_order_paid, seconds=30)
    placed = await _orders_by_cart(shop.db)
    paid = {public_id for held in placed.values() for public_id, status in held if status == "PAID"}
    statuses = Counter(status for held in placed.values() for _id, status in held)

    assert gave_up.cut == 1 and sum(a.cut for a in retried) >= hung - 1  # the crash cut them off
    assert all(code < 500 for a in retried for code in a.http)  # the survivor never failed
    assert {a.status for a in retried} <= {"PAID", None}
    assert {tuple(a.codes) for a in retried} <= {(), ("OUT_OF_STOCK",)}
    for a in retried:  # exactly one order per key that paid, none for the refused
        assert len(placed.get(a.cart_id, [])) == (1 if a.status == "PAID" else 0), a
    assert statuses == {"PAID": units}  # nothing left pending, failed or doubled
    assert len(paid) + await stock(shop.db, mug) == units and await stock(shop.db, mug) == 0
    assert _charges_by_order(shop.stripe) == dict.fromkeys(paid, 1)  # never charged twice
    await _assert_each_event_handled_once_per_group(shop, paid)
    for process in [shop.servers[1], *shop.workers]:
        assert "Traceback" not in process.output(), process.output()
