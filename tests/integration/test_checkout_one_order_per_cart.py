"""A cart becomes at most one order, whatever idempotency keys its checkouts carry.

Real concurrent requests over the app on PostgreSQL: the order row claims the cart in the
placing transaction, so the checkouts of one cart serialise on it and only the first
reserves stock and charges.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from domain.addresses import MailingAddress
from domain.orders import CartTaken, NewOrder, Order, OrderLine
from domain.payments import ChargeRequest, ChargeResult
from integrations.sandbox_gateway import SandboxGateway
from persistence.db import Database, create_database
from persistence.migrate import upgrade
from persistence.orders.order_store import SqlOrderStore
from persistence.pii import PiiCipher, pii_keys
from persistence.tables import inventory_levels, orders
from schema.global_id import encode_gid
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.conftest import TEST_PII_KEY
from tests.factories import CatalogFactory, MadeProduct
from tests.integration.test_checkout import CHECKOUT, checkout
from tests.shop import ready_cart, stock


class CountingGateway(SandboxGateway):
    """The sandbox, counting every charge call, whatever its key."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        self.calls += 1
        return await super().charge(request)


@pytest.fixture
async def gateway() -> CountingGateway:
    return CountingGateway()


@pytest.fixture
async def shop(
    settings: Settings, gateway: CountingGateway, clean: None
) -> AsyncIterator[AppClient]:
    async with running_app(settings, gateway=gateway) as client:
        yield client


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])


async def order_rows(db: Database) -> list[dict[str, Any]]:
    async with db.reader.connect() as connection:
        rows = await connection.execute(select(orders.c.public_id, orders.c.status))
    return [dict(row._mapping) for row in rows]


@pytest.mark.parametrize("buyer", ["guest", "customer"])
async def test_twenty_checkouts_of_one_cart_with_twenty_keys_make_one_order_and_one_charge(
    shop: AppClient, mug: MadeProduct, gateway: CountingGateway, db: Database, buyer: str
) -> None:
    # given: a cart, and a client that makes a new key per tap
    token = await customer_token(shop, "ann@example.com") if buyer == "customer" else None
    cart_id = await ready_cart(shop, [(mug, 2)], token=token)

    # when
    responses = await asyncio.gather(
        *(
            shop.query(
                CHECKOUT,
                {
                    "input": {
                        "cartId": cart_id,
                        "idempotencyKey": f"tap-{buyer}-{i:02d}",
                        "paymentMethod": "pm_card_visa",
                    }
                },
                token=token,
            )
            for i in range(20)
        )
    )

    # then
    assert {r.status for r in responses} == {200}
    [row] = await order_rows(db)
    assert row["status"] == "PAID"
    answers = [r.data["checkoutComplete"] for r in responses]
    assert all(a["userErrors"] == [] for a in answers)  # one buyer: every tap sees the order
    assert {a["order"]["id"] for a in answers} == {encode_gid("Order", row["public_id"])}
    assert gateway.calls == 1 and len(gateway.charges) == 1
    assert await stock(db, mug) == 8


async def test_a_guest_cart_raced_by_two_buyers_goes_to_one_the_other_is_told(
    shop: AppClient, mug: MadeProduct, gateway: CountingGateway, db: Database
) -> None:
    # given: a guest cart's id is its capability; a signed-in customer may use it too
    cart_id = await ready_cart(shop, [(mug, 1)])
    bob = await customer_token(shop, "bob@example.com")

    # when
    responses = await asyncio.gather(
        *(
            shop.query(
                CHECKOUT,
                {
                    "input": {
                        "cartId": cart_id,
                        "idempotencyKey": f"race-key-{i:02d}",
                        "paymentMethod": "pm_card_visa",
                    }
                },
                token=bob if i % 2 else None,
            )
            for i in range(20)
        )
    )

    # then: the winner's side gets the order, the other side CART_ALREADY_CHECKED_OUT
    assert {r.status for r in responses} == {200}
    [row] = await order_rows(db)
    order_id = encode_gid("Order", row["public_id"])
    by_side: dict[bool, Counter[str]] = {True: Counter(), False: Counter()}
    for i, response in enumerate(responses):
        answer = response.data["checkoutComplete"]
        seen = answer["order"]["id"] if answer["order"] else answer["userErrors"][0]["code"]
        assert seen in (order_id, "CART_ALREADY_CHECKED_OUT")
        by_side[bool(i % 2)][seen] += 1
    assert sorted(len(counts) for counts in by_side.values()) == [1, 1]
    assert set(by_side[True]) != set(by_side[False])
    assert gateway.calls == 1 and await stock(db, mug) == 9


