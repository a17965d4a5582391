"""Shipping zones and methods end to end: what a cart may ship by, what it pays, what
checkout charges and records, and what staff may set up (everyone else may not)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from domain.events import Topic
from domain.shipping import method_handle
from persistence.db import Database
from persistence.seed import seed_catalog
from persistence.shipping.editor import read_zones
from persistence.tables import (
    order_lines,
    orders,
    outbox,
    shipping_methods,
    shipping_zone_countries,
    shipping_zones,
)
from schema.global_id import encode_gid
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.conftest import SEED_COLUMNS
from tests.factories import CatalogFactory, MadeProduct
from tests.shop import ADDRESS, staff_token, stock, vid

OPTION = "handle title estimatedCost { amount } deliveryRange { minDays maxDays }"
CART_FIELDS = f"""id checkoutReady cost {{ subtotalAmount {{ amount }} shippingAmount {{ amount }}
  taxAmount {{ amount }} totalAmount {{ amount }} }}
  deliveryOptions {{ {OPTION} }} selectedDeliveryOption {{ {OPTION} }}"""
CART = f"query($id: ID!) {{ cart(id: $id) {{ {CART_FIELDS} }} }}"
CREATE_CART = f"""mutation($input: CartCreateInput!) {{ cartCreate(input: $input) {{
  cart {{ {CART_FIELDS} }} userErrors {{ field code }} }} }}"""
SET_ADDRESS = """mutation($id: ID!, $a: MailingAddressInput!) {
  cartShippingAddressUpdate(input: {cartId: $id, address: $a}) { userErrors { code } } }"""
SELECT = f"""mutation($input: CartSelectedDeliveryOptionUpdateInput!) {{
  cartSelectedDeliveryOptionUpdate(input: $input) {{ cart {{ {CART_FIELDS} }}
  userErrors {{ field code message }} }} }}"""
CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { status cost { shippingAmount { amount } totalAmount { amount } }
          shippingMethod { title handle } }
  userErrors { field code message } } }"""
ZONE_FIELDS = "id name countryCodes methods { id handle title price { amount } }"
ZONE_CREATE = f"""mutation($input: ShippingZoneCreateInput!) {{ shippingZoneCreate(input: $input) {{
  shippingZone {{ {ZONE_FIELDS} }} userErrors {{ field code message }} }} }}"""
ZONE_UPDATE = f"""mutation($input: ShippingZoneUpdateInput!) {{ shippingZoneUpdate(input: $input) {{
  shippingZone {{ {ZONE_FIELDS} }} userErrors {{ field code message }} }} }}"""
METHOD_FIELDS = """id handle title price { amount } minSubtotal { amount } maxSubtotal { amount }
  deliveryRange { minDays maxDays } active"""
METHOD_CREATE = f"""mutation($input: ShippingMethodCreateInput!) {{ shippingMethodCreate(input: $input) {{
  shippingMethod {{ {METHOD_FIELDS} }} userErrors {{ field code message }} }} }}"""
METHOD_UPDATE = f"""mutation($input: ShippingMethodUpdateInput!) {{ shippingMethodUpdate(input: $input) {{
  shippingMethod {{ {METHOD_FIELDS} }} userErrors {{ field code message }} }} }}"""
METHOD_DELETE = """mutation($input: ShippingMethodDeleteInput!) { shippingMethodDelete(input: $input) {
  deletedShippingMethodId userErrors { field code message } } }"""
US_ADDRESS = {**ADDRESS, "city": "Boston", "zip": "02108", "countryCode": "US"}


@pytest.fixture
async def goods(db: Database, clean: None) -> dict[str, MadeProduct]:
    make = CatalogFactory(db)
    return {
        "mug": await make.product("Mug", prices=[2_000], stock=[10]),
        "cent": await make.product("Cent", prices=[1], stock=[100]),
        "lamp": await make.product("Lamp", prices=[4_999], stock=[10]),
    }


