"""`pii-rotate`: every encrypted value re-encrypted under the newest PII key.

ENCRYPTED_COLUMNS lists every table that holds Fernet tokens (one line each). Each table
is walked by id in batches (keyset, never OFFSET); a value already under the newest key
is left alone, so an interrupted run resumes where it stopped and a second run rewrites
nothing. A row is rewritten with a compare-and-set on the tokens it was read with: a
concurrent write (made by a server that already encrypts under the newest key) is never
overwritten; the row is read again and, if it still needs it, rotated then.

Run it once every server encrypts under the new key (PII_ENCRYPTION_KEYS="new,old"),
and drop the old key only after it reports nothing left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, select, update
from sqlalchemy.engine import RowMapping

from persistence.db import Database
from persistence.pii import PiiCipher
from persistence.tables import (
    account_tokens,
    customer_addresses,
    customers,
    notifications,
    orders,
    partner_webhooks,
)

BATCH_SIZE = 500
# Compare-and-set attempts per row before it is left for the next run (a row rewritten
# this often meanwhile is being written under the newest key anyway).
ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class EncryptedColumns:
    table: Table
    columns: tuple[str, ...]  # Fernet tokens; nullable ones may be NULL
    id_column: str = "id"


ENCRYPTED_COLUMNS: tuple[EncryptedColumns, ...] = (
    EncryptedColumns(
        orders,
        ("email_encrypted", "shipping_address_encrypted", "payment_action_secret_encrypted"),
    ),
    EncryptedColumns(notifications, ("recipient_encrypted", "body_encrypted")),
    EncryptedColumns(customers, ("email_encrypted", "display_name_encrypted")),
    EncryptedColumns(customer_addresses, ("address_encrypted",)),
    EncryptedColumns(account_tokens, ("email_encrypted",)),
    EncryptedColumns(partner_webhooks, ("secret_encrypted",)),  # signing secrets
)


@dataclass(slots=True)
class RotationCount:
    """What one table (or the carts) saw: values read, rewritten, already current, and
    rows that changed under the rotation (re-read and retried)."""

    name: str
    read: int = 0
    rotated: int = 0
    current: int = 0
    raced: int = 0
    left: list[Any] = field(default_factory=list)  # ids still to rotate (retries ran out)

    def line(self) -> str:
        text = (
            f"{self.name}: {self.read} read, {self.rotated} re-encrypted, "
            f"{self.current} already current, {self.raced} changed meanwhile"
        )
        return text + (f", {len(self.left)} left for the next run" if self.left else "")


async def rotate_table(
    db: Database,
    cipher: PiiCipher,
    target: EncryptedColumns,
    *,
    batch_size: int = BATCH_SIZE,
    report: Callable[[RotationCount], None] | None = None,
) -> RotationCount:
    table = target.table
    row_id = table.c[target.id_column]
    columns = [table.c[name] for name in target.columns]
    count = RotationCount(table.name)
    after: Any = None
    while True:
        statement = select(row_id, *columns).order_by(row_id).limit(batch_size)
        if after is not None:
            statement = statement.where(row_id > after)
        async with db.writer.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        if not rows:
            return count
        async with db.writer.begin() as connection:
            for row in rows:
                count.read += 1
                for attempt in range(ATTEMPTS):
                    new = _rotated(cipher, row, target.columns)
                    if not new:
                        count.current += 1
                        break
                    guard = and_(
                        row_id == row[target.id_column],
                        *(
                            column.is_(None)
                            if row[column.name] is None
                            else column == row[column.name]
                            for column in columns
                        ),
                    )
                    result = await connection.execute(update(table).where(guard).values(new))
                    if result.rowcount == 1:
                        count.rotated += 1
                        break
                    count.raced += 1
                    fresh = (
                        (
                            await connection.execute(
                                select(row_id, *columns).where(row_id == row[target.id_column])
                            )
                        )
                        .mappings()
                        .first()
                    )
                    if fresh is None:  # deleted meanwhile: nothing to rotate
                        break
                    row = fresh
                    if attempt == ATTEMPTS - 1:
                        count.left.append(row[target.id_column])
        after = rows[-1][target.id_column]
        if report is not None:
            report(count)


def _rotated(cipher: PiiCipher, row: RowMapping, names: tuple[str, ...]) -> dict[str, str]:
    new: dict[str, str] = {}
    for name in names:
        if row[name] is not None and (token := cipher.rotated(row[name])) is not None:
            new[name] = token
    return new
