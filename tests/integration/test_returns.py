"""Returns: the shopper asks for fulfilled units back within the window; staff approve or
decline, then receive them, refunding and restocking in the same step."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from persistence.db import Database
from persistence.tables import fulfillments
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.factories import CatalogFactory, MadeProduct
from tests.refund_shop import (
    RefundingGateway,
    events,
    fulfil,
    payment_of,
    place,
    read_order,
    refund_rows,
)
from tests.shop import staff_token, stock

RETURN_FIELDS = "id status lines { lineId quantity } reason declineReason createdAt"
PAYLOAD = f"""order {{ status totalRefunded {{ amount }} returns {{ {RETURN_FIELDS} }} }}
  orderReturn {{ {RETURN_FIELDS} }}
  refund {{ amount {{ amount }} restocked lines {{ lineId quantity }} }}
  userErrors {{ field code }}"""
REQUEST = f"""mutation($input: OrderReturnRequestInput!) {{
  orderReturnRequest(input: $input) {{ {PAYLOAD} }} }}"""
APPROVE = f"""mutation($input: OrderReturnApproveInput!) {{
  orderReturnApprove(input: $input) {{ {PAYLOAD} }} }}"""
DECLINE = f"""mutation($input: OrderReturnDeclineInput!) {{
  orderReturnDecline(input: $input) {{ {PAYLOAD} }} }}"""
RECEIVE = f"""mutation($input: OrderReturnReceiveInput!) {{
  orderReturnReceive(input: $input) {{ {PAYLOAD} }} }}"""


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
    return await CatalogFactory(db).product("Mug", prices=[1200], stock=[100])


@pytest.fixture
async def boss(shop: AppClient, db: Database) -> str:
    return await staff_token(shop, db)


@pytest.fixture
async def ann(shop: AppClient) -> str:
    return await customer_token(shop, "ann@example.com")


async def a_shipped_order(
    shop: AppClient, mug: MadeProduct, boss: str, ann: str | None, shipped: int = 2
) -> dict[str, Any]:
    """Ann's order of 3 mugs (36.00 + 5.99 shipping + 19% tax = 49.97, tax rounded half up), `shipped` of them."""
    order = await place(shop, [(mug, 3)], "return-order-1", token=ann)
    line = order["lines"][0]["id"]
    if shipped:
        await fulfil(shop, boss, order["id"], lines=[{"lineId": line, "quantity": shipped}])
    return order


async def ask(shop: AppClient, token: str | None, **fields: Any) -> dict[str, Any]:
    answer = await shop.query(REQUEST, {"input": fields}, token=token)
    assert answer.errors == [], answer.errors
    payload: dict[str, Any] = answer.data["orderReturnRequest"]
    return payload


async def staff_step(shop: AppClient, boss: str, document: str, **fields: Any) -> dict[str, Any]:
    answer = await shop.query(document, {"input": fields}, token=boss)
    assert answer.errors == [], answer.errors
    payload: dict[str, Any] = next(iter(answer.data.values()))
    return payload


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


async def test_a_return_requested_approved_and_received_refunds_and_restocks(
    shop: AppClient,
    mug: MadeProduct,
    boss: str,
    ann: str,
    db: Database,
    gateway: RefundingGateway,
) -> None:
    # given
    order = await a_shipped_order(shop, mug, boss, ann)
    line = order["lines"][0]["id"]

    # when
    asked = await ask(
        shop, ann, orderId=order["id"], lines=[{"lineId": line, "quantity": 2}], reason="too big"
    )
    return_id = asked["orderReturn"]["id"]
    approved = await staff_step(shop, boss, APPROVE, returnId=return_id)
    received = await staff_step(shop, boss, RECEIVE, returnId=return_id, refund=True, restock=True)
    again = await staff_step(shop, boss, RECEIVE, returnId=return_id, refund=True, restock=True)

    # then: 2 x 12.00 with floor(7.98 * 24.00 / 41.99) = 4.56 of the tax
    assert asked["userErrors"] == [] and asked["orderReturn"]["status"] == "REQUESTED"
    assert asked["orderReturn"]["lines"] == [{"lineId": line, "quantity": 2}]
    assert asked["orderReturn"]["reason"] == "too big"
    assert approved["orderReturn"]["status"] == "APPROVED"
    assert received["userErrors"] == [] and received["orderReturn"]["status"] == "RECEIVED"
    assert received["refund"] == {
        "amount": {"amount": "28.56"},
        "restocked": True,
        "lines": [{"lineId": line, "quantity": 2}],
    }
    assert received["order"]["totalRefunded"] == {"amount": "28.56"}
    assert received["order"]["status"] == "PAID"  # one mug still to ship
    assert received["order"]["returns"] == [received["orderReturn"]]
    assert codes(again) == ["INVALID_TRANSITION"]
    assert await stock(db, mug) == 99
    payment_id, _ = await payment_of(db, order["id"])
    assert gateway.refunded(payment_id) == 2856
    assert [p["status"] for _, p in await events(db, "ReturnStatusChanged")] == [
        "REQUESTED",
        "APPROVED",
        "RECEIVED",
    ]
    assert [p["amount"] for _, p in await events(db, "OrderRefunded")] == [2856]


