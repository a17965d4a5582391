"""Carts over the real Redis and PostgreSQL: lines, limits, access, cost, concurrency."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import update

from persistence.db import Database
from persistence.tables import inventory_levels, product_variants, products
from schema.global_id import decode_gid, encode_gid
from tests.client import AppClient, customer_token
from tests.factories import CatalogFactory, MadeProduct

CART_FIELDS = """id totalQuantity checkoutReady
  lines { id quantity merchandise { sku } cost { amountPerQuantity { amount } subtotalAmount { amount } } }
  cost { subtotalAmount { amount } shippingAmount { amount } taxAmount { amount } totalAmount { amount currencyCode } }
  buyerIdentity { email countryCode } shippingAddress { city countryCode }
  warnings { code lineId availableQuantity }"""
CREATE = f"""mutation($lines: [CartLineInput!]!, $email: String) {{
  cartCreate(input: {{lines: $lines, buyerIdentity: {{email: $email}}}}) {{ cart {{ {CART_FIELDS} }} userErrors {{ field code message }} }} }}"""
ADD = f"""mutation($id: ID!, $lines: [CartLineInput!]!) {{
  cartLinesAdd(input: {{cartId: $id, lines: $lines}}) {{ cart {{ {CART_FIELDS} }} userErrors {{ field code message }} }} }}"""
UPDATE = f"""mutation($id: ID!, $lines: [CartLineUpdateInput!]!) {{
  cartLinesUpdate(input: {{cartId: $id, lines: $lines}}) {{ cart {{ {CART_FIELDS} }} userErrors {{ field code message }} }} }}"""
REMOVE = f"""mutation($id: ID!, $ids: [ID!]!) {{
  cartLinesRemove(input: {{cartId: $id, lineIds: $ids}}) {{ cart {{ {CART_FIELDS} }} userErrors {{ field code message }} }} }}"""
BUYER = f"""mutation($id: ID!, $buyer: CartBuyerIdentityInput!) {{
  cartBuyerIdentityUpdate(input: {{cartId: $id, buyerIdentity: $buyer}}) {{ cart {{ {CART_FIELDS} }} userErrors {{ field code message }} }} }}"""
ADDRESS = f"""mutation($id: ID!, $address: MailingAddressInput!) {{
  cartShippingAddressUpdate(input: {{cartId: $id, address: $address}}) {{ cart {{ {CART_FIELDS} }} userErrors {{ field code message }} }} }}"""
READ = f"query($id: ID!) {{ cart(id: $id) {{ {CART_FIELDS} }} }}"
ADDRESS_OK = {
    "firstName": "Ann",
    "lastName": "Lee",
    "address1": "1 Main St",
    "city": "Berlin",
    "zip": "10115",
    "countryCode": "DE",
}


def vid(made: MadeProduct, index: int = 0) -> str:
    return encode_gid("ProductVariant", made.variant_ids[index])


def lid(made: MadeProduct, index: int = 0) -> str:
    return encode_gid("CartLine", made.variant_ids[index])


def payload(result: Any, name: str) -> dict[str, Any]:
    data: dict[str, Any] = result.data[name]
    return data


@pytest.fixture
async def shop(db: Database, clean: None) -> dict[str, MadeProduct]:
    make = CatalogFactory(db)
    return {
        "mug": await make.product("Mug", prices=[1200, 1500], stock=[10, 3]),
        "tee": await make.product("Tee", prices=[2500], stock=[0]),
        "old": await make.product("Old Lamp", prices=[900], status="archived"),
        "pen": await make.product("Pen", prices=[199], stock=[500]),
    }


async def new_cart(
    client: AppClient,
    lines: list[dict[str, Any]],
    token: str | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    result = await client.query(CREATE, {"lines": lines, "email": email}, token=token)
    created = payload(result, "cartCreate")
    assert created["userErrors"] == [], created["userErrors"]
    return created["cart"]


async def test_lines_add_merge_update_and_remove(
    client: AppClient, shop: dict[str, MadeProduct]
) -> None:
    mug, pen = shop["mug"], shop["pen"]
    cart = await new_cart(client, [{"variantId": vid(mug), "quantity": 2}], email="ann@example.com")

    added = payload(
        await client.query(
            ADD,
            {
                "id": cart["id"],
                "lines": [
                    {"variantId": vid(mug), "quantity": 1},
                    {"variantId": vid(pen), "quantity": 4},
                ],
            },
        ),
        "cartLinesAdd",
    )
    updated = payload(
        await client.query(
            UPDATE,
            {
                "id": cart["id"],
                "lines": [{"id": lid(mug), "quantity": 5}, {"id": lid(pen), "quantity": 0}],
            },
        ),
        "cartLinesUpdate",
    )
    removed = payload(
        await client.query(REMOVE, {"id": cart["id"], "ids": [lid(mug)]}), "cartLinesRemove"
    )

    assert [(line["merchandise"]["sku"], line["quantity"]) for line in added["cart"]["lines"]] == [
        ("MUG-0", 3),
        ("PEN-0", 4),
    ]
    assert added["cart"]["totalQuantity"] == 7
    assert [(line["id"], line["quantity"]) for line in updated["cart"]["lines"]] == [(lid(mug), 5)]
    assert removed["cart"]["lines"] == [] and removed["userErrors"] == []
    assert removed["cart"]["cost"]["totalAmount"] == {"amount": "0.00", "currencyCode": "USD"}


async def test_cost_uses_live_prices_flat_shipping_and_country_tax(
    client: AppClient, shop: dict[str, MadeProduct], db: Database
) -> None:
    mug = shop["mug"]
    cart = await new_cart(client, [{"variantId": vid(mug), "quantity": 2}])
    assert cart["cost"] == {
        "subtotalAmount": {"amount": "24.00"},
        "shippingAmount": {"amount": "5.99"},
        "taxAmount": {"amount": "0.00"},
        "totalAmount": {"amount": "29.99", "currencyCode": "USD"},
    }
    assert cart["lines"][0]["cost"] == {
        "amountPerQuantity": {"amount": "12.00"},
        "subtotalAmount": {"amount": "24.00"},
    }

    # Germany: 19% of (24.00 + 5.99) = 5.6981 -> 5.70
    taxed = payload(
        await client.query(ADDRESS, {"id": cart["id"], "address": ADDRESS_OK}),
        "cartShippingAddressUpdate",
    )
    async with db.writer.begin() as connection:
        await connection.execute(
            update(product_variants)
            .where(product_variants.c.id == mug.variant_ids[0])
            .values(price=3000)
        )
    await client.container.cache.invalidate_variants(mug.variant_ids)
    await client.container.cache.invalidate_products([mug.id])
    repriced = payload(
        await client.query(
            ADD, {"id": cart["id"], "lines": [{"variantId": vid(mug), "quantity": 1}]}
        ),
        "cartLinesAdd",
    )

    assert taxed["cart"]["cost"]["taxAmount"] == {"amount": "5.70"}
    assert taxed["cart"]["cost"]["totalAmount"]["amount"] == "35.69"
    # 3 x 30.00 = 90.00: over the free-shipping threshold (50.00); tax 19% of 90.00
    assert repriced["cart"]["cost"] == {
        "subtotalAmount": {"amount": "90.00"},
        "shippingAmount": {"amount": "0.00"},
        "taxAmount": {"amount": "17.10"},
        "totalAmount": {"amount": "107.10", "currencyCode": "USD"},
    }


async def test_warnings_and_checkout_readiness(
    client: AppClient, shop: dict[str, MadeProduct], db: Database
) -> None:
    mug, tee = shop["mug"], shop["tee"]
    cart = await new_cart(
        client,
        [
            {"variantId": vid(mug, 1), "quantity": 5},
            {"variantId": vid(tee), "quantity": 1},
            {"variantId": vid(mug, 0), "quantity": 1},
        ],
        email="ann@example.com",
    )
    await client.query(ADDRESS, {"id": cart["id"], "address": ADDRESS_OK})
    async with db.writer.begin() as connection:
        await connection.execute(
            update(products).where(products.c.id == shop["pen"].id).values(status="active")
        )

    read = (await client.query(READ, {"id": cart["id"]})).data["cart"]
    assert {(w["code"], w["lineId"], w["availableQuantity"]) for w in read["warnings"]} == {
        ("INSUFFICIENT_STOCK", lid(mug, 1), 3),
        ("OUT_OF_STOCK", lid(tee), 0),
    }
    assert read["checkoutReady"] is False

    await client.query(REMOVE, {"id": cart["id"], "ids": [lid(tee)]})
    await client.query(UPDATE, {"id": cart["id"], "lines": [{"id": lid(mug, 1), "quantity": 3}]})
    ready = (await client.query(READ, {"id": cart["id"]})).data["cart"]
    async with db.writer.begin() as connection:
        await connection.execute(
            update(products).where(products.c.id == mug.id).values(status="archived")
        )
    await client.container.cache.invalidate_products([mug.id])
    archived = (await client.query(READ, {"id": cart["id"]})).data["cart"]

    assert ready["warnings"] == [] and ready["checkoutReady"] is True
    assert {w["code"] for w in archived["warnings"]} == {"VARIANT_UNAVAILABLE"}
    assert archived["cost"]["subtotalAmount"] == {"amount": "0.00"}


@pytest.mark.parametrize(
    ("mutation", "variables", "code"),
    [
        (
            ADD,
            lambda m: {"lines": [{"variantId": vid(m["old"]), "quantity": 1}]},
            "INVALID_MERCHANDISE",
        ),
        (
            ADD,
            lambda m: {
                "lines": [{"variantId": encode_gid("ProductVariant", 999999), "quantity": 1}]
            },
            "INVALID_MERCHANDISE",
        ),
        (
            ADD,
            lambda m: {"lines": [{"variantId": "garbage", "quantity": 1}]},
            "INVALID_MERCHANDISE",
        ),
        (
            ADD,
            lambda m: {"lines": [{"variantId": vid(m["pen"]), "quantity": 0}]},
            "INVALID_QUANTITY",
        ),
        (
            ADD,
            lambda m: {"lines": [{"variantId": vid(m["pen"]), "quantity": 1000}]},
            "INVALID_QUANTITY",
        ),
        (
            ADD,
            lambda m: {"lines": [{"variantId": vid(m["mug"]), "quantity": 998}]},
            "INVALID_QUANTITY",
        ),
        (UPDATE, lambda m: {"lines": [{"id": lid(m["pen"]), "quantity": 1}]}, "LINE_NOT_FOUND"),
        (UPDATE, lambda m: {"lines": [{"id": lid(m["mug"]), "quantity": -1}]}, "INVALID_QUANTITY"),
        (REMOVE, lambda m: {"ids": [lid(m["mug"]), "nope"]}, "LINE_NOT_FOUND"),
        (BUYER, lambda m: {"buyer": {"email": "not an email"}}, "INVALID"),
        (BUYER, lambda m: {"buyer": {"countryCode": "Germany"}}, "INVALID_COUNTRY_CODE"),
        (BUYER, lambda m: {"buyer": {"customerAccessToken": "forged"}}, "INVALID_ACCESS_TOKEN"),
        (ADDRESS, lambda m: {"address": {**ADDRESS_OK, "city": ""}}, "BLANK"),
        (ADDRESS, lambda m: {"address": {**ADDRESS_OK, "zip": "1" * 21}}, "TOO_LONG"),
    ],
)
async def test_rejected_input_leaves_the_cart_exactly_as_it_was(
    client: AppClient, shop: dict[str, MadeProduct], mutation: str, variables: Any, code: str
) -> None:
    cart = await new_cart(
        client, [{"variantId": vid(shop["mug"]), "quantity": 2}], email="ann@example.com"
    )
    before = (await client.query(READ, {"id": cart["id"]})).data["cart"]

    result = await client.query(mutation, {"id": cart["id"], **variables(shop)})

    name = next(iter(result.data))
    assert [e["code"] for e in result.data[name]["userErrors"]] == [code]
    assert result.data[name]["cart"] == before
    assert (await client.query(READ, {"id": cart["id"]})).data["cart"] == before


async def test_a_cart_holds_at_most_100_lines(client: AppClient, db: Database, clean: None) -> None:
    made = await CatalogFactory(db).product("Screw", prices=[10] * 101, stock=[1000] * 101)
    lines = [{"variantId": vid(made, i), "quantity": 1} for i in range(100)]
    cart = await new_cart(client, lines)

    refused = payload(
        await client.query(ADD, {"id": cart["id"], "lines": [{"variantId": vid(made, 100)}]}),
        "cartLinesAdd",
    )
    too_many = payload(
        await client.query(CREATE, {"lines": [*lines, {"variantId": vid(made, 100)}]}), "cartCreate"
    )

    assert [e["code"] for e in refused["userErrors"]] == ["TOO_MANY_LINES"]
    assert len(refused["cart"]["lines"]) == 100
    assert too_many["cart"] is None and too_many["userErrors"][0]["code"] == "TOO_MANY_LINES"


async def test_fifty_concurrent_adds_of_different_variants_all_land(
    client: AppClient, db: Database, clean: None
) -> None:
    made = await CatalogFactory(db).product("Bolt", prices=[10] * 50, stock=[1000] * 50)
    cart = await new_cart(client, [])

    results = await asyncio.gather(
        *(
            client.query(
                ADD, {"id": cart["id"], "lines": [{"variantId": vid(made, i), "quantity": i + 1}]}
            )
            for i in range(50)
        )
    )

    assert all(payload(r, "cartLinesAdd")["userErrors"] == [] for r in results)
    final = (await client.query(READ, {"id": cart["id"]})).data["cart"]
    assert sorted(line["quantity"] for line in final["lines"]) == list(range(1, 51))
    assert final["totalQuantity"] == sum(range(1, 51))


async def test_customer_carts_need_their_customer(
    client: AppClient, shop: dict[str, MadeProduct], redis: Redis
) -> None:
    ann = await customer_token(client, "ann@example.com")
    bob = await customer_token(client, "bob@example.com")
    cart = await new_cart(client, [{"variantId": vid(shop["mug"])}], token=ann)
    guest = await new_cart(client, [{"variantId": vid(shop["pen"])}])

    as_ann = (await client.query(READ, {"id": cart["id"]}, token=ann)).data["cart"]
    as_bob = (await client.query(READ, {"id": cart["id"]}, token=bob)).data["cart"]
    as_guest = (await client.query(READ, {"id": cart["id"]})).data["cart"]
    bob_adds = payload(
        await client.query(
            ADD, {"id": cart["id"], "lines": [{"variantId": vid(shop["pen"])}]}, token=bob
        ),
        "cartLinesAdd",
    )
    unknown = (await client.query(READ, {"id": encode_gid("Cart", "x" * 22)})).data["cart"]
    guest_for_anyone = (await client.query(READ, {"id": guest["id"]}, token=bob)).data["cart"]
    ann_again = await customer_token(client, "ann@example.com")
    await client.query(
        "mutation($t: String!) { customerAccessTokenDelete(input: {accessToken: $t}) { deletedAccessToken } }",
        {"t": ann},
    )
    logged_out = (await client.query(READ, {"id": cart["id"]}, token=ann)).data["cart"]
    await redis.pexpire(f"session:{hashlib.sha256(ann_again.encode()).hexdigest()}", 1)
    await asyncio.sleep(0.05)
    expired = (await client.query(READ, {"id": cart["id"]}, token=ann_again)).data["cart"]

    assert as_ann["id"] == cart["id"]
    assert as_bob is None and as_guest is None and unknown is None
    assert logged_out is None and expired is None
    assert bob_adds == {
        "cart": None,
        "userErrors": [{"field": ["cartId"], "code": "CART_NOT_FOUND", "message": "no such cart"}],
    }
    assert guest_for_anyone["id"] == guest["id"]
    ttl = await redis.ttl(f"cart:{_raw_id(cart['id'])}")
    assert 30 * 24 * 3600 - 60 < ttl <= 30 * 24 * 3600


async def test_logging_in_merges_the_open_cart_into_the_guest_cart(
    client: AppClient, shop: dict[str, MadeProduct], redis: Redis
) -> None:
    mug, pen = shop["mug"], shop["pen"]
    ann = await customer_token(client, "ann@example.com")
    open_cart = await new_cart(
        client,
        [{"variantId": vid(mug), "quantity": 2}, {"variantId": vid(pen), "quantity": 1}],
        token=ann,
    )
    guest = await new_cart(
        client,
        [{"variantId": vid(mug), "quantity": 998}, {"variantId": vid(mug, 1), "quantity": 1}],
    )

    merged = payload(
        await client.query(BUYER, {"id": guest["id"], "buyer": {"customerAccessToken": ann}}),
        "cartBuyerIdentityUpdate",
    )

    assert merged["userErrors"] == []
    assert [(line["id"], line["quantity"]) for line in merged["cart"]["lines"]] == [
        (lid(mug), 999),
        (lid(mug, 1), 1),
        (lid(pen), 1),
    ]  # quantities add, capped at 999
    assert merged["cart"]["buyerIdentity"]["email"] == "ann@example.com"
    assert (await client.query(READ, {"id": open_cart["id"]}, token=ann)).data["cart"] is None
    assert not await redis.exists(f"cart:{_raw_id(open_cart['id'])}")
    assert (await client.query(READ, {"id": guest["id"]})).data["cart"] is None  # now Ann's
    assert (await client.query(READ, {"id": guest["id"]}, token=ann)).data["cart"][
        "totalQuantity"
    ] == 1001


def _raw_id(cart_gid: str) -> str:
    return decode_gid(cart_gid)[1]


async def test_stock_changes_show_up_at_once(
    client: AppClient, shop: dict[str, MadeProduct], db: Database
) -> None:
    mug = shop["mug"]
    cart = await new_cart(client, [{"variantId": vid(mug), "quantity": 4}])
    async with db.writer.begin() as connection:
        await connection.execute(
            update(inventory_levels)
            .where(inventory_levels.c.variant_id == mug.variant_ids[0])
            .values(available=2)
        )

    read = (await client.query(READ, {"id": cart["id"]})).data["cart"]

    assert [(w["code"], w["availableQuantity"]) for w in read["warnings"]] == [
        ("INSUFFICIENT_STOCK", 2)
    ]


async def test_writes_keep_a_customers_open_cart_and_its_pointer_alive(
    client: AppClient, shop: dict[str, MadeProduct], redis: Redis
) -> None:
    ann = await customer_token(client, "ann@example.com")
    cart = await new_cart(client, [{"variantId": vid(shop["mug"])}], token=ann)
    customer_id = int(
        decode_gid((await client.query("{ me { id } }", token=ann)).data["me"]["id"])[1]
    )
    pointer = f"customer-cart:{customer_id}"
    await redis.expire(pointer, 100)
    await redis.expire(f"cart:{_raw_id(cart['id'])}", 100)

    await client.query(
        ADD, {"id": cart["id"], "lines": [{"variantId": vid(shop["pen"])}]}, token=ann
    )

    assert await redis.get(pointer) == _raw_id(cart["id"]).encode()
    assert await redis.ttl(pointer) > 30 * 24 * 3600 - 60
    assert await redis.ttl(f"cart:{_raw_id(cart['id'])}") > 30 * 24 * 3600 - 60
