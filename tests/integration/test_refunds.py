"""orderRefund: partial refunds by line (paid price after discounts, with its tax share),
by shipping or by amount; gift cards first; never more than was paid, even concurrently;
one refund per idempotency key; restocking chosen per refund; REFUNDED once it is all."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from persistence.db import Database
from schema.global_id import decode_gid
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.factories import CatalogFactory, MadeProduct
from tests.refund_shop import (
    RefundingGateway,
    card_balance,
    events,
    payment_of,
    place,
    read_order,
    refund,
    refund_rows,
)
from tests.shop import staff_token, stock

# Mug 12.00 x 3 + pen 3.00 = 39.00; shipping 5.99 (below 50.00); DE tax 19% of 44.99 =
# 8.55 (rounded half up); total 53.54.
TOTAL = 5354


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
async def goods(db: Database, clean: None) -> dict[str, MadeProduct]:
    factory = CatalogFactory(db)
    return {
        "mug": await factory.product("Mug", prices=[1200], stock=[100]),
        "pen": await factory.product("Pen", prices=[300], stock=[100]),
    }


@pytest.fixture
async def boss(shop: AppClient, db: Database) -> str:
    return await staff_token(shop, db)


async def a_paid_order(
    shop: AppClient, goods: dict[str, MadeProduct], key: str = "k-order-1"
) -> dict[str, Any]:
    order = await place(shop, [(goods["mug"], 3), (goods["pen"], 1)], key)
    assert order["status"] == "PAID"
    assert order["cost"]["totalAmount"]["amount"] == "53.54"
    return order


async def test_a_line_refund_gives_back_its_paid_price_and_tax_share_and_keeps_it_paid(
    shop: AppClient,
    goods: dict[str, MadeProduct],
    boss: str,
    db: Database,
    gateway: RefundingGateway,
) -> None:
    # given
    order = await a_paid_order(shop, goods)
    mug_line = order["lines"][0]["id"]

    # when
    answer = await refund(
        shop,
        boss,
        orderId=order["id"],
        lines=[{"lineId": mug_line, "quantity": 1}],
        reason="chipped",
    )

    # then: 12.00 and floor(8.55 * 12.00 / 44.99) = 2.28 of the tax
    assert answer["userErrors"] == []
    made = answer["refund"]
    assert made["status"] == "SUCCEEDED"
    assert made["amount"] == {"amount": "14.28"}
    assert made["cardAmount"] == {"amount": "14.28"}
    assert made["giftCardAmount"] == {"amount": "0.00"}
    assert made["lines"] == [{"lineId": mug_line, "quantity": 1}]
    assert (made["shipping"], made["reason"], made["restocked"]) == (False, "chipped", False)
    assert answer["order"]["status"] == "PAID"
    assert answer["order"]["totalRefunded"] == {"amount": "14.28", "currencyCode": "USD"}
    assert answer["order"]["refunds"] == [made]
    payment_id, reserved = await payment_of(db, order["id"])
    assert gateway.refunded(payment_id) == 1428 and reserved == 1428
    assert await stock(db, goods["mug"]) == 97  # not restocked
    assert await events(db, "OrderRefunded") == [
        (
            "OrderRefunded",
            {
                "order": decode_gid(order["id"])[1],
                "refund": decode_gid(made["id"])[1],
                "amount": 1428,
                "status": "PAID",
            },
        )
    ]


async def test_refunding_everything_in_pieces_gives_back_exactly_the_total_then_refunded(
    shop: AppClient,
    goods: dict[str, MadeProduct],
    boss: str,
    db: Database,
    gateway: RefundingGateway,
) -> None:
    # given
    order = await a_paid_order(shop, goods)
    mug_line, pen_line = (line["id"] for line in order["lines"])

    # when: two mugs back in stock, then the last mug, the pen and the shipping
    first = await refund(
        shop,
        boss,
        orderId=order["id"],
        lines=[{"lineId": mug_line, "quantity": 2}],
        restock=True,
        idempotencyKey="refund-part-1",
    )
    rest = await refund(
        shop,
        boss,
        orderId=order["id"],
        lines=[{"lineId": mug_line, "quantity": 1}, {"lineId": pen_line, "quantity": 1}],
        shipping=True,
        idempotencyKey="refund-part-2",
    )
    more = await refund(shop, boss, orderId=order["id"], amount="0.01", idempotencyKey="refund-3")

    # then
    assert first["userErrors"] == [] and rest["userErrors"] == []
    assert first["refund"]["restocked"] is True and rest["refund"]["restocked"] is False
    assert first["order"]["status"] == "PAID"
    amounts = [first["refund"]["amount"]["amount"], rest["refund"]["amount"]["amount"]]
    assert amounts == ["28.56", "24.98"]  # 2 x 12.00 + 4.56 tax; the rest of 53.54
    assert rest["order"]["status"] == "REFUNDED"
    assert rest["order"]["totalRefunded"]["amount"] == "53.54"
    assert [s["status"] for s in rest["order"]["statusHistory"]][-1] == "REFUNDED"
    assert more["userErrors"] == [
        {
            "field": ["orderId"],
            "code": "INVALID_TRANSITION",
            "message": more["userErrors"][0]["message"],
        }
    ]
    payment_id, reserved = await payment_of(db, order["id"])
    assert gateway.refunded(payment_id) == TOTAL and reserved == TOTAL
    assert await stock(db, goods["mug"]) == 99  # 2 of the 3 restocked
    assert await stock(db, goods["pen"]) == 99
    assert [p["status"] for _, p in await events(db, "OrderRefunded")] == ["PAID", "REFUNDED"]
    stocked = await events(db, "StockChanged")
    assert stocked[-1][1] == {"variant": goods["mug"].variant_ids[0], "available": 99}


async def test_an_amount_refund_and_every_over_refund_refused(
    shop: AppClient,
    goods: dict[str, MadeProduct],
    boss: str,
    db: Database,
    gateway: RefundingGateway,
) -> None:
    # given
    order = await a_paid_order(shop, goods)
    mug_line, pen_line = (line["id"] for line in order["lines"])
    await refund(shop, boss, orderId=order["id"], shipping=True, idempotencyKey="ship-once")

    # when
    by_amount = await refund(
        shop, boss, orderId=order["id"], amount="40.00", idempotencyKey="amount-1"
    )
    too_much = await refund(
        shop, boss, orderId=order["id"], amount="7.00", idempotencyKey="amount-2"
    )
    too_many = await refund(
        shop,
        boss,
        orderId=order["id"],
        lines=[{"lineId": mug_line, "quantity": 4}, {"lineId": pen_line, "quantity": 1}],
        idempotencyKey="units-key-1",
    )
    shipping_twice = await refund(
        shop, boss, orderId=order["id"], shipping=True, idempotencyKey="ship-twice"
    )
    lines_worth_more = await refund(
        shop,
        boss,
        orderId=order["id"],
        lines=[{"lineId": mug_line, "quantity": 1}],
        idempotencyKey="units-key-2",
    )

    # then: shipping 5.99 + its tax 1.13 = 7.12; with 40.00, 6.42 is left
    assert by_amount["userErrors"] == []
    assert by_amount["refund"]["amount"]["amount"] == "40.00"
    assert [(e["code"], e["field"]) for e in too_much["userErrors"]] == [
        ("REFUND_EXCEEDS_PAYMENT", ["amount"])
    ]
    assert [e["code"] for e in too_many["userErrors"]] == ["REFUND_QUANTITY_EXCEEDED"]
    assert "3 units left" in too_many["userErrors"][0]["message"]
    assert [(e["code"], e["field"]) for e in shipping_twice["userErrors"]] == [
        ("REFUND_QUANTITY_EXCEEDED", ["shipping"])
    ]
    assert [e["code"] for e in lines_worth_more["userErrors"]] == ["REFUND_EXCEEDS_PAYMENT"]
    assert [r[:2] for r in await refund_rows(db)] == [("SUCCEEDED", 712), ("SUCCEEDED", 4000)]
    payment_id, reserved = await payment_of(db, order["id"])
    assert gateway.refunded(payment_id) == 4712 and reserved == 4712


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({}, "INVALID", ["lines"]),
        ({"amount": "0"}, "INVALID", ["amount"]),
        ({"amount": "-1"}, "INVALID", ["amount"]),
        ({"amount": "1.001"}, "INVALID", ["amount"]),
        ({"amount": "lots"}, "INVALID", ["amount"]),
        ({"amount": "1", "idempotencyKey": "short"}, "INVALID", ["idempotencyKey"]),
        ({"amount": "1", "reason": "x" * 501}, "TOO_LONG", ["reason"]),
        ({"amount": "1", "restock": True}, "INVALID", ["restock"]),
        (
            {"lines": [{"lineId": "nope", "quantity": 1}]},
            "LINE_NOT_FOUND",
            ["lines", "0", "lineId"],
        ),
    ],
)
async def test_bad_refund_input_is_a_user_error_and_writes_nothing(
    shop: AppClient,
    goods: dict[str, MadeProduct],
    boss: str,
    db: Database,
    fields: dict[str, object],
    code: str,
    field: list[str],
) -> None:
    order = await a_paid_order(shop, goods)

    answer = await refund(shop, boss, orderId=order["id"], **fields)

    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [(code, field)]
    assert answer["refund"] is None
    assert await refund_rows(db) == []


async def test_a_zero_quantity_is_refused(
    shop: AppClient, goods: dict[str, MadeProduct], boss: str
) -> None:
    order = await a_paid_order(shop, goods)
    line = order["lines"][0]["id"]

    answer = await refund(shop, boss, orderId=order["id"], lines=[{"lineId": line, "quantity": 0}])

    assert [e["code"] for e in answer["userErrors"]] == ["INVALID_QUANTITY"]


async def test_concurrent_refunds_never_together_exceed_the_payment(
    shop: AppClient,
    goods: dict[str, MadeProduct],
    boss: str,
    db: Database,
    gateway: RefundingGateway,
) -> None:
    # given: 53.54 paid
    order = await a_paid_order(shop, goods)

    # when: five staff refunds of 20.00 at once, each with its own key
    answers = await asyncio.gather(
        *(
            refund(shop, boss, orderId=order["id"], amount="20.00", idempotencyKey=f"race-key-{n}")
            for n in range(5)
        )
    )

    # then: two fit, three are refused, and the gateway refunded exactly the two
    outcomes = Counter(
        "ok" if a["userErrors"] == [] else a["userErrors"][0]["code"] for a in answers
    )
    assert outcomes == {"ok": 2, "REFUND_EXCEEDS_PAYMENT": 3}
    payment_id, reserved = await payment_of(db, order["id"])
    assert gateway.refunded(payment_id) == 4000 and reserved == 4000
    assert [r[0] for r in await refund_rows(db)] == ["SUCCEEDED", "SUCCEEDED"]


async def test_the_same_key_and_request_is_the_same_refund_without_a_second_gateway_call(
    shop: AppClient,
    goods: dict[str, MadeProduct],
    boss: str,
    db: Database,
    gateway: RefundingGateway,
) -> None:
    # given
    order = await a_paid_order(shop, goods)
    first = await refund(
        shop, boss, orderId=order["id"], amount="5.00", idempotencyKey="same-key-1"
    )

    # when
    again = await refund(
        shop, boss, orderId=order["id"], amount="5.00", idempotencyKey="same-key-1"
    )
    other = await refund(
        shop, boss, orderId=order["id"], amount="6.00", idempotencyKey="same-key-1"
    )
    together = await asyncio.gather(
        *(
            refund(shop, boss, orderId=order["id"], amount="1.00", idempotencyKey="same-key-2")
            for _ in range(5)
        )
    )

    # then
    assert again["refund"] == first["refund"] and again["userErrors"] == []
    assert [e["code"] for e in other["userErrors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    assert {a["refund"]["id"] for a in together} == {together[0]["refund"]["id"]}
    # A duplicate that arrives while the first is at the gateway waits for nothing and
    # calls nothing: it says REFUND_PENDING; one that arrives after has the refund.
    assert {e["code"] for a in together for e in a["userErrors"]} <= {"REFUND_PENDING"}
    assert len(gateway.refund_calls) == 2  # one per key
    assert [r[1] for r in await refund_rows(db)] == [500, 100]
    payment_id, reserved = await payment_of(db, order["id"])
    assert gateway.refunded(payment_id) == 600 and reserved == 600


async def test_a_refused_refund_releases_its_reservation_and_a_silent_gateway_keeps_it(
    shop: AppClient,
    goods: dict[str, MadeProduct],
    boss: str,
    db: Database,
    gateway: RefundingGateway,
) -> None:
    # given
    order = await a_paid_order(shop, goods)

    # when: the bank says no, then says nothing, then answers the same key
    gateway.refuse = True
    refused = await refund(
        shop, boss, orderId=order["id"], amount="10.00", idempotencyKey="bank-key-1"
    )
    replayed = await refund(
        shop, boss, orderId=order["id"], amount="10.00", idempotencyKey="bank-key-1"
    )
    after_refusal = (await payment_of(db, order["id"]))[1]
    gateway.refuse, gateway.no_answer = False, True
    silent = await refund(
        shop, boss, orderId=order["id"], amount="10.00", idempotencyKey="bank-key-2"
    )
    held = (await payment_of(db, order["id"]))[1]
    gateway.no_answer = False
    retried = await refund(
        shop, boss, orderId=order["id"], amount="10.00", idempotencyKey="bank-key-2"
    )

    # then
    assert [e["code"] for e in refused["userErrors"]] == ["REFUND_FAILED"]
    assert refused["refund"]["status"] == "FAILED"
    assert [e["code"] for e in replayed["userErrors"]] == ["REFUND_FAILED"]
    assert after_refusal == 0
    assert [e["code"] for e in silent["userErrors"]] == ["REFUND_PENDING"]
    assert silent["refund"]["status"] == "PENDING"
    assert held == 1000  # reserved while its outcome is unknown
    assert retried["userErrors"] == [] and retried["refund"]["status"] == "SUCCEEDED"
    assert retried["refund"]["id"] == silent["refund"]["id"]
    assert retried["order"]["totalRefunded"]["amount"] == "10.00"
    # The refused key's replay asked nothing; the silent one's retry asked with its key.
    keys = [key for _, _, key in gateway.refund_calls]
    assert len(keys) == 3 and keys[0] != keys[1] == keys[2]
    assert [r[0] for r in await refund_rows(db)] == ["FAILED", "SUCCEEDED"]


async def test_gift_cards_are_refunded_first_and_the_card_gets_the_rest(
    shop: AppClient, db: Database, boss: str, gateway: RefundingGateway
) -> None:
    # given: a 20.00 card pays part of a 30.93 order (20.00 + 5.99 + 19% tax of 25.99)
    mug = await CatalogFactory(db).product("Big mug", prices=[2000], stock=[10])
    issued = await shop.query(
        """mutation($input: GiftCardCreateInput!) { giftCardCreate(input: $input) {
           giftCardCode userErrors { code } } }""",
        {"input": {"initialValue": "20.00"}},
        token=boss,
    )
    code = issued.data["giftCardCreate"]["giftCardCode"]
    order = await place(shop, [(mug, 1)], "gift-order-1", gift_card_codes=[code])
    assert order["cost"]["checkoutChargeAmount"]["amount"] == "10.93"
    assert await card_balance(db) == 0

    # when
    part = await refund(
        shop, boss, orderId=order["id"], amount="15.00", idempotencyKey="gift-key-1"
    )
    rest = await refund(
        shop, boss, orderId=order["id"], amount="15.93", idempotencyKey="gift-key-2"
    )

    # then
    assert part["refund"]["giftCardAmount"]["amount"] == "15.00"
    assert part["refund"]["cardAmount"]["amount"] == "0.00"
    assert rest["refund"]["giftCardAmount"]["amount"] == "5.00"
    assert rest["refund"]["cardAmount"]["amount"] == "10.93"
    assert rest["order"]["status"] == "REFUNDED"
    assert await card_balance(db) == 2000  # back to its initial balance, not above
    payment_id, _ = await payment_of(db, order["id"])
    assert gateway.refunded(payment_id) == 1093
    assert [amount for _, amount, _ in gateway.refund_calls] == [1093]  # none for 15.00
    assert await refund_rows(db) == [("SUCCEEDED", 1500, 1500, 0), ("SUCCEEDED", 1593, 500, 1093)]


async def test_only_staff_refund_and_an_unknown_order_is_not_found(
    shop: AppClient, goods: dict[str, MadeProduct], boss: str, db: Database
) -> None:
    order = await a_paid_order(shop, goods)
    shopper = await customer_token(shop, "ann@example.com")
    document = """mutation($input: OrderRefundInput!) { orderRefund(input: $input) {
      refund { id } userErrors { code } } }"""
    fields = {"orderId": order["id"], "amount": "1.00", "idempotencyKey": "auth-key-1"}

    as_customer = await shop.query(document, {"input": fields}, token=shopper)
    as_guest = await shop.query(document, {"input": fields})
    unknown = await refund(
        shop, boss, orderId="T3JkZXI6bm9uZQ", amount="1.00", idempotencyKey="auth-key-2"
    )

    assert as_customer.error_codes == ["FORBIDDEN"]
    assert as_guest.error_codes == ["UNAUTHENTICATED"]
    assert [e["code"] for e in unknown["userErrors"]] == ["ORDER_NOT_FOUND"]
    assert await refund_rows(db) == []


async def test_a_partly_refunded_order_cannot_be_cancelled(
    shop: AppClient, goods: dict[str, MadeProduct], boss: str, db: Database
) -> None:
    order = await a_paid_order(shop, goods)
    await refund(shop, boss, orderId=order["id"], amount="1.00", idempotencyKey="before-cancel")

    cancelled = await shop.query(
        """mutation($input: OrderCancelInput!) { orderCancel(input: $input) {
           order { status } userErrors { code } } }""",
        {"input": {"orderId": order["id"]}},
        token=boss,
    )

    assert cancelled.data["orderCancel"]["userErrors"] == [{"code": "INVALID_TRANSITION"}]
    assert (await read_order(shop, boss, order["id"]))["status"] == "PAID"
    assert await stock(db, goods["mug"]) == 97
