"""Hostile input on a production-mode server: a coded error, never a 500 or INTERNAL_SERVER_ERROR.

Every client string is checked once, before anything reaches SQL, Redis or a cache:
control characters (NUL first of all: asyncpg cannot send it) and strings past the
global length backstop are refused as BAD_USER_INPUT with the offending argument path.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from persistence.db import Database
from schema.global_id import encode_gid
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.conftest import FAST_PASSWORDS, PRODUCTION_EXTRAS, TEST_REDIS_URL
from tests.factories import CatalogFactory, MadeProduct
from tests.shop import ADDRESS, ready_cart, staff_token

NUL = "\x00"
DISCOUNT_ID = encode_gid("Discount", 1)
ORDER_ID = encode_gid("Order", "nosuchorder")
RETURN_ID = encode_gid("OrderReturn", "nosuchreturn")


def production_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "production",
        "database_url": database_url,
        "redis_url": TEST_REDIS_URL,
        "rate_limit_capacity": 1e9,
        "rate_limit_restore_rate": 1e9,
        **PRODUCTION_EXTRAS,
        **FAST_PASSWORDS,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def production(database_url: str, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(production_settings(database_url)) as app_client:
        yield app_client


def assert_refused(result: Any, field: str) -> None:
    assert result.status == 200, result.body
    assert result.error_codes == ["BAD_USER_INPUT"], result.body
    assert result.errors[0]["extensions"]["field"] == field
    assert "INTERNAL_SERVER_ERROR" not in json.dumps(result.body)


async def shop(client: AppClient, db: Database) -> tuple[MadeProduct, str, str]:
    """A product, a signed-in customer's token and a guest cart ready for checkout."""
    made = await CatalogFactory(db).product("Mug")
    token = await customer_token(client, "ann@example.com")
    cart_id = await ready_cart(client, [(made, 1)])
    return made, token, cart_id


