"""The payment reconciler and the expiry on PostgreSQL: orders whose outcome never
reached us are settled from the gateway's state, and stock goes back only once the
gateway says nothing was captured.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update

from integrations.sandbox_gateway import SandboxGateway
from persistence.db import Database
from persistence.tables import orders, outbox
from settings import Settings
from tests.client import AppClient, running_app
from tests.factories import CatalogFactory, MadeProduct
from tests.fakes.stripe_server import running_stripe_fake
from tests.shop import ready_cart, stock

pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content:DeprecationWarning"
)
CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id status } userErrors { code } } }"""


@pytest.fixture
def reconcile_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "checkout_lock_seconds": 0.5,
            "payment_reconcile_grace_seconds": 60,
            "gateway_timeout_seconds": 0.5,
        }
    )


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[2_000], stock=[10])


@pytest.fixture
async def sandbox() -> SandboxGateway:
    return SandboxGateway()


@pytest.fixture
async def shop(
    reconcile_settings: Settings, sandbox: SandboxGateway, clean: None
) -> AsyncIterator[AppClient]:
    async with running_app(reconcile_settings, gateway=sandbox) as client:
        yield client


async def checkout(client: AppClient, cart_id: str, key: str, method: str) -> dict[str, Any]:
    result = await client.query(
        CHECKOUT, {"input": {"cartId": cart_id, "idempotencyKey": key, "paymentMethod": method}}
    )
    data: dict[str, Any] = result.data["checkoutComplete"]
    return data


async def age_orders(db: Database, seconds: float, *, expire: bool = False) -> None:
    """Every order placed `seconds` earlier (and its reservation over, if `expire`)."""
    values: dict[str, Any] = {"created_at": orders.c.created_at - timedelta(seconds=seconds)}
    if expire:
        values["reservation_expires_at"] = func.now() - timedelta(seconds=1)
    async with db.writer.begin() as connection:
        await connection.execute(update(orders).values(**values))


async def statuses(db: Database) -> list[str]:
    async with db.reader.connect() as connection:
        rows = await connection.execute(select(orders.c.status).order_by(orders.c.id))
        return [str(s) for s in rows.scalars()]


async def topics(db: Database) -> Counter[str]:
    async with db.reader.connect() as connection:
        return Counter((await connection.execute(select(outbox.c.topic))).scalars().all())


async def test_an_order_whose_webhook_never_came_is_settled_past_the_grace_period(
    shop: AppClient, sandbox: SandboxGateway, mug: MadeProduct, db: Database
) -> None:
    # given: one customer completes 3-D Secure, another fails it, a third not yet;
    # no webhook ever arrives
    for key in ("rec-paid-1", "rec-fail-1", "rec-wait-1"):
        cart_id = await ready_cart(shop, [(mug, 1)])
        await checkout(shop, cart_id, key, "pm_card_authenticationRequired")
    paid_id, failed_id, _ = sandbox.payments
    sandbox.complete_action(paid_id)
    sandbox.complete_action(failed_id, succeed=False)
    reconcile = shop.container.orders.reconcile_payments

    # when: within the grace period, then past it, then again
    early = await reconcile()
    await age_orders(db, 120)
    settled = await reconcile()
    again = await reconcile()

    # then
    assert (early, settled, again) == (0, 2, 0)
    assert await statuses(db) == ["PAID", "PAYMENT_FAILED", "PAYMENT_ACTION_REQUIRED"]
    assert await stock(db, mug) == 8  # the failed order's unit is back, the waiting one held
    counted = await topics(db)
    assert (counted["OrderPaid"], counted["PaymentFailed"]) == (1, 1)


