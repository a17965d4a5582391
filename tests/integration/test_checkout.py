"""Checkout on PostgreSQL through the HTTP app: no overselling, no double charge.

Real concurrent requests (asyncio.gather over the ASGI app, each on its own database
connection) against the real PostgreSQL and Redis; the sandbox gateway counts the charges
that reached "the bank".
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update

from domain.payments import ChargeRequest, ChargeResult
from integrations.sandbox_gateway import SandboxGateway
from integrations.stripe_webhooks import sign_stripe_payload
from persistence.db import Database
from persistence.tables import idempotency_keys, orders, outbox
from schema.global_id import decode_gid, encode_gid
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.factories import CatalogFactory, MadeProduct
from tests.fakes.stripe_server import running_stripe_fake
from tests.shop import ADDRESS, CREATE_CART, SET_ADDRESS, ready_cart, stock, vid

WEBHOOK_SECRET = "whsec_test_secret"
CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id number status email lines { sku title quantity unitPrice { amount } }
          cost { subtotalAmount { amount } shippingAmount { amount } taxAmount { amount } totalAmount { amount } }
          payment { cardBrand cardLast4 declineCode } }
  userErrors { field code message } } }"""
CART = "query($id: ID!) { cart(id: $id) { id totalQuantity cost { totalAmount { amount } } } }"


class FlakyGateway(SandboxGateway):
    """The process 'dies' between the reservation commit and the charge, once."""

    def __init__(self) -> None:
        super().__init__()
        self.crashes = 1

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("simulated crash before the charge")
        return await super().charge(request)


@pytest.fixture
def checkout_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "checkout_lock_seconds": 0.5,
            "checkout_wait_seconds": 10,
        }
    )


@pytest.fixture
async def gateway() -> SandboxGateway:
    return SandboxGateway()


@pytest.fixture
async def shop_client(
    checkout_settings: Settings, gateway: SandboxGateway, clean: None
) -> AsyncIterator[AppClient]:
    async with running_app(checkout_settings, gateway=gateway) as client:
        yield client


@pytest.fixture
async def goods(db: Database, clean: None) -> dict[str, MadeProduct]:
    make = CatalogFactory(db)
    return {
        "mug": await make.product("Mug", prices=[1200], stock=[10]),
        "pen": await make.product("Pen", prices=[199], stock=[100]),
    }