# (what, document, variables builder, the refused argument's path). Each document runs
# with the hostile string in a variable; the same path must be reported.
CASES: list[tuple[str, str, Any, str]] = [
    ("slug", "query($s: String) { product(slug: $s) { id } }", lambda s: {"s": s}, "s"),
    (
        "category slug",
        "query($s: String!) { category(slug: $s) { id } }",
        lambda s: {"s": s},
        "s",
    ),
    ("search", "query($q: String!) { search(query: $q) { totalCount } }", lambda s: {"q": s}, "q"),
    (
        "filter brand",
        "query($f: ProductFilter) { products(filter: $f) { edges { cursor } } }",
        lambda s: {"f": {"brands": [f"Acme{s}"]}},
        "f.brands.0",
    ),
    (
        "filter category",
        "query($f: ProductFilter) { products(filter: $f) { edges { cursor } } }",
        lambda s: {"f": {"category": s}},
        "f.category",
    ),
    (
        "filter attribute",
        "query($f: ProductFilter) { products(filter: $f) { edges { cursor } } }",
        lambda s: {"f": {"attributes": [{"name": "fit", "values": [f"slim{s}"]}]}},
        "f.attributes.0.values.0",
    ),
    (
        "sign-up email",
        """mutation($i: CustomerCreateInput!) { customerCreate(input: $i) {
           customer { id } userErrors { code } } }""",
        lambda s: {"i": {"email": f"bob{s}@example.com", "password": "long enough", "name": "B"}},
        "i.email",
    ),
    (
        "sign-up name",
        """mutation($i: CustomerCreateInput!) { customerCreate(input: $i) {
           customer { id } userErrors { code } } }""",
        lambda s: {"i": {"email": "bob@example.com", "password": "long enough", "name": f"B{s}"}},
        "i.name",
    ),
    (
        "login email",
        """mutation($i: CustomerAccessTokenCreateInput!) { customerAccessTokenCreate(input: $i) {
           customerAccessToken { accessToken } userErrors { code } } }""",
        lambda s: {"i": {"email": f"ann{s}@example.com", "password": "correct horse"}},
        "i.email",
    ),
    (
        "address book street",
        """mutation($i: CustomerAddressCreateInput!) { customerAddressCreate(input: $i) {
           customerAddress { id } userErrors { code } } }""",
        lambda s: {
            "i": {
                "address": {
                    "firstName": "A",
                    "lastName": "B",
                    "address1": f"1 Main{s}",
                    "city": "Berlin",
                    "zip": "10115",
                    "countryCode": "DE",
                }
            }
        },
        "i.address.address1",
    ),
    (
        "profile name",
        """mutation($i: CustomerUpdateInput!) { customerUpdate(input: $i) {
           customer { id } userErrors { code } } }""",
        lambda s: {"i": {"name": f"Ann{s}"}},
        "i.name",
    ),
    (
        "recovery email",
        """mutation($i: CustomerRecoverInput!) { customerRecover(input: $i) {
           userErrors { code } } }""",
        lambda s: {"i": {"email": f"ann{s}@example.com"}},
        "i.email",
    ),
    (
        "reset token",
        """mutation($i: CustomerResetInput!) { customerReset(input: $i) {
           customer { id } userErrors { code } } }""",
        lambda s: {"i": {"token": f"tok{s}", "password": "long enough"}},
        "i.token",
    ),
    (
        "verification token",
        """mutation($i: CustomerEmailVerifyInput!) { customerEmailVerify(input: $i) {
           customer { id } userErrors { code } } }""",
        lambda s: {"i": {"token": f"tok{s}"}},
        "i.token",
    ),
    (
        "order status token",
        "query($t: String!) { orderByStatusToken(token: $t) { id } }",
        lambda s: {"t": f"tok{s}"},
        "t",
    ),
    (
        "payment confirm status token",
        """mutation($i: CheckoutPaymentConfirmInput!) { checkoutPaymentConfirm(input: $i) {
           order { id } userErrors { code } } }""",
        lambda s: {"i": {"statusToken": f"tok{s}"}},
        "i.statusToken",
    ),
    (
        "payment confirm order id",
        """mutation($i: CheckoutPaymentConfirmInput!) { checkoutPaymentConfirm(input: $i) {
           order { id } userErrors { code } } }""",
        lambda s: {"i": {"orderId": f"T3JkZXI6{s}"}},
        "i.orderId",
    ),
    (
        "delivery option handle",
        """mutation($i: CartSelectedDeliveryOptionUpdateInput!) {
           cartSelectedDeliveryOptionUpdate(input: $i) { userErrors { code } } }""",
        lambda s: {"i": {"cartId": "Z2lkOi8vc2hvcC9DYXJ0L3g", "handle": f"h{s}"}},
        "i.handle",
    ),
    (
        "shipping zone country",
        """mutation($i: ShippingZoneCreateInput!) { shippingZoneCreate(input: $i) {
           userErrors { code } } }""",
        lambda s: {"i": {"name": "Zone", "countryCodes": ["DE", f"F{s}"]}},
        "i.countryCodes.1",
    ),
    (
        "discount code",
        """mutation($i: CartDiscountCodesUpdateInput!) {
           cartDiscountCodesUpdate(input: $i) { userErrors { code } } }""",
        lambda s: {"i": {"cartId": "Z2lkOi8vc2hvcC9DYXJ0L3g", "discountCodes": ["OK", f"W{s}"]}},
        "i.discountCodes.1",
    ),
    (
        "gift card code",
        """mutation($i: CartGiftCardCodesUpdateInput!) {
           cartGiftCardCodesUpdate(input: $i) { userErrors { code } } }""",
        lambda s: {"i": {"cartId": "Z2lkOi8vc2hvcC9DYXJ0L3g", "giftCardCodes": [f"G{s}"]}},
        "i.giftCardCodes.0",
    ),
    *(
        (
            f"discount {what}",
            """mutation($i: DiscountInput!) { discountCreate(input: $i) {
               userErrors { code } } }""",
            lambda s, build=build: {
                "i": {"title": "Sale", "valueType": "FIXED_AMOUNT", "amount": "1", **build(s)}
            },
            f"i.{path}",
        )
        for what, build, path in [
            ("title", lambda s: {"title": f"Sale{s}"}, "title"),
            ("code", lambda s: {"code": f"TEN{s}"}, "code"),
            ("amount", lambda s: {"amount": f"1{s}"}, "amount"),
            ("minimum subtotal", lambda s: {"minimumSubtotal": f"5{s}"}, "minimumSubtotal"),
            (
                "product id",
                lambda s: {"scope": "PRODUCTS", "productIds": [DISCOUNT_ID, f"p{s}"]},
                "productIds.1",
            ),
            ("category id", lambda s: {"scope": "CATEGORIES", "categoryIds": [s]}, "categoryIds.0"),
        ]
    ),
    (
        "discount update title",
        """mutation($i: DiscountUpdateInput!) { discountUpdate(input: $i) {
           userErrors { code } } }""",
        lambda s: {"i": {"id": DISCOUNT_ID, "title": f"Sale{s}"}},
        "i.title",
    ),
    (
        "discount update code",
        """mutation($i: DiscountUpdateInput!) { discountUpdate(input: $i) {
           userErrors { code } } }""",
        lambda s: {"i": {"id": DISCOUNT_ID, "code": f"TEN{s}"}},
        "i.code",
    ),
    (
        "discount deactivate id",
        """mutation($i: DiscountDeactivateInput!) { discountDeactivate(input: $i) {
           userErrors { code } } }""",
        lambda s: {"i": {"id": f"{DISCOUNT_ID}{s}"}},
        "i.id",
    ),
    (
        "gift card note",
        """mutation($i: GiftCardCreateInput!) { giftCardCreate(input: $i) {
           userErrors { code } } }""",
        lambda s: {"i": {"initialValue": "5", "note": f"note{s}"}},
        "i.note",
    ),
    *(
        (
            f"refund {what}",
            """mutation($i: OrderRefundInput!) { orderRefund(input: $i) {
               userErrors { code } } }""",
            lambda s, build=build: {
                "i": {"orderId": ORDER_ID, "idempotencyKey": "refund-key-1", **build(s)}
            },
            f"i.{path}",
        )
        for what, build, path in [
            ("order id", lambda s: {"orderId": f"{ORDER_ID}{s}"}, "orderId"),
            ("amount", lambda s: {"amount": f"1{s}"}, "amount"),
            ("reason", lambda s: {"amount": "1", "reason": f"why{s}"}, "reason"),
            ("idempotency key", lambda s: {"idempotencyKey": f"key-{s}"}, "idempotencyKey"),
            (
                "line id",
                lambda s: {"lines": [{"lineId": f"l{s}", "quantity": 1}]},
                "lines.0.lineId",
            ),
        ]
    ),
    *(
        (
            f"return request {what}",
            """mutation($i: OrderReturnRequestInput!) { orderReturnRequest(input: $i) {
               userErrors { code } } }""",
            lambda s, build=build: {
                "i": {"lines": [{"lineId": ORDER_ID, "quantity": 1}], **build(s)}
            },
            f"i.{path}",
        )
        for what, build, path in [
            ("order id", lambda s: {"orderId": f"{ORDER_ID}{s}"}, "orderId"),
            ("status token", lambda s: {"statusToken": f"t{s}"}, "statusToken"),
            ("reason", lambda s: {"orderId": ORDER_ID, "reason": f"why{s}"}, "reason"),
            (
                "line id",
                lambda s: {"orderId": ORDER_ID, "lines": [{"lineId": f"l{s}", "quantity": 1}]},
                "lines.0.lineId",
            ),
        ]
    ),
    (
        "return approve id",
        """mutation($i: OrderReturnApproveInput!) { orderReturnApprove(input: $i) {
           userErrors { code } } }""",
        lambda s: {"i": {"returnId": f"r{s}"}},
        "i.returnId",
    ),
    (
        "return decline reason",
        """mutation($i: OrderReturnDeclineInput!) { orderReturnDecline(input: $i) {
           userErrors { code } } }""",
        lambda s: {"i": {"returnId": RETURN_ID, "reason": f"why{s}"}},
        "i.reason",
    ),
    (
        "return receive id",
        """mutation($i: OrderReturnReceiveInput!) { orderReturnReceive(input: $i) {
           userErrors { code } } }""",
        lambda s: {"i": {"returnId": f"r{s}", "refund": True}},
        "i.returnId",
    ),
    (
        "cancel request status token",
        """mutation($i: OrderCancelRequestInput!) { orderCancelRequest(input: $i) {
           userErrors { code } } }""",
        lambda s: {"i": {"statusToken": f"t{s}"}},
        "i.statusToken",
    ),
    (
        "cancel request order id",
        """mutation($i: OrderCancelRequestInput!) { orderCancelRequest(input: $i) {
           userErrors { code } } }""",
        lambda s: {"i": {"orderId": f"{ORDER_ID}{s}"}},
        "i.orderId",
    ),
    (
        "discounts cursor",
        "query($a: String) { discounts(after: $a) { edges { cursor } } }",
        lambda s: {"a": f"c{s}"},
        "a",
    ),
    (
        "gift cards cursor",
        "query($a: String) { giftCards(after: $a) { edges { cursor } } }",
        lambda s: {"a": f"c{s}"},
        "a",
    ),
]


