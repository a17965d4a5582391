"""The statements of an erasure outside the customers table, inside the caller's
transaction: orders keep lines and totals with placeholder contact data, and the
customer's mails (account mails, order confirmations) lose their recipient and body."""

from __future__ import annotations

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.account_mail import account_mail_key
from domain.notifications import NotificationKind
from persistence.pii import PiiCipher
from persistence.tables import notifications, orders

ERASED_EMAIL = "erased@erased.invalid"
ERASED_TEXT = "erased"


def erased_address(country_code: str) -> dict[str, str]:
    """A shipping address with nothing personal left: the country stays, for tax records."""
    fields = ("first_name", "last_name", "address1", "address2", "city", "province", "zip")
    return {**dict.fromkeys(fields, ERASED_TEXT), "country_code": country_code, "phone": ""}


async def erase_orders_of(connection: AsyncConnection, cipher: PiiCipher, customer_id: int) -> None:
    rows = (
        await connection.execute(
            select(orders.c.id, orders.c.public_id, orders.c.shipping_address_encrypted).where(
                orders.c.customer_id == customer_id
            )
        )
    ).all()
    for order_id, public_id, address_encrypted in rows:
        country = str(orjson.loads(cipher.decrypt(address_encrypted)).get("country_code", ""))
        await connection.execute(
            update(orders)
            .where(orders.c.id == order_id)
            .values(
                email_encrypted=cipher.encrypt(ERASED_EMAIL),
                shipping_address_encrypted=cipher.encrypt(
                    orjson.dumps(erased_address(country)).decode()
                ),
            )
        )
        await connection.execute(
            update(notifications)
            .where(
                notifications.c.kind == NotificationKind.ORDER_CONFIRMATION.value,
                notifications.c.key == public_id,
            )
            .values(
                recipient_encrypted=cipher.encrypt(ERASED_EMAIL), body=None, body_encrypted=None
            )
        )


async def drop_account_mails_of(connection: AsyncConnection, customer_id: int) -> None:
    prefix = account_mail_key(customer_id, "")
    await connection.execute(delete(notifications).where(notifications.c.key.startswith(prefix)))
