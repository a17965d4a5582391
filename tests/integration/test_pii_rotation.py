"""`pii-rotate`: rows and carts written under key A, rotated with keys "B,A", still read
with B alone; a second run rewrites nothing; a write made during the rotation is kept."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import event, select, update

from commands import _pii_rotate
from domain.carts import MailingAddress
from domain.notifications import Message, NotificationKind, NotificationStatus
from integrations.sandbox_gateway import SandboxGateway
from persistence.accounts.customers import CustomerColumns
from persistence.db import Database
from persistence.orders.notifications import SqlNotificationStore
from persistence.pii import BlindIndex, PiiCipher
from persistence.pii_rotation import ENCRYPTED_COLUMNS, rotate_table
from persistence.redis.cart_store import RedisCartStore
from persistence.tables import customers, notifications, orders
from schema.global_id import encode_gid
from settings import Settings
from tests.client import customer_token, running_app
from tests.conftest import TEST_PII_INDEX_KEY, TEST_REDIS_URL
from tests.factories import CatalogFactory
from tests.shop import ADDRESS

A, B = Fernet.generate_key().decode(), Fernet.generate_key().decode()
CREATE_CART = """mutation($lines: [CartLineInput!]!) { cartCreate(input: {lines: $lines,
  buyerIdentity: {email: "ann@example.com"}}) { cart { id } userErrors { code } } }"""
SET_ADDRESS = """mutation($id: ID!, $a: MailingAddressInput!) {
  cartShippingAddressUpdate(input: {cartId: $id, address: $a}) { userErrors { code } } }"""
CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { status } userErrors { code } } }"""
CART = (
    """query($id: ID!) { cart(id: $id) { buyerIdentity { email } shippingAddress { address1 } } }"""
)
ME = """{ me { email name orders(first: 5) { edges { node { email shippingAddress { address1 } } } } } }"""
LEGACY_CART = "legacy-plain-cart-from-before-encryption"


def keyed(settings: Settings, keys: str) -> Settings:
    return settings.model_copy(update={"pii_encryption_keys": SecretStr(keys)})


async def tokens_of(db: Database) -> list[str]:
    found: list[str] = []
    async with db.reader.connect() as connection:
        for target in ENCRYPTED_COLUMNS:
            columns = [target.table.c[name] for name in target.columns]
            for row in await connection.execute(select(*columns)):
                found += [value for value in row if value is not None]
    return found