@pytest.mark.parametrize(
    ("what", "document", "variables", "field"), CASES, ids=[c[0] for c in CASES]
)
async def test_a_nul_in_a_variable_is_refused_before_it_reaches_postgres(
    production: AppClient, db: Database, what: str, document: str, variables: Any, field: str
) -> None:
    await CatalogFactory(db).product("Mug")

    result = await production.query(document, variables(NUL))

    assert_refused(result, field)


async def test_a_nul_in_a_review_body_or_title_is_refused(
    production: AppClient, db: Database
) -> None:
    made, token, _ = await shop(production, db)
    document = """mutation($i: ReviewCreateInput!) { reviewCreate(input: $i) {
      review { id } userErrors { code } } }"""
    product_id = encode_gid("Product", made.id)

    body = await production.query(
        document,
        {"i": {"productId": product_id, "rating": 5, "title": "ok", "body": NUL}},
        token=token,
    )
    title = await production.query(
        document, {"i": {"productId": product_id, "rating": 5, "title": f"a{NUL}b"}}, token=token
    )
    fine = await production.query(
        document,
        {"i": {"productId": product_id, "rating": 5, "title": "Good\tmug\r\n"}},
        token=token,
    )

    assert_refused(body, "i.body")
    assert_refused(title, "i.title")
    assert fine.data["reviewCreate"]["userErrors"] == []  # tab, CR and LF are text


