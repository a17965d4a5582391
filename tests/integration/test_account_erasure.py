"""Erasure: customerDelete and `customer-erase` take a customer's personal data and
access tokens; orders stay for the books with placeholders; reviews lose the name."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from app import build_event_worker
from persistence.db import Database
from persistence.events.relay import OutboxRelay
from persistence.pii import PiiCipher
from persistence.tables import (
    account_tokens,
    customer_addresses,
    customers,
    notifications,
    orders,
    reviews,
)
from schema.global_id import encode_gid
from settings import Settings
from tests.account_mail import DELETE, ME, UPDATE, deliver_account_mail, quick_mail
from tests.client import LOG_IN, SIGN_UP, AppClient, running_app
from tests.conftest import FAST_PASSWORDS, TEST_PII_INDEX_KEY, TEST_PII_KEY
from tests.factories import CatalogFactory
from tests.shop import ADDRESS, customer_id_of, ready_cart, stored_customers

ROOT = Path(__file__).resolve().parents[2]
EMAIL, NAME, PASSWORD = "annabel@example.com", "Annabel Quist", "correct horse"
CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id status } userErrors { code message } } }"""
CART = "query($id: ID!) { cart(id: $id) { id } }"
REVIEWS = """query($slug: String!) { product(slug: $slug) {
  reviews { edges { node { authorName title } } } } }"""
SAVE_ADDRESS = """mutation($a: MailingAddressInput!) {
  customerAddressCreate(input: {address: $a}) { userErrors { code } } }"""