async def checkout(
    client: AppClient,
    cart_id: str,
    key: str,
    method: str = "pm_card_visa",
    token: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    result = await client.query(
        CHECKOUT,
        {"input": {"cartId": cart_id, "idempotencyKey": key, "paymentMethod": method, **extra}},
        token=token,
    )
    data: dict[str, Any] = result.data["checkoutComplete"]
    return data


async def test_a_checkout_places_a_paid_order_with_snapshots(
    shop_client: AppClient, goods: dict[str, MadeProduct], gateway: SandboxGateway, db: Database
) -> None:
    cart_id = await ready_cart(shop_client, [(goods["mug"], 2), (goods["pen"], 3)])
    cart_total = (await shop_client.query(CART, {"id": cart_id})).data["cart"]["cost"][
        "totalAmount"
    ]

    placed = await checkout(shop_client, cart_id, "key-happy-path")

    order = placed["order"]
    assert placed["userErrors"] == []
    assert order["status"] == "PAID" and order["number"].startswith("#")
    assert order["email"] == "ann@example.com"
    assert [
        (line["sku"], line["quantity"], line["unitPrice"]["amount"]) for line in order["lines"]
    ] == [("MUG-0", 2, "12.00"), ("PEN-0", 3, "1.99")]
    assert order["cost"]["totalAmount"] == cart_total
    assert order["payment"] == {"cardBrand": "visa", "cardLast4": "4242", "declineCode": None}
    assert (await stock(db, goods["mug"]), await stock(db, goods["pen"])) == (8, 97)
    assert (
        len(gateway.charges) == 1 and gateway.charges[0].amount == 2997 + 599 + 683
    )  # subtotal, shipping, 19% tax
    assert (await shop_client.query(CART, {"id": cart_id})).data["cart"] is None  # checked out
    async with db.reader.connect() as connection:
        topics = Counter((await connection.execute(select(outbox.c.topic))).scalars().all())
        row = (await connection.execute(select(orders))).mappings().one()
    assert topics == {"OrderPlaced": 1, "StockChanged": 2, "OrderPaid": 1}
    assert "ann@example.com" not in str(dict(row)) and "Main St" not in str(
        dict(row)
    )  # PII encrypted


@pytest.mark.parametrize(
    ("setup", "extra", "code"),
    [
        ("empty", {}, "CART_EMPTY"),
        ("no-address", {}, "MISSING_SHIPPING_ADDRESS"),
        ("no-email", {}, "MISSING_EMAIL"),
        ("ready", {"paymentMethod": "4242424242424242"}, "INVALID_PAYMENT_METHOD"),
        ("ready", {"idempotencyKey": "short"}, "INVALID"),
        ("ready", {"cartId": encode_gid("Cart", "no-such-cart-1234567")}, "CART_NOT_FOUND"),
    ],
)
async def test_incomplete_checkouts_are_refused_and_change_nothing(
    shop_client: AppClient,
    goods: dict[str, MadeProduct],
    db: Database,
    setup: str,
    extra: dict[str, str],
    code: str,
) -> None:
    mug = goods["mug"]
    if setup == "empty":
        cart_id = await ready_cart(shop_client, [])
    elif setup == "no-email":
        created = await shop_client.query(
            "mutation($l: [CartLineInput!]!) { cartCreate(input: {lines: $l}) { cart { id } } }",
            {"l": [{"variantId": vid(mug), "quantity": 1}]},
        )
        cart_id = created.data["cartCreate"]["cart"]["id"]
        await shop_client.query(SET_ADDRESS, {"id": cart_id, "a": ADDRESS})
    elif setup == "no-address":
        created = await shop_client.query(
            CREATE_CART, {"lines": [{"variantId": vid(mug), "quantity": 1}]}
        )
        cart_id = created.data["cartCreate"]["cart"]["id"]
    else:
        cart_id = await ready_cart(shop_client, [(mug, 1)])
    body = {
        "cartId": cart_id,
        "idempotencyKey": "key-refused-1",
        "paymentMethod": "pm_card_visa",
        **extra,
    }

    result = (await shop_client.query(CHECKOUT, {"input": body})).data["checkoutComplete"]

    assert result["order"] is None
    assert [e["code"] for e in result["userErrors"]] == [code]
    assert await stock(db, mug) == 10
    async with db.reader.connect() as connection:
        assert (
            await connection.execute(select(func.count()).select_from(orders))
        ).scalar_one() == 0
        assert (
            await connection.execute(select(func.count()).select_from(idempotency_keys))
        ).scalar_one() == 0


async def test_flash_sale_sells_exactly_the_stock(
    shop_client: AppClient, goods: dict[str, MadeProduct], gateway: SandboxGateway, db: Database
) -> None:
    mug = goods["mug"]  # 10 units
    carts = [await ready_cart(shop_client, [(mug, 1)]) for _ in range(200)]

    results = await asyncio.gather(
        *(checkout(shop_client, cart, f"flash-{i:04d}") for i, cart in enumerate(carts))
    )

    outcomes = Counter(
        r["order"]["status"] if r["order"] else r["userErrors"][0]["code"] for r in results
    )
    assert outcomes == {"PAID": 10, "OUT_OF_STOCK": 190}
    assert await stock(db, mug) == 0
    assert len(gateway.charges) == 10


async def test_double_click_places_one_order_and_charges_once(
    shop_client: AppClient, goods: dict[str, MadeProduct], gateway: SandboxGateway, db: Database
) -> None:
    cart_id = await ready_cart(shop_client, [(goods["mug"], 2)])

    results = await asyncio.gather(
        *(checkout(shop_client, cart_id, "double-click-key") for _ in range(20))
    )

    order_ids = {r["order"]["id"] for r in results if r["order"]}
    in_progress = [r for r in results if not r["order"]]
    assert all(r["userErrors"][0]["code"] == "CHECKOUT_IN_PROGRESS" for r in in_progress)
    retried = [await checkout(shop_client, cart_id, "double-click-key") for _ in in_progress]
    order_ids |= {r["order"]["id"] for r in retried}
    assert len(order_ids) == 1
    assert all(r["order"]["status"] == "PAID" for r in results + retried if r["order"])
    assert len(gateway.charges) == 1
    assert await stock(db, goods["mug"]) == 8


async def test_the_same_key_for_another_checkout_is_refused(
    shop_client: AppClient, goods: dict[str, MadeProduct], gateway: SandboxGateway
) -> None:
    ann = await customer_token(shop_client, "ann@example.com")
    first_cart = await ready_cart(shop_client, [(goods["mug"], 1)], token=ann)
    second_cart = await ready_cart(shop_client, [(goods["pen"], 1)], token=ann)

    first = await checkout(shop_client, first_cart, "customer-key-1", token=ann)
    replay = await checkout(shop_client, first_cart, "customer-key-1", token=ann)
    reused = await checkout(shop_client, second_cart, "customer-key-1", token=ann)

    assert first["order"]["status"] == "PAID"
    assert replay == first  # the same order, the same response
    assert reused["order"] is None and reused["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(gateway.charges) == 1


async def test_a_decline_releases_the_stock_and_a_new_key_can_pay(
    shop_client: AppClient, goods: dict[str, MadeProduct], gateway: SandboxGateway, db: Database
) -> None:
    cart_id = await ready_cart(shop_client, [(goods["mug"], 3)])

    declined = await checkout(
        shop_client, cart_id, "decline-key-1", "pm_card_chargeDeclinedInsufficientFunds"
    )
    stock_after_decline = await stock(db, goods["mug"])
    cart_after_decline = (await shop_client.query(CART, {"id": cart_id})).data["cart"]
    paid = await checkout(shop_client, cart_id, "decline-key-2", "pm_card_mastercard")

    assert declined["order"]["status"] == "PAYMENT_FAILED"
    assert declined["order"]["payment"]["declineCode"] == "insufficient_funds"
    assert [(e["code"], e["field"]) for e in declined["userErrors"]] == [
        ("PAYMENT_DECLINED", ["paymentMethod"])
    ]
    assert "insufficient_funds" in declined["userErrors"][0]["message"]
    assert stock_after_decline == 10 and cart_after_decline["totalQuantity"] == 3
    assert paid["order"]["status"] == "PAID" and paid["order"]["id"] != declined["order"]["id"]
    assert await stock(db, goods["mug"]) == 7
    assert len(gateway.charges) == 1


async def test_a_timeout_stays_pending_until_the_webhook_settles_it_once(
    shop_client: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    cart_id = await ready_cart(shop_client, [(goods["mug"], 1)])
    pending = await checkout(shop_client, cart_id, "timeout-key-1", "pm_card_timeout")
    public_id = decode_gid(pending["order"]["id"])[1]
    event = {
        "id": "evt_1",
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": "pi_123",
                "object": "payment_intent",
                "metadata": {"order_id": public_id},
                "amount": minor_units(pending["order"]["cost"]["totalAmount"]),
                "currency": "usd",
            }
        },
    }
    payload = orjson.dumps(event)

    forged = await shop_client.http.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": "t=1,v1=00"}
    )
    unsigned = await shop_client.http.post("/webhooks/stripe", content=payload)
    after_forgery = await _order_status(db, public_id)
    signed = {"Stripe-Signature": sign_stripe_payload(payload, WEBHOOK_SECRET)}
    settled = await shop_client.http.post("/webhooks/stripe", content=payload, headers=signed)
    replayed = await shop_client.http.post("/webhooks/stripe", content=payload, headers=signed)

    assert pending["order"]["status"] == "PENDING_PAYMENT"
    assert [e["code"] for e in pending["userErrors"]] == ["PAYMENT_PENDING"]
    assert await stock(db, goods["mug"]) == 9  # still reserved
    assert (forged.status_code, unsigned.status_code, after_forgery) == (
        400,
        400,
        "PENDING_PAYMENT",
    )
    assert settled.json() == {"received": True, "duplicate": False, "outcome": "settled: paid"}
    assert replayed.json() == {"received": True, "duplicate": True, "outcome": "settled: paid"}
    assert await _order_status(db, public_id) == "PAID"
    assert (await shop_client.query(CART, {"id": cart_id})).data["cart"] is None
    async with db.reader.connect() as connection:
        paid_events = (
            await connection.execute(select(func.count()).where(outbox.c.topic == "OrderPaid"))
        ).scalar_one()
    assert paid_events == 1


