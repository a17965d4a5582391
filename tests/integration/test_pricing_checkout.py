"""Discount codes and gift cards, from the cart to the order, on PostgreSQL and Redis.

Every limit is proven with real concurrent checkouts (asyncio.gather over the ASGI app,
each on its own database connection): a code's usage limit, once per customer, a gift
card's balance. What an order used is given back exactly once, when its payment fails or
it is cancelled.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from domain.discounts import Discount, DiscountScope, DiscountValue
from integrations.sandbox_gateway import SandboxGateway
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.tables import discount_redemptions, discounts, gift_cards, orders
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.conftest import FAST_PASSWORDS, TEST_PII_INDEX_KEY, TEST_PII_KEY
from tests.factories import CatalogFactory, MadeProduct
from tests.shop import ready_cart, staff_token, stock

MONEY = "{ amount }"
ALLOCATIONS = f"discountAllocations {{ discountedAmount {MONEY} title code }}"
COST = f"""cost {{ subtotalAmount {MONEY} discountsAmount {MONEY} shippingAmount {MONEY}
  taxAmount {MONEY} totalAmount {MONEY} giftCardsAmount {MONEY} checkoutChargeAmount {MONEY} }}"""
CART_FIELDS = f"""id {COST} discountCodes {{ code applicable reason }} {ALLOCATIONS}
  lines {{ quantity {ALLOCATIONS} }}
  appliedGiftCards {{ lastCharacters amountUsed {MONEY} balance {MONEY} }}"""
CART = f"query($id: ID!) {{ cart(id: $id) {{ {CART_FIELDS} }} }}"
SET_CODES = f"""mutation($id: ID!, $codes: [String!]!) {{
  cartDiscountCodesUpdate(input: {{cartId: $id, discountCodes: $codes}}) {{
    cart {{ {CART_FIELDS} }} userErrors {{ field code message }} }} }}"""
SET_CARDS = """mutation($id: ID!, $codes: [String!]!) {
  cartGiftCardCodesUpdate(input: {cartId: $id, giftCardCodes: $codes}) {
    userErrors { field code } } }"""
ISSUE = """mutation($value: String!) { giftCardCreate(input: {initialValue: $value}) {
  giftCard { id } giftCardCode userErrors { code } } }"""
ORDER_FIELDS = f"""id status {COST} {ALLOCATIONS} discountCodes
  lines {{ sku quantity {ALLOCATIONS} }}
  giftCardPayments {{ lastCharacters amount {MONEY} creditedBack }}"""
CHECKOUT = f"""mutation($input: CheckoutCompleteInput!) {{ checkoutComplete(input: $input) {{
  order {{ {ORDER_FIELDS} }} userErrors {{ field code message }} }} }}"""
CANCEL = f"""mutation($id: ID!) {{ orderCancel(input: {{orderId: $id}}) {{
  order {{ {ORDER_FIELDS} }} userErrors {{ code }} }} }}"""

NOW = datetime.now(UTC)


@pytest.fixture
async def gateway() -> SandboxGateway:
    return SandboxGateway()


@pytest.fixture
async def shop(
    settings: Settings, gateway: SandboxGateway, clean: None
) -> AsyncIterator[AppClient]:
    rushed = settings.model_copy(update={"checkout_wait_seconds": 10})
    async with running_app(rushed, gateway=gateway) as client:
        yield client


@pytest.fixture
async def goods(db: Database, clean: None) -> dict[str, MadeProduct]:
    make = CatalogFactory(db)
    return {
        "mug": await make.product("Mug", prices=[2_000], stock=[500]),
        "pen": await make.product("Pen", prices=[500], stock=[500]),
        # 19.22 + 5.99 shipping, 19% German tax: 30.00 exactly.
        "lamp": await make.product("Lamp", prices=[1_922], stock=[500]),
    }


async def add_discount(client: AppClient, title: str, **fields: Any) -> Discount:
    """Written through the store, as discountCreate does; carts see it at once."""
    draft = Discount(0, title, fields.pop("code", None), fields.pop("value"), **fields)
    container = client.container
    made = await container.discounts.create(draft)
    container.discount_finder.forget()
    return made


async def times_used(db: Database, discount: Discount) -> int:
    async with db.reader.connect() as connection:
        statement = select(discounts.c.times_used).where(discounts.c.id == discount.id)
        return int((await connection.execute(statement)).scalar_one())


async def balance(db: Database) -> list[int]:
    async with db.reader.connect() as connection:
        statement = select(gift_cards.c.balance).order_by(gift_cards.c.id)
        return [int(b) for b in (await connection.execute(statement)).scalars()]


async def order_count(db: Database) -> int:
    async with db.reader.connect() as connection:
        return len((await connection.execute(select(orders.c.id))).all())


async def set_codes(
    client: AppClient, cart_id: str, codes: list[str], token: str | None = None
) -> dict[str, Any]:
    answer = await client.query(SET_CODES, {"id": cart_id, "codes": codes}, token=token)
    payload: dict[str, Any] = answer.data["cartDiscountCodesUpdate"]
    return payload


async def gift_card(client: AppClient, db: Database, value: str) -> str:
    staff = await staff_token(client, db)
    issued = (await client.query(ISSUE, {"value": value}, token=staff)).data["giftCardCreate"]
    assert issued["userErrors"] == []
    code: str = issued["giftCardCode"]
    return code


async def apply_card(client: AppClient, cart_id: str, code: str) -> None:
    answer = await client.query(SET_CARDS, {"id": cart_id, "codes": [code]})
    assert answer.data["cartGiftCardCodesUpdate"]["userErrors"] == []


async def checkout(
    client: AppClient,
    cart_id: str,
    key: str,
    method: str | None = "pm_card_visa",
    token: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"cartId": cart_id, "idempotencyKey": key}
    if method is not None:
        body["paymentMethod"] = method
    answer = await client.query(CHECKOUT, {"input": body}, token=token)
    data: dict[str, Any] = answer.data["checkoutComplete"]
    return data


def cents(money: dict[str, str]) -> int:
    return int(Decimal(money["amount"]) * 100)


def adds_up(cost: dict[str, dict[str, str]]) -> None:
    """subtotal - discounts + shipping + tax = total; total - gift cards = charge."""
    c = {name: cents(value) for name, value in cost.items()}
    assert (
        c["subtotalAmount"] - c["discountsAmount"] + c["shippingAmount"] + c["taxAmount"]
        == c["totalAmount"]
    )
    assert c["totalAmount"] - c["giftCardsAmount"] == c["checkoutChargeAmount"]


def welcome(**more: Any) -> dict[str, Any]:
    return {"code": "WELCOME10", "value": DiscountValue.percentage(1_000), **more}


# -- the cart ------------------------------------------------------------------------------


async def test_a_code_takes_its_share_off_every_line_and_the_cart_adds_up(
    shop: AppClient, goods: dict[str, MadeProduct]
) -> None:
    await add_discount(shop, "Welcome", **welcome())
    pens = await add_discount(
        shop,
        "Pens 1.00 off",
        value=DiscountValue.fixed_amount(100),
        scope=DiscountScope.PRODUCTS,
        product_ids=frozenset({goods["pen"].id}),
    )
    cart_id = await ready_cart(shop, [(goods["mug"], 1), (goods["pen"], 2)])

    updated = await set_codes(shop, cart_id, ["  welcome10 "])

    cart = updated["cart"]
    assert updated["userErrors"] == []
    assert cart["discountCodes"] == [{"code": "WELCOME10", "applicable": True, "reason": None}]
    # Pens: 10.00 - 1.00 (automatic, once per line) = 9.00; then 10% of 20.00 + 9.00 = 2.90,
    # split 2.00 / 0.90 by what each line still costs.
    assert [line["discountAllocations"] for line in cart["lines"]] == [
        [{"discountedAmount": {"amount": "2.00"}, "title": "Welcome", "code": "WELCOME10"}],
        [
            {"discountedAmount": {"amount": "1.00"}, "title": pens.title, "code": None},
            {"discountedAmount": {"amount": "0.90"}, "title": "Welcome", "code": "WELCOME10"},
        ],
    ]
    assert cart["discountAllocations"] == [
        {"discountedAmount": {"amount": "2.90"}, "title": "Welcome", "code": "WELCOME10"},
        {"discountedAmount": {"amount": "1.00"}, "title": pens.title, "code": None},
    ]
    assert cart["cost"]["discountsAmount"] == {"amount": "3.90"}
    adds_up(cart["cost"])
    # Tax (19%) is on what is paid: 30.00 - 3.90 + 5.99 shipping = 32.09 -> 6.10.
    assert cart["cost"]["taxAmount"] == {"amount": "6.10"}


@pytest.mark.parametrize(
    ("discount", "reason"),
    [
        (None, "DISCOUNT_NOT_FOUND"),
        ({"active": False}, "DISCOUNT_NOT_APPLICABLE"),
        ({"starts_at": NOW + timedelta(days=1)}, "DISCOUNT_NOT_APPLICABLE"),
        ({"ends_at": NOW - timedelta(seconds=1)}, "DISCOUNT_EXPIRED"),
        ({"usage_limit": 1, "times_used": 1}, "DISCOUNT_EXHAUSTED"),
        (
            {"scope": DiscountScope.PRODUCTS, "product_ids": frozenset({999})},
            "DISCOUNT_NOT_APPLICABLE",
        ),
        ({"minimum_subtotal": 10_000}, "DISCOUNT_MINIMUM_NOT_MET"),
    ],
)
async def test_a_code_that_does_not_apply_is_kept_and_says_why(
    shop: AppClient,
    goods: dict[str, MadeProduct],
    db: Database,
    discount: dict[str, Any] | None,
    reason: str,
) -> None:
    if discount is not None:
        used = discount.pop("times_used", 0)
        made = await add_discount(shop, "Welcome", **welcome(**discount))
        if used:
            async with db.writer.begin() as connection:
                await connection.execute(
                    discounts.update().where(discounts.c.id == made.id).values(times_used=used)
                )
    cart_id = await ready_cart(shop, [(goods["mug"], 1)])

    updated = await set_codes(shop, cart_id, ["WELCOME10"])

    assert [(e["field"], e["code"]) for e in updated["userErrors"]] == [
        (["discountCodes", "0"], reason)
    ]
    cart = updated["cart"]
    assert cart["discountCodes"] == [{"code": "WELCOME10", "applicable": False, "reason": reason}]
    assert cart["cost"]["discountsAmount"] == {"amount": "0.00"}
    # Checkout refuses to charge a price the shopper did not accept: remove the code first.
    refused = await checkout(shop, cart_id, "key-refused-code")
    assert refused["order"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["discountCodes", "0"], reason)
    ]
    assert await order_count(db) == 0


async def test_text_that_cannot_be_a_code_refuses_the_list_and_the_cart_keeps_its_codes(
    shop: AppClient, goods: dict[str, MadeProduct]
) -> None:
    await add_discount(shop, "Welcome", **welcome())
    cart_id = await ready_cart(shop, [(goods["mug"], 1)])
    await set_codes(shop, cart_id, ["WELCOME10"])

    for codes, error in [
        (["WELCOME10", "no spaces inside"], (["discountCodes", "1"], "INVALID")),
        (["x" * 65], (["discountCodes", "0"], "TOO_LONG")),
        (["   "], (["discountCodes", "0"], "BLANK")),
        (["A", "B", "C", "D", "E", "F"], (["discountCodes"], "INVALID")),
    ]:
        refused = await set_codes(shop, cart_id, codes)
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [error]
        assert [c["code"] for c in refused["cart"]["discountCodes"]] == ["WELCOME10"]

    cleared = await set_codes(shop, cart_id, [])
    assert cleared["cart"]["discountCodes"] == [] and cleared["userErrors"] == []


async def test_free_shipping_takes_the_shipping_off_and_tax_follows(
    shop: AppClient, goods: dict[str, MadeProduct]
) -> None:
    await add_discount(shop, "Ships free", code="SHIPFREE", value=DiscountValue.free_shipping())
    cart_id = await ready_cart(shop, [(goods["pen"], 1)])

    cart = (await set_codes(shop, cart_id, ["shipfree"]))["cart"]

    assert cart["cost"]["shippingAmount"] == {"amount": "5.99"}
    assert cart["cost"]["discountsAmount"] == {"amount": "5.99"}
    assert cart["cost"]["taxAmount"] == {"amount": "0.95"}  # 19% of 5.00
    assert cart["cost"]["totalAmount"] == {"amount": "5.95"}
    adds_up(cart["cost"])


# -- checkout ------------------------------------------------------------------------------


async def test_an_order_records_its_discounts_and_what_was_charged(
    shop: AppClient, goods: dict[str, MadeProduct], gateway: SandboxGateway, db: Database
) -> None:
    welcome10 = await add_discount(shop, "Welcome", **welcome())
    cart_id = await ready_cart(shop, [(goods["mug"], 2), (goods["pen"], 1)])
    shown = (await set_codes(shop, cart_id, ["WELCOME10"]))["cart"]

    placed = await checkout(shop, cart_id, "key-discounted")

    order = placed["order"]
    assert placed["userErrors"] == [] and order["status"] == "PAID"
    assert order["cost"] == shown["cost"]
    adds_up(order["cost"])
    assert order["discountCodes"] == ["WELCOME10"]
    assert order["discountAllocations"] == shown["discountAllocations"]
    assert [line["discountAllocations"] for line in order["lines"]] == [
        line["discountAllocations"] for line in shown["lines"]
    ]
    assert [c.amount for c in gateway.charges] == [cents(order["cost"]["totalAmount"])]
    assert await times_used(db, welcome10) == 1

    replay = await checkout(shop, cart_id, "key-discounted")
    assert replay == placed  # the same order, counted once
    assert await times_used(db, welcome10) == 1 and len(gateway.charges) == 1


async def test_sixty_checkouts_for_a_code_limited_to_ten_give_exactly_ten_discounted_orders(
    shop: AppClient, goods: dict[str, MadeProduct], gateway: SandboxGateway, db: Database
) -> None:
    limited = await add_discount(shop, "Welcome", **welcome(usage_limit=10))
    carts = [await ready_cart(shop, [(goods["pen"], 1)]) for _ in range(60)]
    for cart_id in carts:
        assert (await set_codes(shop, cart_id, ["WELCOME10"]))["userErrors"] == []

    results = await asyncio.gather(
        *(checkout(shop, cart_id, f"rush-key-{i}") for i, cart_id in enumerate(carts))
    )

    paid = [r for r in results if r["order"] is not None]
    refused = [r for r in results if r["order"] is None]
    assert len(paid) == 10 and len(refused) == 50
    assert all(r["order"]["status"] == "PAID" for r in paid)
    assert all(r["order"]["discountCodes"] == ["WELCOME10"] for r in paid)
    assert Counter(e["code"] for r in refused for e in r["userErrors"]) == {
        "DISCOUNT_EXHAUSTED": 50
    }
    assert all(r["userErrors"][0]["field"] == ["discountCodes", "0"] for r in refused)
    assert await times_used(db, limited) == 10
    assert len(gateway.charges) == 10 and await order_count(db) == 10
    assert await stock(db, goods["pen"]) == 490  # the refused took no stock
    # The shopper may still buy at full price: without the code the same cart checks out.
    full_price = _refused_cart(results, carts)
    await set_codes(shop, full_price, [])
    again = await checkout(shop, full_price, "rush-key-full-price")
    assert again["order"]["status"] == "PAID" and again["order"]["discountCodes"] == []


def _refused_cart(results: list[dict[str, Any]], carts: list[str]) -> str:
    return next(c for r, c in zip(results, carts, strict=True) if r["order"] is None)


async def test_a_declined_payment_gives_the_use_back_and_a_cancel_does_too(
    shop: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    once = await add_discount(shop, "Welcome", **welcome(usage_limit=1))
    declined_cart = await ready_cart(shop, [(goods["pen"], 1)])
    await set_codes(shop, declined_cart, ["WELCOME10"])

    declined = await checkout(shop, declined_cart, "key-declined", "pm_card_chargeDeclined")

    assert declined["order"]["status"] == "PAYMENT_FAILED"
    assert [e["code"] for e in declined["userErrors"]] == ["PAYMENT_DECLINED"]
    assert await times_used(db, once) == 0
    paid = await checkout(shop, declined_cart, "key-declined-retry")  # a new key, another card
    assert paid["order"]["status"] == "PAID" and paid["order"]["discountCodes"] == ["WELCOME10"]
    assert await times_used(db, once) == 1

    boss = await staff_token(shop, db)
    cancelled = (await shop.query(CANCEL, {"id": paid["order"]["id"]}, token=boss)).data
    assert cancelled["orderCancel"]["order"]["status"] == "CANCELLED"
    assert await times_used(db, once) == 0
    again = (await shop.query(CANCEL, {"id": paid["order"]["id"]}, token=boss)).data
    assert again["orderCancel"]["userErrors"] == [{"code": "INVALID_TRANSITION"}]
    assert await times_used(db, once) == 0  # given back once


async def test_once_per_customer_holds_under_five_concurrent_checkouts_by_one_customer(
    shop: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    once = await add_discount(shop, "Welcome", **welcome(once_per_customer=True))
    token = await customer_token(shop, "ann@example.com")
    carts = [await ready_cart(shop, [(goods["pen"], 1)], token=token) for _ in range(5)]
    for cart_id in carts:
        await set_codes(shop, cart_id, ["WELCOME10"], token=token)

    results = await asyncio.gather(
        *(checkout(shop, c, f"once-key-{i}", token=token) for i, c in enumerate(carts))
    )

    paid = [r for r in results if r["order"] is not None]
    assert len(paid) == 1 and paid[0]["order"]["discountCodes"] == ["WELCOME10"]
    assert Counter(e["code"] for r in results for e in r["userErrors"]) == {"DISCOUNT_EXHAUSTED": 4}
    assert await times_used(db, once) == 1
    # The same email as a guest is the same buyer.
    guest_cart = await ready_cart(shop, [(goods["pen"], 1)])  # ann@example.com
    shown = await set_codes(shop, guest_cart, ["WELCOME10"])
    assert shown["cart"]["discountCodes"][0]["reason"] == "DISCOUNT_EXHAUSTED"
    async with db.reader.connect() as connection:
        keys = (await connection.execute(select(discount_redemptions.c.buyer_key))).scalars()
        assert sorted(k.split(":")[0] for k in keys) == ["customer", "email"]
        assert not any("ann" in k for k in keys)


# -- gift cards ----------------------------------------------------------------------------


async def test_ten_checkouts_needing_thirty_from_a_fifty_card_debit_it_once(
    shop: AppClient, goods: dict[str, MadeProduct], gateway: SandboxGateway, db: Database
) -> None:
    code = await gift_card(shop, db, "50.00")
    carts = [await ready_cart(shop, [(goods["lamp"], 1)]) for _ in range(10)]
    for cart_id in carts:
        await apply_card(shop, cart_id, code)
    shown = (await shop.query(CART, {"id": carts[0]})).data["cart"]
    assert shown["cost"]["totalAmount"] == {"amount": "30.00"}
    assert shown["cost"]["checkoutChargeAmount"] == {"amount": "0.00"}

    results = await asyncio.gather(
        *(checkout(shop, c, f"card-key-{i}", method=None) for i, c in enumerate(carts))
    )

    paid = [r for r in results if r["order"] is not None]
    assert len(paid) == 1 and paid[0]["order"]["status"] == "PAID"
    assert paid[0]["order"]["giftCardPayments"] == [
        {"lastCharacters": code[-4:], "amount": {"amount": "30.00"}, "creditedBack": False}
    ]
    adds_up(paid[0]["order"]["cost"])
    # A checkout that read the card before the winner's debit planned 30.00 from it and
    # lost the conditional debit; one that read it after sees 20.00, which does not pay
    # it all, and was given no card for the rest. Either way: no order, nothing debited.
    codes = Counter(e["code"] for r in results for e in r["userErrors"])
    assert sum(codes.values()) == 9
    assert set(codes) <= {"GIFT_CARD_BALANCE_CHANGED", "MISSING_PAYMENT_METHOD"}
    assert await order_count(db) == 1
    assert await balance(db) == [2_000]
    assert gateway.charges == []  # the card paid it all
    # The next checkout sees 20.00 left and asks a card for the rest.
    retry_cart = _refused_cart(results, carts)
    assert (await shop.query(CART, {"id": retry_cart})).data["cart"]["cost"][
        "checkoutChargeAmount"
    ] == {"amount": "10.00"}
    missing = await checkout(shop, retry_cart, "card-key-no-method", method=None)
    assert [e["code"] for e in missing["userErrors"]] == ["MISSING_PAYMENT_METHOD"]
    rest = await checkout(shop, retry_cart, "card-key-with-method")
    assert rest["order"]["status"] == "PAID" and [c.amount for c in gateway.charges] == [1_000]
    assert await balance(db) == [0]


async def test_a_declined_card_and_a_cancel_credit_the_gift_card_back_once(
    shop: AppClient, goods: dict[str, MadeProduct], gateway: SandboxGateway, db: Database
) -> None:
    code = await gift_card(shop, db, "10.00")
    cart_id = await ready_cart(shop, [(goods["mug"], 1)])
    await apply_card(shop, cart_id, code)

    declined = await checkout(shop, cart_id, "gift-declined", "pm_card_chargeDeclined")

    order = declined["order"]
    assert order["status"] == "PAYMENT_FAILED"
    assert order["giftCardPayments"][0]["creditedBack"] is True
    assert await balance(db) == [1_000]

    paid = await checkout(shop, cart_id, "gift-paid")
    assert paid["order"]["status"] == "PAID" and await balance(db) == [0]
    charged = cents(paid["order"]["cost"]["checkoutChargeAmount"])
    assert [c.amount for c in gateway.charges][-1] == charged
    boss = await staff_token(shop, db)
    cancelled = (await shop.query(CANCEL, {"id": paid["order"]["id"]}, token=boss)).data
    assert cancelled["orderCancel"]["order"]["giftCardPayments"][0]["creditedBack"] is True
    assert await balance(db) == [1_000]
    await shop.query(CANCEL, {"id": paid["order"]["id"]}, token=boss)
    assert await balance(db) == [1_000]


async def test_a_checkout_with_a_code_and_a_gift_card_costs_a_fixed_number_of_statements(
    shop: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    await add_discount(shop, "Welcome", **welcome(usage_limit=100))
    code = await gift_card(shop, db, "5.00")
    plain = await ready_cart(shop, [(goods["mug"], 1)])
    priced = await ready_cart(shop, [(goods["mug"], 1)])
    await set_codes(shop, priced, ["WELCOME10"])  # the code's discount is now kept
    await apply_card(shop, priced, code)

    async def statements(cart_id: str, key: str) -> int:
        variables = {
            "input": {"cartId": cart_id, "idempotencyKey": key, "paymentMethod": "pm_card_visa"}
        }
        answer = await shop.query(CHECKOUT, variables)
        assert answer.data["checkoutComplete"]["order"]["status"] == "PAID"
        return answer.statements

    without = await statements(plain, "budget-plain")
    with_both = await statements(priced, "budget-priced")

    # test_checkout.py's one-line checkout (15), and 2 for this answer's order fields
    # (discountAllocations and giftCardPayments, one loader each). The automatic discounts
    # and the code's are kept in process; the code costs its count (1) and its allocations
    # (1), the card its read (1), its debit (1) and its payment row (1).
    assert (without, with_both) == (15 + 2, 15 + 2 + 5)


async def test_discounted_orders_never_leave_a_negative_or_inexact_total(
    shop: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    await add_discount(shop, "Huge", code="HUGE", value=DiscountValue.fixed_amount(1_000_000))
    cart_id = await ready_cart(shop, [(goods["pen"], 3)])
    cart = (await set_codes(shop, cart_id, ["HUGE"]))["cart"]
    assert cart["cost"]["discountsAmount"] == {"amount": "15.00"}  # never more than the lines
    adds_up(cart["cost"])
    placed = await checkout(shop, cart_id, "key-huge")
    assert placed["order"]["status"] == "PAID"
    adds_up(placed["order"]["cost"])


async def test_codes_limits_and_gift_cards_work_on_the_embedded_sqlite(
    tmp_path: Path, gateway: SandboxGateway
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    await upgrade(url)
    settings = Settings(
        environment="development",
        database_url=url,
        data_dir=str(tmp_path),
        pii_encryption_keys=SecretStr(TEST_PII_KEY),
        pii_index_key=SecretStr(TEST_PII_INDEX_KEY),  # staff_token finds the account by it
        run_worker_in_process=False,
        **FAST_PASSWORDS,
    )
    async with running_app(settings, gateway=gateway) as client:
        db = client.container.db
        pen = await CatalogFactory(db).product("Pen", prices=[500], stock=[10])
        once = await add_discount(
            client, "Welcome", **welcome(usage_limit=1, ends_at=NOW + timedelta(days=1))
        )
        code = await gift_card(client, db, "2.00")
        first = await ready_cart(client, [(pen, 1)])
        second = await ready_cart(client, [(pen, 1)])
        for cart_id in (first, second):
            await set_codes(client, cart_id, ["WELCOME10"])
        await apply_card(client, first, code)

        declined = await checkout(client, first, "embedded-declined", "pm_card_chargeDeclined")
        given_back = (await times_used(db, once), await balance(db))
        paid = await checkout(client, first, "embedded-paid")
        exhausted = await checkout(client, second, "embedded-exhausted")

    assert declined["order"]["status"] == "PAYMENT_FAILED" and given_back == (0, [200])
    assert paid["order"]["status"] == "PAID" and paid["order"]["discountCodes"] == ["WELCOME10"]
    adds_up(paid["order"]["cost"])
    assert paid["order"]["cost"]["giftCardsAmount"] == {"amount": "2.00"}
    assert [e["code"] for e in exhausted["userErrors"]] == ["DISCOUNT_EXHAUSTED"]