async def test_a_nul_in_cart_fields_and_the_idempotency_key_is_refused(
    production: AppClient, db: Database
) -> None:
    _, _, cart_id = await shop(production, db)
    set_address = """mutation($id: ID!, $a: MailingAddressInput!) {
      cartShippingAddressUpdate(input: {cartId: $id, address: $a}) { userErrors { code } } }"""
    set_buyer = """mutation($id: ID!, $b: CartBuyerIdentityInput!) {
      cartBuyerIdentityUpdate(input: {cartId: $id, buyerIdentity: $b}) { userErrors { code } } }"""
    checkout = """mutation($i: CheckoutCompleteInput!) { checkoutComplete(input: $i) {
      order { id } userErrors { code } } }"""

    address = await production.query(
        set_address, {"id": cart_id, "a": {**ADDRESS, "city": f"B{NUL}"}}
    )
    buyer = await production.query(set_buyer, {"id": cart_id, "b": {"email": f"a{NUL}@b.co"}})
    key = await production.query(
        checkout,
        {
            "i": {
                "cartId": cart_id,
                "idempotencyKey": f"key-{NUL}-0001",
                "paymentMethod": "pm_card_visa",
            }
        },
    )
    cart_id_itself = await production.query(
        set_buyer, {"id": cart_id + NUL, "b": {"countryCode": "DE"}}
    )
    paid = await production.query(
        checkout,
        {"i": {"cartId": cart_id, "idempotencyKey": "key-0001", "paymentMethod": "pm_card_visa"}},
    )

    assert_refused(address, "a.city")
    assert_refused(buyer, "b.email")
    assert_refused(key, "i.idempotencyKey")
    assert_refused(cart_id_itself, "id")
    # Nothing was half-written: the cart checks out with its original address and lines.
    assert paid.data["checkoutComplete"]["userErrors"] == []


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ('{ product(slug: "mug\\u0000") { id } }', "product.slug"),
        ('{ search(query: "a\\u0001b") { totalCount } }', "search.query"),
        (
            '{ products(filter: {brands: ["x", "\\u001f"]}) { edges { cursor } } }',
            "products.filter.brands.1",
        ),
        ('query($s: String = "\\u0000") { product(slug: $s) { id } }', "s"),
        (
            'mutation { customerCreate(input: {email: "x\\u0000@y.co", password: "long enough", name: "n"}) '
            "{ userErrors { code } } }",
            "customerCreate.input.email",
        ),
    ],
)
async def test_control_characters_in_document_literals_are_refused(
    production: AppClient, db: Database, document: str, field: str
) -> None:
    await CatalogFactory(db).product("Mug")

    result = await production.query(document)

    assert_refused(result, field)