async def test_a_received_return_without_refund_only_restocks(
    shop: AppClient, mug: MadeProduct, boss: str, ann: str, db: Database
) -> None:
    order = await a_shipped_order(shop, mug, boss, ann)
    line = order["lines"][0]["id"]
    asked = await ask(shop, ann, orderId=order["id"], lines=[{"lineId": line, "quantity": 1}])
    return_id = asked["orderReturn"]["id"]
    await staff_step(shop, boss, APPROVE, returnId=return_id)

    received = await staff_step(shop, boss, RECEIVE, returnId=return_id, restock=True)

    assert received["orderReturn"]["status"] == "RECEIVED" and received["refund"] is None
    assert received["order"]["totalRefunded"] == {"amount": "0.00"}
    assert await stock(db, mug) == 98
    assert await refund_rows(db) == []


async def test_a_declined_return_gives_its_units_back_to_ask_for_and_takes_no_more_steps(
    shop: AppClient, mug: MadeProduct, boss: str, ann: str, db: Database
) -> None:
    # given
    order = await a_shipped_order(shop, mug, boss, ann)
    line = order["lines"][0]["id"]
    asked = await ask(shop, ann, orderId=order["id"], lines=[{"lineId": line, "quantity": 2}])
    return_id = asked["orderReturn"]["id"]
    receive_early = await staff_step(shop, boss, RECEIVE, returnId=return_id, refund=True)

    # when
    declined = await staff_step(shop, boss, DECLINE, returnId=return_id, reason="worn")
    approve_late = await staff_step(shop, boss, APPROVE, returnId=return_id)
    decline_twice = await staff_step(shop, boss, DECLINE, returnId=return_id)
    asked_again = await ask(shop, ann, orderId=order["id"], lines=[{"lineId": line, "quantity": 2}])
    approved = await staff_step(shop, boss, APPROVE, returnId=asked_again["orderReturn"]["id"])
    decline_approved = await staff_step(
        shop, boss, DECLINE, returnId=asked_again["orderReturn"]["id"]
    )

    # then
    assert codes(receive_early) == ["INVALID_TRANSITION"]
    assert declined["orderReturn"]["status"] == "DECLINED"
    assert declined["orderReturn"]["declineReason"] == "worn"
    assert codes(approve_late) == ["INVALID_TRANSITION"]
    assert codes(decline_twice) == ["INVALID_TRANSITION"]
    assert asked_again["userErrors"] == []
    assert approved["orderReturn"]["status"] == "APPROVED"
    assert codes(decline_approved) == ["INVALID_TRANSITION"]
    assert [p["status"] for _, p in await events(db, "ReturnStatusChanged")] == [
        "REQUESTED",
        "DECLINED",
        "REQUESTED",
        "APPROVED",
    ]
    assert await refund_rows(db) == []