async def test_rotated_rows_and_carts_read_with_the_new_key_alone(
    settings: Settings, db: Database, redis: Redis, clean: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a customer, an order, a notification and two carts (one from before carts
    # were encrypted) written under key A
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
    lines = [{"variantId": encode_gid("ProductVariant", mug.variant_ids[0]), "quantity": 1}]
    async with running_app(keyed(settings, A), gateway=SandboxGateway()) as shop:
        token = await customer_token(shop, "ann@example.com")
        cart_ids = []
        for _ in range(2):
            created = await shop.query(CREATE_CART, {"lines": lines}, token=token)
            cart_ids.append(created.data["cartCreate"]["cart"]["id"])
            await shop.query(SET_ADDRESS, {"id": cart_ids[-1], "a": ADDRESS}, token=token)
        paid = await shop.query(
            CHECKOUT,
            {
                "input": {
                    "cartId": cart_ids[0],
                    "idempotencyKey": "rotation-checkout-1",
                    "paymentMethod": "pm_card_visa",
                }
            },
            token=token,
        )
        await SqlNotificationStore(db, PiiCipher([A])).claim(
            NotificationKind.ORDER_CONFIRMATION,
            "order-1",
            Message(to="ann@example.com", subject="s", body="b"),
            NotificationStatus.RECORDED,
        )
    address = MailingAddress("Old", "Timer", "9 Plain St", "", "Berlin", "", "10115", "DE", "")
    await redis.hset(
        f"cart:{LEGACY_CART}",
        mapping={
            "created": 1,
            "updated": 1,
            "seq": 0,
            "email": "old@example.com",
            "address": orjson.dumps(address),
        },
    )
    assert paid.data["checkoutComplete"]["userErrors"] == []
    assert paid.data["checkoutComplete"]["order"]["status"] == "PAID"
    written = await tokens_of(db)
    # the order's email and address, the customer's email and name, the notification's
    # recipient and body, the sign-up's pending verification address
    assert len(written) == 7 and all(PiiCipher([A]).decrypt(t) for t in written)

    # When pii-rotate runs with "B,A", and once more
    await _pii_rotate(keyed(settings, f"{B},{A}"))
    first_run = capsys.readouterr().out
    await _pii_rotate(keyed(settings, f"{B},{A}"))
    second_run = capsys.readouterr().out

    # Then it reported what it rewrote, and the second run found nothing left
    assert "done orders: 1 read, 1 re-encrypted, 0 already current" in first_run
    assert "done notifications: 1 read, 1 re-encrypted" in first_run
    assert "done customers: 1 read, 1 re-encrypted" in first_run
    assert "done carts: 2 read, 2 re-encrypted, 0 already current" in first_run
    assert "done customers: 1 read, 0 re-encrypted, 1 already current" in second_run
    assert "done carts: 2 read, 0 re-encrypted, 2 already current" in second_run
    # ... and with A dropped, everything still reads
    rotated = await tokens_of(db)
    assert [PiiCipher([B]).decrypt(t) for t in rotated] == [
        PiiCipher([A]).decrypt(t) for t in written
    ]
    async with running_app(keyed(settings, B)) as shop:
        token = await customer_token(shop, "ANN@example.com")
        me = await shop.query(ME, token=token)
        open_cart = await shop.query(CART, {"id": cart_ids[1]}, token=token)
        legacy = await shop.container.cart_store.get(LEGACY_CART)
    assert me.data["me"] == {
        "email": "ann@example.com",
        "name": "ann",
        "orders": {
            "edges": [
                {"node": {"email": "ann@example.com", "shippingAddress": {"address1": "1 Main St"}}}
            ]
        },
    }
    assert open_cart.data["cart"] == {
        "buyerIdentity": {"email": "ann@example.com"},
        "shippingAddress": {"address1": "1 Main St"},
    }
    assert legacy is not None and (legacy.email, legacy.shipping_address) == (
        "old@example.com",
        address,
    )
    stored = await redis.hgetall(f"cart:{LEGACY_CART}")
    assert b"old@example.com" not in stored[b"email"] and b"Plain" not in stored[b"address"]


async def test_a_customer_renamed_during_the_rotation_keeps_the_new_name(
    db: Database, clean: None
) -> None:
    # Given a customer written under A, and a server (keys "B,A") renaming them just
    # as the rotation is about to rewrite the row it read
    old = CustomerColumns(PiiCipher([A]), BlindIndex(TEST_PII_INDEX_KEY))
    server = CustomerColumns(PiiCipher([B, A]), BlindIndex(TEST_PII_INDEX_KEY))
    async with db.writer.begin() as connection:
        await connection.execute(
            customers.insert().values(old.stored(email="ann@example.com", display_name="Ann"))
        )
    renamed: list[bool] = []

    def rename_first(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE customers") and not renamed:
            renamed.append(True)
            with db.writer.sync_engine.begin() as other:  # another session, committed
                other.execute(update(customers).values(server.stored(display_name="Ann Renamed")))

    event.listen(db.writer.sync_engine, "before_cursor_execute", rename_first)
    try:
        # When the customers are rotated
        [target] = [t for t in ENCRYPTED_COLUMNS if t.table is customers]
        count = await rotate_table(db, PiiCipher([B, A]), target)
    finally:
        event.remove(db.writer.sync_engine, "before_cursor_execute", rename_first)

    # Then the rename stands, and the row is under B alone
    async with db.reader.connect() as connection:
        row = (await connection.execute(select(customers))).mappings().one()
    after = CustomerColumns(PiiCipher([B]), BlindIndex(TEST_PII_INDEX_KEY)).customer(row)
    assert renamed and (count.read, count.raced, count.rotated, count.left) == (1, 1, 1, [])
    assert (after.email, after.display_name) == ("ann@example.com", "Ann Renamed")


class EmailChangedMeanwhile(Redis):
    """A Redis client through which the buyer's email changes right after pii-rotate
    read the cart (once)."""

    new_email_token = ""

    async def hmget(self, name: Any, keys: Any, *args: Any) -> Any:
        read = await super().hmget(name, keys, *args)
        if self.new_email_token:
            await self.hset(name, "email", self.new_email_token)
            self.new_email_token = ""
        return read


async def test_a_cart_changed_during_the_rotation_keeps_the_change(
    redis: Redis, clean: None
) -> None:
    # Given a cart written under A whose buyer changes their email under "B,A" just after
    # the rotation read it
    client = EmailChangedMeanwhile.from_url(TEST_REDIS_URL)
    options = {"ttl_seconds": 3600, "max_quantity": 10, "max_lines": 10}
    cart_id = await RedisCartStore(redis, cipher=PiiCipher([A]), **options).create(
        None, "ann@example.com", "DE", []
    )
    await RedisCartStore(redis, cipher=PiiCipher([A]), **options).set_address(
        cart_id, MailingAddress("Ann", "Lee", "1 Main St", "", "Berlin", "", "10115", "DE", "")
    )
    client.new_email_token = PiiCipher([B, A]).encrypt("new@example.com")
    try:
        # When the carts are rotated
        store = RedisCartStore(client, cipher=PiiCipher([B, A]), **options)
        counts = [c async for c in store.reencrypt_buyer_fields()]
    finally:
        await client.aclose()

    # Then the new email stands, and both fields read under B alone
    cart = await RedisCartStore(redis, cipher=PiiCipher([B]), **options).get(cart_id)
    assert counts[-1] == (1, 1, 0, 1)  # read, rewritten, current, raced
    assert cart is not None and cart.email == "new@example.com"
    assert cart.shipping_address is not None and cart.shipping_address.address1 == "1 Main St"
    assert await redis.ttl(f"cart:{cart_id}") > 3000  # the expiry is the cart's own


def test_every_encrypted_column_of_the_schema_is_rotated() -> None:
    # A new *_encrypted column left out of the registry would keep its old key for good.
    from persistence.tables import metadata

    encrypted = {
        (table.name, column.name)
        for table in metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("_encrypted")
    }
    registered = {(t.table.name, c) for t in ENCRYPTED_COLUMNS for c in t.columns}
    assert encrypted == registered
    assert {orders.name, notifications.name, customers.name} <= {n for n, _ in registered}