class Shop:
    """A staff member setting shipping up through the API."""

    def __init__(self, client: AppClient, token: str) -> None:
        self.client, self.token = client, token

    async def zone(self, name: str, countries: list[str]) -> dict[str, Any]:
        answer = await self.client.query(
            ZONE_CREATE, {"input": {"name": name, "countryCodes": countries}}, token=self.token
        )
        created: dict[str, Any] = answer.data["shippingZoneCreate"]
        assert created["userErrors"] == []
        return created["shippingZone"]

    async def method(self, zone: dict[str, Any], title: str, price: str, **more: Any) -> str:
        values = {"zoneId": zone["id"], "title": title, "price": price, **more}
        answer = await self.client.query(METHOD_CREATE, {"input": values}, token=self.token)
        created: dict[str, Any] = answer.data["shippingMethodCreate"]
        assert created["userErrors"] == []
        return str(created["shippingMethod"]["handle"])

    async def delete(self, handle_owner_id: str) -> None:
        answer = await self.client.query(
            METHOD_DELETE, {"input": {"id": handle_owner_id}}, token=self.token
        )
        assert answer.data["shippingMethodDelete"]["userErrors"] == []


@pytest.fixture
async def shop(client: AppClient, db: Database) -> Shop:
    return Shop(client, await staff_token(client, db))


async def domestic(shop: Shop) -> dict[str, str]:
    """US: Standard $4 below $50, free from $50, Express $15 always."""
    zone = await shop.zone("Domestic", ["us"])
    return {
        "standard": await shop.method(
            zone, "Standard", "4.00", maxSubtotal="49.99", minDeliveryDays=3, maxDeliveryDays=5
        ),
        "free": await shop.method(zone, "Free", "0", minSubtotal="50.00"),
        "express": await shop.method(
            zone, "Express", "15.00", minDeliveryDays=1, maxDeliveryDays=2
        ),
    }


async def new_cart(
    client: AppClient,
    lines: list[tuple[MadeProduct, int]],
    address: dict[str, str] | None = None,
    country: str | None = None,
    token: str | None = None,
) -> str:
    buyer: dict[str, str] = {"email": "ann@example.com"}
    if country:
        buyer["countryCode"] = country
    made = await client.query(
        CREATE_CART,
        {
            "input": {
                "lines": [{"variantId": vid(m), "quantity": q} for m, q in lines],
                "buyerIdentity": buyer,
            }
        },
        token=token,
    )
    cart_id: str = made.data["cartCreate"]["cart"]["id"]
    if address is not None:
        await client.query(SET_ADDRESS, {"id": cart_id, "a": address}, token=token)
    return cart_id


async def read_cart(client: AppClient, cart_id: str, token: str | None = None) -> dict[str, Any]:
    cart: dict[str, Any] = (await client.query(CART, {"id": cart_id}, token=token)).data["cart"]
    return cart


def titles(cart: dict[str, Any]) -> list[tuple[str, str]]:
    return [(o["title"], o["estimatedCost"]["amount"]) for o in cart["deliveryOptions"]]


def shipping(cart: dict[str, Any]) -> str:
    return str(cart["cost"]["shippingAmount"]["amount"])


async def checkout(client: AppClient, cart_id: str, key: str) -> dict[str, Any]:
    answer = await client.query(
        CHECKOUT,
        {"input": {"cartId": cart_id, "idempotencyKey": key, "paymentMethod": "pm_card_visa"}},
    )
    result: dict[str, Any] = answer.data["checkoutComplete"]
    return result


async def count(db: Database, table: Any) -> int:
    async with db.reader.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


# -- the default zone: today's flat rate with no setup ----------------------------------


async def test_a_new_store_ships_everywhere_at_the_flat_rate_and_free_from_the_threshold(
    client: AppClient, goods: dict[str, MadeProduct]
) -> None:
    below = await new_cart(client, [(goods["lamp"], 1)], address=US_ADDRESS)  # $49.99
    at = await new_cart(client, [(goods["lamp"], 1), (goods["cent"], 1)], address=US_ADDRESS)
    unknown = await new_cart(client, [(goods["mug"], 1)])

    below_cart, at_cart = await read_cart(client, below), await read_cart(client, at)
    unknown_cart = await read_cart(client, unknown)

    assert titles(below_cart) == [("Standard", "5.99")]
    assert below_cart["deliveryOptions"][0]["deliveryRange"] == {"minDays": 3, "maxDays": 7}
    assert below_cart["selectedDeliveryOption"]["title"] == "Standard"
    assert below_cart["checkoutReady"] is True
    assert (shipping(below_cart), below_cart["cost"]["totalAmount"]["amount"]) == ("5.99", "55.98")
    assert titles(at_cart) == [("Standard", "0.00")]
    assert shipping(at_cart) == "0.00"
    # No destination yet: no options to choose from, but the same estimate as before.
    assert unknown_cart["deliveryOptions"] == []
    assert unknown_cart["selectedDeliveryOption"] is None
    assert shipping(unknown_cart) == "5.99"