async def test_never_more_than_fulfilled_less_returned_nor_after_the_window(
    shop: AppClient, mug: MadeProduct, boss: str, ann: str, db: Database
) -> None:
    # given: 2 of 3 shipped
    order = await a_shipped_order(shop, mug, boss, ann)
    line = order["lines"][0]["id"]

    # when
    unshipped = await ask(shop, ann, orderId=order["id"], lines=[{"lineId": line, "quantity": 3}])
    one = await ask(shop, ann, orderId=order["id"], lines=[{"lineId": line, "quantity": 1}])
    two_more = await ask(shop, ann, orderId=order["id"], lines=[{"lineId": line, "quantity": 2}])
    async with db.writer.begin() as connection:
        await connection.execute(
            update(fulfillments).values(created_at=datetime.now(UTC) - timedelta(days=31))
        )
    late = await ask(shop, ann, orderId=order["id"], lines=[{"lineId": line, "quantity": 1}])
    zero = await ask(shop, ann, orderId=order["id"], lines=[{"lineId": line, "quantity": 0}])
    none = await ask(shop, ann, orderId=order["id"], lines=[])
    foreign = await ask(shop, ann, orderId=order["id"], lines=[{"lineId": "x", "quantity": 1}])

    # then
    assert codes(unshipped) == ["RETURN_QUANTITY_EXCEEDED"]
    assert one["userErrors"] == []
    assert codes(two_more) == ["RETURN_QUANTITY_EXCEEDED"]
    assert codes(late) == ["RETURN_QUANTITY_EXCEEDED"]
    assert codes(zero) == ["INVALID_QUANTITY"]
    assert codes(none) == ["INVALID"]
    assert codes(foreign) == ["LINE_NOT_FOUND"]
    assert len(await events(db, "ReturnStatusChanged")) == 1


async def test_concurrent_requests_never_return_more_than_shipped(
    shop: AppClient, mug: MadeProduct, boss: str, ann: str, db: Database
) -> None:
    # given: 2 shipped
    order = await a_shipped_order(shop, mug, boss, ann)
    line = order["lines"][0]["id"]

    # when: five requests for one unit each, at once
    answers = await asyncio.gather(
        *(
            ask(shop, ann, orderId=order["id"], lines=[{"lineId": line, "quantity": 1}])
            for _ in range(5)
        )
    )

    # then
    outcomes = Counter(tuple(codes(a)) for a in answers)
    assert outcomes == {(): 2, ("RETURN_QUANTITY_EXCEEDED",): 3}
    assert len((await read_order(shop, boss, order["id"]))["returns"]) == 2


async def test_who_may_ask_and_who_may_decide(
    shop: AppClient, mug: MadeProduct, boss: str, ann: str, db: Database
) -> None:
    # given: Ann's shipped order, and a guest's
    order = await a_shipped_order(shop, mug, boss, ann)
    line = order["lines"][0]["id"]
    guest_order = await place(shop, [(mug, 1)], "return-order-guest")
    await fulfil(shop, boss, guest_order["id"])
    bob = await customer_token(shop, "bob@example.com")
    lines = [{"lineId": line, "quantity": 1}]

    # when
    by_bob = await ask(shop, bob, orderId=order["id"], lines=lines)
    by_guest = await ask(shop, None, orderId=order["id"], lines=lines)
    unknown = await ask(shop, ann, orderId="T3JkZXI6bm9uZQ", lines=lines)
    bad_token = await ask(shop, None, statusToken="a" * 43, lines=lines)
    both = await ask(shop, ann, orderId=order["id"], statusToken="a" * 43, lines=lines)
    guest_line = guest_order["lines"][0]["id"]
    with_token = await ask(
        shop,
        None,
        statusToken=guest_order["statusToken"],
        lines=[{"lineId": guest_line, "quantity": 1}],
    )
    return_id = with_token["orderReturn"]["id"]
    approve_by_ann = await shop.query(APPROVE, {"input": {"returnId": return_id}}, token=ann)
    approve_by_guest = await shop.query(APPROVE, {"input": {"returnId": return_id}})
    unknown_return = await staff_step(shop, boss, APPROVE, returnId="T3JkZXJSZXR1cm46bm8")

    # then: someone else's order, no token and an unknown id answer alike
    for refused in (by_bob, by_guest, unknown):
        assert refused["userErrors"] == [{"field": ["orderId"], "code": "ORDER_NOT_FOUND"}]
        assert refused["orderReturn"] is None
    assert bad_token["userErrors"] == [{"field": ["statusToken"], "code": "ORDER_NOT_FOUND"}]
    assert codes(both) == ["INVALID"]
    assert with_token["userErrors"] == [] and with_token["orderReturn"]["status"] == "REQUESTED"
    assert approve_by_ann.error_codes == ["FORBIDDEN"]
    assert approve_by_guest.error_codes == ["UNAUTHENTICATED"]
    assert codes(unknown_return) == ["RETURN_NOT_FOUND"]
    assert len(await events(db, "ReturnStatusChanged")) == 1
