"""Checkout when something breaks: the key is never left locked for nothing, a hung gateway
never eats the request, and nothing is charged twice.

Failures are real where they can be: an unreachable Redis, a Redis that accepts and never
answers, a private redis-server shut down mid-checkout, a gateway that never answers, the
Stripe SDK against a local Stripe that charges and loses its answer. The locks here are
long (30 s) and the waits short, so a key left locked shows as CHECKOUT_IN_PROGRESS.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select

from domain.carts import MAX_LINES, MAX_QUANTITY
from domain.checkout import Checkout, CheckoutInput, CheckoutPolicy
from domain.orders import NewOrder
from domain.payments import ChargeRequest, ChargeResult
from integrations.sandbox_gateway import SandboxGateway
from persistence.catalog.lookups import DatabaseCatalogLookups
from persistence.db import Database
from persistence.orders.idempotency import SqlIdempotencyStore
from persistence.orders.order_store import SqlOrderStore
from persistence.redis.cart_store import RedisCartStore
from persistence.tables import orders
from schema.global_id import decode_gid
from settings import Settings
from tests.client import running_app
from tests.factories import CatalogFactory, MadeProduct
from tests.fakes.stripe_server import running_stripe_fake
from tests.integration.test_checkout import CHECKOUT, checkout
from tests.shop import ready_cart, stock

LONG_LOCK = {"checkout_lock_seconds": 30.0, "checkout_wait_seconds": 0.2}


def a_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def strict(settings: Settings) -> Settings:
    return settings.model_copy(update=LONG_LOCK)


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])


async def order_count(db: Database) -> int:
    async with db.reader.connect() as connection:
        return int(
            (await connection.execute(select(func.count()).select_from(orders))).scalar_one()
        )


def checkout_input(cart_id: str, key: str, method: str = "pm_card_visa") -> dict[str, Any]:
    return {"input": {"cartId": cart_id, "idempotencyKey": key, "paymentMethod": method}}


# Redis fails after the key was claimed


async def test_an_unreachable_redis_frees_the_key_for_an_immediate_retry(
    strict: Settings, mug: MadeProduct, db: Database, clean: None
) -> None:
    # given: a cart, and an app instance whose Redis is down (nothing listens there)
    gateway = SandboxGateway()
    async with running_app(strict, gateway=gateway) as shop:
        cart_id = await ready_cart(shop, [(mug, 1)])
        dead = Redis(host="127.0.0.1", port=a_free_port(), socket_connect_timeout=0.25)
        async with running_app(strict, redis=dead, gateway=gateway) as broken:
            # when
            failed = await broken.query(CHECKOUT, checkout_input(cart_id, "redis-down-1"))
        retried = await checkout(shop, cart_id, "redis-down-1")

    # then: a coded 503 the client may retry, and the same key goes through at once on a
    # healthy instance
    assert failed.error_codes == ["SERVICE_UNAVAILABLE"] and failed.status == 503
    assert retried["order"]["status"] == "PAID" and retried["userErrors"] == []
    assert await order_count(db) == 1 and len(gateway.charges) == 1
    assert await stock(db, mug) == 9


@contextlib.asynccontextmanager
async def black_hole() -> AsyncIterator[int]:
    """A port that accepts connections and never answers: a hung Redis."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_a_hung_redis_cut_off_by_the_request_deadline_frees_the_key(
    strict: Settings, mug: MadeProduct, db: Database, clean: None
) -> None:
    # given
    gateway = SandboxGateway()
    impatient = strict.model_copy(update={"request_timeout_seconds": 1.0})
    async with running_app(strict, gateway=gateway) as shop:
        cart_id = await ready_cart(shop, [(mug, 1)])
        async with black_hole() as port:
            hung = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.25)
            async with running_app(impatient, redis=hung, gateway=gateway) as broken:
                # when: the cart read never returns; the request deadline cancels it
                timed_out = await broken.http.post(
                    "/graphql",
                    json={"query": CHECKOUT, "variables": checkout_input(cart_id, "redis-hung-1")},
                )
        retried = await checkout(shop, cart_id, "redis-hung-1")

    # then
    assert timed_out.status_code == 503
    assert timed_out.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
    assert retried["order"]["status"] == "PAID"
    assert await order_count(db) == 1 and len(gateway.charges) == 1


