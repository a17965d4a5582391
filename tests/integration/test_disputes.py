"""A signed `charge.dispute.created` flags the order whose payment it disputes, once, with
an OrderDisputed event; a dispute that is not about that payment's amount and currency,
or of no known payment, changes nothing. Through the real `POST /webhooks/stripe`."""

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
from persistence.tables import orders, outbox, webhook_events
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.factories import CatalogFactory, MadeProduct
from tests.integration.test_checkout import WEBHOOK_SECRET, checkout, minor_units
from tests.shop import ready_cart

ME = """{ me { orders(first: 5) { edges { node { status dispute { reason amount { amount }
  createdAt } } } } } }"""


@pytest.fixture
async def shop(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    configured = settings.model_copy(update={"stripe_webhook_secret": SecretStr(WEBHOOK_SECRET)})
    async with running_app(configured, gateway=SandboxGateway()) as client:
        yield client


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])


async def paid_order(shop: AppClient, mug: MadeProduct, db: Database, token: str) -> dict[str, Any]:
    cart_id = await ready_cart(shop, [(mug, 1)], token=token)
    placed = await checkout(shop, cart_id, "dispute-key-1", token=token)
    assert placed["order"]["status"] == "PAID"
    async with db.reader.connect() as connection:
        intent = (await connection.execute(select(orders.c.payment_id))).scalar_one()
    return {"intent": intent, "amount": minor_units(placed["order"]["cost"]["totalAmount"])}


async def deliver(shop: AppClient, event_id: str, dispute: dict[str, Any]) -> dict[str, Any]:
    payload = orjson.dumps(
        {"id": event_id, "type": "charge.dispute.created", "data": {"object": dispute}}
    )
    answer = await shop.http.post(
        "/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign_stripe_payload(payload, WEBHOOK_SECRET)},
    )
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def dispute_of(order: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "id": "dp_1",
        "object": "dispute",
        "payment_intent": order["intent"],
        "charge": "ch_1",
        "amount": order["amount"],
        "currency": "usd",
        "reason": "fraudulent",
        **changes,
    }


async def disputed_topics(db: Database) -> list[str]:
    async with db.reader.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.topic).where(outbox.c.topic == "OrderDisputed")
        )
        return [str(topic) for topic in rows.scalars()]


async def test_a_dispute_flags_the_order_once_and_tells_staff(
    shop: AppClient, mug: MadeProduct, db: Database
) -> None:
    token = await customer_token(shop, "ann@example.com")
    order = await paid_order(shop, mug, db, token)

    first = await deliver(shop, "evt_dispute_1", dispute_of(order))
    replay = await deliver(shop, "evt_dispute_1", dispute_of(order))
    second = await deliver(shop, "evt_dispute_2", dispute_of(order, reason="duplicate"))

    assert first["outcome"] == "settled: disputed" and not first["duplicate"]
    assert replay == {**first, "duplicate": True}
    assert second["outcome"] == "ignored: already disputed"
    node = (await shop.query(ME, token=token)).data["me"]["orders"]["edges"][0]["node"]
    assert node["status"] == "PAID"  # a flag, not a state: staff answer it at the gateway
    assert node["dispute"]["reason"] == "fraudulent"
    assert minor_units(node["dispute"]["amount"]) == order["amount"]
    assert await disputed_topics(db) == ["OrderDisputed"]


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({"amount": 10**9}, "ignored: amount mismatch"),
        ({"amount": 0}, "ignored: amount mismatch"),
        ({"amount": "12.00"}, "ignored: amount mismatch"),
        ({"currency": "eur"}, "ignored: currency mismatch"),
        ({"payment_intent": "pi_somebody_else"}, "ignored: unknown payment"),
        ({"payment_intent": None}, "ignored: unknown payment"),
        ({"object": "charge"}, "ignored: not a payment event"),
    ],
)
async def test_a_dispute_that_is_not_about_this_payment_changes_nothing(
    shop: AppClient, mug: MadeProduct, db: Database, changes: dict[str, Any], outcome: str
) -> None:
    token = await customer_token(shop, "ann@example.com")
    order = await paid_order(shop, mug, db, token)

    answer = await deliver(shop, "evt_dispute_odd", dispute_of(order, **changes))

    assert answer["outcome"] == outcome
    node = (await shop.query(ME, token=token)).data["me"]["orders"]["edges"][0]["node"]
    assert node["dispute"] is None
    assert await disputed_topics(db) == []
    async with db.reader.connect() as connection:
        logged = (await connection.execute(select(webhook_events.c.outcome))).scalars().all()
    assert logged == [outcome]  # processed once: a redelivery is a no-op