async def test_the_default_zone_reproduces_the_flat_rate_checkout_totals(
    client: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    cart_id = await new_cart(client, [(goods["mug"], 1)], address=ADDRESS)  # DE: 19% tax

    placed = await checkout(client, cart_id, "default-zone-1")

    order = placed["order"]
    assert placed["userErrors"] == []
    assert order["cost"] == {
        "shippingAmount": {"amount": "5.99"},
        "totalAmount": {"amount": "30.93"},
    }
    assert order["shippingMethod"] == {
        "title": "Standard",
        "handle": method_handle("default:standard"),
    }


# -- zones and options ------------------------------------------------------------------


async def test_a_zone_gives_its_countries_its_methods_cheapest_first_at_the_boundaries(
    client: AppClient, goods: dict[str, MadeProduct], shop: Shop
) -> None:
    handles = await domestic(shop)
    below = await new_cart(client, [(goods["lamp"], 1)], address=US_ADDRESS)
    at = await new_cart(client, [(goods["lamp"], 1), (goods["cent"], 1)], address=US_ADDRESS)
    by_buyer_country = await new_cart(client, [(goods["mug"], 1)], country="US")
    elsewhere = await new_cart(client, [(goods["mug"], 1)], address=ADDRESS)

    below_cart = await read_cart(client, below)
    assert titles(below_cart) == [("Standard", "4.00"), ("Express", "15.00")]
    assert [o["handle"] for o in below_cart["deliveryOptions"]] == [
        handles["standard"],
        handles["express"],
    ]
    assert below_cart["selectedDeliveryOption"]["handle"] == handles["standard"]
    assert shipping(below_cart) == "4.00"
    assert titles(await read_cart(client, at)) == [("Free", "0.00"), ("Express", "15.00")]
    assert titles(await read_cart(client, by_buyer_country))[0] == ("Standard", "4.00")
    assert titles(await read_cart(client, elsewhere)) == [("Standard", "5.99")]  # default zone


async def test_the_chosen_option_is_charged_until_it_no_longer_applies(
    client: AppClient, goods: dict[str, MadeProduct], shop: Shop
) -> None:
    handles = await domestic(shop)
    cart_id = await new_cart(client, [(goods["mug"], 1)], address=US_ADDRESS)

    chosen = await client.query(
        SELECT, {"input": {"cartId": cart_id, "handle": handles["express"]}}
    )

    cart = chosen.data["cartSelectedDeliveryOptionUpdate"]["cart"]
    assert chosen.data["cartSelectedDeliveryOptionUpdate"]["userErrors"] == []
    assert cart["selectedDeliveryOption"]["title"] == "Express"
    assert (shipping(cart), cart["cost"]["totalAmount"]["amount"]) == ("15.00", "35.00")
    assert (await read_cart(client, cart_id))["selectedDeliveryOption"]["title"] == "Express"

    express_id = encode_gid("ShippingMethod", 3)
    await shop.delete(express_id)

    after = await read_cart(client, cart_id)
    assert after["selectedDeliveryOption"]["title"] == "Standard"
    assert shipping(after) == "4.00"


@pytest.mark.parametrize("handle", ["unknown", "x" * 65, method_handle("default:free"), ""])
async def test_an_option_the_cart_does_not_have_is_refused_and_changes_nothing(
    client: AppClient, goods: dict[str, MadeProduct], shop: Shop, handle: str
) -> None:
    await domestic(shop)
    cart_id = await new_cart(client, [(goods["mug"], 1)], address=US_ADDRESS)
    before = await read_cart(client, cart_id)

    refused = await client.query(SELECT, {"input": {"cartId": cart_id, "handle": handle}})

    answer = refused.data["cartSelectedDeliveryOptionUpdate"]
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
        ("DELIVERY_OPTION_NOT_AVAILABLE", ["handle"])
    ]
    assert answer["cart"] == before


