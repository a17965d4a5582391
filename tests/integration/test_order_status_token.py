"""Order status without an account: checkoutComplete hands out a status token once (and
again on its replay), the confirmation carries it, and orderByStatusToken opens that one
order to whoever holds it, throttling clients that guess."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text

from integrations.sandbox_gateway import SandboxGateway
from persistence.db import Database
from persistence.events.relay import OutboxRelay
from persistence.pii import PiiCipher
from persistence.tables import idempotency_keys, notifications, orders
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.conftest import TEST_PII_KEY
from tests.events import consume_until
from tests.factories import CatalogFactory, MadeProduct
from tests.integration.test_events_notifications import _consumer
from tests.shop import ready_cart

CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id number status statusToken } userErrors { code } } }"""
BY_TOKEN = """query($t: String!) { orderByStatusToken(token: $t) {
  id number status email statusToken cancelReason shippingAddress { city }
  lines { sku quantity } fulfillments { trackingNumber } statusHistory { status } } }"""
LIMIT = 3


@pytest.fixture
async def shop(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    throttled = settings.model_copy(
        update={
            "order_status_failures_per_client": LIMIT,
            "order_status_failure_window_seconds": 60,
        }
    )
    async with running_app(throttled, gateway=SandboxGateway()) as client:
        yield client


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[1200], stock=[20])


async def checkout(
    client: AppClient,
    mug: MadeProduct,
    key: str,
    token: str | None = None,
    cart: str | None = None,
    method: str = "pm_card_visa",
) -> dict[str, Any]:
    cart = cart or await ready_cart(client, [(mug, 2)], token=token)
    result = await client.query(
        CHECKOUT,
        {"input": {"cartId": cart, "idempotencyKey": key, "paymentMethod": method}},
        token=token,
    )
    order: dict[str, Any] = result.data["checkoutComplete"]["order"]
    return order


async def by_token(client: AppClient, token: str) -> Any:
    return await client.query(BY_TOKEN, {"t": token})


async def test_checkout_returns_a_token_again_on_replay_and_stores_only_its_hash(
    shop: AppClient, mug: MadeProduct, db: Database
) -> None:
    cart = await ready_cart(shop, [(mug, 1)])
    first = await checkout(shop, mug, "status-key-1", cart=cart)
    replay = await checkout(shop, mug, "status-key-1", cart=cart)  # the lost answer, again

    token = first["statusToken"]
    assert replay == first and first["status"] == "PAID"
    assert len(token) == 43  # 256 bits, base64url
    async with db.reader.connect() as connection:
        stored = (await connection.execute(select(orders.c.status_token_hash))).scalar_one()
        dumps = [
            str((await connection.execute(select(table))).mappings().all())
            for table in (orders, idempotency_keys)
        ]
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in dump for dump in dumps)


async def test_a_guest_opens_that_one_order_with_its_token_and_no_bearer(
    shop: AppClient, mug: MadeProduct
) -> None:
    first = await checkout(shop, mug, "status-key-2")
    second = await checkout(shop, mug, "status-key-3")

    opened = (await by_token(shop, first["statusToken"])).data["orderByStatusToken"]
    other = (await by_token(shop, second["statusToken"])).data["orderByStatusToken"]
    by_id_as_guest = await shop.query(
        "query($id: ID!) { order(id: $id) { id } }", {"id": first["id"]}
    )

    assert opened == {
        "id": first["id"],
        "number": first["number"],
        "status": "PAID",
        "email": "ann@example.com",
        "statusToken": None,  # shown once, at checkout: a reload of this screen needs none
        "cancelReason": None,
        "shippingAddress": {"city": "Berlin"},
        "lines": [{"sku": "MUG-0", "quantity": 2}],
        "fulfillments": [],
        "statusHistory": [{"status": "PENDING_PAYMENT"}, {"status": "PAID"}],
    }
    assert other["id"] == second["id"] != first["id"]
    assert by_id_as_guest.data["order"] is None  # the token opens the token's view only


async def test_a_token_is_shown_nowhere_but_at_checkout(
    shop: AppClient, mug: MadeProduct, db: Database
) -> None:
    ann = await customer_token(shop, "ann@example.com")
    placed = await checkout(shop, mug, "status-key-4", token=ann)
    mine = await shop.query(
        "{ me { orders(first: 5) { edges { node { id statusToken } } } } }", token=ann
    )
    one = await shop.query(
        "query($id: ID!) { order(id: $id) { statusToken } }", {"id": placed["id"]}, token=ann
    )

    assert placed["statusToken"]
    assert mine.data["me"]["orders"]["edges"] == [
        {"node": {"id": placed["id"], "statusToken": None}}
    ]
    assert one.data["order"] == {"statusToken": None}


