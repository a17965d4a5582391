"""PII at rest: after a shopper signs up, buys and reviews, neither PostgreSQL nor Redis
holds their email, name or street in clear anywhere (every column of every table, every
key of every type), while the API still answers with all three."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from app import build_event_worker
from integrations.sandbox_gateway import SandboxGateway
from persistence.db import Database
from persistence.events.relay import OutboxRelay, stream_of
from schema.global_id import decode_gid, encode_gid
from settings import Settings
from tests.account_mail import RECOVER, UPDATE
from tests.client import LOG_IN, SIGN_UP, AppClient, running_app
from tests.factories import CatalogFactory

CREATE_CART = """mutation($lines: [CartLineInput!]!, $email: String!) {
  cartCreate(input: {lines: $lines, buyerIdentity: {email: $email}}) { cart { id } userErrors { code } } }"""
SET_ADDRESS = """mutation($id: ID!, $a: MailingAddressInput!) {
  cartShippingAddressUpdate(input: {cartId: $id, address: $a}) { userErrors { code } } }"""
CART = """query($id: ID!) { cart(id: $id) { buyerIdentity { email }
  shippingAddress { firstName lastName address1 } } }"""
CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id status email shippingAddress { address1 } } userErrors { code } } }"""
REVIEW = """mutation($p: ID!) { reviewCreate(input: {productId: $p, rating: 5, title: "Good",
  body: "Holds tea."}) { review { authorName } userErrors { code } } }"""
REVIEWS = """{ product(slug: "mug") { reviews(first: 5) { edges { node { authorName } } } } }"""
ME = "{ me { email name } }"
ADD_ADDRESS = """mutation($a: MailingAddressInput!) { customerAddressCreate(input: {address: $a}) {
  customerAddress { address1 } userErrors { code } } }"""


@pytest.fixture
async def shop(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(settings, gateway=SandboxGateway()) as client:
        yield client


async def database_text(db: Database) -> str:
    """Every row of every table in the public schema, as PostgreSQL prints the row."""
    async with db.writer.connect() as connection:
        tables = (
            await connection.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            )
        ).scalars()
        dump = []
        for table in list(tables):
            rows = await connection.execute(text(f'SELECT t::text FROM "{table}" AS t'))
            dump += [f"{table}: {row}" for row in rows.scalars()]
    return "\n".join(dump)


