"""A signed `charge.refunded` records what the gateway refunded beyond our own refunds
(a refund made in the gateway's dashboard), once, so `totalRefunded` and the order's
status follow what the bank did. Through the real `POST /webhooks/stripe`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from integrations.sandbox_gateway import SandboxGateway
from integrations.stripe_webhooks import sign_stripe_payload
from persistence.db import Database
from persistence.tables import orders, outbox
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.factories import CatalogFactory, MadeProduct
from tests.integration.test_checkout import WEBHOOK_SECRET, checkout, minor_units
from tests.shop import ready_cart, staff_token

ME = """{ me { orders(first: 5) { edges { node { id status totalRefunded { amount }
  refunds { amount { amount } cardAmount { amount } reason status restocked } } } } } }"""
REFUND = """mutation($input: OrderRefundInput!) { orderRefund(input: $input) {
  refund { id } userErrors { code } } }"""


@pytest.fixture
async def shop(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    configured = settings.model_copy(update={"stripe_webhook_secret": SecretStr(WEBHOOK_SECRET)})
    async with running_app(configured, gateway=SandboxGateway()) as client:
        yield client


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[2000], stock=[10])


async def paid_order(shop: AppClient, mug: MadeProduct, db: Database, token: str) -> dict[str, Any]:
    cart_id = await ready_cart(shop, [(mug, 1)], token=token)
    placed = await checkout(shop, cart_id, "gateway-refund-1", token=token)
    assert placed["order"]["status"] == "PAID"
    async with db.reader.connect() as connection:
        intent = (await connection.execute(select(orders.c.payment_id))).scalar_one()
    return {
        "id": placed["order"]["id"],
        "intent": intent,
        "amount": minor_units(placed["order"]["cost"]["totalAmount"]),
    }


async def refunded(
    shop: AppClient, event_id: str, order: dict[str, Any], **changes: Any
) -> dict[str, Any]:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": order["intent"],
        "amount": order["amount"],
        "currency": "usd",
        **changes,
    }
    payload = orjson.dumps({"id": event_id, "type": "charge.refunded", "data": {"object": charge}})
    answer = await shop.http.post(
        "/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign_stripe_payload(payload, WEBHOOK_SECRET)},
    )
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def my_order(shop: AppClient, token: str) -> dict[str, Any]:
    node: dict[str, Any] = (await shop.query(ME, token=token)).data["me"]["orders"]["edges"][0][
        "node"
    ]
    return node


async def refunded_events(db: Database) -> int:
    async with db.reader.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.id).where(outbox.c.topic == "OrderRefunded")
        )
        return len(rows.all())


async def test_a_dashboard_refund_is_recorded_once_and_a_full_one_refunds_the_order(
    shop: AppClient, mug: MadeProduct, db: Database
) -> None:
    token = await customer_token(shop, "ann@example.com")
    order = await paid_order(shop, mug, db, token)

    partial = await refunded(shop, "evt_ref_1", order, amount_refunded=500)
    replay = await refunded(shop, "evt_ref_1", order, amount_refunded=500)
    after_partial = await my_order(shop, token)
    full = await refunded(shop, "evt_ref_2", order, amount_refunded=order["amount"])

    assert partial["outcome"] == "settled: refund recorded" and replay["duplicate"] is True
    assert after_partial["status"] == "PAID"
    assert after_partial["totalRefunded"] == {"amount": "5.00"}
    assert after_partial["refunds"] == [
        {
            "amount": {"amount": "5.00"},
            "cardAmount": {"amount": "5.00"},
            "reason": "refunded at the gateway",
            "status": "SUCCEEDED",
            "restocked": False,
        }
    ]
    assert full["outcome"] == "settled: refund recorded"
    final = await my_order(shop, token)
    assert final["status"] == "REFUNDED"
    assert minor_units(final["totalRefunded"]) == order["amount"]
    assert [minor_units(r["amount"]) for r in final["refunds"]] == [500, order["amount"] - 500]
    assert await refunded_events(db) == 2


async def test_our_own_refund_echoed_by_the_gateway_is_not_counted_twice(
    shop: AppClient, mug: MadeProduct, db: Database
) -> None:
    token = await customer_token(shop, "ann@example.com")
    order = await paid_order(shop, mug, db, token)
    boss = await staff_token(shop, db)
    ours = await shop.query(
        REFUND,
        {"input": {"orderId": order["id"], "amount": "3.00", "idempotencyKey": "staff-ref-1"}},
        token=boss,
    )
    assert ours.data["orderRefund"]["userErrors"] == []

    echo = await refunded(shop, "evt_echo", order, amount_refunded=300)

    assert echo["outcome"] == "ignored: refunds already recorded"
    assert (await my_order(shop, token))["totalRefunded"] == {"amount": "3.00"}
    assert await refunded_events(db) == 1


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({"amount_refunded": 10**9}, "ignored: amount mismatch"),
        ({"amount_refunded": 0}, "ignored: amount mismatch"),
        ({"amount_refunded": None}, "ignored: amount mismatch"),
        ({"amount_refunded": 500, "currency": "eur"}, "ignored: currency mismatch"),
        ({"amount_refunded": 500, "payment_intent": "pi_other"}, "ignored: unknown payment"),
        ({"amount_refunded": 500, "object": "refund"}, "ignored: not a payment event"),
    ],
)
async def test_a_refunded_charge_not_about_this_payment_changes_nothing(
    shop: AppClient, mug: MadeProduct, db: Database, changes: dict[str, Any], outcome: str
) -> None:
    token = await customer_token(shop, "ann@example.com")
    order = await paid_order(shop, mug, db, token)

    answer = await refunded(shop, "evt_ref_odd", order, **changes)

    assert answer["outcome"] == outcome
    assert (await my_order(shop, token))["totalRefunded"] == {"amount": "0.00"}
    assert await refunded_events(db) == 0