async def test_a_free_option_out_of_the_subtotal_range_cannot_be_chosen(
    client: AppClient, goods: dict[str, MadeProduct], shop: Shop
) -> None:
    handles = await domestic(shop)
    cart_id = await new_cart(client, [(goods["lamp"], 1)], address=US_ADDRESS)  # $49.99

    refused = await client.query(SELECT, {"input": {"cartId": cart_id, "handle": handles["free"]}})

    codes = [e["code"] for e in refused.data["cartSelectedDeliveryOptionUpdate"]["userErrors"]]
    assert codes == ["DELIVERY_OPTION_NOT_AVAILABLE"]


async def test_another_customers_cart_answers_like_an_unknown_cart(
    client: AppClient, goods: dict[str, MadeProduct], shop: Shop
) -> None:
    handles = await domestic(shop)
    ann = await customer_token(client, "ann@example.com")
    bob = await customer_token(client, "bob@example.com")
    anns = await new_cart(client, [(goods["mug"], 1)], address=US_ADDRESS, token=ann)
    variables = {"input": {"cartId": anns, "handle": handles["express"]}}

    as_bob = await client.query(SELECT, variables, token=bob)
    as_guest = await client.query(SELECT, variables)
    unknown = await client.query(
        SELECT, {"input": {"cartId": encode_gid("Cart", "nope"), "handle": handles["express"]}}
    )

    answers = [r.data["cartSelectedDeliveryOptionUpdate"] for r in (as_bob, as_guest, unknown)]
    assert all(a == answers[2] for a in answers)
    assert answers[2]["cart"] is None
    assert [e["code"] for e in answers[2]["userErrors"]] == ["CART_NOT_FOUND"]
    assert (await read_cart(client, anns, token=ann))["selectedDeliveryOption"]["title"] == (
        "Standard"
    )


# -- checkout -----------------------------------------------------------------------------


async def test_checkout_charges_the_chosen_method_and_records_it(
    client: AppClient, goods: dict[str, MadeProduct], shop: Shop
) -> None:
    handles = await domestic(shop)
    cart_id = await new_cart(client, [(goods["mug"], 1)], address=US_ADDRESS)
    await client.query(SELECT, {"input": {"cartId": cart_id, "handle": handles["express"]}})
    shown = await read_cart(client, cart_id)

    placed = await checkout(client, cart_id, "express-1")

    order = placed["order"]
    assert order["status"] == "PAID"
    assert order["cost"]["shippingAmount"]["amount"] == "15.00"
    assert order["cost"]["totalAmount"] == shown["cost"]["totalAmount"]
    assert order["shippingMethod"] == {"title": "Express", "handle": handles["express"]}


async def test_checkout_after_the_chosen_method_went_charges_the_cheapest_and_says_which(
    client: AppClient, goods: dict[str, MadeProduct], shop: Shop
) -> None:
    handles = await domestic(shop)
    cart_id = await new_cart(client, [(goods["mug"], 1)], address=US_ADDRESS)
    await client.query(SELECT, {"input": {"cartId": cart_id, "handle": handles["express"]}})
    await shop.delete(encode_gid("ShippingMethod", 3))

    order = (await checkout(client, cart_id, "fallback-1"))["order"]

    assert order["cost"]["shippingAmount"]["amount"] == "4.00"
    assert order["shippingMethod"] == {"title": "Standard", "handle": handles["standard"]}


async def test_a_country_the_store_does_not_ship_to_gets_no_order_and_keeps_its_stock(
    client: AppClient, goods: dict[str, MadeProduct], shop: Shop, db: Database
) -> None:
    await shop.zone("Not shipped", ["NZ"])  # a zone without methods: we do not ship there
    nz = {**ADDRESS, "city": "Auckland", "zip": "1010", "countryCode": "NZ"}
    cart_id = await new_cart(client, [(goods["mug"], 2)], address=nz)

    cart = await read_cart(client, cart_id)
    refused = await checkout(client, cart_id, "not-shipped-key-1")

    assert cart["deliveryOptions"] == [] and cart["selectedDeliveryOption"] is None
    assert cart["checkoutReady"] is False
    assert refused["order"] is None
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
        ("SHIPPING_NOT_AVAILABLE", ["shippingAddress", "countryCode"])
    ]
    assert (await count(db, orders), await count(db, order_lines)) == (0, 0)
    assert await stock(db, goods["mug"]) == 10