async def test_an_order_whose_server_died_after_the_charge_is_found_and_paid(
    reconcile_settings: Settings, mug: MadeProduct, db: Database
) -> None:
    with running_stripe_fake() as fake:
        settings = reconcile_settings.model_copy(
            update={
                "payment_gateway": "stripe",
                "stripe_api_key": SecretStr(fake.api_key),
                "stripe_api_base": fake.url,
            }
        )
        async with running_app(settings) as client:
            cart_id = await ready_cart(client, [(mug, 1)])
            fake.hang_next(1)  # Stripe charges; its answer never arrives
            pending = await checkout(client, cart_id, "rec-lost-1", "pm_card_visa")
            async with db.reader.connect() as connection:
                recorded = (await connection.execute(select(orders.c.payment_id))).scalar_one()
            await age_orders(db, 600)

            # when
            settled = await client.container.orders.reconcile_payments()

    # then: found by the order id it was charged with, never charged again
    assert pending["order"]["status"] == "PENDING_PAYMENT" and recorded is None
    assert settled == 1
    assert await statuses(db) == ["PAID"]
    assert len(fake.requests_to("/v1/payment_intents")) == 1
    assert len(fake.requests_to("/v1/payment_intents/search")) == 1
    [intent_id] = fake.payment_intents
    async with db.reader.connect() as connection:
        assert (await connection.execute(select(orders.c.payment_id))).scalar_one() == intent_id


async def test_expiry_keeps_the_stock_of_a_payment_that_succeeded(
    reconcile_settings: Settings, mug: MadeProduct, db: Database
) -> None:
    with running_stripe_fake() as fake:
        settings = reconcile_settings.model_copy(
            update={
                "payment_gateway": "stripe",
                "stripe_api_key": SecretStr(fake.api_key),
                "stripe_api_base": fake.url,
            }
        )
        async with running_app(settings) as client:
            lost = await ready_cart(client, [(mug, 1)])
            fake.hang_next(1)
            await checkout(client, lost, "exp-lost-1", "pm_card_visa")
            waiting = await ready_cart(client, [(mug, 2)])
            await checkout(client, waiting, "exp-wait-1", "pm_card_authenticationRequired")
            await age_orders(db, 3600, expire=True)

            # when
            expired = await client.container.orders.expire_unpaid()

    # then: the paid one is PAID with its stock kept; the waiting one is cancelled at
    # Stripe first (it can never be captured now), then its stock goes back
    assert expired == 1
    assert await statuses(db) == ["PAID", "CANCELLED"]
    assert await stock(db, mug) == 9
    waiting_intent = [i for i in fake.payment_intents.values() if i["status"] != "succeeded"]
    assert [i["status"] for i in waiting_intent] == ["canceled"]


async def test_expiry_keeps_an_order_the_gateway_cannot_answer_for(
    reconcile_settings: Settings, mug: MadeProduct, db: Database
) -> None:
    with running_stripe_fake() as fake:
        settings = reconcile_settings.model_copy(
            update={
                "payment_gateway": "stripe",
                "stripe_api_key": SecretStr(fake.api_key),
                "stripe_api_base": fake.url,
            }
        )
        async with running_app(settings) as client:
            cart_id = await ready_cart(client, [(mug, 1)])
            fake.hang_next(1)
            await checkout(client, cart_id, "exp-down-1", "pm_card_visa")
            await age_orders(db, 3600, expire=True)
            fake.fail_next(1, status=500)  # Stripe is down for the search

            # when
            down = await client.container.orders.expire_unpaid()
            later = await client.container.orders.expire_unpaid()

    # then: nothing released while unknown; the next run finds the payment
    assert (down, later) == (0, 0)
    assert await statuses(db) == ["PAID"]
    assert await stock(db, mug) == 9


async def test_two_reconcilers_at_once_settle_each_order_once(
    shop: AppClient, sandbox: SandboxGateway, mug: MadeProduct, db: Database
) -> None:
    # given: six orders whose customers completed 3-D Secure, no webhook
    for number in range(6):
        cart_id = await ready_cart(shop, [(mug, 1)])
        await checkout(shop, cart_id, f"rec-two-{number}", "pm_card_threeDSecure2Required")
    for payment_id in list(sandbox.payments):
        sandbox.complete_action(payment_id)
    await age_orders(db, 120)
    reconcile = shop.container.orders.reconcile_payments

    # when
    settled = await asyncio.gather(reconcile(), reconcile(), reconcile())

    # then
    assert sum(settled) == 6
    assert await statuses(db) == ["PAID"] * 6
    assert (await topics(db))["OrderPaid"] == 6
