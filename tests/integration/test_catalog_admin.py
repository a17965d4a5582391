"""Staff edit the catalog: rows, outbox events and the cached reads all follow at once;
everyone else is refused, and refused input writes nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from domain.events import Topic
from persistence.db import Database
from persistence.tables import (
    inventory_levels,
    outbox,
    product_variants,
    products,
)
from schema.global_id import encode_gid
from tests.client import AppClient, customer_token, screen_query
from tests.factories import CatalogFactory, MadeProduct
from tests.shop import staff_token

PRODUCT_FIELDS = "id slug title description brand attributes { name value } category { slug } priceRange { minVariantPrice { amount } maxVariantPrice { amount } }"
VARIANT_FIELDS = "id sku title price { amount currencyCode } compareAtPrice { amount } selectedOptions { name value } quantityAvailable"
CREATE = f"mutation($input: ProductCreateInput!) {{ productCreate(input: $input) {{ product {{ {PRODUCT_FIELDS} }} userErrors {{ field code message }} }} }}"
UPDATE = f"mutation($input: ProductUpdateInput!) {{ productUpdate(input: $input) {{ product {{ {PRODUCT_FIELDS} }} userErrors {{ field code message }} }} }}"
ARCHIVE = "mutation($input: ProductArchiveInput!) { productArchive(input: $input) { product { id slug } userErrors { field code message } } }"
VARIANT_CREATE = f"mutation($input: VariantCreateInput!) {{ variantCreate(input: $input) {{ variant {{ {VARIANT_FIELDS} }} userErrors {{ field code message }} }} }}"
VARIANT_UPDATE = f"mutation($input: VariantUpdateInput!) {{ variantUpdate(input: $input) {{ variant {{ {VARIANT_FIELDS} }} userErrors {{ field code message }} }} }}"
ADJUST = "mutation($input: InventoryAdjustInput!) { inventoryAdjust(input: $input) { variant { id quantityAvailable } userErrors { field code message } } }"
PUBLIC = "query($slug: String!) { product(slug: $slug) { title priceRange { minVariantPrice { amount } maxVariantPrice { amount } } variants { sku price { amount } } } }"


async def events(db: Database) -> list[tuple[str, dict[str, Any]]]:
    """The catalog's events (the staff member's sign-up queues a verification mail too)."""
    async with db.reader.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.topic, outbox.c.payload)
            .where(outbox.c.topic != Topic.EMAIL_VERIFICATION_REQUESTED.value)
            .order_by(outbox.c.id)
        )
        return [(row.topic, row.payload) for row in rows]


async def catalog_rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a catalog write could touch, for "nothing was written" checks."""
    async with db.reader.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in await connection.execute(select(table).order_by(*table.primary_key))
            ]
            for table in (products, product_variants, inventory_levels, outbox)
        }


def gid(type_name: str, key: int) -> str:
    return encode_gid(type_name, key)


def payload(result: Any, field: str) -> dict[str, Any]:
    value: dict[str, Any] = result.data[field]
    return value


# -- happy paths ----------------------------------------------------------------------


