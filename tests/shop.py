"""Helpers for tests that buy things: ready carts and stock levels."""

from __future__ import annotations

from sqlalchemy import select, update

from persistence.db import Database
from persistence.tables import customers, inventory_levels
from schema.global_id import encode_gid
from tests.client import AppClient, customer_token
from tests.conftest import SEED_COLUMNS
from tests.factories import MadeProduct

ADDRESS = {
    "firstName": "Ann",
    "lastName": "Lee",
    "address1": "1 Main St",
    "city": "Berlin",
    "zip": "10115",
    "countryCode": "DE",
}
CREATE_CART = """mutation($lines: [CartLineInput!]!) { cartCreate(input: {lines: $lines, buyerIdentity: {email: "ann@example.com"}}) {
  cart { id } userErrors { code } } }"""
SET_ADDRESS = """mutation($id: ID!, $a: MailingAddressInput!) { cartShippingAddressUpdate(input: {cartId: $id, address: $a}) {
  userErrors { code } } }"""


def vid(made: MadeProduct) -> str:
    return encode_gid("ProductVariant", made.variant_ids[0])


async def ready_cart(
    client: AppClient, lines: list[tuple[MadeProduct, int]], token: str | None = None
) -> str:
    created = await client.query(
        CREATE_CART,
        {"lines": [{"variantId": vid(m), "quantity": q} for m, q in lines]},
        token=token,
    )
    cart_id: str = created.data["cartCreate"]["cart"]["id"]
    await client.query(SET_ADDRESS, {"id": cart_id, "a": ADDRESS}, token=token)
    return cart_id


async def stock(db: Database, made: MadeProduct) -> int:
    async with db.reader.connect() as connection:
        value = (
            await connection.execute(
                select(inventory_levels.c.available).where(
                    inventory_levels.c.variant_id == made.variant_ids[0]
                )
            )
        ).scalar_one()
    return int(value)


async def staff_token(client: AppClient, db: Database, email: str = "boss@example.com") -> str:
    token = await customer_token(client, email)
    async with db.writer.begin() as connection:
        await connection.execute(
            update(customers)
            .where(customers.c.email_index == SEED_COLUMNS.index_of(email))
            .values(is_staff=True)
        )
    return token


async def stored_customers(db: Database) -> list[tuple[str, str]]:
    """Every customer's (email, name) as stored, decrypted, in id order."""
    async with db.reader.connect() as connection:
        rows = (
            (await connection.execute(select(customers).order_by(customers.c.id))).mappings().all()
        )
    return [(c.email, c.display_name) for c in map(SEED_COLUMNS.customer, rows)]


async def customer_id_of(db: Database, email: str) -> int:
    statement = select(customers.c.id).where(
        customers.c.email_index == SEED_COLUMNS.index_of(email)
    )
    async with db.reader.connect() as connection:
        return int((await connection.execute(statement)).scalar_one())