@pytest.fixture
async def shop(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(quick_mail(settings)) as client:
        yield client


async def _sign_up(
    client: AppClient, email: str = EMAIL, password: str = PASSWORD, name: str = NAME
) -> str:
    created = await client.query(SIGN_UP, {"email": email, "password": password, "name": name})
    assert created.data["customerCreate"]["userErrors"] == []
    logged = await client.query(LOG_IN, {"email": email, "password": password})
    token: str = logged.data["customerAccessTokenCreate"]["customerAccessToken"]["accessToken"]
    return token


async def _log_in_codes(client: AppClient, email: str, password: str) -> list[str]:
    result = await client.query(LOG_IN, {"email": email, "password": password})
    return [e["code"] for e in result.data["customerAccessTokenCreate"]["userErrors"]]


async def _customer_id(db: Database, email: str) -> int:
    return await customer_id_of(db, email)


async def _a_customer_with_history(client: AppClient, db: Database) -> tuple[str, str, str]:
    """Annabel: a paid order (with its confirmation), a review, a pending email change,
    two saved addresses, an open cart and two tokens. (her token, the product's slug, the open cart's id)"""
    token = await _sign_up(client)
    await _sign_up(client, "bob@example.com", name="Bob Bystander")
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
    cart_id = await ready_cart(client, [(mug, 2)], token=token)
    placed = await client.query(
        CHECKOUT,
        {
            "input": {
                "cartId": cart_id,
                "idempotencyKey": "erasure-order-1",
                "paymentMethod": "pm_card_visa",
            }
        },
        token=token,
    )
    assert placed.data["checkoutComplete"]["userErrors"] == [], placed.body
    assert placed.data["checkoutComplete"]["order"]["status"] == "PAID"
    await CatalogFactory(db).review(mug.id, customer=await _customer_id(db, EMAIL), title="Nice")
    changed = await client.query(
        UPDATE,
        {"input": {"email": "annabel.new@example.com", "currentPassword": PASSWORD}},
        token=token,
    )
    assert changed.data["customerUpdate"]["userErrors"] == []
    for city in ("Berlin", "Hamburg"):
        saved = await client.query(SAVE_ADDRESS, {"a": {**ADDRESS, "city": city}}, token=token)
        assert saved.data["customerAddressCreate"]["userErrors"] == []
    open_cart = await ready_cart(client, [(mug, 1)], token=token)
    container = client.container
    await OutboxRelay(container.db, container.events_redis).drain()
    [confirmations] = [
        c for c in build_event_worker(container).consumers if c.group == "notifications"
    ]
    await confirmations.ensure_groups()
    await confirmations.poll_once()
    await deliver_account_mail(client)
    return token, mug.slug, open_cart


async def _raw_rows(db: Database) -> str:
    dumped = []
    async with db.reader.connect() as connection:
        for table in (customers, account_tokens, notifications, orders, reviews):
            dumped.append(repr((await connection.execute(select(table))).all()))
    return "\n".join(dumped)


async def _redis_dump(redis: Redis) -> str:
    dumped = []
    for key in await redis.keys("*"):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            dumped.append(repr(await redis.get(key)))
        elif kind == "hash":
            dumped.append(repr(await redis.hgetall(key)))
    return "\n".join(dumped)


async def test_customer_delete_erases_the_person_and_keeps_the_books(
    shop: AppClient, db: Database, redis: Redis
) -> None:
    token, slug, open_cart = await _a_customer_with_history(shop, db)
    second = (await shop.query(LOG_IN, {"email": EMAIL, "password": PASSWORD})).data[
        "customerAccessTokenCreate"
    ]["customerAccessToken"]["accessToken"]
    customer_id = await _customer_id(db, EMAIL)
    raw_cart = (await redis.get(f"customer-cart:{customer_id}") or b"").decode()
    assert raw_cart and await redis.exists(f"cart:{raw_cart}") == 1
    # The open cart holds an email and an address (tests.shop's), encrypted: a real test.
    assert await redis.hget(f"cart:{raw_cart}", "email") and await redis.hget(
        f"cart:{raw_cart}", "address"
    )

    deleted = (await shop.query(DELETE, {"password": PASSWORD}, token=token)).data["customerDelete"]

    assert deleted == {"deletedCustomerId": encode_gid("Customer", customer_id), "userErrors": []}
    assert (await shop.query(ME, token=token)).data["me"] is None
    assert (await shop.query(ME, token=second)).data["me"] is None
    assert await _log_in_codes(shop, EMAIL, PASSWORD) == ["INVALID_CREDENTIALS"]
    assert await _log_in_codes(shop, "annabel.new@example.com", PASSWORD) == ["INVALID_CREDENTIALS"]
    raw = await _raw_rows(db)
    for trace in (EMAIL, "annabel.new", NAME, "Annabel"):
        assert trace not in raw
    # ... and decrypted, the customer row holds only the placeholders
    erased_row = dict(await stored_customers(db))
    assert f"erased-{customer_id}@erased.invalid" in erased_row
    assert erased_row[f"erased-{customer_id}@erased.invalid"] == "Former customer"
    assert not any("annabel" in email for email in erased_row)
    assert await redis.exists(f"cart:{raw_cart}", f"customer-cart:{customer_id}") == 0
    assert (await shop.query(CART, {"id": open_cart})).data["cart"] is None
    left = await _redis_dump(redis)
    assert "ann@example.com" not in left and "1 Main St" not in left and EMAIL not in left
    cipher = PiiCipher([TEST_PII_KEY])
    async with db.reader.connect() as connection:
        [order] = (await connection.execute(select(orders))).mappings().all()
        tokens_left = (
            await connection.execute(
                select(account_tokens).where(account_tokens.c.customer_id == customer_id)
            )
        ).all()
    assert order["total"] > 0 and order["customer_id"] == customer_id  # the books stay
    assert cipher.decrypt(order["email_encrypted"]) == "erased@erased.invalid"
    address = orjson.loads(cipher.decrypt(order["shipping_address_encrypted"]))
    assert address["country_code"] == "DE" and "Ann" not in str(address)
    assert tokens_left == []
    async with db.reader.connect() as connection:
        saved_left = (await connection.execute(select(customer_addresses))).all()
    assert saved_left == []  # Bob saved none; Annabel's two are gone
    async with db.reader.connect() as connection:
        mails = (await connection.execute(select(notifications))).mappings().all()
    assert [m["kind"] for m in mails if m["key"].startswith(f"customer:{customer_id}:")] == []
    assert [m["kind"] for m in mails if m["key"].startswith("customer:")] == [
        "email_verification"  # Bob's
    ]
    [confirmation] = [m for m in mails if m["kind"] == "order_confirmation"]
    assert cipher.decrypt(confirmation["recipient_encrypted"]) == "erased@erased.invalid"
    assert confirmation["body_encrypted"] is None
    authors = (await shop.query(REVIEWS, {"slug": slug})).data["product"]["reviews"]["edges"]
    assert [edge["node"] for edge in authors] == [
        {"authorName": "Former customer", "title": "Nice"}
    ]
    assert await _log_in_codes(shop, "bob@example.com", PASSWORD) == []  # the bystander


async def test_the_address_can_sign_up_again_after_erasure(shop: AppClient) -> None:
    token = await _sign_up(shop)
    await shop.query(DELETE, {"password": PASSWORD}, token=token)

    again = await _sign_up(shop, password="a different one")

    assert (await shop.query(ME, token=again)).data["me"]["email"] == EMAIL
    assert await _log_in_codes(shop, EMAIL, PASSWORD) == ["INVALID_CREDENTIALS"]


async def test_customer_delete_needs_the_current_password(shop: AppClient) -> None:
    token = await _sign_up(shop)

    wrong = (await shop.query(DELETE, {"password": "guess"}, token=token)).data["customerDelete"]
    blank = (await shop.query(DELETE, {"password": ""}, token=token)).data["customerDelete"]
    guest = await shop.query(DELETE, {"password": PASSWORD})

    assert wrong["deletedCustomerId"] is None
    assert [e["code"] for e in wrong["userErrors"]] == ["INVALID_CREDENTIALS"]
    assert [e["code"] for e in blank["userErrors"]] == ["BLANK"]
    assert guest.error_codes == ["UNAUTHENTICATED"]
    assert (await shop.query(ME, token=token)).data["me"]["email"] == EMAIL


async def test_customer_erase_command_erases_by_email(
    shop: AppClient, database_url: str, shared_redis_url: str, db: Database, tmp_path: Path
) -> None:
    token, _slug, _cart = await _a_customer_with_history(shop, db)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": shared_redis_url,
        "PII_ENCRYPTION_KEYS": TEST_PII_KEY,
        "PII_INDEX_KEY": TEST_PII_INDEX_KEY,
        "LOG_LEVEL": "WARNING",
    }
    env.update({k.upper(): str(v) for k, v in FAST_PASSWORDS.items()})

    def run(email: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "app.py"), "customer-erase", "--email", email],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    erased = await asyncio.to_thread(run, "ANNABEL@example.com")
    unknown = await asyncio.to_thread(run, EMAIL)  # gone now

    assert erased.returncode == 0 and "erased customer" in erased.stdout
    assert EMAIL not in erased.stdout + erased.stderr
    assert unknown.returncode != 0 and "no customer has this email" in unknown.stderr
    assert (await shop.query(ME, token=token)).data["me"] is None
    raw = await _raw_rows(db)
    assert EMAIL not in raw and NAME not in raw
    assert await _log_in_codes(shop, "bob@example.com", PASSWORD) == []
