"""orderCancelRequest: the order's customer (or a status-token holder) cancels before
anything ships, through the staff's cancel path: stock, discount uses and gift card
amounts back, the card payment refunded in full; ORDER_ALREADY_FULFILLED afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from persistence.db import Database
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.factories import CatalogFactory, MadeProduct
from tests.refund_shop import RefundingGateway, events, fulfil, payment_of, place
from tests.shop import staff_token, stock

CANCEL = """mutation($input: OrderCancelRequestInput!) { orderCancelRequest(input: $input) {
  order { status cancelReason statusHistory { status } } userErrors { field code } } }"""


@pytest.fixture
def gateway() -> RefundingGateway:
    return RefundingGateway()


@pytest.fixture
async def shop(
    settings: Settings, clean: None, gateway: RefundingGateway
) -> AsyncIterator[AppClient]:
    async with running_app(settings, gateway=gateway) as client:
        yield client


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])


@pytest.fixture
async def ann(shop: AppClient) -> str:
    return await customer_token(shop, "ann@example.com")


async def cancel(shop: AppClient, token: str | None, **fields: Any) -> dict[str, Any]:
    answer = await shop.query(CANCEL, {"input": fields}, token=token)
    assert answer.errors == [], answer.errors
    payload: dict[str, Any] = answer.data["orderCancelRequest"]
    return payload


async def test_the_customer_cancels_a_paid_order_stock_back_and_refunded_in_full(
    shop: AppClient, mug: MadeProduct, ann: str, db: Database, gateway: RefundingGateway
) -> None:
    # given: 2 mugs, 24.00 + 5.99 + 19% tax = 35.69 charged
    order = await place(shop, [(mug, 2)], "cancel-order-1", token=ann)
    assert await stock(db, mug) == 8

    # when
    cancelled = await cancel(shop, ann, orderId=order["id"])
    again = await cancel(shop, ann, orderId=order["id"])

    # then
    assert cancelled["userErrors"] == []
    assert cancelled["order"]["status"] == "CANCELLED"
    assert cancelled["order"]["cancelReason"] == "cancelled by the customer"
    assert [s["status"] for s in cancelled["order"]["statusHistory"]][-1] == "CANCELLED"
    assert await stock(db, mug) == 10
    payment_id, _ = await payment_of(db, order["id"])
    assert gateway.refunded(payment_id) == 3569
    assert [amount for _, amount, _ in gateway.refund_calls] == [3569]
    assert again["userErrors"] == [{"field": ["orderId"], "code": "INVALID_TRANSITION"}]
    assert [p["refund"] is not None for _, p in await events(db, "OrderCancelled")] == [True]


async def test_a_guest_cancels_with_the_status_token(
    shop: AppClient, mug: MadeProduct, db: Database, gateway: RefundingGateway
) -> None:
    order = await place(shop, [(mug, 1)], "cancel-order-guest")

    cancelled = await cancel(shop, None, statusToken=order["statusToken"])

    assert cancelled["order"]["status"] == "CANCELLED"
    assert await stock(db, mug) == 10
    assert len(gateway.refund_calls) == 1


async def test_once_anything_shipped_it_is_already_fulfilled_and_nothing_changes(
    shop: AppClient, mug: MadeProduct, ann: str, db: Database, gateway: RefundingGateway
) -> None:
    # given: one of two mugs shipped, then another order shipped whole
    boss = await staff_token(shop, db)
    partly = await place(shop, [(mug, 2)], "cancel-order-2", token=ann)
    line = partly["lines"][0]["id"]
    await fulfil(shop, boss, partly["id"], lines=[{"lineId": line, "quantity": 1}])
    whole = await place(shop, [(mug, 1)], "cancel-order-3", token=ann)
    await fulfil(shop, boss, whole["id"])

    # when
    refused = [await cancel(shop, ann, orderId=o["id"]) for o in (partly, whole)]

    # then
    for answer in refused:
        assert answer == {
            "order": None,
            "userErrors": [{"field": ["orderId"], "code": "ORDER_ALREADY_FULFILLED"}],
        }
    assert await stock(db, mug) == 7
    assert gateway.refund_calls == []
    assert await events(db, "OrderCancelled") == []


async def test_a_pending_payment_order_cancels_without_a_refund(
    shop: AppClient, mug: MadeProduct, ann: str, db: Database, gateway: RefundingGateway
) -> None:
    order = await place(shop, [(mug, 3)], "cancel-order-4", token=ann, method="pm_card_timeout")
    assert order["status"] == "PENDING_PAYMENT"

    cancelled = await cancel(shop, ann, orderId=order["id"])

    assert cancelled["order"]["status"] == "CANCELLED"
    assert await stock(db, mug) == 10
    assert gateway.refund_calls == []
    assert [p["refund"] for _, p in await events(db, "OrderCancelled")] == [None]


async def test_someone_elses_order_no_token_and_an_unknown_order_answer_alike(
    shop: AppClient, mug: MadeProduct, ann: str, db: Database, gateway: RefundingGateway
) -> None:
    order = await place(shop, [(mug, 1)], "cancel-order-5", token=ann)
    bob = await customer_token(shop, "bob@example.com")

    answers = [
        await cancel(shop, bob, orderId=order["id"]),
        await cancel(shop, None, orderId=order["id"]),
        await cancel(shop, ann, orderId="T3JkZXI6bm9uZQ"),
        await cancel(shop, ann, orderId="not-an-id"),
    ]
    unknown_token = await cancel(shop, None, statusToken="a" * 43)
    neither = await cancel(shop, ann)

    for answer in answers:
        assert answer == {
            "order": None,
            "userErrors": [{"field": ["orderId"], "code": "ORDER_NOT_FOUND"}],
        }
    assert unknown_token["userErrors"] == [{"field": ["statusToken"], "code": "ORDER_NOT_FOUND"}]
    assert neither["userErrors"] == [{"field": ["orderId"], "code": "INVALID"}]
    assert await stock(db, mug) == 9
    assert gateway.refund_calls == []