async def test_a_paid_cart_checked_out_again_answers_with_its_order(
    shop: AppClient, mug: MadeProduct, gateway: CountingGateway, db: Database
) -> None:
    # given: the cart was paid, so it is gone from Redis
    ann = await customer_token(shop, "ann@example.com")
    cart_id = await ready_cart(shop, [(mug, 1)], token=ann)
    paid = await checkout(shop, cart_id, "first-key-1", token=ann)
    bob = await customer_token(shop, "bob@example.com")

    # when
    again = await checkout(shop, cart_id, "second-key-1", token=ann)
    stranger = await checkout(shop, cart_id, "third-key-1", token=bob)
    guest = await checkout(shop, cart_id, "fourth-key-1")

    # then
    assert paid["order"]["status"] == "PAID"
    assert again == paid  # the same order, as a replay would answer
    for answer in (stranger, guest):
        assert answer["order"] is None
        assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
            ("CART_ALREADY_CHECKED_OUT", ["cartId"])
        ]
    assert gateway.calls == 1 and len(await order_rows(db)) == 1
    assert await stock(db, mug) == 9


async def test_after_a_decline_the_same_cart_pays_with_a_new_key_and_another_card(
    shop: AppClient, mug: MadeProduct, gateway: CountingGateway, db: Database
) -> None:
    # given
    cart_id = await ready_cart(shop, [(mug, 3)])
    declined = await checkout(shop, cart_id, "decline-1", "pm_card_chargeDeclined")

    # when: a failed payment does not hold the cart
    paid = await checkout(shop, cart_id, "decline-2", "pm_card_mastercard")

    # then
    assert declined["order"]["status"] == "PAYMENT_FAILED"
    assert paid["order"]["status"] == "PAID" and paid["userErrors"] == []
    assert Counter(r["status"] for r in await order_rows(db)) == {"PAYMENT_FAILED": 1, "PAID": 1}
    assert await stock(db, mug) == 7  # down once, net
    assert len(gateway.charges) == 1


@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
async def test_the_embedded_sqlite_database_also_keeps_one_live_order_per_cart(
    tmp_path: Path,
) -> None:
    # given: the embedded database, migrated, with one product
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    await upgrade(url)
    db = create_database(url)
    try:
        mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
        store = SqlOrderStore(db, PiiCipher(pii_keys(TEST_PII_KEY, str(tmp_path))))
        line = OrderLine(mug.variant_ids[0], mug.id, "MUG-0", "Mug", 1200, 1)

        def new_order(public_id: str) -> NewOrder:
            return NewOrder(
                public_id=public_id,
                customer_id=None,
                cart_id="cart-on-sqlite-1",
                currency_code="USD",
                subtotal=1200,
                shipping=0,
                tax=0,
                total=1200,
                email="ann@example.com",
                shipping_address=MailingAddress(
                    "Ann", "Lee", "1 Main St", "", "Berlin", "", "10115", "DE", ""
                ),
                payment_method="pm_card_visa",
                lines=(line,),
                status_token_hash=f"hash-of-{public_id}",
            )

        expires = datetime.now(UTC) + timedelta(minutes=30)

        # when
        first = await store.place(1, new_order("sqlite-order-1"), expires)
        second = await store.place(2, new_order("sqlite-order-2"), expires)

        # then
        assert isinstance(first, Order)
        assert isinstance(second, CartTaken) and second.order.public_id == "sqlite-order-1"
        async with db.reader.connect() as connection:
            left = (
                await connection.execute(
                    select(inventory_levels.c.available).where(
                        inventory_levels.c.variant_id == mug.variant_ids[0]
                    )
                )
            ).scalar_one()
        assert left == 9
    finally:
        await db.dispose()