# The order is placed, the charge not yet attempted


class ConnectionLostAfterCommit(SqlOrderStore):
    """The placing transaction commits, then the connection drops before the answer."""

    failures = 1

    async def place(self, claim_id: int, order: NewOrder, expires_at: datetime) -> Any:
        placed = await super().place(claim_id, order, expires_at)
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("connection lost after COMMIT")
        return placed


async def test_a_failure_after_placing_lets_the_same_key_resume_at_the_charge_at_once(
    strict: Settings, mug: MadeProduct, db: Database, clean: None
) -> None:
    # given: the real adapters, with an order store that loses its answer once
    gateway = SandboxGateway()
    async with running_app(strict, gateway=gateway) as shop:
        cart_id = decode_gid(await ready_cart(shop, [(mug, 2)]))[1]
        container = shop.container
        service = Checkout(
            RedisCartStore(
                container.redis,
                ttl_seconds=3600,
                max_quantity=MAX_QUANTITY,
                max_lines=MAX_LINES,
                cipher=container.pii,
            ),
            DatabaseCatalogLookups(container.catalog),
            ConnectionLostAfterCommit(container.db, container.pii),
            SqlIdempotencyStore(container.db),
            gateway,
            container.pricing,
            CheckoutPolicy(lock_seconds=30.0, wait_seconds=0.2),
            container.status_tokens,
        )
        data = CheckoutInput(
            cart_id=cart_id, idempotency_key="lost-answer-1", payment_method="pm_card_visa"
        )

        # when
        with pytest.raises(ConnectionResetError):
            await service.complete(data, None)
        retried = await service.complete(data, None)

    # then: the retry found the placed order and charged it, once
    assert retried.errors == [] and retried.order is not None
    assert retried.order.status.value == "PAID"
    assert await order_count(db) == 1 and len(gateway.charges) == 1
    assert await stock(db, mug) == 8  # reserved once


# A failure after the charge does not fail the checkout