async def test_without_the_default_zone_a_country_in_no_zone_is_not_shipped_to(
    settings: Settings, goods: dict[str, MadeProduct], db: Database
) -> None:
    no_default = settings.model_copy(update={"shipping_default_zone": False})
    async with running_app(no_default) as client:
        cart_id = await new_cart(client, [(goods["mug"], 1)], address=ADDRESS)

        cart = await read_cart(client, cart_id)
        refused = await checkout(client, cart_id, "no-default-1")

    assert cart["deliveryOptions"] == [] and shipping(cart) == "0.00"
    assert [e["code"] for e in refused["userErrors"]] == ["SHIPPING_NOT_AVAILABLE"]
    assert await count(db, orders) == 0


# -- staff --------------------------------------------------------------------------------


async def test_staff_set_zones_and_methods_up_each_with_its_event(
    client: AppClient, shop: Shop, db: Database
) -> None:
    zone = await shop.zone("  Europe ", ["de", "FR", "DE"])
    standard = await client.query(
        METHOD_CREATE,
        {
            "input": {
                "zoneId": zone["id"],
                "title": "Standard",
                "price": "9.99",
                "minSubtotal": "10",
                "maxSubtotal": "99.99",
            }
        },
        token=shop.token,
    )
    method = standard.data["shippingMethodCreate"]["shippingMethod"]
    renamed = await client.query(
        ZONE_UPDATE,
        {"input": {"id": zone["id"], "name": "EU", "countryCodes": ["AT", "DE"]}},
        token=shop.token,
    )
    changed = await client.query(
        METHOD_UPDATE,
        {"input": {"id": method["id"], "price": "7.50", "maxSubtotal": None, "active": False}},
        token=shop.token,
    )

    assert (zone["name"], zone["countryCodes"], zone["methods"]) == ("Europe", ["DE", "FR"], [])
    assert (method["price"], method["minSubtotal"], method["maxSubtotal"]) == (
        {"amount": "9.99"},
        {"amount": "10.00"},
        {"amount": "99.99"},
    )
    assert method["deliveryRange"] == {"minDays": 3, "maxDays": 7}
    eu = renamed.data["shippingZoneUpdate"]["shippingZone"]
    assert (eu["name"], eu["countryCodes"], len(eu["methods"])) == ("EU", ["AT", "DE"], 1)
    after = changed.data["shippingMethodUpdate"]["shippingMethod"]
    assert (after["price"], after["minSubtotal"], after["maxSubtotal"], after["active"]) == (
        {"amount": "7.50"},
        {"amount": "10.00"},
        None,
        False,
    )
    assert after["handle"] == method["handle"]
    async with db.reader.connect() as connection:
        topics = (
            await connection.execute(
                select(outbox.c.topic, outbox.c.payload)
                .where(outbox.c.topic.like("Shipping%"))
                .order_by(outbox.c.id)
            )
        ).all()
    assert [(t.topic, t.payload) for t in topics] == [
        (Topic.SHIPPING_ZONE_CHANGED.value, {"zone": 1}),
        (Topic.SHIPPING_METHOD_CHANGED.value, {"method": 1, "zone": 1, "change": "created"}),
        (Topic.SHIPPING_ZONE_CHANGED.value, {"zone": 1}),
        (Topic.SHIPPING_METHOD_CHANGED.value, {"method": 1, "zone": 1, "change": "updated"}),
    ]


async def shipping_rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    async with db.reader.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in await connection.execute(select(table).order_by(*table.primary_key))
            ]
            for table in (shipping_zones, shipping_zone_countries, shipping_methods, outbox)
        }