async def redis_text(redis: Redis) -> str:
    """Every key of the test database and everything it holds, whatever its type."""
    dump: list[bytes] = []
    async for key in redis.scan_iter(count=1000):
        kind = (await redis.type(key)).decode()
        dump.append(key)
        if kind == "string":
            dump.append(await redis.get(key) or b"")
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                dump += [field, value]
        elif kind == "list":
            dump += await redis.lrange(key, 0, -1)
        elif kind == "set":
            dump += list(await redis.smembers(key))
        elif kind == "zset":
            dump += [member for member, _ in await redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for entry_id, fields in await redis.xrange(key):
                dump.append(entry_id)
                for field, value in fields.items():
                    dump += [field, value]
        else:
            raise AssertionError(f"{key!r}: a {kind} this dump cannot read")
    return b"\n".join(dump).decode(errors="replace")


def found_in(dump: str, needles: dict[str, str]) -> list[str]:
    folded = dump.lower()
    return [name for name, needle in needles.items() if needle.lower() in folded]


async def test_no_email_name_or_street_rests_in_clear(
    shop: AppClient, db: Database, redis: Redis
) -> None:
    # Given a shopper with values found nowhere else
    tag = secrets.token_hex(4)
    email = f"Quill.{tag}@Probe.Example"
    new_email = f"Moved.{tag}@Elsewhere.Example"
    name = f"Quintessa Marlowe{tag}"
    street = f"{tag} Lindenallee"
    first_name, last_name = f"Orla{tag}", f"Vantongeren{tag}"
    needles = {
        "email": email,
        "name": name,
        "street": street,
        "first name": first_name,
        "last name": last_name,
        "pending new email": new_email,
        # a plain hash of an email can be tested against guesses: keys hold keyed ones
        "unkeyed email hash": hashlib.sha256(email.lower().encode()).hexdigest(),
    }
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
    lines = [{"variantId": encode_gid("ProductVariant", mug.variant_ids[0]), "quantity": 1}]
    address = {
        "firstName": first_name,
        "lastName": last_name,
        "address1": street,
        "city": "Berlin",
        "zip": "10115",
        "countryCode": "DE",
    }

    # When they sign up, log in, review, fill two carts and check one out, paid
    created = await shop.query(SIGN_UP, {"email": email, "password": "correct horse", "name": name})
    assert created.data["customerCreate"]["userErrors"] == []
    failed = await shop.query(LOG_IN, {"email": email, "password": "wrong password"})
    assert failed.data["customerAccessTokenCreate"]["userErrors"][0]["code"] == (
        "INVALID_CREDENTIALS"
    )
    logged_in = await shop.query(LOG_IN, {"email": email.upper(), "password": "correct horse"})
    token = logged_in.data["customerAccessTokenCreate"]["customerAccessToken"]["accessToken"]
    review = await shop.query(REVIEW, {"p": encode_gid("Product", mug.id)}, token=token)
    saved = await shop.query(ADD_ADDRESS, {"a": address}, token=token)
    change = {"email": new_email, "currentPassword": "correct horse"}
    asked = await shop.query(UPDATE, {"input": change}, token=token)
    recovered = await shop.query(RECOVER, {"email": email})
    cart_ids = []
    for _ in range(2):
        cart = await shop.query(CREATE_CART, {"lines": lines, "email": email}, token=token)
        cart_ids.append(cart.data["cartCreate"]["cart"]["id"])
        await shop.query(SET_ADDRESS, {"id": cart_ids[-1], "a": address}, token=token)
    open_cart = await shop.query(CART, {"id": cart_ids[1]}, token=token)
    paid = await shop.query(
        CHECKOUT,
        {"input": {"cartId": cart_ids[0], "idempotencyKey": tag, "paymentMethod": "pm_card_visa"}},
        token=token,
    )
    # ... and the events reach the streams and every consumer (search, cache, mail)
    assert await OutboxRelay(db, redis).drain() > 0
    for consumer in build_event_worker(shop.container).consumers:
        await consumer.ensure_groups()
        while await consumer.poll_once():
            pass
    me = await shop.query(ME, token=token)
    reviews = await shop.query(REVIEWS)

    # Then the API answers with every value
    canonical = email.lower()
    assert saved.data["customerAddressCreate"] == {
        "customerAddress": {"address1": street},
        "userErrors": [],
    }
    assert asked.data["customerUpdate"]["userErrors"] == []
    assert recovered.data["customerRecover"] == {"userErrors": []}
    assert me.data == {"me": {"email": canonical, "name": name}}
    assert review.data["reviewCreate"]["review"] == {"authorName": name}
    assert reviews.data["product"]["reviews"]["edges"] == [{"node": {"authorName": name}}]
    assert open_cart.data["cart"] == {
        "buyerIdentity": {"email": canonical},
        "shippingAddress": {"firstName": first_name, "lastName": last_name, "address1": street},
    }
    order = paid.data["checkoutComplete"]["order"]
    assert (order["status"], order["email"], order["shippingAddress"]) == (
        "PAID",
        canonical,
        {"address1": street},
    )
    # ... and the dumps hold what happened (so an empty dump cannot pass) but none of it
    stored, cached = await database_text(db), await redis_text(redis)
    assert "notifications: " in stored and "customers: " in stored and "Holds tea." in stored
    for table in ("customer_addresses: ", "account_tokens: "):
        assert table in stored
    assert "login-failures:client:" in cached and "recovery-requests:email:" in cached
    assert f"cart:{decode_gid(cart_ids[1])[1]}" in cached and stream_of("OrderPaid") in cached
    assert found_in(stored, needles) == []
    assert found_in(cached, needles) == []


async def test_one_account_per_email_under_concurrent_sign_ups_in_any_spelling(
    shop: AppClient,
) -> None:
    # Given five sign-ups at once, each with a spelling of one address
    spellings = [
        "dora@example.com",
        "DORA@example.com",
        "Dora@Example.Com",
        " dora@EXAMPLE.com ",
        "\uff44\uff4f\uff52\uff41@example.com",  # fullwidth "dora"
    ]

    # When they race
    results = await asyncio.gather(
        *(
            shop.query(SIGN_UP, {"email": e, "password": "correct horse", "name": f"D{i}"})
            for i, e in enumerate(spellings)
        )
    )

    # Then one account was made, the others are EMAIL_TAKEN, and the one logs in with
    # any spelling at one statement; `me` is one statement too (one row, two decrypts)
    codes = sorted([e["code"] for e in r.data["customerCreate"]["userErrors"]] for r in results)
    assert codes == [[]] + [["EMAIL_TAKEN"]] * 4
    [winner] = [
        r.data["customerCreate"]["customer"]
        for r in results
        if r.data["customerCreate"]["customer"]
    ]
    for spelling in spellings:
        login = await shop.query(LOG_IN, {"email": spelling, "password": "correct horse"})
        assert login.data["customerAccessTokenCreate"]["userErrors"] == []
        assert login.statements == 1
    token = login.data["customerAccessTokenCreate"]["customerAccessToken"]["accessToken"]
    me = await shop.query(ME, token=token)
    assert me.data["me"] == {"email": "dora@example.com", "name": winner["name"]}
    assert me.statements == 1