@pytest.fixture
def private_redis() -> Iterator[int]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = a_free_port()
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
        ],
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            break
        time.sleep(0.05)
    try:
        yield port
    finally:  # it is normally shut down by the test already
        subprocess.run(
            ["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, check=False
        )


class RedisKillingGateway(SandboxGateway):
    """Charges, and meanwhile the Redis holding the cart goes away for good."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        result = await super().charge(request)
        admin = Redis(host="127.0.0.1", port=self.port)
        with contextlib.suppress(RedisError):
            await admin.shutdown(nosave=True)
        await admin.aclose()
        return result


async def test_a_redis_lost_after_the_charge_does_not_fail_the_paid_checkout(
    strict: Settings, mug: MadeProduct, db: Database, clean: None, private_redis: int
) -> None:
    # given
    gateway = RedisKillingGateway(private_redis)
    redis = Redis(host="127.0.0.1", port=private_redis, socket_connect_timeout=0.25)
    async with running_app(strict, redis=redis, gateway=gateway) as shop:
        cart_id = await ready_cart(shop, [(mug, 1)])

        # when: the cart cannot be deleted after the payment
        paid = await shop.query(CHECKOUT, checkout_input(cart_id, "redis-after-1"))

    # then
    answer = paid.data["checkoutComplete"]
    assert answer["order"]["status"] == "PAID" and answer["userErrors"] == []
    assert len(gateway.charges) == 1 and await stock(db, mug) == 9


# The gateway's budget inside the request's


class HangingGateway(SandboxGateway):
    """Never answers while `hanging`, whatever timeout it was given; then the sandbox."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging = True
        self.keys: list[str] = []

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        self.keys.append(request.idempotency_key)
        if self.hanging:
            await asyncio.Event().wait()
        return await super().charge(request)


async def test_a_hung_gateway_answers_pending_in_time_and_the_same_key_settles_it(
    strict: Settings, mug: MadeProduct, db: Database, clean: None
) -> None:
    # given
    gateway = HangingGateway()
    budget = strict.model_copy(
        update={"gateway_timeout_seconds": 0.3, "request_timeout_seconds": 3.0}
    )
    async with running_app(budget, gateway=gateway) as shop:
        cart_id = await ready_cart(shop, [(mug, 1)])

        # when
        started = time.monotonic()
        pending = await shop.query(CHECKOUT, checkout_input(cart_id, "hung-gateway-1"))
        elapsed = time.monotonic() - started
        gateway.hanging = False  # the gateway recovers
        retried = await checkout(shop, cart_id, "hung-gateway-1")

    # then: an answer within the request's deadline, the order kept pending ...
    assert pending.status == 200 and elapsed < 3.0
    answer = pending.data["checkoutComplete"]
    assert answer["order"]["status"] == "PENDING_PAYMENT"
    assert [e["code"] for e in answer["userErrors"]] == ["PAYMENT_PENDING"]
    # ... and the retry re-sent the same charge, which settled it once
    assert retried["order"]["status"] == "PAID" and retried["userErrors"] == []
    assert retried["order"]["id"] == answer["order"]["id"]
    order_public_id = decode_gid(answer["order"]["id"])[1]
    assert gateway.keys == [f"order-{order_public_id}-charge"] * 2
    assert len(gateway.charges) == 1 and await stock(db, mug) == 9


async def test_the_sandbox_timeout_card_answers_pending_and_the_retry_is_not_locked_out(
    strict: Settings, mug: MadeProduct, clean: None
) -> None:
    # given
    async with running_app(strict, gateway=SandboxGateway()) as shop:
        cart_id = await ready_cart(shop, [(mug, 1)])

        # when
        first = await checkout(shop, cart_id, "sandbox-timeout-1", "pm_card_timeout")
        again = await checkout(shop, cart_id, "sandbox-timeout-1", "pm_card_timeout")

    # then: each answer is the pending order, never CHECKOUT_IN_PROGRESS
    for answer in (first, again):
        assert answer["order"]["status"] == "PENDING_PAYMENT"
        assert [e["code"] for e in answer["userErrors"]] == ["PAYMENT_PENDING"]
    assert first["order"]["id"] == again["order"]["id"]


@pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content:DeprecationWarning"
)
async def test_a_lost_stripe_answer_is_pending_and_the_retry_finds_the_one_charge(
    strict: Settings, mug: MadeProduct, db: Database, clean: None
) -> None:
    with running_stripe_fake() as fake:
        settings = strict.model_copy(
            update={
                "payment_gateway": "stripe",
                "stripe_api_key": SecretStr(fake.api_key),
                "stripe_api_base": fake.url,
                "gateway_timeout_seconds": 0.5,
            }
        )
        async with running_app(settings) as shop:
            cart_id = await ready_cart(shop, [(mug, 1)])
            fake.hang_next(1)  # Stripe charges, and its answer never arrives

            # when
            pending = await checkout(shop, cart_id, "stripe-lost-1")
            fake.release_hung_requests()
            retried = await checkout(shop, cart_id, "stripe-lost-1")

    # then
    assert pending["order"]["status"] == "PENDING_PAYMENT"
    assert [e["code"] for e in pending["userErrors"]] == ["PAYMENT_PENDING"]
    assert retried["order"]["status"] == "PAID" and retried["order"]["id"] == pending["order"]["id"]
    order_public_id = decode_gid(pending["order"]["id"])[1]
    charges = fake.requests_to("/v1/payment_intents")
    assert [c.idempotency_key for c in charges] == [f"order-{order_public_id}-charge"] * 2
    assert len(fake.payment_intents) == 1
    assert await stock(db, mug) == 9


def test_a_gateway_timeout_that_does_not_fit_in_the_request_is_refused() -> None:
    with pytest.raises(ValueError, match=r"GATEWAY_TIMEOUT_SECONDS .* REQUEST_TIMEOUT_SECONDS"):
        Settings(gateway_timeout_seconds=9, request_timeout_seconds=10)
    assert Settings().gateway_timeout_seconds + 2 < Settings().request_timeout_seconds
