"""3-D Secure on PostgreSQL through the HTTP app: the order waits for its buyer's action,
then the signed webhook or checkoutPaymentConfirm settles it, exactly once.

End to end with the real stripe SDK against the local Stripe fake over HTTP, and with
the sandbox gateway for the races (real concurrent requests over the ASGI app).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from integrations.sandbox_gateway import SandboxGateway
from integrations.stripe_webhooks import sign_stripe_payload
from persistence.db import Database
from persistence.tables import gift_cards, order_status_changes, orders, outbox
from schema.global_id import decode_gid
from settings import Settings
from tests.client import AppClient, running_app
from tests.factories import CatalogFactory, MadeProduct
from tests.fakes.stripe_server import running_stripe_fake
from tests.shop import ready_cart, staff_token, stock

pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content:DeprecationWarning"
)
WEBHOOK_SECRET = "whsec_test_secret"
ORDER_FIELDS = """id status statusToken paymentAction { clientSecret type }
  payment { declineCode } giftCardPayments { creditedBack amount { amount } }"""
CHECKOUT = f"""mutation($input: CheckoutCompleteInput!) {{ checkoutComplete(input: $input) {{
  order {{ {ORDER_FIELDS} }} userErrors {{ field code message }} }} }}"""
CONFIRM = f"""mutation($input: CheckoutPaymentConfirmInput!) {{
  checkoutPaymentConfirm(input: $input) {{
  order {{ {ORDER_FIELDS} }} userErrors {{ field code message }} }} }}"""
BY_TOKEN = f"query($t: String!) {{ orderByStatusToken(token: $t) {{ {ORDER_FIELDS} }} }}"
BY_ID = "query($id: ID!) { order(id: $id) { status paymentAction { clientSecret } } }"
GIFT_CARD = """mutation($input: GiftCardCreateInput!) { giftCardCreate(input: $input) {
  giftCardCode userErrors { code } } }"""
APPLY = """mutation($input: CartGiftCardCodesUpdateInput!) {
  cartGiftCardCodesUpdate(input: $input) { userErrors { code } } }"""


@pytest.fixture
def action_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"stripe_webhook_secret": SecretStr(WEBHOOK_SECRET), "checkout_lock_seconds": 0.5}
    )


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[2_000], stock=[10])


@pytest.fixture
async def sandbox() -> SandboxGateway:
    return SandboxGateway()


@pytest.fixture
async def shop(
    action_settings: Settings, sandbox: SandboxGateway, clean: None
) -> AsyncIterator[AppClient]:
    async with running_app(action_settings, gateway=sandbox) as client:
        yield client


async def checkout(
    client: AppClient, cart_id: str, key: str, method: str = "pm_card_authenticationRequired"
) -> dict[str, Any]:
    result = await client.query(
        CHECKOUT, {"input": {"cartId": cart_id, "idempotencyKey": key, "paymentMethod": method}}
    )
    data: dict[str, Any] = result.data["checkoutComplete"]
    return data


async def post_webhook(client: AppClient, payload: bytes) -> dict[str, Any]:
    answer = await client.http.post(
        "/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign_stripe_payload(payload, WEBHOOK_SECRET)},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def topics(db: Database) -> Counter[str]:
    async with db.reader.connect() as connection:
        return Counter((await connection.execute(select(outbox.c.topic))).scalars().all())


async def order_row(db: Database) -> dict[str, Any]:
    async with db.reader.connect() as connection:
        return dict((await connection.execute(select(orders))).mappings().one())


async def test_a_3ds_card_waits_for_the_action_and_the_webhook_pays_it(
    action_settings: Settings, mug: MadeProduct, db: Database
) -> None:
    with running_stripe_fake() as fake:
        settings = action_settings.model_copy(
            update={
                "payment_gateway": "stripe",
                "stripe_api_key": SecretStr(fake.api_key),
                "stripe_api_base": fake.url,
            }
        )
        async with running_app(settings) as client:
            cart_id = await ready_cart(client, [(mug, 2)])

            # when: checkout, then the same checkout again with its key
            waiting = await checkout(client, cart_id, "sca-key-1")
            replay = await checkout(client, cart_id, "sca-key-1")
            row = await order_row(db)
            stock_while_waiting = await stock(db, mug)

            # then: the buyer gets the action, and the retry the same one
            [intent] = fake.payment_intents.values()
            order = waiting["order"]
            assert waiting["userErrors"] == []
            assert order["status"] == "PAYMENT_ACTION_REQUIRED"
            assert order["paymentAction"] == {
                "clientSecret": intent["client_secret"],
                "type": "USE_STRIPE_SDK",
            }
            assert replay == waiting
            assert len(fake.requests_to("/v1/payment_intents")) == 1
            assert stock_while_waiting == 8  # still reserved
            assert intent["client_secret"] not in json.dumps(row, default=str)  # encrypted
            assert row["payment_id"] == intent["id"]

            # when: the customer completes 3-D Secure and Stripe sends the webhook
            settled = await post_webhook(client, fake.complete_action(intent["id"]))
            after = await client.query(BY_TOKEN, {"t": order["statusToken"]})

    # then
    assert settled["outcome"] == "settled: paid"
    paid = after.data["orderByStatusToken"]
    assert paid["status"] == "PAID" and paid["paymentAction"] is None
    assert (await order_row(db))["payment_action_secret_encrypted"] is None
    assert await stock(db, mug) == 8
    counted = await topics(db)
    assert (counted["PaymentActionRequired"], counted["OrderPaid"]) == (1, 1)


async def test_a_failed_action_fails_the_order_and_gives_back_stock_and_gift_card(
    action_settings: Settings, mug: MadeProduct, db: Database
) -> None:
    with running_stripe_fake() as fake:
        settings = action_settings.model_copy(
            update={
                "payment_gateway": "stripe",
                "stripe_api_key": SecretStr(fake.api_key),
                "stripe_api_base": fake.url,
            }
        )
        async with running_app(settings) as client:
            staff = await staff_token(client, db)
            issued = await client.query(GIFT_CARD, {"input": {"initialValue": "5.00"}}, token=staff)
            code = issued.data["giftCardCreate"]["giftCardCode"]
            cart_id = await ready_cart(client, [(mug, 1)])
            applied = await client.query(
                APPLY, {"input": {"cartId": cart_id, "giftCardCodes": [code]}}
            )
            assert applied.data["cartGiftCardCodesUpdate"]["userErrors"] == []
            waiting = await checkout(client, cart_id, "sca-fail-1", "pm_card_threeDSecure2Required")
            async with db.reader.connect() as connection:
                debited = (await connection.execute(select(gift_cards.c.balance))).scalar_one()
            [intent_id] = fake.payment_intents

            # when: the customer fails 3-D Secure
            settled = await post_webhook(client, fake.complete_action(intent_id, succeed=False))
            after = await client.query(BY_TOKEN, {"t": waiting["order"]["statusToken"]})

    # then
    assert waiting["order"]["status"] == "PAYMENT_ACTION_REQUIRED" and debited == 0
    assert settled["outcome"] == "settled: payment failed"
    failed = after.data["orderByStatusToken"]
    assert failed["status"] == "PAYMENT_FAILED" and failed["paymentAction"] is None
    assert failed["payment"]["declineCode"] == "payment_intent_authentication_failure"
    assert failed["giftCardPayments"] == [{"creditedBack": True, "amount": {"amount": "5.00"}}]
    async with db.reader.connect() as connection:
        assert (await connection.execute(select(gift_cards.c.balance))).scalar_one() == 500
    assert await stock(db, mug) == 10


async def test_confirm_racing_the_webhook_makes_one_transition(
    shop: AppClient, sandbox: SandboxGateway, mug: MadeProduct, db: Database
) -> None:
    # given: an order waiting for its action, which the customer then completes
    cart_id = await ready_cart(shop, [(mug, 1)])
    waiting = (await checkout(shop, cart_id, "sca-race-1"))["order"]
    token = waiting["statusToken"]
    [payment_id] = sandbox.payments
    state = sandbox.complete_action(payment_id)
    payload = json.dumps(
        {
            "id": "evt_race_1",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "object": "payment_intent",
                    "id": payment_id,
                    "amount": state.amount,
                    "currency": state.currency,
                    "metadata": {"order_id": decode_gid(waiting["id"])[1]},
                }
            },
        }
    ).encode()

    # when: eight confirms and the webhook at once
    confirms = [shop.query(CONFIRM, {"input": {"statusToken": token}}) for _ in range(8)]
    answers = await asyncio.gather(*confirms, post_webhook(shop, payload))

    # then: one transition, one OrderPaid, every confirm sees the paid order
    for answer in answers[:-1]:
        confirmed = answer.data["checkoutPaymentConfirm"]
        assert confirmed["userErrors"] == []
        assert confirmed["order"]["status"] == "PAID"
        assert confirmed["order"]["paymentAction"] is None
    assert answers[-1]["outcome"] in ("settled: paid", "ignored: order is PAID")
    assert (await topics(db))["OrderPaid"] == 1
    async with db.reader.connect() as connection:
        history = (await connection.execute(select(order_status_changes.c.status))).scalars().all()
    assert Counter(history) == {"PENDING_PAYMENT": 1, "PAYMENT_ACTION_REQUIRED": 1, "PAID": 1}


async def test_only_the_buyer_sees_the_action_and_confirm_refuses_others(
    shop: AppClient, mug: MadeProduct, db: Database
) -> None:
    # given
    cart_id = await ready_cart(shop, [(mug, 1)])
    waiting = (await checkout(shop, cart_id, "sca-who-1"))["order"]
    staff = await staff_token(shop, db)

    # when
    as_staff = await shop.query(BY_ID, {"id": waiting["id"]}, token=staff)
    by_token = await shop.query(BY_TOKEN, {"t": waiting["statusToken"]})
    by_id_as_guest = await shop.query(CONFIRM, {"input": {"orderId": waiting["id"]}})
    both = await shop.query(
        CONFIRM, {"input": {"orderId": waiting["id"], "statusToken": waiting["statusToken"]}}
    )
    still = await shop.query(CONFIRM, {"input": {"statusToken": waiting["statusToken"]}})

    # then
    assert as_staff.data["order"] == {"status": "PAYMENT_ACTION_REQUIRED", "paymentAction": None}
    assert by_token.data["orderByStatusToken"]["paymentAction"] == waiting["paymentAction"]
    assert [e["code"] for e in by_id_as_guest.data["checkoutPaymentConfirm"]["userErrors"]] == [
        "ORDER_NOT_FOUND"
    ]
    assert [e["code"] for e in both.data["checkoutPaymentConfirm"]["userErrors"]] == ["INVALID"]
    waiting_still = still.data["checkoutPaymentConfirm"]
    assert waiting_still["userErrors"] == []
    assert waiting_still["order"]["status"] == "PAYMENT_ACTION_REQUIRED"
    assert waiting_still["order"]["paymentAction"] == waiting["paymentAction"]