async def test_every_refused_staff_input_names_its_field_and_writes_nothing(
    client: AppClient, shop: Shop, db: Database
) -> None:
    us = await shop.zone("Domestic", ["US"])
    europe = await shop.zone("Europe", ["DE"])
    method_id = encode_gid("ShippingMethod", 1)
    await shop.method(us, "Standard", "4.00")
    before = await shipping_rows(db)
    missing_zone = encode_gid("ShippingZone", 999)
    cases: list[tuple[str, dict[str, Any], str, list[str]]] = [
        (
            ZONE_CREATE,
            {"name": "X", "countryCodes": ["USA"]},
            "INVALID_COUNTRY_CODE",
            ["countryCodes", "0"],
        ),
        (
            ZONE_CREATE,
            {"name": "X", "countryCodes": ["FR", "us"]},
            "COUNTRY_IN_ANOTHER_ZONE",
            ["countryCodes"],
        ),
        (ZONE_CREATE, {"name": " ", "countryCodes": ["FR"]}, "BLANK", ["name"]),
        (ZONE_CREATE, {"name": "x" * 101, "countryCodes": ["FR"]}, "TOO_LONG", ["name"]),
        (ZONE_CREATE, {"name": "X", "countryCodes": ["FR"] * 251}, "INVALID", ["countryCodes"]),
        (
            ZONE_UPDATE,
            {"id": europe["id"], "countryCodes": ["DE", "US"]},
            "COUNTRY_IN_ANOTHER_ZONE",
            ["countryCodes"],
        ),
        (ZONE_UPDATE, {"id": missing_zone, "name": "Y"}, "SHIPPING_ZONE_NOT_FOUND", ["id"]),
        (ZONE_UPDATE, {"id": "garbage", "name": "Y"}, "SHIPPING_ZONE_NOT_FOUND", ["id"]),
        (
            METHOD_CREATE,
            {"zoneId": missing_zone, "title": "S", "price": "1"},
            "SHIPPING_ZONE_NOT_FOUND",
            ["zoneId"],
        ),
        (
            METHOD_CREATE,
            {"zoneId": us["id"], "title": "S", "price": "-1.00"},
            "INVALID_PRICE",
            ["price"],
        ),
        (
            METHOD_CREATE,
            {
                "zoneId": us["id"],
                "title": "S",
                "price": "1",
                "minSubtotal": "50",
                "maxSubtotal": "10",
            },
            "INVALID_SUBTOTAL_RANGE",
            ["maxSubtotal"],
        ),
        (
            METHOD_CREATE,
            {
                "zoneId": us["id"],
                "title": "S",
                "price": "1",
                "minDeliveryDays": 9,
                "maxDeliveryDays": 2,
            },
            "INVALID_DELIVERY_RANGE",
            ["maxDeliveryDays"],
        ),
        (
            METHOD_UPDATE,
            {"id": method_id, "minSubtotal": "80", "maxSubtotal": "20"},
            "INVALID_SUBTOTAL_RANGE",
            ["maxSubtotal"],
        ),
        (METHOD_UPDATE, {"id": method_id, "price": "1e9"}, "INVALID_PRICE", ["price"]),
        # Arabic-Indic and fullwidth digits are not prices
        (METHOD_UPDATE, {"id": method_id, "price": "\u0661\u0660"}, "INVALID_PRICE", ["price"]),
        (
            METHOD_UPDATE,
            {"id": method_id, "minSubtotal": "\uff15"},
            "INVALID_PRICE",
            ["minSubtotal"],
        ),
        (
            METHOD_UPDATE,
            {"id": encode_gid("ShippingMethod", 999), "title": "Z"},
            "SHIPPING_METHOD_NOT_FOUND",
            ["id"],
        ),
        (
            METHOD_DELETE,
            {"id": encode_gid("ShippingMethod", 999)},
            "SHIPPING_METHOD_NOT_FOUND",
            ["id"],
        ),
        (METHOD_DELETE, {"id": encode_gid("ShippingZone", 1)}, "SHIPPING_METHOD_NOT_FOUND", ["id"]),
    ]

    for document, values, code, field in cases:
        answer = await client.query(document, {"input": values}, token=shop.token)
        (payload,) = answer.data.values()
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)], values
        assert all(v is None for k, v in payload.items() if k != "userErrors")

    assert await shipping_rows(db) == before


async def test_a_country_taken_by_another_zone_is_named_in_the_refusal(
    client: AppClient, shop: Shop
) -> None:
    await shop.zone("Domestic", ["US", "CA"])

    refused = await client.query(
        ZONE_CREATE, {"input": {"name": "X", "countryCodes": ["MX", "CA", "US"]}}, token=shop.token
    )

    (error,) = refused.data["shippingZoneCreate"]["userErrors"]
    assert "CA, US" in error["message"]


async def test_a_zone_holds_at_most_20_methods(client: AppClient, shop: Shop, db: Database) -> None:
    zone = await shop.zone("Domestic", ["US"])
    for n in range(20):
        await shop.method(zone, f"M{n}", "1.00")

    refused = await client.query(
        METHOD_CREATE,
        {"input": {"zoneId": zone["id"], "title": "M20", "price": "1"}},
        token=shop.token,
    )

    codes = [e["code"] for e in refused.data["shippingMethodCreate"]["userErrors"]]
    assert codes == ["SHIPPING_METHOD_LIMIT_REACHED"]
    assert await count(db, shipping_methods) == 20


