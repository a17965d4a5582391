"""The account screen of a storefront: the address book and the order history with its
shipments, in one query, for a constant number of SQL statements whatever its size."""

from __future__ import annotations

from persistence.db import Database
from tests.client import AppClient, customer_token
from tests.factories import MadeProduct
from tests.integration.test_order_fulfillments import fulfil, goods, place, shop  # noqa: F401
from tests.shop import ADDRESS, staff_token

ADD = """mutation($a: MailingAddressInput!) { customerAddressCreate(input: {address: $a}) {
  userErrors { code } } }"""
ACCOUNT_SCREEN = """query($orders: Int!) { me {
  email name emailVerified
  defaultAddress { id city }
  addresses(first: 50) { edges { node { id address1 city countryCode isDefault } } }
  orders(first: $orders) { edges { node { number status fulfillmentStatus
    fulfillments { trackingNumber fulfillmentLineItems { lineItem { sku } quantity } }
    statusHistory { status at } } } } } }"""


async def test_addresses_and_orders_with_fulfilments_cost_the_same_for_any_size(
    shop: AppClient,  # noqa: F811
    goods: dict[str, MadeProduct],  # noqa: F811
    db: Database,
) -> None:
    boss = await staff_token(shop, db)
    small_token = await customer_token(shop, "small@example.com")
    big_token = await customer_token(shop, "big@example.com")
    for token, addresses, orders in ((small_token, 1, 1), (big_token, 12, 20)):
        for i in range(addresses):
            added = await shop.query(ADD, {"a": {**ADDRESS, "city": f"City {i}"}}, token=token)
            assert added.data["customerAddressCreate"]["userErrors"] == []
        for i in range(orders):
            order = await place(shop, [(goods["mug"], 1)], f"screen-{token[:8]}-{i}", token=token)
            await fulfil(shop, boss, orderId=order["id"], tracking={"number": f"T{i}"})

    screens = {
        name: await shop.query(ACCOUNT_SCREEN, {"orders": 20}, token=token)
        for name, token in (("small", small_token), ("big", big_token))
    }

    big_me = screens["big"].data["me"]
    assert len(big_me["addresses"]["edges"]) == 12 and big_me["defaultAddress"]["city"] == "City 0"
    assert len(big_me["orders"]["edges"]) == 20
    assert all(e["node"]["fulfillmentStatus"] == "FULFILLED" for e in big_me["orders"]["edges"])
    assert all(len(e["node"]["fulfillments"]) == 1 for e in big_me["orders"]["edges"])
    # the customer, the default address, the addresses page, the orders page, their lines,
    # their fulfilments, their status history: one statement each, whatever the sizes
    assert screens["small"].statements == screens["big"].statements == 7
