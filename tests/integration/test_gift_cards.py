"""Gift cards: staff issue and disable them, shoppers apply them to carts (checkout does
not debit them yet)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from domain.events import Topic
from domain.gift_cards import canonical_code, code_digest
from persistence.db import Database
from persistence.tables import gift_cards, outbox
from schema.global_id import encode_gid
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.conftest import TEST_GIFT_CARD_CODE_KEY
from tests.factories import CatalogFactory, MadeProduct
from tests.shop import staff_token, vid

LIMIT = 3
CARD_FIELDS = "id lastCharacters balance { amount } initialValue { amount } expiresAt enabled"
CREATE = f"""mutation($input: GiftCardCreateInput!) {{ giftCardCreate(input: $input) {{
  giftCard {{ {CARD_FIELDS} }} giftCardCode userErrors {{ field code message }} }} }}"""
DISABLE = f"""mutation($input: GiftCardDisableInput!) {{ giftCardDisable(input: $input) {{
  giftCard {{ {CARD_FIELDS} }} userErrors {{ field code message }} }} }}"""
CART_FIELDS = """id cost { totalAmount { amount } giftCardsAmount { amount }
  checkoutChargeAmount { amount } }
  appliedGiftCards { lastCharacters amountUsed { amount } balance { amount } }"""
CART = f"query($id: ID!) {{ cart(id: $id) {{ {CART_FIELDS} }} }}"
CREATE_CART = """mutation($input: CartCreateInput!) { cartCreate(input: $input) {
  cart { id } userErrors { code } } }"""
APPLY = f"""mutation($input: CartGiftCardCodesUpdateInput!) {{
  cartGiftCardCodesUpdate(input: $input) {{ cart {{ {CART_FIELDS} }}
  userErrors {{ field code message }} }} }}"""


@pytest.fixture
async def shop(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    throttled = settings.model_copy(
        update={"gift_card_failures_per_client": LIMIT, "gift_card_failure_window_seconds": 60}
    )
    async with running_app(throttled) as client:
        yield client


@pytest.fixture
async def staff(shop: AppClient, db: Database) -> str:
    return await staff_token(shop, db)


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[2_000], stock=[20])


async def issue(client: AppClient, staff: str, value: str, **more: Any) -> dict[str, Any]:
    answer = await client.query(CREATE, {"input": {"initialValue": value, **more}}, token=staff)
    created: dict[str, Any] = answer.data["giftCardCreate"]
    assert created["userErrors"] == []
    return created


async def new_cart(
    client: AppClient, mug: MadeProduct, quantity: int = 1, token: str | None = None
) -> str:
    made = await client.query(
        CREATE_CART,
        {"input": {"lines": [{"variantId": vid(mug), "quantity": quantity}]}},
        token=token,
    )
    cart_id: str = made.data["cartCreate"]["cart"]["id"]
    return cart_id


async def apply(
    client: AppClient, cart_id: str, codes: list[str], token: str | None = None
) -> dict[str, Any]:
    answer = await client.query(
        APPLY, {"input": {"cartId": cart_id, "giftCardCodes": codes}}, token=token
    )
    payload: dict[str, Any] = answer.data["cartGiftCardCodesUpdate"]
    return payload


async def rows(db: Database) -> list[dict[str, Any]]:
    async with db.reader.connect() as connection:
        result = await connection.execute(select(gift_cards).order_by(gift_cards.c.id))
        return [dict(row) for row in result.mappings()]


async def events(db: Database) -> list[tuple[str, dict[str, Any]]]:
    async with db.reader.connect() as connection:
        result = await connection.execute(
            select(outbox.c.topic, outbox.c.payload)
            .where(outbox.c.topic.like("GiftCard%"))
            .order_by(outbox.c.id)
        )
        return [(row.topic, row.payload) for row in result]


def amounts(cart: dict[str, Any]) -> tuple[str, str, str]:
    cost = cart["cost"]
    return (
        cost["totalAmount"]["amount"],
        cost["giftCardsAmount"]["amount"],
        cost["checkoutChargeAmount"]["amount"],
    )


# -- staff ----------------------------------------------------------------------------------


async def test_a_card_shows_its_code_once_and_stores_only_its_digest_and_last_4(
    shop: AppClient, staff: str, db: Database
) -> None:
    expires = (datetime.now(UTC) + timedelta(days=365)).replace(microsecond=0)
    created = await issue(shop, staff, "50.00", expiresAt=expires.isoformat())

    code = created["giftCardCode"]
    canonical = canonical_code(code)
    assert canonical is not None and len(code) == 19 and code.count("-") == 3
    card = created["giftCard"]
    assert card["lastCharacters"] == canonical[-4:]
    assert (card["balance"], card["initialValue"]) == ({"amount": "50.00"}, {"amount": "50.00"})
    assert card["enabled"] is True and datetime.fromisoformat(card["expiresAt"]) == expires
    (row,) = await rows(db)
    assert row["code_digest"] == code_digest(canonical, TEST_GIFT_CARD_CODE_KEY.encode())
    assert row["last_characters"] == canonical[-4:]
    assert (row["initial_balance"], row["balance"], row["currency_code"]) == (5_000, 5_000, "USD")
    stored = " ".join(str(value) for value in row.values())
    assert canonical not in stored and code not in stored
    assert await events(db) == [
        (
            "GiftCardCreated",
            {"gift_card": row["id"], "initial_balance": 5_000, "currency_code": "USD"},
        )
    ]
    # a second card gets another code
    assert (await issue(shop, staff, "50.00"))["giftCardCode"] != code


async def test_disabling_a_card_keeps_its_balance_and_writes_an_event(
    shop: AppClient, staff: str, db: Database
) -> None:
    card = (await issue(shop, staff, "20.00"))["giftCard"]

    answer = await shop.query(DISABLE, {"input": {"id": card["id"]}}, token=staff)
    unknown = await shop.query(DISABLE, {"input": {"id": encode_gid("GiftCard", 999)}}, token=staff)
    garbage = await shop.query(DISABLE, {"input": {"id": "nope"}}, token=staff)

    disabled = answer.data["giftCardDisable"]
    assert disabled["userErrors"] == [] and disabled["giftCard"]["enabled"] is False
    assert disabled["giftCard"]["balance"] == {"amount": "20.00"}
    for refused in (unknown, garbage):
        assert refused.data["giftCardDisable"]["giftCard"] is None
        assert [e["code"] for e in refused.data["giftCardDisable"]["userErrors"]] == [
            "GIFT_CARD_NOT_FOUND"
        ]
    assert [topic for topic, _ in await events(db)] == [
        Topic.GIFT_CARD_CREATED.value,
        Topic.GIFT_CARD_DISABLED.value,
    ]
    assert (await events(db))[1][1] == {"gift_card": (await rows(db))[0]["id"], "balance": 2_000}


@pytest.mark.parametrize(
    ("value", "expires_at"),
    [("0", None), ("-5", None), ("abc", None), ("1.234", None), ("10", "2001-01-01T00:00:00Z")],
)
async def test_a_refused_card_names_its_field_and_writes_nothing(
    shop: AppClient, staff: str, db: Database, value: str, expires_at: str | None
) -> None:
    answer = await shop.query(
        CREATE, {"input": {"initialValue": value, "expiresAt": expires_at}}, token=staff
    )

    payload = answer.data["giftCardCreate"]
    assert payload["giftCard"] is None and payload["giftCardCode"] is None
    assert [e["field"] for e in payload["userErrors"]] == [
        ["expiresAt"] if expires_at else ["initialValue"]
    ]
    assert await rows(db) == [] and await events(db) == []


@pytest.mark.parametrize(
    ("document", "values"),
    [(CREATE, {"initialValue": "10"}), (DISABLE, {"id": encode_gid("GiftCard", 1)})],
)
async def test_customers_are_forbidden_and_guests_unauthenticated(
    shop: AppClient, staff: str, db: Database, document: str, values: dict[str, Any]
) -> None:
    await issue(shop, staff, "10.00")
    before = await rows(db)
    ann = await customer_token(shop, "ann@example.com")

    as_customer = await shop.query(document, {"input": values}, token=ann)
    as_guest = await shop.query(document, {"input": values})

    assert as_customer.error_codes == ["FORBIDDEN"]
    assert as_guest.error_codes == ["UNAUTHENTICATED"]
    assert await rows(db) == before and len(await events(db)) == 1


# -- carts ----------------------------------------------------------------------------------


async def test_cards_pay_in_order_capped_by_their_balance_and_the_total(
    shop: AppClient, staff: str, mug: MadeProduct
) -> None:
    small = (await issue(shop, staff, "5.00"))["giftCardCode"]
    big = (await issue(shop, staff, "500.00"))["giftCardCode"]
    cart_id = await new_cart(shop, mug, quantity=2)
    total = (await shop.query(CART, {"id": cart_id})).data["cart"]["cost"]["totalAmount"]
    assert float(total["amount"]) > 5

    # typed loosely: lower case, spaces, no dashes
    loose = small.lower().replace("-", " ")
    applied = await apply(shop, cart_id, [loose, big])

    assert applied["userErrors"] == []
    cart = applied["cart"]
    rest = f"{float(total['amount']) - 5:.2f}"
    assert cart["appliedGiftCards"] == [
        {
            "lastCharacters": small[-4:],
            "amountUsed": {"amount": "5.00"},
            "balance": {"amount": "5.00"},
        },
        {
            "lastCharacters": big[-4:],
            "amountUsed": {"amount": rest},
            "balance": {"amount": "500.00"},
        },
    ]
    assert amounts(cart) == (total["amount"], total["amount"], "0.00")
    # a read says the same; an empty list removes them all
    assert (await shop.query(CART, {"id": cart_id})).data["cart"] == cart
    cleared = (await apply(shop, cart_id, []))["cart"]
    assert cleared["appliedGiftCards"] == []
    assert amounts(cleared) == (total["amount"], "0.00", total["amount"])


async def test_a_card_worth_less_than_the_total_leaves_the_rest_to_charge(
    shop: AppClient, staff: str, mug: MadeProduct
) -> None:
    code = (await issue(shop, staff, "7.50"))["giftCardCode"]
    cart_id = await new_cart(shop, mug)

    cart = (await apply(shop, cart_id, [code]))["cart"]

    total = cart["cost"]["totalAmount"]["amount"]
    assert amounts(cart) == (total, "7.50", f"{float(total) - 7.5:.2f}")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"enabled": False}, "GIFT_CARD_DISABLED"),
        ({"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}, "GIFT_CARD_EXPIRED"),
        ({"currency_code": "EUR"}, "GIFT_CARD_CURRENCY_MISMATCH"),
        ({"balance": 0}, "GIFT_CARD_DEPLETED"),
    ],
)
async def test_a_card_that_cannot_pay_refuses_the_whole_update(
    shop: AppClient, staff: str, mug: MadeProduct, db: Database, change: dict[str, Any], code: str
) -> None:
    good = (await issue(shop, staff, "5.00"))["giftCardCode"]
    cart_id = await new_cart(shop, mug)
    assert (await apply(shop, cart_id, [good]))["userErrors"] == []
    bad = (await issue(shop, staff, "5.00"))["giftCardCode"]
    async with db.writer.begin() as connection:
        await connection.execute(update(gift_cards).where(gift_cards.c.id == 2).values(**change))

    refused = await apply(shop, cart_id, [good, bad])

    assert refused["userErrors"] == [
        {
            "field": ["giftCardCodes", "1"],
            "code": code,
            "message": refused["userErrors"][0]["message"],
        }
    ]
    # the cart keeps what it had
    assert [c["lastCharacters"] for c in refused["cart"]["appliedGiftCards"]] == [good[-4:]]


async def test_a_card_disabled_after_it_was_applied_pays_nothing(
    shop: AppClient, staff: str, mug: MadeProduct
) -> None:
    created = await issue(shop, staff, "5.00")
    cart_id = await new_cart(shop, mug)
    await apply(shop, cart_id, [created["giftCardCode"]])

    await shop.query(DISABLE, {"input": {"id": created["giftCard"]["id"]}}, token=staff)
    cart = (await shop.query(CART, {"id": cart_id})).data["cart"]

    assert cart["appliedGiftCards"][0]["amountUsed"] == {"amount": "0.00"}
    assert cart["cost"]["giftCardsAmount"] == {"amount": "0.00"}


async def test_unknown_codes_are_refused_per_index_and_nothing_is_stored(
    shop: AppClient, staff: str, mug: MadeProduct
) -> None:
    good = (await issue(shop, staff, "5.00"))["giftCardCode"]
    cart_id = await new_cart(shop, mug)

    refused = await apply(shop, cart_id, ["ABCD-EFGH-JKMN-PQRS", good, "not a code"])
    too_many = await apply(shop, cart_id, [good] * 6)

    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["giftCardCodes", "2"], "GIFT_CARD_NOT_FOUND")
    ]  # a code that cannot exist is refused before any look-up
    assert [e["code"] for e in too_many["userErrors"]] == ["INVALID"]
    assert refused["cart"]["appliedGiftCards"] == []
    well_formed_unknown = await apply(shop, cart_id, ["ABCD-EFGH-JKMN-PQRS", good])
    assert [(e["field"], e["code"]) for e in well_formed_unknown["userErrors"]] == [
        (["giftCardCodes", "0"], "GIFT_CARD_NOT_FOUND")
    ]
    assert well_formed_unknown["cart"]["appliedGiftCards"] == []


async def test_failed_look_ups_are_throttled_per_client_and_successes_do_not_count(
    shop: AppClient, staff: str, mug: MadeProduct
) -> None:
    good = (await issue(shop, staff, "5.00"))["giftCardCode"]
    cart_id = await new_cart(shop, mug)
    unknown = "ABCD-EFGH-JKMN-PQRS"

    for _ in range(LIMIT - 1):
        assert (await apply(shop, cart_id, [unknown]))["userErrors"] != []
    for _ in range(5):
        assert (await apply(shop, cart_id, [good]))["userErrors"] == []
    last_free = await apply(shop, cart_id, [unknown])
    blocked = await shop.query(APPLY, {"input": {"cartId": cart_id, "giftCardCodes": [good]}})

    assert [e["code"] for e in last_free["userErrors"]] == ["GIFT_CARD_NOT_FOUND"]
    assert blocked.error_codes == ["THROTTLED"]


async def test_another_customers_cart_answers_like_an_unknown_cart(
    shop: AppClient, staff: str, mug: MadeProduct
) -> None:
    code = (await issue(shop, staff, "5.00"))["giftCardCode"]
    ann = await customer_token(shop, "ann@example.com")
    bob = await customer_token(shop, "bob@example.com")
    anns = await new_cart(shop, mug, token=ann)

    as_bob = await apply(shop, anns, [code], token=bob)
    as_guest = await apply(shop, anns, [code])
    unknown = await apply(shop, encode_gid("Cart", "nope"), [code])

    assert as_bob == as_guest == unknown
    assert unknown["cart"] is None
    assert [e["code"] for e in unknown["userErrors"]] == ["CART_NOT_FOUND"]
    anns_cart = (await shop.query(CART, {"id": anns}, token=ann)).data["cart"]
    assert anns_cart["appliedGiftCards"] == []


@pytest.mark.parametrize("code", ["ABCD\x00EFGH", "A" * 100_000])
async def test_hostile_codes_are_bad_user_input_before_anything_runs(
    shop: AppClient, mug: MadeProduct, code: str
) -> None:
    cart_id = await new_cart(shop, mug)

    answer = await shop.query(APPLY, {"input": {"cartId": cart_id, "giftCardCodes": [code]}})

    assert answer.error_codes == ["BAD_USER_INPUT"]
    assert answer.statements == 0


async def test_a_cart_read_with_gift_cards_costs_one_statement_more(
    shop: AppClient, staff: str, mug: MadeProduct
) -> None:
    codes = [(await issue(shop, staff, "1.00"))["giftCardCode"] for _ in range(3)]
    counts = {}
    for n in (0, 1, 3):
        cart_id = await new_cart(shop, mug)
        if n:
            await apply(shop, cart_id, codes[:n])
        await shop.query(CART, {"id": cart_id})  # warm the record cache
        counts[n] = (await shop.query(CART, {"id": cart_id})).statements

    # stock (1); the applied cards, however many, one more
    assert counts == {0: 1, 1: 2, 3: 2}


# -- staff notes and the staff list ---------------------------------------------------------

LIST = f"""query($first: Int, $after: String) {{ giftCards(first: $first, after: $after) {{
  edges {{ cursor node {{ {CARD_FIELDS} note createdAt }} }}
  pageInfo {{ hasNextPage hasPreviousPage endCursor }} }} }}"""


async def test_a_note_is_kept_for_staff_and_never_reaches_shoppers(
    shop: AppClient, staff: str, db: Database, mug: MadeProduct
) -> None:
    created = await issue(shop, staff, "10.00", note="  Apology for order #1042  ")
    cart_id = await new_cart(shop, mug)
    await apply(shop, cart_id, [created["giftCardCode"]])

    listed = await shop.query(LIST, {}, token=staff)
    shopper = await shop.query(
        "query($id: ID!) { cart(id: $id) { appliedGiftCards { note } } }", {"id": cart_id}
    )

    (edge,) = listed.data["giftCards"]["edges"]
    assert edge["node"]["note"] == "Apology for order #1042"
    assert datetime.fromisoformat(edge["node"]["createdAt"]) <= datetime.now(UTC)
    assert [row["note"] for row in await rows(db)] == ["Apology for order #1042"]
    assert shopper.error_codes == ["GRAPHQL_VALIDATION_FAILED"]  # a cart has no note to show


async def test_a_note_past_500_characters_is_refused(
    shop: AppClient, staff: str, db: Database
) -> None:
    answer = await shop.query(
        CREATE, {"input": {"initialValue": "5", "note": "n" * 501}}, token=staff
    )
    at_the_limit = await issue(shop, staff, "5", note="n" * 500)

    payload = answer.data["giftCardCreate"]
    assert payload["giftCard"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["note"], "TOO_LONG")]
    assert at_the_limit["giftCard"]["id"] and len(await rows(db)) == 1


async def test_staff_page_through_gift_cards_newest_first(
    shop: AppClient, staff: str, db: Database
) -> None:
    made = [(await issue(shop, staff, f"{n}.00"))["giftCard"]["id"] for n in range(1, 6)]
    ann = await customer_token(shop, "ann@example.com")

    seen: list[str] = []
    flags: list[tuple[bool, bool]] = []
    after = None
    while True:
        page = (await shop.query(LIST, {"first": 2, "after": after}, token=staff)).data["giftCards"]
        seen.extend(edge["node"]["id"] for edge in page["edges"])
        info = page["pageInfo"]
        flags.append((info["hasNextPage"], info["hasPreviousPage"]))
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    as_customer = await shop.query(LIST, {}, token=ann)
    as_guest = await shop.query(LIST, {})
    too_many = await shop.query(LIST, {"first": 101}, token=staff)
    other_cursor = await shop.query(LIST, {"after": "WyJkaXNjb3VudHMiLDVd"}, token=staff)

    assert seen == made[::-1]
    assert flags == [(True, False), (True, True), (False, True)]
    assert as_customer.error_codes == ["FORBIDDEN"] and as_guest.error_codes == ["UNAUTHENTICATED"]
    assert too_many.error_codes == ["INVALID_PAGE_SIZE"]
    assert other_cursor.error_codes == ["INVALID_CURSOR"]  # a discounts cursor is not ours
