"""The address book over the real PostgreSQL and Redis: saving, the default, the limit of
50 under concurrency, other customers' ids, encryption at rest, and carts prefilled from
the default address."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from domain.addresses import MailingAddress
from domain.errors import Rejected, UserErrorCode
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.tables import customer_addresses
from schema.global_id import decode_gid, encode_gid
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.conftest import FAST_PASSWORDS
from tests.factories import CatalogFactory

FIELDS = "id firstName lastName address1 address2 city province zip countryCode phone isDefault"
ERRORS = "userErrors { field code message }"
CREATE = f"""mutation($a: MailingAddressInput!, $d: Boolean) {{
  customerAddressCreate(input: {{address: $a, default: $d}}) {{
    customerAddress {{ {FIELDS} }} customer {{ defaultAddress {{ id }} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($id: ID!, $a: MailingAddressInput!, $d: Boolean) {{
  customerAddressUpdate(input: {{id: $id, address: $a, default: $d}}) {{
    customerAddress {{ {FIELDS} }} customer {{ defaultAddress {{ id }} }} {ERRORS} }} }}"""
DELETE = f"""mutation($id: ID!) {{
  customerAddressDelete(input: {{id: $id}}) {{ deletedCustomerAddressId {ERRORS} }} }}"""
MAKE_DEFAULT = f"""mutation($id: ID!) {{
  customerDefaultAddressUpdate(input: {{id: $id}}) {{
    customer {{ defaultAddress {{ id city }} }} {ERRORS} }} }}"""
BOOK = f"""query($first: Int, $after: String) {{ me {{
  defaultAddress {{ {FIELDS} }}
  addresses(first: $first, after: $after) {{
    edges {{ cursor node {{ {FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }} }}"""
NODE = "query($id: ID!) { node(id: $id) { id ... on CustomerAddress { city } } }"
CART_CREATE = """mutation { cartCreate(input: {}) {
  cart { id shippingAddress { address1 city } } userErrors { code } } }"""
CART_ADDRESS = """mutation($id: ID!, $a: MailingAddressInput!) {
  cartShippingAddressUpdate(input: {cartId: $id, address: $a}) {
    cart { shippingAddress { address1 } } userErrors { field code } } }"""
CART_BUYER = """mutation($id: ID!, $b: CartBuyerIdentityInput!) {
  cartBuyerIdentityUpdate(input: {cartId: $id, buyerIdentity: $b}) {
    cart { shippingAddress { address1 city } } userErrors { field code } } }"""
CART_READ = "query($id: ID!) { cart(id: $id) { shippingAddress { address1 city } } }"

HOME = {
    "firstName": "Ann",
    "lastName": "Lee",
    "address1": "1 Main St",
    "city": "Berlin",
    "zip": "10115",
    "countryCode": "de",
}
WORK = {**HOME, "address1": "9 Office Park", "city": "Hamburg", "zip": "20095"}


def street(n: int) -> dict[str, str]:
    return {**HOME, "address1": f"{n} Long Road"}


async def save(
    client: AppClient, token: str, address: dict[str, str], default: bool | None = None
) -> dict[str, Any]:
    result = await client.query(CREATE, {"a": address, "d": default}, token=token)
    payload: dict[str, Any] = result.data["customerAddressCreate"]
    return payload


async def book(client: AppClient, token: str, first: int = 50) -> dict[str, Any]:
    me: dict[str, Any] = (await client.query(BOOK, {"first": first}, token=token)).data["me"]
    return me


def cities(me: dict[str, Any]) -> list[str]:
    return [e["node"]["city"] for e in me["addresses"]["edges"]]


async def customer_id(client: AppClient, token: str) -> int:
    me = (await client.query("{ me { id } }", token=token)).data["me"]
    return int(decode_gid(me["id"])[1])


# -- happy paths --------------------------------------------------------------------


async def test_first_address_becomes_the_default_and_is_checked_like_a_cart_address(
    client: AppClient,
) -> None:
    ann = await customer_token(client, "ann@example.com")

    first = await save(client, ann, {**HOME, "firstName": "  Ann "})
    second = await save(client, ann, WORK)

    assert first["userErrors"] == [] and second["userErrors"] == []
    saved = first["customerAddress"]
    assert saved["firstName"] == "Ann" and saved["countryCode"] == "DE"  # trimmed, upper-cased
    assert saved["isDefault"] is True and second["customerAddress"]["isDefault"] is False
    assert first["customer"]["defaultAddress"]["id"] == saved["id"]
    assert second["customer"]["defaultAddress"]["id"] == saved["id"]
    me = await book(client, ann)
    assert cities(me) == ["Berlin", "Hamburg"]  # in the order they were saved
    assert me["defaultAddress"] == saved
    assert decode_gid(saved["id"])[0] == "CustomerAddress"


async def test_saving_with_default_moves_the_default(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    await save(client, ann, HOME)

    work = await save(client, ann, WORK, default=True)

    me = await book(client, ann)
    assert me["defaultAddress"]["city"] == "Hamburg"
    assert [e["node"]["isDefault"] for e in me["addresses"]["edges"]] == [False, True]
    assert work["customer"]["defaultAddress"]["id"] == work["customerAddress"]["id"]


async def test_update_replaces_the_address_and_can_make_it_the_default(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    home = (await save(client, ann, HOME))["customerAddress"]
    work = (await save(client, ann, WORK))["customerAddress"]

    kept = await client.query(
        UPDATE, {"id": work["id"], "a": {**WORK, "city": "Bremen"}}, token=ann
    )
    moved = await client.query(
        UPDATE, {"id": work["id"], "a": {**WORK, "city": "Kiel"}, "d": True}, token=ann
    )

    assert kept.data["customerAddressUpdate"]["userErrors"] == []
    assert kept.data["customerAddressUpdate"]["customerAddress"]["city"] == "Bremen"
    assert kept.data["customerAddressUpdate"]["customer"]["defaultAddress"]["id"] == home["id"]
    assert moved.data["customerAddressUpdate"]["customerAddress"]["isDefault"] is True
    me = await book(client, ann)
    assert cities(me) == ["Berlin", "Kiel"]
    assert me["defaultAddress"]["id"] == work["id"]


async def test_default_address_update_switches_the_one_default(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    await save(client, ann, HOME)
    work = (await save(client, ann, WORK))["customerAddress"]

    result = await client.query(MAKE_DEFAULT, {"id": work["id"]}, token=ann)
    again = await client.query(MAKE_DEFAULT, {"id": work["id"]}, token=ann)

    assert result.data["customerDefaultAddressUpdate"] == {
        "customer": {"defaultAddress": {"id": work["id"], "city": "Hamburg"}},
        "userErrors": [],
    }
    assert again.data["customerDefaultAddressUpdate"]["userErrors"] == []
    me = await book(client, ann)
    assert [e["node"]["isDefault"] for e in me["addresses"]["edges"]] == [False, True]


async def test_deleting_the_default_makes_the_newest_remaining_one_the_default(
    client: AppClient,
) -> None:
    ann = await customer_token(client, "ann@example.com")
    home = (await save(client, ann, HOME))["customerAddress"]
    await save(client, ann, WORK)
    newest = (await save(client, ann, {**WORK, "city": "Kiel"}))["customerAddress"]

    deleted = await client.query(DELETE, {"id": home["id"]}, token=ann)

    assert deleted.data["customerAddressDelete"] == {
        "deletedCustomerAddressId": home["id"],
        "userErrors": [],
    }
    me = await book(client, ann)
    assert cities(me) == ["Hamburg", "Kiel"]
    assert me["defaultAddress"]["id"] == newest["id"]


async def test_deleting_the_last_address_leaves_no_default(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    home = (await save(client, ann, HOME))["customerAddress"]

    await client.query(DELETE, {"id": home["id"]}, token=ann)
    again = await client.query(DELETE, {"id": home["id"]}, token=ann)

    me = await book(client, ann)
    assert me["defaultAddress"] is None and me["addresses"]["edges"] == []
    assert again.data["customerAddressDelete"]["userErrors"][0]["code"] == "ADDRESS_NOT_FOUND"


async def test_addresses_are_paged_by_keyset(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    for n in range(5):
        await save(client, ann, street(n))

    first = (await client.query(BOOK, {"first": 2}, token=ann)).data["me"]["addresses"]
    after = first["pageInfo"]["endCursor"]
    second = (await client.query(BOOK, {"first": 10, "after": after}, token=ann)).data["me"]
    bad_cursor = await client.query(BOOK, {"first": 2, "after": "bm9wZQ"}, token=ann)
    too_many = await client.query(BOOK, {"first": 101}, token=ann)

    assert [e["node"]["address1"] for e in first["edges"]] == ["0 Long Road", "1 Long Road"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["address1"] for e in second["addresses"]["edges"]] == [
        "2 Long Road",
        "3 Long Road",
        "4 Long Road",
    ]
    assert second["addresses"]["pageInfo"]["hasNextPage"] is False
    assert bad_cursor.error_codes == ["INVALID_CURSOR"]
    assert too_many.error_codes == ["INVALID_PAGE_SIZE"]


async def test_a_saved_address_is_a_node_for_its_owner(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    home = (await save(client, ann, HOME))["customerAddress"]

    found = await client.query(NODE, {"id": home["id"]}, token=ann)
    guest = await client.query(NODE, {"id": home["id"]})

    assert found.data["node"] == {"id": home["id"], "city": "Berlin"}
    assert guest.data["node"] is None


# -- refusals -----------------------------------------------------------------------


async def test_bad_addresses_are_refused_with_the_carts_codes_and_nothing_is_saved(
    client: AppClient,
) -> None:
    ann = await customer_token(client, "ann@example.com")
    cart_id = (await client.query(CART_CREATE)).data["cartCreate"]["cart"]["id"]
    bad = {**HOME, "firstName": " ", "address1": "x" * 201, "countryCode": "Germany"}

    saved = await save(client, ann, bad)
    on_cart = await client.query(CART_ADDRESS, {"id": cart_id, "a": bad})

    codes = {(tuple(e["field"]), e["code"]) for e in saved["userErrors"]}
    assert codes == {
        (("address", "firstName"), "BLANK"),
        (("address", "address1"), "TOO_LONG"),
        (("address", "countryCode"), "INVALID_COUNTRY_CODE"),
    }
    cart_codes = {
        (tuple(e["field"]), e["code"])
        for e in on_cart.data["cartShippingAddressUpdate"]["userErrors"]
    }
    assert cart_codes == codes  # one rule for both
    assert saved["customerAddress"] is None
    assert (await book(client, ann))["addresses"]["edges"] == []


async def test_a_bad_update_changes_nothing(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    home = (await save(client, ann, HOME))["customerAddress"]

    result = await client.query(
        UPDATE, {"id": home["id"], "a": {**HOME, "zip": "1" * 21}}, token=ann
    )

    errors = result.data["customerAddressUpdate"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [(["address", "zip"], "TOO_LONG")]
    assert (await book(client, ann))["defaultAddress"]["zip"] == "10115"


async def test_every_address_mutation_needs_an_access_token(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    home = (await save(client, ann, HOME))["customerAddress"]

    results = [
        await client.query(CREATE, {"a": HOME}),
        await client.query(UPDATE, {"id": home["id"], "a": WORK}),
        await client.query(DELETE, {"id": home["id"]}),
        await client.query(MAKE_DEFAULT, {"id": home["id"]}),
        await client.query(CREATE, {"a": HOME}, token="not-a-token"),
    ]

    assert [r.error_codes for r in results] == [["UNAUTHENTICATED"]] * 5
    assert (await client.query(BOOK)).data["me"] is None
    assert cities(await book(client, ann)) == ["Berlin"]


async def test_unknown_and_malformed_ids_are_address_not_found(
    client: AppClient, db: Database
) -> None:
    ann = await customer_token(client, "ann@example.com")
    home = (await save(client, ann, HOME))["customerAddress"]
    product = await CatalogFactory(db).product("Mug")
    unknown = [
        encode_gid("CustomerAddress", 999_999),
        encode_gid("Product", product.id),
        encode_gid("CustomerAddress", "007"),
        "not an id",
    ]

    for address_id in unknown:
        for document, name, variables in (
            (UPDATE, "customerAddressUpdate", {"a": WORK}),
            (DELETE, "customerAddressDelete", {}),
            (MAKE_DEFAULT, "customerDefaultAddressUpdate", {}),
        ):
            result = await client.query(document, {"id": address_id, **variables}, token=ann)
            assert result.data[name]["userErrors"] == [
                {"field": ["id"], "code": "ADDRESS_NOT_FOUND", "message": "no such address"}
            ], (address_id, name)

    me = await book(client, ann)
    assert me["defaultAddress"] == home and cities(me) == ["Berlin"]


async def test_another_customers_address_answers_like_an_unknown_one(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    bob = await customer_token(client, "bob@example.com")
    anns = (await save(client, ann, HOME))["customerAddress"]
    await save(client, bob, WORK)
    unknown = encode_gid("CustomerAddress", decode_gid(anns["id"])[1] + "999")

    def answers(address_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (UPDATE, {"id": address_id, "a": {**WORK, "city": "Stolen"}, "d": True}),
            (DELETE, {"id": address_id}),
            (MAKE_DEFAULT, {"id": address_id}),
            (NODE, {"id": address_id}),
        ]

    by_bob = [(await client.query(d, v, token=bob)).body for d, v in answers(anns["id"])]
    for_unknown = [(await client.query(d, v, token=bob)).body for d, v in answers(unknown)]

    assert by_bob == for_unknown  # not a hint that Ann's id exists
    assert by_bob[0]["data"]["customerAddressUpdate"]["userErrors"][0]["code"] == (
        "ADDRESS_NOT_FOUND"
    )
    assert by_bob[3]["data"]["node"] is None
    anns_book = await book(client, ann)
    bobs_book = await book(client, bob)
    assert anns_book["defaultAddress"] == anns and cities(anns_book) == ["Berlin"]
    assert cities(bobs_book) == ["Hamburg"] and bobs_book["defaultAddress"]["city"] == "Hamburg"


async def test_the_fifty_first_address_is_refused(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    book_store = client.container.address_book
    ann_id = await customer_id(client, ann)
    for n in range(50):
        await book_store.add(ann_id, MailingAddress(**_plain(street(n))), False)

    refused = await save(client, ann, WORK)

    assert refused["customerAddress"] is None
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["address"], "ADDRESS_LIMIT_REACHED")
    ]
    assert len((await book(client, ann))["addresses"]["edges"]) == 50


async def test_the_limit_holds_under_concurrent_saves(client: AppClient, db: Database) -> None:
    ann = await customer_token(client, "ann@example.com")
    ann_id = await customer_id(client, ann)
    for n in range(48):
        await client.container.address_book.add(ann_id, MailingAddress(**_plain(street(n))), False)

    results = await asyncio.gather(
        *(save(client, ann, {**WORK, "address1": f"{n} Rush Lane"}) for n in range(10))
    )

    codes = sorted(e["code"] for r in results for e in r["userErrors"])
    assert sum(r["customerAddress"] is not None for r in results) == 2
    assert codes == ["ADDRESS_LIMIT_REACHED"] * 8
    async with db.reader.connect() as connection:
        rows = (await connection.execute(select(customer_addresses.c.is_default))).all()
    assert len(rows) == 50 and sum(row.is_default for row in rows) == 1


async def test_the_limit_holds_when_saves_reach_the_database_at_once(
    client: AppClient, db: Database
) -> None:
    ann = await customer_token(client, "ann@example.com")
    ann_id = await customer_id(client, ann)
    address_book = client.container.address_book
    for n in range(48):
        await address_book.add(ann_id, MailingAddress(**_plain(street(n))), False)

    outcomes = await asyncio.gather(
        *(
            address_book.add(ann_id, MailingAddress(**_plain(street(100 + n))), n % 2 == 0)
            for n in range(10)
        ),
        return_exceptions=True,
    )

    refused = [o for o in outcomes if isinstance(o, Rejected)]
    assert len(refused) == 8 and all(
        r.errors[0].code is UserErrorCode.ADDRESS_LIMIT_REACHED for r in refused
    )
    async with db.reader.connect() as connection:
        rows = (await connection.execute(select(customer_addresses.c.is_default))).all()
    assert len(rows) == 50 and sum(row.is_default for row in rows) == 1


async def test_concurrent_default_changes_leave_exactly_one_default(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    ids = [(await save(client, ann, street(n)))["customerAddress"]["id"] for n in range(6)]

    await asyncio.gather(
        *(client.query(MAKE_DEFAULT, {"id": i}, token=ann) for i in ids),
        *(save(client, ann, street(n), default=True) for n in range(10, 14)),
    )

    me = await book(client, ann)
    defaults = [e["node"]["id"] for e in me["addresses"]["edges"] if e["node"]["isDefault"]]
    assert len(defaults) == 1 and defaults[0] == me["defaultAddress"]["id"]


# -- at rest and erasure ------------------------------------------------------------


async def test_addresses_are_encrypted_at_rest(client: AppClient, db: Database) -> None:
    ann = await customer_token(client, "ann@example.com")
    # Values long and odd enough that no timestamp, id or base64 ciphertext holds them
    # by chance (short ones like "Ann" or "1234" made this test flaky).
    secrets = {
        "firstName": "Annunziata",
        "lastName": "Leeuwenhoek",
        "address1": "17 Cherry Tree Lane",
        "city": "Wolfenbuettel",
        "zip": "38300-XQ",
        "phone": "+49 30 98765432",
    }
    await save(client, ann, {**HOME, **secrets})

    async with db.reader.connect() as connection:
        row = (await connection.execute(select(customer_addresses))).mappings().one()

    raw = " ".join(str(value) for value in row.values()).lower()
    for secret in secrets.values():
        assert secret.lower() not in raw
    decrypted = client.container.pii.decrypt(row["address_encrypted"])
    assert "17 Cherry Tree Lane" in decrypted


async def test_delete_all_of_erases_one_customers_book(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    bob = await customer_token(client, "bob@example.com")
    for n in range(3):
        await save(client, ann, street(n))
    await save(client, bob, WORK)

    erased = await client.container.address_book.delete_all_of(await customer_id(client, ann))
    again = await client.container.address_book.delete_all_of(await customer_id(client, ann))

    assert (erased, again) == (3, 0)
    assert (await book(client, ann))["defaultAddress"] is None
    assert cities(await book(client, bob)) == ["Hamburg"]


# -- carts start with the default address -------------------------------------------


async def test_a_signed_in_customers_new_cart_starts_with_the_default_address(
    client: AppClient,
) -> None:
    ann = await customer_token(client, "ann@example.com")
    bob = await customer_token(client, "bob@example.com")  # no addresses
    await save(client, ann, HOME)
    await save(client, ann, WORK, default=True)

    anns = await client.query(CART_CREATE, token=ann)
    bobs = await client.query(CART_CREATE, token=bob)
    guests = await client.query(CART_CREATE)

    assert anns.data["cartCreate"]["cart"]["shippingAddress"] == {
        "address1": "9 Office Park",
        "city": "Hamburg",
    }
    assert bobs.data["cartCreate"]["cart"]["shippingAddress"] is None
    assert guests.data["cartCreate"]["cart"]["shippingAddress"] is None


async def test_a_guest_cart_given_to_a_customer_gets_their_default_address(
    client: AppClient,
) -> None:
    ann = await customer_token(client, "ann@example.com")
    await save(client, ann, HOME)
    cart_id = (await client.query(CART_CREATE)).data["cartCreate"]["cart"]["id"]

    given = await client.query(CART_BUYER, {"id": cart_id, "b": {"customerAccessToken": ann}})

    assert given.data["cartBuyerIdentityUpdate"]["userErrors"] == []
    assert given.data["cartBuyerIdentityUpdate"]["cart"]["shippingAddress"] == {
        "address1": "1 Main St",
        "city": "Berlin",
    }


async def test_a_cart_that_has_an_address_keeps_it(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    cart_id = (await client.query(CART_CREATE)).data["cartCreate"]["cart"]["id"]
    await client.query(CART_ADDRESS, {"id": cart_id, "a": WORK})
    await save(client, ann, HOME)

    given = await client.query(CART_BUYER, {"id": cart_id, "b": {"customerAccessToken": ann}})
    touched = await client.query(
        CART_BUYER, {"id": cart_id, "b": {"email": "ann@example.com"}}, token=ann
    )

    expected = {"address1": "9 Office Park", "city": "Hamburg"}
    assert given.data["cartBuyerIdentityUpdate"]["cart"]["shippingAddress"] == expected
    assert touched.data["cartBuyerIdentityUpdate"]["cart"]["shippingAddress"] == expected


async def test_an_address_the_shopper_types_wins_over_the_default(client: AppClient) -> None:
    ann = await customer_token(client, "ann@example.com")
    await save(client, ann, HOME)
    cart_id = (await client.query(CART_CREATE, token=ann)).data["cartCreate"]["cart"]["id"]

    await client.query(CART_ADDRESS, {"id": cart_id, "a": WORK}, token=ann)
    await client.query(CART_BUYER, {"id": cart_id, "b": {"email": "ann@example.com"}}, token=ann)

    read = await client.query(CART_READ, {"id": cart_id}, token=ann)
    assert read.data["cart"]["shippingAddress"] == {"address1": "9 Office Park", "city": "Hamburg"}


async def test_a_guest_cart_a_customer_only_edits_is_not_given_their_address(
    client: AppClient,
) -> None:
    ann = await customer_token(client, "ann@example.com")
    await save(client, ann, HOME)
    cart_id = (await client.query(CART_CREATE)).data["cartCreate"]["cart"]["id"]

    # Signed in, but the cart stays a guest cart: anyone holding its id could read it.
    edited = await client.query(
        CART_BUYER, {"id": cart_id, "b": {"email": "ann@example.com"}}, token=ann
    )

    assert edited.data["cartBuyerIdentityUpdate"]["cart"]["shippingAddress"] is None
    assert (await client.query(CART_READ, {"id": cart_id})).data["cart"]["shippingAddress"] is None


# -- statement budget ---------------------------------------------------------------


async def test_the_address_book_costs_the_same_statements_for_2_and_50_addresses(
    client: AppClient,
) -> None:
    ann = await customer_token(client, "ann@example.com")
    ann_id = await customer_id(client, ann)
    counts = {}
    saved = 0
    for size in (2, 50):
        while saved < size:
            await client.container.address_book.add(
                ann_id, MailingAddress(**_plain(street(saved))), False
            )
            saved += 1
        result = await client.query(BOOK, {"first": 50}, token=ann)
        assert len(result.data["me"]["addresses"]["edges"]) == size
        assert result.data["me"]["defaultAddress"]["address1"] == "0 Long Road"
        counts[size] = result.statements

    # The customer, the page of addresses, the default: one statement each.
    assert counts == {2: ADDRESS_BOOK_STATEMENTS, 50: ADDRESS_BOOK_STATEMENTS}


ADDRESS_BOOK_STATEMENTS = 3


async def test_nodes_of_many_addresses_is_one_statement_and_only_the_owners(
    client: AppClient,
) -> None:
    ann = await customer_token(client, "ann@example.com")
    bob = await customer_token(client, "bob@example.com")
    ids = [(await save(client, ann, street(n)))["customerAddress"]["id"] for n in range(12)]
    document = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"

    anns = await client.query(document, {"ids": ids}, token=ann)
    bobs = await client.query(document, {"ids": ids}, token=bob)

    assert [n["id"] for n in anns.data["nodes"]] == ids
    assert anns.statements == 2  # the viewer, then every address in one batch
    assert bobs.data["nodes"] == [None] * 12


def _plain(address: dict[str, str]) -> dict[str, str]:
    """Input field names as the domain spells them, every field present."""
    names = {"firstName": "first_name", "lastName": "last_name", "countryCode": "country_code"}
    fields = {"address2": "", "province": "", "phone": ""}
    fields.update({names.get(k, k): v for k, v in address.items()})
    fields["country_code"] = fields["country_code"].upper()
    return fields


async def test_the_embedded_mode_keeps_an_address_book_too(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    await upgrade(url)
    settings = Settings(
        environment="development", database_url=url, data_dir=str(tmp_path), **FAST_PASSWORDS
    )

    async with running_app(settings) as client:
        ann = await customer_token(client, "ann@example.com")
        home = (await save(client, ann, HOME))["customerAddress"]
        work = (await save(client, ann, WORK, default=True))["customerAddress"]
        await save(client, ann, {**WORK, "city": "Kiel"})
        await client.query(DELETE, {"id": work["id"]}, token=ann)
        me = await book(client, ann)
        cart = (await client.query(CART_CREATE, token=ann)).data["cartCreate"]["cart"]

    assert cities(me) == ["Berlin", "Kiel"] and me["defaultAddress"]["city"] == "Kiel"
    assert home["isDefault"] is True and me["addresses"]["edges"][0]["node"]["isDefault"] is False
    assert cart["shippingAddress"]["city"] == "Kiel"