@pytest.mark.parametrize(
    ("document", "values"),
    [
        (ZONE_CREATE, {"name": "X", "countryCodes": ["FR"]}),
        (ZONE_UPDATE, {"id": encode_gid("ShippingZone", 1), "name": "X"}),
        (METHOD_CREATE, {"zoneId": encode_gid("ShippingZone", 1), "title": "S", "price": "1"}),
        (METHOD_UPDATE, {"id": encode_gid("ShippingMethod", 1), "title": "S"}),
        (METHOD_DELETE, {"id": encode_gid("ShippingMethod", 1)}),
    ],
)
async def test_customers_are_forbidden_and_guests_unauthenticated(
    client: AppClient, shop: Shop, db: Database, document: str, values: dict[str, Any]
) -> None:
    zone = await shop.zone("Domestic", ["US"])
    await shop.method(zone, "Standard", "4.00")
    before = await shipping_rows(db)
    ann = await customer_token(client, "ann@example.com")

    as_customer = await client.query(document, {"input": values}, token=ann)
    as_guest = await client.query(document, {"input": values})

    assert as_customer.error_codes == ["FORBIDDEN"]
    assert as_guest.error_codes == ["UNAUTHENTICATED"]
    after = await shipping_rows(db)
    assert {k: v for k, v in after.items() if k != "outbox"} == {
        k: v for k, v in before.items() if k != "outbox"
    }
    assert [row for row in after["outbox"] if row[1].startswith("Shipping")] == [
        row for row in before["outbox"] if row[1].startswith("Shipping")
    ]


# -- the seed -----------------------------------------------------------------------------


async def test_the_seed_sets_up_two_zones_with_two_methods_each(
    db: Database, clean: None, settings: Settings
) -> None:
    report = await seed_catalog(db, customer_columns=SEED_COLUMNS, products=5, seed=3)

    zones = await read_zones(db)
    assert report.shipping_zones == 2
    assert [(z.name, z.country_codes[:2], [m.title for m in z.methods]) for z in zones] == [
        ("Domestic", ("US",), ["Standard", "Express"]),
        ("Europe", ("AT", "BE"), ["Standard", "Express"]),
    ]
    async with running_app(settings) as client:
        variant = encode_gid("ProductVariant", 1)
        made = await client.query(
            CREATE_CART,
            {"input": {"lines": [{"variantId": variant}], "buyerIdentity": {"countryCode": "US"}}},
        )
    cart = made.data["cartCreate"]["cart"]
    assert [o["title"] for o in cart["deliveryOptions"]] == ["Standard", "Express"]


# -- what it costs ------------------------------------------------------------------------


async def test_a_cart_read_with_its_options_costs_one_statement_more_whatever_its_size(
    client: AppClient, db: Database, shop: Shop
) -> None:
    await domestic(shop)
    make = CatalogFactory(db)
    made = [await make.product(f"P{n}", prices=[100 + n], stock=[5]) for n in range(20)]
    counts: dict[tuple[int, bool], int] = {}
    for n in (2, 20):
        for with_country in (False, True):
            cart_id = await new_cart(
                client, [(m, 1) for m in made[:n]], address=US_ADDRESS if with_country else None
            )
            await client.query(CART, {"id": cart_id})  # warm the record cache
            counts[n, with_country] = (await client.query(CART, {"id": cart_id})).statements

    # Warm, a cart reads its stock (1); its destination's methods add exactly one.
    assert counts == {(2, False): 1, (2, True): 2, (20, False): 1, (20, True): 2}


async def test_staff_racing_for_one_country_get_one_zone_and_coded_refusals(
    client: AppClient, shop: Shop, db: Database
) -> None:
    answers = await asyncio.gather(
        *(
            client.query(
                ZONE_CREATE, {"input": {"name": f"Z{n}", "countryCodes": ["FR"]}}, token=shop.token
            )
            for n in range(6)
        )
    )

    payloads = [a.data["shippingZoneCreate"] for a in answers]
    created = [p for p in payloads if p["shippingZone"] is not None]
    refused = [e["code"] for p in payloads for e in p["userErrors"]]
    assert len(created) == 1
    assert refused == ["COUNTRY_IN_ANOTHER_ZONE"] * 5
    assert (await count(db, shipping_zones), await count(db, shipping_zone_countries)) == (1, 1)