@pytest.mark.parametrize(
    ("what", "document", "variables", "field"), CASES, ids=[c[0] for c in CASES]
)
async def test_100k_characters_in_any_variable_are_refused_before_anything_runs(
    production: AppClient, db: Database, what: str, document: str, variables: Any, field: str
) -> None:
    result = await production.query(document, variables("x" * 100_000))

    assert_refused(result, field)


async def test_strings_past_the_global_backstop_are_refused(production: AppClient) -> None:
    variable = await production.query(
        "query($q: String!) { search(query: $q) { totalCount } }", {"q": "a" * 10_001}
    )
    literal = await production.query(f'{{ product(slug: "{"a" * 10_001}") {{ id }} }}')
    at_the_limit = await production.query(
        "query($q: String!) { product(slug: $q) { id } }", {"q": "a" * 10_000}
    )

    assert_refused(variable, "q")
    assert_refused(literal, "product.slug")
    assert at_the_limit.data == {"product": None}


async def test_unicode_line_separators_and_ordinary_text_pass(
    production: AppClient, db: Database
) -> None:
    await CatalogFactory(db).product("Mug")

    result = await production.query(
        "query($q: String!) { search(query: $q) { totalCount } }", {"q": "mug\u2028\u00e9\u4e2d"}
    )

    assert result.status == 200 and "errors" not in result.body, result.body


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "key",
    [
        "\u00b2",
        "\u0661",
        "\uff11",
        "1\x00",
        "0001",
        "9" * 19,
        "9223372036854775808",
        "1" * 10_000,
        "-1",
        " 1",
    ],
)
async def test_ids_are_ascii_digits_in_the_bigint_range(
    production: AppClient, db: Database, key: str
) -> None:
    made = await CatalogFactory(db).product("Mug")  # id 1: a Unicode "1" must not find it
    assert made.id == 1
    gid = _b64(f"gid://shop/Product/{key}")

    by_id = await production.query("query($id: ID) { product(id: $id) { id } }", {"id": gid})
    node = await production.query("query($id: ID!) { node(id: $id) { id } }", {"id": gid})

    assert by_id.status == 200 and node.status == 200
    assert by_id.error_codes in (["INVALID_ID"], ["BAD_USER_INPUT"]), by_id.body
    assert node.body["data"] == {"node": None} or node.error_codes in (
        ["INVALID_ID"],
        ["BAD_USER_INPUT"],
    ), node.body
    assert "INTERNAL_SERVER_ERROR" not in json.dumps([by_id.body, node.body])