async def test_a_failed_payment_webhook_releases_the_stock(
    shop_client: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    cart_id = await ready_cart(shop_client, [(goods["mug"], 4)])
    pending = await checkout(shop_client, cart_id, "timeout-key-2", "pm_card_timeout")
    public_id = decode_gid(pending["order"]["id"])[1]
    payload = orjson.dumps(
        {
            "id": "evt_2",
            "type": "payment_intent.payment_failed",
            "data": {
                "object": {
                    "id": "pi_9",
                    "object": "payment_intent",
                    "metadata": {"order_id": public_id},
                    "amount": minor_units(pending["order"]["cost"]["totalAmount"]),
                    "currency": "usd",
                    "last_payment_error": {"code": "card_declined", "decline_code": "stolen_card"},
                }
            },
        }
    )

    response = await shop_client.http.post(
        "/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign_stripe_payload(payload, WEBHOOK_SECRET)},
    )

    assert response.status_code == 200
    assert await _order_status(db, public_id) == "PAYMENT_FAILED"
    assert await stock(db, goods["mug"]) == 10


async def test_a_crash_between_reservation_and_charge_is_resumed_by_the_retry(
    checkout_settings: Settings, goods: dict[str, MadeProduct], db: Database, clean: None
) -> None:
    gateway = FlakyGateway()
    async with running_app(checkout_settings, gateway=gateway) as client:
        cart_id = await ready_cart(client, [(goods["mug"], 2)])
        crashed = await client.query(
            CHECKOUT,
            {
                "input": {
                    "cartId": cart_id,
                    "idempotencyKey": "crash-key-1",
                    "paymentMethod": "pm_card_visa",
                }
            },
        )
        reserved_after_crash = await stock(db, goods["mug"])
        await asyncio.sleep(0.6)  # the crashed holder's lock (0.5 s) lapses
        retried = await checkout(client, cart_id, "crash-key-1")
        again = await checkout(client, cart_id, "crash-key-1")

    assert crashed.error_codes == ["INTERNAL_SERVER_ERROR"]
    assert reserved_after_crash == 8
    assert retried["order"]["status"] == "PAID" and again == retried
    assert await stock(db, goods["mug"]) == 8  # reserved once
    assert len(gateway.charges) == 1  # charged once
    async with db.reader.connect() as connection:
        assert (
            await connection.execute(select(func.count()).select_from(orders))
        ).scalar_one() == 1


async def test_unpaid_orders_expire_and_give_their_stock_back(
    shop_client: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    cart_id = await ready_cart(shop_client, [(goods["mug"], 5)])
    pending = await checkout(shop_client, cart_id, "timeout-key-3", "pm_card_timeout")
    public_id = decode_gid(pending["order"]["id"])[1]
    async with db.writer.begin() as connection:
        # Both deadlines moved into the past: as if half an hour (and a day) went by.
        await connection.execute(update(orders).values(reservation_expires_at=orders.c.created_at))
        await connection.execute(
            update(idempotency_keys).values(expires_at=idempotency_keys.c.created_at)
        )

    expired = await shop_client.container.orders.expire_unpaid()
    deleted_keys = await shop_client.container.checkout.delete_expired_keys()

    assert expired == 1
    assert await _order_status(db, public_id) == "CANCELLED"
    assert await stock(db, goods["mug"]) == 10
    assert deleted_keys == 1


def minor_units(money: dict[str, str]) -> int:
    """A Money's decimal amount ("12.34") in minor units (1234), as Stripe counts it."""
    return int(Decimal(money["amount"]) * 100)


async def _order_status(db: Database, public_id: str) -> str:
    async with db.reader.connect() as connection:
        value = (
            await connection.execute(select(orders.c.status).where(orders.c.public_id == public_id))
        ).scalar_one()
    return str(value)


async def test_checkout_through_the_stripe_sdk_and_a_local_stripe(
    checkout_settings: Settings, goods: dict[str, MadeProduct], db: Database, clean: None
) -> None:
    with running_stripe_fake() as fake:
        settings = checkout_settings.model_copy(
            update={
                "payment_gateway": "stripe",
                "stripe_api_key": SecretStr(fake.api_key),
                "stripe_api_base": fake.url,
            }
        )
        async with running_app(settings) as client:
            cart_id = await ready_cart(client, [(goods["mug"], 1)])
            paid = await checkout(client, cart_id, "stripe-key-1", "pm_card_mastercard")
            replay = await checkout(client, cart_id, "stripe-key-1", "pm_card_mastercard")
            declined_cart = await ready_cart(client, [(goods["pen"], 1)])
            declined = await checkout(
                client, declined_cart, "stripe-key-2", "pm_card_chargeDeclined"
            )

    charges = fake.requests_to("/v1/payment_intents")
    order_public_id = decode_gid(paid["order"]["id"])[1]
    assert paid["order"]["status"] == "PAID" and replay == paid
    assert paid["order"]["payment"] == {
        "cardBrand": "mastercard",
        "cardLast4": "4444",
        "declineCode": None,
    }
    assert declined["order"]["payment"]["declineCode"] == "generic_decline"
    assert charges[0].idempotency_key == f"order-{order_public_id}-charge"
    assert charges[0].params["metadata[order_id]"] == order_public_id
    assert len(charges) == 2  # the replay was answered from our own idempotency record
    assert await stock(db, goods["pen"]) == 100


async def test_a_checkout_costs_a_fixed_number_of_statements(
    shop_client: AppClient, goods: dict[str, MadeProduct]
) -> None:
    one_line = await ready_cart(shop_client, [(goods["mug"], 1)])
    two_lines = await ready_cart(shop_client, [(goods["mug"], 1), (goods["pen"], 2)])
    variables = {
        "input": {
            "cartId": one_line,
            "idempotencyKey": "budget-key-1",
            "paymentMethod": "pm_card_visa",
        }
    }

    first = await shop_client.query(CHECKOUT, variables)
    variables["input"].update(cartId=two_lines, idempotencyKey="budget-key-2")
    second = await shop_client.query(CHECKOUT, variables)

    assert first.data["checkoutComplete"]["order"]["status"] == "PAID"
    assert second.data["checkoutComplete"]["order"]["status"] == "PAID"
    # +2 since status history: one row when placed, one when paid, each in its transaction;
    # +1 since shipping zones: the destination country's methods, read once
    assert (first.statements, second.statements) == (15, 16)
