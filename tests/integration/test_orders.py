"""Orders after checkout: who sees them, staff fulfilment and cancellation with refunds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from integrations.sandbox_gateway import SandboxGateway
from persistence.db import Database
from persistence.tables import customers
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.conftest import SEED_COLUMNS
from tests.factories import CatalogFactory, MadeProduct
from tests.shop import ready_cart, stock

PLACE = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id number status } userErrors { code } } }"""
ORDER = "query($id: ID!) { order(id: $id) { id status email lines { sku quantity } } }"
MY_ORDERS = "query($a: String) { me { orders(first: 2, after: $a) { edges { node { number status } } pageInfo { hasNextPage endCursor } } } }"
FULFIL = "mutation($id: ID!) { orderFulfill(input: {orderId: $id}) { order { status } userErrors { code } } }"
CANCEL = "mutation($id: ID!) { orderCancel(input: {orderId: $id}) { order { status } userErrors { code } } }"


@pytest.fixture
async def gateway() -> SandboxGateway:
    return SandboxGateway()


@pytest.fixture
async def shop(
    settings: Settings, gateway: SandboxGateway, clean: None
) -> AsyncIterator[AppClient]:
    async with running_app(settings, gateway=gateway) as client:
        yield client


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])


async def place(
    client: AppClient, mug: MadeProduct, token: str, key: str, quantity: int = 1
) -> str:
    cart = await ready_cart(client, [(mug, quantity)], token=token)
    result = await client.query(
        PLACE,
        {"input": {"cartId": cart, "idempotencyKey": key, "paymentMethod": "pm_card_visa"}},
        token=token,
    )
    order_id: str = result.data["checkoutComplete"]["order"]["id"]
    return order_id


async def staff_token(client: AppClient, db: Database) -> str:
    token = await customer_token(client, "boss@example.com")
    async with db.writer.begin() as connection:
        await connection.execute(
            update(customers)
            .where(customers.c.email_index == SEED_COLUMNS.index_of("boss@example.com"))
            .values(is_staff=True)
        )
    return token


async def test_orders_are_visible_to_their_customer_and_staff_only(
    shop: AppClient, mug: MadeProduct, db: Database
) -> None:
    ann = await customer_token(shop, "ann@example.com")
    bob = await customer_token(shop, "bob@example.com")
    boss = await staff_token(shop, db)
    order_id = await place(shop, mug, ann, "order-key-1", quantity=2)

    mine = (await shop.query(ORDER, {"id": order_id}, token=ann)).data["order"]
    theirs = (await shop.query(ORDER, {"id": order_id}, token=bob)).data["order"]
    anonymous = (await shop.query(ORDER, {"id": order_id})).data["order"]
    staff = (await shop.query(ORDER, {"id": order_id}, token=boss)).data["order"]
    garbage = (await shop.query(ORDER, {"id": "nope"}, token=boss)).data["order"]

    assert (
        mine
        == staff
        == {
            "id": order_id,
            "status": "PAID",
            "email": "ann@example.com",
            "lines": [{"sku": "MUG-0", "quantity": 2}],
        }
    )
    assert theirs is None and anonymous is None and garbage is None


async def test_me_lists_my_orders_newest_first(shop: AppClient, mug: MadeProduct) -> None:
    ann = await customer_token(shop, "ann@example.com")
    numbers = []
    for i in range(3):
        await place(shop, mug, ann, f"order-key-{i}")
    page1 = (await shop.query(MY_ORDERS, token=ann)).data["me"]["orders"]
    page2 = (await shop.query(MY_ORDERS, {"a": page1["pageInfo"]["endCursor"]}, token=ann)).data[
        "me"
    ]["orders"]
    numbers = [e["node"]["number"] for e in page1["edges"] + page2["edges"]]

    assert len(numbers) == 3 and numbers == sorted(numbers, reverse=True)
    assert page1["pageInfo"]["hasNextPage"] is True and page2["pageInfo"]["hasNextPage"] is False


async def test_staff_fulfil_and_cancel_with_refund_and_stock_back(
    shop: AppClient, mug: MadeProduct, db: Database, gateway: SandboxGateway
) -> None:
    ann = await customer_token(shop, "ann@example.com")
    boss = await staff_token(shop, db)
    to_fulfil = await place(shop, mug, ann, "order-key-a", quantity=2)
    to_cancel = await place(shop, mug, ann, "order-key-b", quantity=3)

    fulfilled = (await shop.query(FULFIL, {"id": to_fulfil}, token=boss)).data["orderFulfill"]
    cancel_fulfilled = (await shop.query(CANCEL, {"id": to_fulfil}, token=boss)).data["orderCancel"]
    cancelled = (await shop.query(CANCEL, {"id": to_cancel}, token=boss)).data["orderCancel"]
    fulfil_cancelled = (await shop.query(FULFIL, {"id": to_cancel}, token=boss)).data[
        "orderFulfill"
    ]

    assert fulfilled == {"order": {"status": "FULFILLED"}, "userErrors": []}
    assert cancel_fulfilled == {"order": None, "userErrors": [{"code": "INVALID_TRANSITION"}]}
    assert cancelled == {"order": {"status": "CANCELLED"}, "userErrors": []}
    assert fulfil_cancelled == {"order": None, "userErrors": [{"code": "INVALID_TRANSITION"}]}
    assert await stock(db, mug) == 10 - 2  # the cancelled order's 3 units are back
    assert len(gateway.charges) == 2


async def test_customers_cannot_run_staff_mutations(shop: AppClient, mug: MadeProduct) -> None:
    ann = await customer_token(shop, "ann@example.com")
    order_id = await place(shop, mug, ann, "order-key-c")

    as_customer = await shop.query(CANCEL, {"id": order_id}, token=ann)
    as_guest = await shop.query(FULFIL, {"id": order_id})

    assert as_customer.error_codes == ["FORBIDDEN"]
    assert as_guest.error_codes == ["UNAUTHENTICATED"]
    assert (await shop.query(ORDER, {"id": order_id}, token=ann)).data["order"]["status"] == "PAID"
