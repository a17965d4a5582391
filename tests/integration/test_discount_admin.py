"""Staff set discounts up: codes and automatic discounts, checked field by field, each
write one transaction with its DiscountChanged event, and never a lost use: checkout
counts uses while staff edit the discount."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from sqlalchemy import select, text, update

from persistence.db import Database
from persistence.tables import discounts, outbox
from schema.global_id import encode_gid
from tests.client import AppClient, customer_token
from tests.factories import CatalogFactory
from tests.shop import staff_token

FIELDS = """id title code automatic valueType percentage amount { amount currencyCode }
  scope productIds categoryIds minimumSubtotal { amount } startsAt endsAt usageLimit
  timesUsed oncePerCustomer active"""
CREATE = f"""mutation($input: DiscountInput!) {{ discountCreate(input: $input) {{
  discount {{ {FIELDS} }} userErrors {{ field code message }} }} }}"""
UPDATE = f"""mutation($input: DiscountUpdateInput!) {{ discountUpdate(input: $input) {{
  discount {{ {FIELDS} }} userErrors {{ field code message }} }} }}"""
DEACTIVATE = f"""mutation($input: DiscountDeactivateInput!) {{ discountDeactivate(input: $input) {{
  discount {{ {FIELDS} }} userErrors {{ field code message }} }} }}"""
LIST = f"""query($first: Int, $after: String) {{ discounts(first: $first, after: $after) {{
  edges {{ cursor node {{ {FIELDS} }} }}
  pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"""
NODE = "query($id: ID!) { node(id: $id) { id ... on Discount { title } } }"
TEN_PERCENT = {
    "title": "Welcome",
    "code": "welcome10",
    "valueType": "PERCENTAGE",
    "basisPoints": 1000,
}


@pytest.fixture
async def staff(client: AppClient, db: Database) -> str:
    return await staff_token(client, db)


async def create(client: AppClient, staff: str, **values: Any) -> dict[str, Any]:
    answer = await client.query(CREATE, {"input": values}, token=staff)
    payload: dict[str, Any] = answer.data["discountCreate"]
    assert payload["userErrors"] == [], payload
    return payload["discount"]


async def change(client: AppClient, staff: str, **values: Any) -> dict[str, Any]:
    answer = await client.query(UPDATE, {"input": values}, token=staff)
    payload: dict[str, Any] = answer.data["discountUpdate"]
    return payload


async def stored(db: Database) -> list[dict[str, Any]]:
    async with db.reader.connect() as connection:
        result = await connection.execute(select(discounts).order_by(discounts.c.id))
        return [dict(row) for row in result.mappings()]


async def events(db: Database) -> list[dict[str, Any]]:
    async with db.reader.connect() as connection:
        result = await connection.execute(
            select(outbox.c.payload)
            .where(outbox.c.topic == "DiscountChanged")
            .order_by(outbox.c.id)
        )
        return [row.payload for row in result]


def key_of(global_id: str) -> int:
    raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    return int(raw.rsplit("/", 1)[1])


# -- create ---------------------------------------------------------------------------------


async def test_a_code_is_stored_canonical_with_its_fields_and_an_event(
    client: AppClient, staff: str, db: Database
) -> None:
    made = await create(
        client,
        staff,
        **{**TEN_PERCENT, "code": "  welcome10 ", "title": "  Welcome  "},
        minimumSubtotal="20.00",
        startsAt="2026-01-01T00:00:00+02:00",
        endsAt="2027-01-01T00:00:00Z",
        usageLimit=100,
        oncePerCustomer=True,
    )

    assert made["title"] == "Welcome" and made["code"] == "WELCOME10"
    assert made["automatic"] is False and made["valueType"] == "PERCENTAGE"
    assert (made["percentage"], made["amount"]) == (1000, None)
    assert (made["scope"], made["productIds"], made["categoryIds"]) == ("ORDER", [], [])
    assert made["minimumSubtotal"] == {"amount": "20.00"}
    assert made["startsAt"] == "2025-12-31T22:00:00+00:00"
    assert (made["usageLimit"], made["timesUsed"], made["oncePerCustomer"]) == (100, 0, True)
    assert made["active"] is True
    (row,) = await stored(db)
    assert made["id"] == encode_gid("Discount", row["id"])
    assert (row["code"], row["value_type"], row["value"], row["minimum_subtotal"]) == (
        "WELCOME10",
        "PERCENTAGE",
        1000,
        2000,
    )
    assert await events(db) == [{"discount": row["id"], "change": "created"}]


async def test_an_automatic_sale_on_categories_and_a_fixed_amount_on_products(
    client: AppClient, staff: str, db: Database
) -> None:
    make = CatalogFactory(db)
    home = await make.category("home")
    mug = await make.product("Mug", category=home)
    sale = await create(
        client,
        staff,
        title="Home sale",
        valueType="PERCENTAGE",
        basisPoints=1500,
        scope="CATEGORIES",
        categoryIds=[encode_gid("Category", home), encode_gid("Category", home)],
    )
    five_off = await create(
        client,
        staff,
        title="Five off mugs",
        code="MUG5",
        valueType="FIXED_AMOUNT",
        amount="5",
        scope="PRODUCTS",
        productIds=[encode_gid("Product", mug.id)],
    )
    free = await create(client, staff, title="Ship free", code="SHIP", valueType="FREE_SHIPPING")

    assert (sale["code"], sale["automatic"], sale["scope"]) == (None, True, "CATEGORIES")
    assert sale["categoryIds"] == [encode_gid("Category", home)]  # repeats dropped
    assert five_off["amount"] == {"amount": "5.00", "currencyCode": "USD"}
    assert five_off["percentage"] is None
    assert five_off["productIds"] == [encode_gid("Product", mug.id)]
    assert (free["valueType"], free["percentage"], free["amount"]) == ("FREE_SHIPPING", None, None)
    assert [r["value"] for r in await stored(db)] == [1500, 500, 0]


GOOD = {"title": "Sale", "valueType": "PERCENTAGE", "basisPoints": 500}


@pytest.mark.parametrize(
    ("values", "field", "code"),
    [
        ({"title": "  "}, ["title"], "BLANK"),
        ({"title": "t" * 201}, ["title"], "TOO_LONG"),
        ({"code": " "}, ["code"], "BLANK"),
        ({"code": "C" * 65}, ["code"], "TOO_LONG"),
        ({"code": "TEN OFF!"}, ["code"], "INVALID"),
        ({"code": "d\u0131scount"}, ["code"], "INVALID"),  # a dotless i upper-cases to I
        ({"basisPoints": None}, ["basisPoints"], "BLANK"),
        ({"basisPoints": 0}, ["basisPoints"], "INVALID"),
        ({"basisPoints": 10_001}, ["basisPoints"], "INVALID"),
        ({"amount": "5.00"}, ["amount"], "INVALID"),
        ({"valueType": "FIXED_AMOUNT", "basisPoints": None}, ["amount"], "BLANK"),
        (
            {"valueType": "FIXED_AMOUNT", "basisPoints": None, "amount": "0"},
            ["amount"],
            "INVALID_PRICE",
        ),
        (
            {"valueType": "FIXED_AMOUNT", "basisPoints": None, "amount": "abc"},
            ["amount"],
            "INVALID_PRICE",
        ),
        (
            {"valueType": "FIXED_AMOUNT", "basisPoints": None, "amount": "1.001"},
            ["amount"],
            "INVALID_PRICE",
        ),
        (
            {"valueType": "FIXED_AMOUNT", "basisPoints": None, "amount": "10000000.01"},
            ["amount"],
            "INVALID_PRICE",
        ),
        ({"valueType": "FIXED_AMOUNT", "amount": "1"}, ["basisPoints"], "INVALID"),
        (
            {
                "valueType": "FREE_SHIPPING",
                "basisPoints": None,
                "scope": "PRODUCTS",
                "productIds": ["P1"],
            },
            ["scope"],
            "INVALID",
        ),
        ({"scope": "PRODUCTS"}, ["productIds"], "BLANK"),
        ({"scope": "PRODUCTS", "productIds": []}, ["productIds"], "BLANK"),
        ({"scope": "CATEGORIES"}, ["categoryIds"], "BLANK"),
        ({"scope": "PRODUCTS", "productIds": ["x"] * 101}, ["productIds"], "INVALID"),
        ({"categoryIds": ["x"]}, ["categoryIds"], "INVALID"),
        (
            {"scope": "CATEGORIES", "categoryIds": ["c"], "productIds": ["p"]},
            ["productIds"],
            "INVALID",
        ),
        ({"minimumSubtotal": "-1"}, ["minimumSubtotal"], "INVALID_PRICE"),
        ({"minimumSubtotal": "10000000.01"}, ["minimumSubtotal"], "INVALID_PRICE"),
        ({"startsAt": "2026-01-01T00:00:00"}, ["startsAt"], "INVALID"),
        ({"endsAt": "2026-01-01T00:00:00"}, ["endsAt"], "INVALID"),
        (
            {"startsAt": "2026-02-01T00:00:00Z", "endsAt": "2026-02-01T00:00:00Z"},
            ["endsAt"],
            "INVALID",
        ),
        (
            {"startsAt": "2026-02-01T00:00:00Z", "endsAt": "2026-01-01T00:00:00Z"},
            ["endsAt"],
            "INVALID",
        ),
        ({"usageLimit": 0}, ["usageLimit"], "INVALID"),
        ({"usageLimit": 1_000_000_001}, ["usageLimit"], "INVALID"),
    ],
)
async def test_each_refusal_names_its_field_and_writes_nothing(
    client: AppClient,
    staff: str,
    db: Database,
    values: dict[str, Any],
    field: list[str],
    code: str,
) -> None:
    answer = await client.query(CREATE, {"input": {**GOOD, **values}}, token=staff)

    payload = answer.data["discountCreate"]
    assert payload["discount"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)], payload
    assert await stored(db) == [] and await events(db) == []


async def test_every_problem_is_reported_at_once(client: AppClient, staff: str) -> None:
    answer = await client.query(
        CREATE,
        {"input": {"title": "", "valueType": "PERCENTAGE", "basisPoints": 0, "usageLimit": 0}},
        token=staff,
    )

    codes = [(e["field"], e["code"]) for e in answer.data["discountCreate"]["userErrors"]]
    assert codes == [
        (["title"], "BLANK"),
        (["basisPoints"], "INVALID"),
        (["usageLimit"], "INVALID"),
    ]


async def test_unknown_products_and_categories_are_reported_at_their_index(
    client: AppClient, staff: str, db: Database
) -> None:
    make = CatalogFactory(db)
    mug = await make.product("Mug")
    home = await make.category("home")

    products = await client.query(
        CREATE,
        {
            "input": {
                **GOOD,
                "scope": "PRODUCTS",
                "productIds": [
                    encode_gid("Product", mug.id),
                    encode_gid("Product", 999),
                    encode_gid("Category", home),  # an id of something else
                    "not an id",
                ],
            }
        },
        token=staff,
    )
    categories = await client.query(
        CREATE,
        {
            "input": {
                **GOOD,
                "scope": "CATEGORIES",
                "categoryIds": [encode_gid("Category", 999), encode_gid("Category", home)],
            }
        },
        token=staff,
    )

    assert [(e["field"], e["code"]) for e in products.data["discountCreate"]["userErrors"]] == [
        (["productIds", "1"], "PRODUCT_NOT_FOUND"),
        (["productIds", "2"], "PRODUCT_NOT_FOUND"),
        (["productIds", "3"], "PRODUCT_NOT_FOUND"),
    ]
    assert [(e["field"], e["code"]) for e in categories.data["discountCreate"]["userErrors"]] == [
        (["categoryIds", "0"], "CATEGORY_NOT_FOUND")
    ]
    assert await stored(db) == []


async def test_a_taken_code_is_refused_whatever_its_case(
    client: AppClient, staff: str, db: Database
) -> None:
    await create(client, staff, **TEN_PERCENT)
    other = await create(client, staff, title="Other", code="OTHER", valueType="FREE_SHIPPING")

    again = await client.query(CREATE, {"input": {**TEN_PERCENT, "code": "Welcome10"}}, token=staff)
    renamed = await change(client, staff, id=other["id"], code="WELCOME10")

    for payload in (again.data["discountCreate"], renamed):
        assert payload["discount"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            (["code"], "DISCOUNT_CODE_TAKEN")
        ]
    assert [r["code"] for r in await stored(db)] == ["WELCOME10", "OTHER"]
    assert [e["change"] for e in await events(db)] == ["created", "created"]


# -- update and deactivate -------------------------------------------------------------------


async def test_an_update_changes_what_it_names_and_keeps_the_rest(
    client: AppClient, staff: str, db: Database
) -> None:
    made = await create(
        client, staff, **TEN_PERCENT, endsAt="2030-01-01T00:00:00Z", minimumSubtotal="10"
    )

    renamed = await change(client, staff, id=made["id"], title="Hello", usageLimit=5)
    cleared = await change(client, staff, id=made["id"], endsAt=None, minimumSubtotal=None)
    automatic = await change(client, staff, id=made["id"], code=None)

    assert renamed["userErrors"] == []
    kept = {k: v for k, v in renamed["discount"].items() if k not in ("title", "usageLimit")}
    assert kept == {k: v for k, v in made.items() if k not in ("title", "usageLimit")}
    assert (renamed["discount"]["title"], renamed["discount"]["usageLimit"]) == ("Hello", 5)
    assert cleared["discount"]["endsAt"] is None
    assert cleared["discount"]["minimumSubtotal"] is None
    assert cleared["discount"]["usageLimit"] == 5 and cleared["discount"]["code"] == "WELCOME10"
    assert (automatic["discount"]["code"], automatic["discount"]["automatic"]) == (None, True)
    (row,) = await stored(db)
    assert (row["title"], row["code"], row["ends_at"], row["usage_limit"]) == (
        "Hello",
        None,
        None,
        5,
    )
    assert [e["change"] for e in await events(db)] == ["created", "updated", "updated", "updated"]


async def test_a_new_value_type_or_scope_drops_what_no_longer_fits(
    client: AppClient, staff: str, db: Database
) -> None:
    mug = await CatalogFactory(db).product("Mug")
    made = await create(
        client,
        staff,
        **GOOD,
        scope="PRODUCTS",
        productIds=[encode_gid("Product", mug.id)],
    )

    needs_amount = await change(client, staff, id=made["id"], valueType="FIXED_AMOUNT")
    fixed = await change(client, staff, id=made["id"], valueType="FIXED_AMOUNT", amount="2.50")
    whole_order = await change(client, staff, id=made["id"], scope="ORDER")
    free_on_products = await change(
        client,
        staff,
        id=made["id"],
        valueType="FREE_SHIPPING",
        scope="PRODUCTS",
        productIds=[encode_gid("Product", mug.id)],
    )

    assert [(e["field"], e["code"]) for e in needs_amount["userErrors"]] == [(["amount"], "BLANK")]
    assert fixed["discount"]["amount"]["amount"] == "2.50"
    assert fixed["discount"]["percentage"] is None
    assert fixed["discount"]["productIds"] == [encode_gid("Product", mug.id)]
    assert whole_order["discount"]["productIds"] == []
    assert whole_order["discount"]["amount"]["amount"] == "2.50"
    assert [(e["field"], e["code"]) for e in free_on_products["userErrors"]] == [
        (["scope"], "INVALID")
    ]
    (row,) = await stored(db)
    assert (row["value_type"], row["value"], row["scope"], row["product_ids"]) == (
        "FIXED_AMOUNT",
        250,
        "ORDER",
        [],
    )


async def test_an_update_is_checked_like_a_create(client: AppClient, staff: str) -> None:
    made = await create(client, staff, **GOOD, startsAt="2026-06-01T00:00:00Z")

    backwards = await change(client, staff, id=made["id"], endsAt="2026-05-01T00:00:00Z")
    blank = await change(client, staff, id=made["id"], title=" ", basisPoints=20_000)
    unknown = await change(client, staff, id=encode_gid("Discount", 999), title="x")
    garbage = await change(client, staff, id="garbage", title="x")
    wrong_type = await change(client, staff, id=encode_gid("Product", key_of(made["id"])))

    assert [(e["field"], e["code"]) for e in backwards["userErrors"]] == [(["endsAt"], "INVALID")]
    assert [(e["field"], e["code"]) for e in blank["userErrors"]] == [
        (["title"], "BLANK"),
        (["basisPoints"], "INVALID"),
    ]
    for refused in (unknown, garbage, wrong_type):
        assert refused["discount"] is None
        assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
            (["id"], "DISCOUNT_NOT_FOUND")
        ]


async def test_the_usage_limit_never_goes_below_the_uses(
    client: AppClient, staff: str, db: Database
) -> None:
    made = await create(client, staff, **TEN_PERCENT, usageLimit=10)
    async with db.writer.begin() as connection:
        await connection.execute(update(discounts).values(times_used=5))

    below = await change(client, staff, id=made["id"], usageLimit=4, title="Changed")
    equal = await change(client, staff, id=made["id"], usageLimit=5)
    unlimited = await change(client, staff, id=made["id"], usageLimit=None)

    assert below["discount"] is None
    assert [(e["field"], e["code"]) for e in below["userErrors"]] == [(["usageLimit"], "INVALID")]
    assert equal["userErrors"] == [] and equal["discount"]["usageLimit"] == 5
    assert equal["discount"]["timesUsed"] == 5 and equal["discount"]["title"] == "Welcome"
    assert unlimited["discount"]["usageLimit"] is None
    assert [e["change"] for e in await events(db)] == ["created", "updated", "updated"]


async def test_deactivating_keeps_the_discount_and_an_update_brings_it_back(
    client: AppClient, staff: str, db: Database
) -> None:
    made = await create(client, staff, **TEN_PERCENT)

    answer = await client.query(DEACTIVATE, {"input": {"id": made["id"]}}, token=staff)
    unknown = await client.query(
        DEACTIVATE, {"input": {"id": encode_gid("Discount", 999)}}, token=staff
    )
    back = await change(client, staff, id=made["id"], active=True)

    deactivated = answer.data["discountDeactivate"]
    assert deactivated["userErrors"] == [] and deactivated["discount"]["active"] is False
    assert deactivated["discount"]["code"] == "WELCOME10"
    assert [(e["field"], e["code"]) for e in unknown.data["discountDeactivate"]["userErrors"]] == [
        (["id"], "DISCOUNT_NOT_FOUND")
    ]
    assert back["discount"]["active"] is True
    (row,) = await stored(db)
    assert [e for e in await events(db)] == [
        {"discount": row["id"], "change": "created"},
        {"discount": row["id"], "change": "deactivated"},
        {"discount": row["id"], "change": "updated"},
    ]


async def test_uses_counted_while_staff_edit_the_limit_are_never_lost(
    client: AppClient, staff: str, db: Database
) -> None:
    """Checkout takes a use with a conditional UPDATE while staff change the discount: no
    use may be lost (an update that wrote back a count it read would lose some), and the
    limit never ends below the count (a limit checked by reading first could)."""
    made = await create(client, staff, **TEN_PERCENT, usageLimit=1_000)
    discount_id = key_of(made["id"])
    uses, edits = 60, 30
    taken: list[bool] = []

    async def take_a_use(n: int) -> None:
        await asyncio.sleep(n * 0.003)  # spread over the edits
        async with db.writer.begin() as connection:
            result = await connection.execute(
                text(
                    "UPDATE discounts SET times_used = times_used + 1 WHERE id = :id "
                    "AND (usage_limit IS NULL OR times_used < usage_limit)"
                ),
                {"id": discount_id},
            )
            taken.append(result.rowcount == 1)

    async def edit(n: int) -> dict[str, Any]:
        # Ever lower limits, soon below the count: the late ones must be refused.
        await asyncio.sleep(n * 0.006)
        return await change(client, staff, id=made["id"], title=f"Edit {n}", usageLimit=45 - n)

    results = await asyncio.gather(
        *(take_a_use(n) for n in range(uses)), *(edit(n) for n in range(edits))
    )

    (row,) = await stored(db)
    assert row["times_used"] == sum(taken)
    assert row["times_used"] <= row["usage_limit"]
    edited = [r for r in results if r is not None]
    assert all(
        r["userErrors"] == [] or [e["code"] for e in r["userErrors"]] == ["INVALID"] for r in edited
    )
    accepted = [r for r in edited if r["userErrors"] == []]
    assert accepted, "at least one edit went through"
    # what each accepted edit wrote, as its UPDATE left the row
    assert all(r["discount"]["timesUsed"] <= r["discount"]["usageLimit"] for r in accepted)
    assert len([e for e in await events(db) if e["change"] == "updated"]) == len(accepted)


# -- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "values"),
    [
        (CREATE, GOOD),
        (UPDATE, {"id": encode_gid("Discount", 1), "title": "Mine now"}),
        (DEACTIVATE, {"id": encode_gid("Discount", 1)}),
    ],
)
async def test_customers_are_forbidden_and_guests_unauthenticated(
    client: AppClient, staff: str, db: Database, document: str, values: dict[str, Any]
) -> None:
    await create(client, staff, **TEN_PERCENT)
    before = await stored(db)
    ann = await customer_token(client, "ann@example.com")

    as_customer = await client.query(document, {"input": values}, token=ann)
    as_guest = await client.query(document, {"input": values})

    assert as_customer.error_codes == ["FORBIDDEN"]
    assert as_guest.error_codes == ["UNAUTHENTICATED"]
    assert await stored(db) == before and len(await events(db)) == 1


async def test_only_staff_list_discounts_or_find_one_by_id(client: AppClient, staff: str) -> None:
    made = await create(client, staff, **TEN_PERCENT)
    ann = await customer_token(client, "ann@example.com")

    as_customer = await client.query(LIST, {}, token=ann)
    as_guest = await client.query(LIST, {})
    node_for_staff = await client.query(NODE, {"id": made["id"]}, token=staff)
    node_for_customer = await client.query(NODE, {"id": made["id"]}, token=ann)
    node_for_guest = await client.query(NODE, {"id": made["id"]})

    assert as_customer.error_codes == ["FORBIDDEN"]
    assert as_guest.error_codes == ["UNAUTHENTICATED"]
    assert node_for_staff.data["node"] == {"id": made["id"], "title": "Welcome"}
    assert node_for_customer.data["node"] is None and node_for_guest.data["node"] is None


async def test_staff_page_through_discounts_newest_first(client: AppClient, staff: str) -> None:
    made = [
        await create(client, staff, title=f"D{n}", code=f"CODE{n}", valueType="FREE_SHIPPING")
        for n in range(5)
    ]

    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await client.query(LIST, {"first": 2, "after": after}, token=staff)).data[
            "discounts"
        ]
        pages.append(page["pageInfo"])
        seen.extend(edge["node"]["title"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    too_many = await client.query(LIST, {"first": 101}, token=staff)
    bad_cursor = await client.query(LIST, {"after": "bm90IGEgY3Vyc29y"}, token=staff)

    assert seen == ["D4", "D3", "D2", "D1", "D0"] and len(made) == 5
    assert [(p["hasNextPage"], p["hasPreviousPage"]) for p in pages] == [
        (True, False),
        (True, True),
        (False, True),
    ]
    assert too_many.error_codes == ["INVALID_PAGE_SIZE"]
    assert bad_cursor.error_codes == ["INVALID_CURSOR"]