async def test_product_create_writes_the_row_and_its_event(client: AppClient, db: Database) -> None:
    kitchen = await CatalogFactory(db).category("kitchen")
    boss = await staff_token(client, db)

    made = await client.query(
        CREATE,
        {
            "input": {
                "title": "  Tea Pot ",
                "slug": "tea-pot",
                "description": "Holds tea.",
                "brand": "Brew",
                "categoryId": gid("Category", kitchen),
                "attributes": [{"name": "material", "value": "clay"}],
                "status": "ACTIVE",
            }
        },
        token=boss,
    )
    derived = await client.query(
        CREATE, {"input": {"title": "Crème Brûlée Pot, 2 pcs"}}, token=boss
    )

    product = payload(made, "productCreate")["product"]
    assert payload(made, "productCreate")["userErrors"] == []
    assert product == {
        "id": product["id"],
        "slug": "tea-pot",
        "title": "Tea Pot",
        "description": "Holds tea.",
        "brand": "Brew",
        "attributes": [{"name": "material", "value": "clay"}],
        "category": {"slug": "kitchen"},
        "priceRange": {
            "minVariantPrice": {"amount": "0.00"},
            "maxVariantPrice": {"amount": "0.00"},
        },
    }
    assert payload(derived, "productCreate")["product"]["slug"] == "creme-brulee-pot-2-pcs"
    async with db.reader.connect() as connection:
        rows = (
            await connection.execute(
                select(products.c.slug, products.c.status).order_by(products.c.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [("tea-pot", "active"), ("creme-brulee-pot-2-pcs", "draft")]
    assert await events(db) == [
        ("ProductCreated", {"product": 1, "slug": "tea-pot"}),
        ("ProductCreated", {"product": 2, "slug": "creme-brulee-pot-2-pcs"}),
    ]
    # A draft is not for shoppers yet.
    assert (await client.query(PUBLIC, {"slug": "creme-brulee-pot-2-pcs"})).data["product"] is None


async def test_product_update_is_visible_at_once_through_the_cache(
    client: AppClient, db: Database
) -> None:
    kettle = await CatalogFactory(db).product("Kettle")
    boss = await staff_token(client, db)
    before = (await client.query(PUBLIC, {"slug": "kettle"})).data["product"]  # now cached

    renamed = await client.query(
        UPDATE,
        {"input": {"id": gid("Product", kettle.id), "title": "Kettle Pro", "brand": "Boil"}},
        token=boss,
    )
    after_rename = (await client.query(PUBLIC, {"slug": "kettle"})).data["product"]
    moved = await client.query(
        UPDATE, {"input": {"id": gid("Product", kettle.id), "slug": "kettle-pro"}}, token=boss
    )
    old_slug = (await client.query(PUBLIC, {"slug": "kettle"})).data["product"]
    new_slug = (await client.query(PUBLIC, {"slug": "kettle-pro"})).data["product"]

    assert before["title"] == "Kettle"
    assert payload(renamed, "productUpdate")["product"]["title"] == "Kettle Pro"
    assert (
        payload(renamed, "productUpdate")["product"]["slug"] == "kettle"
    )  # a title keeps the slug
    assert payload(renamed, "productUpdate")["product"]["description"] == "About Kettle."
    assert after_rename["title"] == "Kettle Pro"
    assert payload(moved, "productUpdate")["product"]["slug"] == "kettle-pro"
    assert old_slug is None
    assert new_slug["title"] == "Kettle Pro"
    assert await events(db) == [
        ("ProductUpdated", {"product": kettle.id, "slug": "kettle"}),
        ("ProductUpdated", {"product": kettle.id, "slug": "kettle-pro", "previous_slug": "kettle"}),
    ]


async def test_category_can_be_set_and_cleared(client: AppClient, db: Database) -> None:
    factory = CatalogFactory(db)
    kitchen = await factory.category("kitchen")
    kettle = await factory.product("Kettle")
    boss = await staff_token(client, db)
    product = gid("Product", kettle.id)

    put = await client.query(
        UPDATE, {"input": {"id": product, "categoryId": gid("Category", kitchen)}}, token=boss
    )
    kept = await client.query(UPDATE, {"input": {"id": product, "title": "Kettle 2"}}, token=boss)
    cleared = await client.query(UPDATE, {"input": {"id": product, "categoryId": None}}, token=boss)

    assert payload(put, "productUpdate")["product"]["category"] == {"slug": "kitchen"}
    assert payload(kept, "productUpdate")["product"]["category"] == {"slug": "kitchen"}
    assert payload(cleared, "productUpdate")["product"]["category"] is None


async def test_product_archive_hides_it_from_shoppers(client: AppClient, db: Database) -> None:
    kettle = await CatalogFactory(db).product("Kettle")
    boss = await staff_token(client, db)
    assert (await client.query(PUBLIC, {"slug": "kettle"})).data["product"] is not None  # cached

    archived = await client.query(ARCHIVE, {"input": {"id": gid("Product", kettle.id)}}, token=boss)

    assert payload(archived, "productArchive") == {
        "product": {"id": gid("Product", kettle.id), "slug": "kettle"},
        "userErrors": [],
    }
    assert (await client.query(PUBLIC, {"slug": "kettle"})).data["product"] is None
    async with db.reader.connect() as connection:
        status = (await connection.execute(select(products.c.status))).scalar_one()
    assert status == "archived"
    assert await events(db) == [("ProductArchived", {"product": kettle.id, "slug": "kettle"})]


async def test_variants_keep_the_price_range_in_step(client: AppClient, db: Database) -> None:
    kettle = await CatalogFactory(db).product("Kettle", prices=[1000])  # SKU KETTLE-0
    boss = await staff_token(client, db)
    before = (await client.query(PUBLIC, {"slug": "kettle"})).data["product"]  # cached

    created = await client.query(
        VARIANT_CREATE,
        {
            "input": {
                "productId": gid("Product", kettle.id),
                "sku": "KETTLE-MINI",
                "title": "Mini",
                "price": "5.00",
                "compareAtPrice": "8.00",
                "options": [{"name": "Size", "value": "Mini"}],
                "stock": 3,
            }
        },
        token=boss,
    )
    variant = payload(created, "variantCreate")["variant"]
    after_create = (await client.query(PUBLIC, {"slug": "kettle"})).data["product"]
    updated = await client.query(
        VARIANT_UPDATE,
        {
            "input": {
                "id": variant["id"],
                "price": "25.00",
                "compareAtPrice": None,
                "sku": "KETTLE-BIG",
            }
        },
        token=boss,
    )
    after_update = (await client.query(PUBLIC, {"slug": "kettle"})).data["product"]

    assert before["priceRange"]["minVariantPrice"]["amount"] == "10.00"
    assert variant == {
        "id": variant["id"],
        "sku": "KETTLE-MINI",
        "title": "Mini",
        "price": {"amount": "5.00", "currencyCode": "USD"},
        "compareAtPrice": {"amount": "8.00"},
        "selectedOptions": [{"name": "Size", "value": "Mini"}],
        "quantityAvailable": 3,
    }
    assert after_create["priceRange"] == {
        "minVariantPrice": {"amount": "5.00"},
        "maxVariantPrice": {"amount": "10.00"},
    }
    assert [v["sku"] for v in after_create["variants"]] == ["KETTLE-0", "KETTLE-MINI"]
    assert payload(updated, "variantUpdate")["variant"]["compareAtPrice"] is None
    assert after_update["priceRange"] == {
        "minVariantPrice": {"amount": "10.00"},
        "maxVariantPrice": {"amount": "25.00"},
    }
    assert [v["sku"] for v in after_update["variants"]] == ["KETTLE-0", "KETTLE-BIG"]
    new_id = kettle.variant_ids[0] + 1
    assert await events(db) == [
        ("VariantCreated", {"variant": new_id, "product": kettle.id}),
        ("StockChanged", {"variant": new_id, "available": 3}),
        ("VariantUpdated", {"variant": new_id, "product": kettle.id}),
    ]
    async with db.reader.connect() as connection:
        row = (await connection.execute(select(products.c.price_min, products.c.price_max))).one()
    assert tuple(row) == (1000, 2500)


async def test_inventory_adjust_adds_removes_and_sets(client: AppClient, db: Database) -> None:
    kettle = await CatalogFactory(db).product("Kettle", stock=[10])
    boss = await staff_token(client, db)
    variant = gid("ProductVariant", kettle.variant_ids[0])

    async def adjust(**change: int) -> Any:
        result = await client.query(ADJUST, {"input": {"variantId": variant, **change}}, token=boss)
        return payload(result, "inventoryAdjust")

    added, removed, counted = (
        await adjust(delta=5),
        await adjust(delta=-12),
        await adjust(setQuantity=7),
    )

    assert [r["variant"]["quantityAvailable"] for r in (added, removed, counted)] == [15, 3, 7]
    assert (await client.query(PUBLIC, {"slug": "kettle"})).data["product"] is not None
    assert await events(db) == [
        ("StockChanged", {"variant": kettle.variant_ids[0], "available": n}) for n in (15, 3, 7)
    ]


async def test_the_listing_shows_every_edit_at_once_and_nothing_else_changes(
    client: AppClient, db: Database
) -> None:
    """Workers share what they built for equal records (products, variants, their
    completed JSON): an edit of one product makes it new on the next listing, and the
    product next to it answers exactly as before."""
    factory = CatalogFactory(db)
    kettle = await factory.product("Kettle", prices=[1000], stock=[3])
    await factory.product("Mug", prices=[500], stock=[4])
    boss = await staff_token(client, db)
    listing = screen_query("listing_screen")

    async def nodes() -> dict[str, dict[str, Any]]:
        result = await client.query(listing, {"first": 10})
        assert not result.errors
        return {e["node"]["slug"]: e["node"] for e in result.data["products"]["edges"]}

    before, again = await nodes(), await nodes()
    await client.query(
        UPDATE, {"input": {"id": gid("Product", kettle.id), "title": "Kettle Pro"}}, token=boss
    )
    retitled = await nodes()
    variant = gid("ProductVariant", kettle.variant_ids[0])
    await client.query(ADJUST, {"input": {"variantId": variant, "setQuantity": 0}}, token=boss)
    sold_out = await nodes()
    await client.query(VARIANT_UPDATE, {"input": {"id": variant, "price": "12.50"}}, token=boss)
    repriced = await nodes()

    assert again == before
    assert retitled["kettle"]["title"] == "Kettle Pro"
    assert retitled["kettle"]["variants"] == before["kettle"]["variants"]
    assert sold_out["kettle"]["availableForSale"] is False
    assert sold_out["kettle"]["variants"][0]["quantityAvailable"] == 0
    assert sold_out["kettle"]["title"] == "Kettle Pro"
    assert repriced["kettle"]["variants"][0]["price"]["amount"] == "12.50"
    assert repriced["kettle"]["priceRange"]["minVariantPrice"]["amount"] == "12.50"
    assert repriced["mug"] == sold_out["mug"] == retitled["mug"] == before["mug"]
    assert before["mug"]["variants"][0]["quantityAvailable"] == 4


# -- refusals -------------------------------------------------------------------------


async def _world(db: Database) -> tuple[MadeProduct, MadeProduct]:
    factory = CatalogFactory(db)
    # Kettle: one variant KETTLE-0 at 10.00, compare-at 15.00, 2 in stock; Mug: MUG-0.
    return await factory.product("Kettle", stock=[2]), await factory.product("Mug")


def _cases(
    kettle: MadeProduct, mug: MadeProduct
) -> dict[str, tuple[str, dict[str, Any], list[str]]]:
    product, variant = gid("Product", kettle.id), gid("ProductVariant", kettle.variant_ids[0])
    unknown_product, unknown_variant = gid("Product", 999), gid("ProductVariant", 999)

    def new_variant(**fields: Any) -> dict[str, Any]:
        return {"productId": product, "sku": "NEW-1", "title": "New", "price": "10.00", **fields}

    return {
        "slug taken": (CREATE, {"title": "Kettle"}, ["SLUG_TAKEN"]),
        "slug taken on update": (
            UPDATE,
            {"id": gid("Product", mug.id), "slug": "kettle"},
            ["SLUG_TAKEN"],
        ),
        "bad slug": (CREATE, {"title": "Pot", "slug": "Tea Pot!"}, ["INVALID"]),
        "slug with double hyphen": (CREATE, {"title": "Pot", "slug": "tea--pot"}, ["INVALID"]),
        "slug too long": (CREATE, {"title": "Pot", "slug": "a" * 121}, ["TOO_LONG"]),
        "bad slug on update": (UPDATE, {"id": product, "slug": "-kettle"}, ["INVALID"]),
        "blank title": (CREATE, {"title": "  ", "slug": "pot"}, ["BLANK"]),
        "long title": (CREATE, {"title": "t" * 201}, ["TOO_LONG"]),
        "no slug from the title": (CREATE, {"title": "日本茶"}, ["INVALID"]),
        "unknown category": (
            CREATE,
            {"title": "Pot", "categoryId": gid("Category", 999)},
            ["CATEGORY_NOT_FOUND"],
        ),
        "garbage category": (UPDATE, {"id": product, "categoryId": "nope"}, ["CATEGORY_NOT_FOUND"]),
        "unknown product": (UPDATE, {"id": unknown_product, "title": "X"}, ["PRODUCT_NOT_FOUND"]),
        "garbage product": (UPDATE, {"id": "nope", "title": "X"}, ["PRODUCT_NOT_FOUND"]),
        "archive unknown": (ARCHIVE, {"id": unknown_product}, ["PRODUCT_NOT_FOUND"]),
        "duplicate attributes": (
            CREATE,
            {
                "title": "Pot",
                "attributes": [{"name": "a", "value": "1"}, {"name": "A", "value": "2"}],
            },
            ["INVALID"],
        ),
        "sku taken": (VARIANT_CREATE, new_variant(sku="MUG-0"), ["SKU_TAKEN"]),
        "sku taken on update": (VARIANT_UPDATE, {"id": variant, "sku": "MUG-0"}, ["SKU_TAKEN"]),
        "zero price": (VARIANT_CREATE, new_variant(price="0"), ["INVALID_PRICE"]),
        "negative price": (VARIANT_CREATE, new_variant(price="-1.00"), ["INVALID_PRICE"]),
        "not a price": (VARIANT_CREATE, new_variant(price="ten"), ["INVALID_PRICE"]),
        "too precise": (VARIANT_CREATE, new_variant(price="1.001"), ["INVALID_PRICE"]),
        "too large": (VARIANT_CREATE, new_variant(price="10000000.01"), ["INVALID_PRICE"]),
        "compare-at below price": (
            VARIANT_CREATE,
            new_variant(compareAtPrice="9.99"),
            ["INVALID_PRICE"],
        ),
        "compare-at equal to price": (
            VARIANT_CREATE,
            new_variant(compareAtPrice="10.00"),
            ["INVALID_PRICE"],
        ),
        # The stored compare-at (15.00) is checked against the new price.
        "price over stored compare-at": (
            VARIANT_UPDATE,
            {"id": variant, "price": "15.00"},
            ["INVALID_PRICE"],
        ),
        "zero price on update": (
            VARIANT_UPDATE,
            {"id": variant, "price": "0.00"},
            ["INVALID_PRICE"],
        ),
        "negative stock": (VARIANT_CREATE, new_variant(stock=-1), ["INVALID_QUANTITY"]),
        "blank sku": (VARIANT_CREATE, new_variant(sku=" "), ["BLANK"]),
        "variant of unknown product": (
            VARIANT_CREATE,
            new_variant(productId=unknown_product),
            ["PRODUCT_NOT_FOUND"],
        ),
        "unknown variant": (
            VARIANT_UPDATE,
            {"id": unknown_variant, "title": "X"},
            ["VARIANT_NOT_FOUND"],
        ),
        "garbage variant": (VARIANT_UPDATE, {"id": product, "title": "X"}, ["VARIANT_NOT_FOUND"]),
        "stock below zero": (ADJUST, {"variantId": variant, "delta": -3}, ["INSUFFICIENT_STOCK"]),
        "set below zero": (ADJUST, {"variantId": variant, "setQuantity": -1}, ["INVALID_QUANTITY"]),
        "adjust unknown variant": (
            ADJUST,
            {"variantId": unknown_variant, "delta": 1},
            ["VARIANT_NOT_FOUND"],
        ),
        "delta and set": (
            ADJUST,
            {"variantId": variant, "delta": 1, "setQuantity": 1},
            ["INVALID"],
        ),
    }


CASE_NAMES = list(_cases(MadeProduct(1, "kettle", [1]), MadeProduct(2, "mug", [2])))


@pytest.mark.parametrize("case", CASE_NAMES)
async def test_refused_input_is_a_user_error_and_writes_nothing(
    client: AppClient, db: Database, case: str
) -> None:
    kettle, mug = await _world(db)
    boss = await staff_token(client, db)
    document, fields, expected = _cases(kettle, mug)[case]
    before = await catalog_rows(db)

    result = await client.query(document, {"input": fields}, token=boss)

    field = next(iter(result.data))
    assert result.status == 200
    assert [e["code"] for e in result.data[field]["userErrors"]] == expected
    assert all(e["message"] for e in result.data[field]["userErrors"])
    assert next(v for k, v in result.data[field].items() if k != "userErrors") is None
    assert await catalog_rows(db) == before


STAFF_ONLY = {
    "productCreate": (CREATE, lambda k: {"title": "Pot"}),
    "productUpdate": (UPDATE, lambda k: {"id": gid("Product", k.id), "title": "Mine now"}),
    "productArchive": (ARCHIVE, lambda k: {"id": gid("Product", k.id)}),
    "variantCreate": (
        VARIANT_CREATE,
        lambda k: {"productId": gid("Product", k.id), "sku": "X-1", "title": "X", "price": "1.00"},
    ),
    "variantUpdate": (
        VARIANT_UPDATE,
        lambda k: {"id": gid("ProductVariant", k.variant_ids[0]), "price": "0.01"},
    ),
    "inventoryAdjust": (
        ADJUST,
        lambda k: {"variantId": gid("ProductVariant", k.variant_ids[0]), "setQuantity": 0},
    ),
}


@pytest.mark.parametrize("mutation", list(STAFF_ONLY))
async def test_customers_are_forbidden_and_guests_unauthenticated(
    client: AppClient, db: Database, mutation: str
) -> None:
    kettle, _ = await _world(db)
    ann = await customer_token(client, "ann@example.com")
    boss = await staff_token(client, db)
    document, make_input = STAFF_ONLY[mutation]
    variables = {"input": make_input(kettle)}
    before = await catalog_rows(db)

    as_customer = await client.query(document, variables, token=ann)
    as_guest = await client.query(document, variables)
    unchanged = await catalog_rows(db)
    as_staff = await client.query(document, variables, token=boss)

    assert as_customer.error_codes == ["FORBIDDEN"]
    assert as_customer.body["data"] is None
    assert as_guest.error_codes == ["UNAUTHENTICATED"]
    assert unchanged == before
    # The same request is fine for staff: the refusal was about who asked.
    assert as_staff.data[mutation]["userErrors"] == []
    assert await catalog_rows(db) != before


# -- races ----------------------------------------------------------------------------


async def test_concurrent_creates_of_one_slug_make_one_product(
    client: AppClient, db: Database
) -> None:
    boss = await staff_token(client, db)

    results = await asyncio.gather(
        *(
            client.query(CREATE, {"input": {"title": f"Pot {i}", "slug": "pot"}}, token=boss)
            for i in range(8)
        )
    )

    assert {r.status for r in results} == {200}
    outcomes = Counter(
        "created"
        if r.data["productCreate"]["product"]
        else r.data["productCreate"]["userErrors"][0]["code"]
        for r in results
    )
    assert outcomes == {"created": 1, "SLUG_TAKEN": 7}
    assert [topic for topic, _ in await events(db)] == ["ProductCreated"]
    async with db.reader.connect() as connection:
        assert (await connection.execute(select(products.c.slug))).scalars().all() == ["pot"]


async def test_concurrent_skus_and_prices(client: AppClient, db: Database) -> None:
    kettle = await CatalogFactory(db).product("Kettle", prices=[1000])
    boss = await staff_token(client, db)
    product = gid("Product", kettle.id)

    def create(sku: str, price: str) -> Any:
        return client.query(
            VARIANT_CREATE,
            {"input": {"productId": product, "sku": sku, "title": sku, "price": price}},
            token=boss,
        )

    same_sku = await asyncio.gather(*(create("DUP", "3.00") for _ in range(4)))
    prices = await asyncio.gather(*(create(f"P-{n}", f"{n}.00") for n in (2, 30, 7, 45, 12)))

    assert sorted(bool(r.data["variantCreate"]["variant"]) for r in same_sku) == [
        False,
        False,
        False,
        True,
    ]
    assert all(r.data["variantCreate"]["userErrors"] == [] for r in prices)
    public = (await client.query(PUBLIC, {"slug": "kettle"})).data["product"]
    assert public["priceRange"] == {
        "minVariantPrice": {"amount": "2.00"},
        "maxVariantPrice": {"amount": "45.00"},
    }


async def test_concurrent_decrements_never_go_below_zero(client: AppClient, db: Database) -> None:
    kettle = await CatalogFactory(db).product("Kettle", stock=[5])
    boss = await staff_token(client, db)
    variant = gid("ProductVariant", kettle.variant_ids[0])

    results = await asyncio.gather(
        *(
            client.query(ADJUST, {"input": {"variantId": variant, "delta": -1}}, token=boss)
            for _ in range(12)
        )
    )

    outcomes = Counter(
        "taken"
        if r.data["inventoryAdjust"]["variant"]
        else r.data["inventoryAdjust"]["userErrors"][0]["code"]
        for r in results
    )
    assert outcomes == {"taken": 5, "INSUFFICIENT_STOCK": 7}
    async with db.reader.connect() as connection:
        left = (await connection.execute(select(inventory_levels.c.available))).scalar_one()
    assert left == 0
    assert sorted(p["available"] for _, p in await events(db)) == [0, 1, 2, 3, 4]


async def test_statements_per_mutation(client: AppClient, db: Database) -> None:
    """One transaction each; the counts include the viewer lookup and the payload's reads."""
    kettle, _ = await _world(db)
    boss = await staff_token(client, db)
    product = gid("Product", kettle.id)
    variant = gid("ProductVariant", kettle.variant_ids[0])
    calls = {
        "productCreate": (CREATE, {"title": "Pot"}),
        "productUpdate": (UPDATE, {"id": product, "title": "Kettle 2"}),
        "productArchive": (ARCHIVE, {"id": product}),
        "variantCreate": (
            VARIANT_CREATE,
            {"productId": product, "sku": "N", "title": "N", "price": "1.00"},
        ),
        "variantUpdate": (VARIANT_UPDATE, {"id": variant, "price": "2.00"}),
        "inventoryAdjust": (ADJUST, {"variantId": variant, "delta": 1}),
    }
    counts = {}
    for name, (document, fields) in calls.items():
        counts[name] = (await client.query(document, {"input": fields}, token=boss)).statements
    assert counts == {
        "productCreate": 3,  # viewer, INSERT ... ON CONFLICT, event
        "productUpdate": 4,  # viewer, SELECT ... FOR UPDATE, UPDATE, event
        "productArchive": 4,
        # viewer, lock product, INSERT variant, INSERT stock, reprice, 2 events, stock read
        "variantCreate": 8,
        # viewer, variant's product, lock product, lock variant, UPDATE, reprice, event, stock
        "variantUpdate": 8,
        "inventoryAdjust": 4,  # viewer, conditional UPDATE, event, variant read
    }


async def test_staff_see_drafts_and_archived_products_that_shoppers_do_not(
    client: AppClient, db: Database
) -> None:
    make = CatalogFactory(db)
    draft = await make.product("Secret Kettle", status="draft")
    live = await make.product("Public Mug")
    boss = await staff_token(client, db)
    ann = await customer_token(client, "ann@example.com")
    by_slug = "query($s: String!) { product(slug: $s) { title status } }"
    by_node = "query($id: ID!) { node(id: $id) { ... on Product { title status } } }"
    variant = "query($id: ID!) { node(id: $id) { ... on ProductVariant { product { title } } } }"

    def ask(document: str, **variables: Any) -> Any:
        return lambda token: client.query(document, variables, token=token)

    for question in (
        ask(by_slug, s=draft.slug),
        ask(by_node, id=gid("Product", draft.id)),
        ask(variant, id=gid("ProductVariant", draft.variant_ids[0])),
    ):
        guest, customer, staff = [await question(token) for token in (None, ann, boss)]
        assert list(guest.data.values()) == [None]
        assert list(customer.data.values()) == [None]
        assert list(staff.data.values()) != [None]
    staff_view = await client.http.get(
        "/graphql",
        params={"query": by_slug, "variables": f'{{"s": "{draft.slug}"}}'},
        headers={"Authorization": f"Bearer {boss}"},
    )
    public = await client.query(by_slug, {"s": live.slug})

    assert staff_view.json()["data"]["product"] == {"title": "Secret Kettle", "status": "DRAFT"}
    assert staff_view.headers["cache-control"] == "private, no-store"
    assert public.data["product"] == {"title": "Public Mug", "status": "ACTIVE"}