async def test_the_order_type_has_no_path_to_the_account_or_other_orders(shop: AppClient) -> None:
    # A token holder reaches everything the Order type exposes: a new field here must be
    # checked for what it leads to (customer, their other orders, reviews, addresses).
    fields = await shop.query(
        '{ __type(name: "Order") { fields { name type { name ofType { name ofType { name ofType { name } } } } } } }'
    )

    names = {f["name"] for f in fields.data["__type"]["fields"]}
    assert names == {
        "id",
        "number",
        "status",
        "email",
        "shippingAddress",
        "lines",
        "cost",
        "payment",
        "createdAt",
        "updatedAt",
        "cancelReason",
        "statusToken",
        "fulfillments",
        "fulfillmentStatus",
        "statusHistory",
        "shippingMethod",  # title and handle: plain strings, no path onward
        "discountAllocations",  # title, code, amount: no path to the discount itself
        "discountCodes",
        "giftCardPayments",  # the last 4 characters and the amount: no path to the card
        "dispute",  # the buyer's own chargeback: reason, amount, time
        "paymentAction",  # the client secret of this order's own payment: the buyer's
        "refunds",  # amounts, line ids of this order, a reason: no path onward
        "totalRefunded",
        "returns",  # line ids of this order, status, reasons: no path onward
    }


@pytest.mark.parametrize(
    "token",
    ["", "short", "x" * 43, "!" * 43, "a" * 44, "a" * 5000, "ä" * 43],
    ids=["empty", "short", "unknown", "bad-chars", "one-too-long", "huge", "non-ascii"],
)
async def test_malformed_unknown_and_oversize_tokens_open_nothing(
    shop: AppClient, mug: MadeProduct, token: str
) -> None:
    await checkout(shop, mug, "status-key-5")

    result = await by_token(shop, token)

    assert result.data == {"orderByStatusToken": None}


async def test_a_malformed_token_costs_no_statement(shop: AppClient) -> None:
    result = await by_token(shop, "a" * 5000)

    assert result.data == {"orderByStatusToken": None} and result.statements == 0


async def test_failed_look_ups_are_throttled_per_client_and_successes_do_not_count(
    shop: AppClient, mug: MadeProduct, redis: Redis
) -> None:
    token = (await checkout(shop, mug, "status-key-6"))["statusToken"]
    unknown = "A" * 43

    # LIMIT - 1 failures, then many successes: still not throttled
    for _ in range(LIMIT - 1):
        assert (await by_token(shop, unknown)).data["orderByStatusToken"] is None
    for _ in range(10):
        assert (await by_token(shop, token)).data["orderByStatusToken"] is not None
    last_free = await by_token(shop, unknown)
    blocked = await by_token(shop, unknown)
    blocked_even_with_the_token = await by_token(shop, token)

    assert last_free.data["orderByStatusToken"] is None
    assert blocked.error_codes == ["THROTTLED"]
    assert blocked.body["data"] == {"orderByStatusToken": None}
    assert blocked_even_with_the_token.error_codes == ["THROTTLED"]
    # the counter names no client address in clear
    keys = [k.decode() async for k in redis.scan_iter("order-status-failures:*")]
    assert len(keys) == 1 and "127.0.0.1" not in keys[0]


async def test_a_token_look_up_costs_a_constant_number_of_statements(
    shop: AppClient, db: Database
) -> None:
    factory = CatalogFactory(db)
    goods = [await factory.product(f"Thing {i}", prices=[500], stock=[10]) for i in range(5)]
    small = await checkout(shop, goods[0], "status-key-7")
    cart = await ready_cart(shop, [(g, 1) for g in goods])
    big = await checkout(shop, goods[0], "status-key-8", cart=cart)

    counts = []
    for placed, lines in ((small, 1), (big, 5)):
        result = await by_token(shop, placed["statusToken"])
        assert len(result.data["orderByStatusToken"]["lines"]) == lines
        counts.append(result.statements)

    # the order, its lines, its fulfilments, its status history
    assert counts == [4, 4]


async def test_the_confirmation_carries_the_token(
    shop: AppClient, mug: MadeProduct, db: Database, redis: Redis
) -> None:
    placed = await checkout(shop, mug, "status-key-9")
    await OutboxRelay(db, redis).drain()
    consumer = _consumer(shop, "notifications")

    async def bodies() -> list[str]:
        async with db.reader.connect() as connection:
            sealed = await connection.execute(select(notifications.c.body_encrypted))
            return [PiiCipher([TEST_PII_KEY]).decrypt(body) for body in sealed.scalars() if body]

    await consume_until(consumer, bodies)

    [body] = await bodies()
    assert f"Follow your order: status token {placed['statusToken']}" in body
    opened = await by_token(shop, body.rsplit(" ", 1)[-1].strip())
    assert opened.data["orderByStatusToken"]["id"] == placed["id"]


async def test_a_pending_order_can_be_polled_by_its_token(
    shop: AppClient, mug: MadeProduct, db: Database
) -> None:
    placed = await checkout(shop, mug, "status-key-10", method="pm_card_timeout")
    async with db.writer.begin() as connection:
        pending = (await connection.execute(text("SELECT status FROM orders"))).scalar_one()

    polled = (await by_token(shop, placed["statusToken"])).data["orderByStatusToken"]

    assert pending == "PENDING_PAYMENT" and polled["status"] == "PENDING_PAYMENT"