@pytest.mark.parametrize(
    "parts",
    [
        ["p:ID:asc", 2**63],
        ["p:ID:asc", -(2**63) - 1],
        ["p:ID:asc", 10**400],
        ["p:TITLE:asc", "mug\u0000", 1],
        ["p:TITLE:asc", "\ud800", 1],
        ["p:TITLE:asc", "m" * 1_500, 1],
        ["p:RATING:asc", float("nan"), 1],
        ["p:RATING:asc", float("inf"), 1],
    ],
)
async def test_cursors_decode_only_to_values_postgres_can_take(
    production: AppClient, db: Database, parts: list[Any]
) -> None:
    await CatalogFactory(db).product("Mug")
    sort = parts[0].split(":")[1]
    raw = json.dumps(parts).encode("utf-8", "surrogatepass")
    cursor = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    result = await production.query(
        f"query($a: String) {{ products(sortKey: {sort}, after: $a) {{ edges {{ cursor }} }} }}",
        {"a": cursor},
    )

    assert result.status == 200
    assert result.error_codes == ["INVALID_CURSOR"], result.body


async def test_a_cart_id_that_decodes_to_control_characters_is_not_a_cart(
    production: AppClient,
) -> None:
    gid = _b64("gid://shop/Cart/\x00\x01")

    result = await production.query("query($id: ID!) { cart(id: $id) { id } }", {"id": gid})

    assert result.status == 200
    assert result.body.get("data") == {"cart": None} or result.error_codes == ["INVALID_ID"]
    assert "INTERNAL_SERVER_ERROR" not in json.dumps(result.body)


@pytest.mark.parametrize(
    "amount",
    ["1e999999999", "1E+999999", "\u0661\u0660", "\uff11\uff10", "1_000", "1e2", "9" * 5_000],
)
async def test_money_amounts_are_plain_ascii_decimals(production: AppClient, amount: str) -> None:
    result = await production.query(
        "query($p: String) { products(filter: {priceMin: $p}) { edges { cursor } } }", {"p": amount}
    )

    assert result.status == 200
    assert result.error_codes == ["INVALID_PRICE"], result.body


def _gid(type_name: str, key: str) -> str:
    return _b64(f"gid://shop/{type_name}/{key}")


DISCOUNT_CREATE = """mutation($i: DiscountInput!) { discountCreate(input: $i) {
  discount { id } userErrors { field code } } }"""
DISCOUNT_UPDATE = """mutation($i: DiscountUpdateInput!) { discountUpdate(input: $i) {
  discount { id } userErrors { field code } } }"""
GIFT_CARD_CREATE = """mutation($i: GiftCardCreateInput!) { giftCardCreate(input: $i) {
  giftCard { id } userErrors { field code } } }"""
SALE = {"title": "Sale", "valueType": "PERCENTAGE", "basisPoints": 1000}
# (what, document, variables, the code the answer must carry somewhere)
STAFF_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "10,000 product ids",
        DISCOUNT_CREATE,
        {"i": {**SALE, "scope": "PRODUCTS", "productIds": [_gid("Product", "1")] * 10_000}},
        "INVALID",
    ),
    (
        "100 ids of nothing",
        DISCOUNT_CREATE,
        {"i": {**SALE, "scope": "PRODUCTS", "productIds": ["z" * 199] * 100}},
        "PRODUCT_NOT_FOUND",
    ),
    (
        "a category id past bigint",
        DISCOUNT_CREATE,
        {"i": {**SALE, "scope": "CATEGORIES", "categoryIds": [_gid("Category", "9" * 30)]}},
        "CATEGORY_NOT_FOUND",
    ),
    ("basis points as a string", DISCOUNT_CREATE, {"i": {**SALE, "basisPoints": "ten"}}, "*"),
    ("usage limit past Int", DISCOUNT_CREATE, {"i": {**SALE, "usageLimit": 2**40}}, "*"),
    ("amount as a number", DISCOUNT_CREATE, {"i": {**SALE, "amount": 5}}, "*"),
    ("a list for a title", DISCOUNT_CREATE, {"i": {**SALE, "title": ["a", "b"]}}, "*"),
    ("an unknown value type", DISCOUNT_CREATE, {"i": {**SALE, "valueType": "BOGUS"}}, "*"),
    ("startsAt not a time", DISCOUNT_CREATE, {"i": {**SALE, "startsAt": "yesterday"}}, "*"),
    ("startsAt in year 0", DISCOUNT_CREATE, {"i": {**SALE, "startsAt": "0000-01-01T00:00Z"}}, "*"),
    (
        "startsAt with no UTC equivalent",
        DISCOUNT_CREATE,
        {"i": {**SALE, "startsAt": "0001-01-01T00:00:00+14:00"}},
        "INVALID",
    ),
    (
        "endsAt with no UTC equivalent",
        DISCOUNT_CREATE,
        {"i": {**SALE, "endsAt": "9999-12-31T23:00:00-14:00"}},
        "INVALID",
    ),
    (
        "a gift card expiry with no UTC equivalent",
        GIFT_CARD_CREATE,
        {"i": {"initialValue": "5", "expiresAt": "9999-12-31T23:00:00-14:00"}},
        "INVALID",
    ),
    ("a huge amount", DISCOUNT_CREATE, {"i": {**SALE, "amount": "9" * 5_000}}, "INVALID"),
    (
        "a product id to update",
        DISCOUNT_UPDATE,
        {"i": {"id": _gid("Product", "1")}},
        "DISCOUNT_NOT_FOUND",
    ),
    (
        "a discount id past bigint",
        DISCOUNT_UPDATE,
        {"i": {"id": _gid("Discount", "9" * 25), "title": "x"}},
        "DISCOUNT_NOT_FOUND",
    ),
    ("a nested list id", DISCOUNT_UPDATE, {"i": {"id": [["x"]]}}, "*"),
    ("a note as an object", GIFT_CARD_CREATE, {"i": {"initialValue": "5", "note": {"a": 1}}}, "*"),
    (
        "a long note",
        GIFT_CARD_CREATE,
        {"i": {"initialValue": "5", "note": "n" * 9_000}},
        "TOO_LONG",
    ),
    (
        "discounts page size",
        "query { discounts(first: -1) { edges { cursor } } }",
        {},
        "INVALID_PAGE_SIZE",
    ),
    (
        "gift cards page size past Int",
        "query($f: Int) { giftCards(first: $f) { edges { cursor } } }",
        {"f": 2**33},
        "*",
    ),
    (
        "a gift card cursor out of bigint",
        "query($a: String) { giftCards(after: $a) { edges { cursor } } }",
        {"a": _b64(json.dumps(["gift-cards", 2**70]))},
        "INVALID_CURSOR",
    ),
]


@pytest.mark.parametrize(
    ("what", "document", "variables", "code"), STAFF_CASES, ids=[c[0] for c in STAFF_CASES]
)
async def test_staff_inputs_answer_with_a_code_never_a_server_error(
    production: AppClient,
    db: Database,
    what: str,
    document: str,
    variables: dict[str, Any],
    code: str,
) -> None:
    staff = await staff_token(production, db)

    result = await production.query(document, variables, token=staff)

    assert result.status < 500, result.body
    assert "INTERNAL_SERVER_ERROR" not in json.dumps(result.body)
    found = list(result.error_codes)
    for payload in (result.body.get("data") or {}).values():
        found.extend(e["code"] for e in (payload or {}).get("userErrors", []))
    assert found and None not in found, result.body
    assert code == "*" or code in found, result.body
