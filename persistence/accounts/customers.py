"""Customers in SQL: creation with unique emails, credential lookup, staff promotion.

Email and name rest encrypted (persistence/pii.py); an email is found, and kept unique
in any spelling, through its blind index. Every statement on the customers table lives
here, and `CustomerColumns.stored` is the one place that turns an email and a name into the
column values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from domain.customers import Customer
from persistence.db import Database, aware
from persistence.pii import BlindIndex, PiiCipher
from persistence.tables import customers

_columns = (
    customers.c.id,
    customers.c.email_encrypted,
    customers.c.display_name_encrypted,
    customers.c.is_staff,
    customers.c.created_at,
)


class CustomerColumns:
    """The customers table's codec: an email and a name to the stored column values
    (ciphertexts and the blind index), and a row back to a Customer."""

    def __init__(self, cipher: PiiCipher, index: BlindIndex) -> None:
        self._cipher = cipher
        self._index = index

    def stored(
        self, *, email: str | None = None, display_name: str | None = None
    ) -> dict[str, str]:
        values: dict[str, str] = {}
        if email is not None:
            values["email_encrypted"] = self._cipher.encrypt(email)
            values["email_index"] = self._index.of_email(email)
        if display_name is not None:
            values["display_name_encrypted"] = self._cipher.encrypt(display_name)
        return values

    def index_of(self, email: str) -> str:
        return self._index.of_email(email)

    def customer(self, row: RowMapping | dict[str, Any]) -> Customer:
        return Customer(
            id=row["id"],
            email=self._cipher.decrypt(row["email_encrypted"]),
            display_name=self._cipher.decrypt(row["display_name_encrypted"]),
            is_staff=bool(row["is_staff"]),
            created_at=aware(row["created_at"]),
        )


class SqlCustomerRepository:
    def __init__(self, db: Database, columns: CustomerColumns) -> None:
        self._db = db
        self._columns = columns

    async def create(
        self, email: str, display_name: str, password_hash: str, *, is_staff: bool = False
    ) -> Customer | None:
        statement = (
            insert(customers)
            .values(
                **self._columns.stored(email=email, display_name=display_name),
                password_hash=password_hash,
                is_staff=is_staff,
            )
            .returning(*_columns)
        )
        try:
            async with self._db.writer.begin() as connection:
                row = (await connection.execute(statement)).mappings().one()
        except IntegrityError:  # the unique blind index: any spelling of a taken email
            return None
        return self._columns.customer(row)

    async def credentials(self, email: str) -> tuple[Customer, str | None] | None:
        # The primary, not a replica: a customer logs in right after signing up.
        statement = select(*_columns, customers.c.password_hash).where(
            customers.c.email_index == self._columns.index_of(email)
        )
        async with self._db.writer.connect() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return None if row is None else (self._columns.customer(row), row["password_hash"])

    async def by_ids(self, ids: Sequence[int]) -> dict[int, Customer]:
        statement = select(*_columns).where(customers.c.id.in_(list(ids)))
        async with self._db.reader.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return {row["id"]: self._columns.customer(row) for row in rows}

    async def make_staff(
        self, email: str, display_name: str, password_hash: str
    ) -> tuple[Customer, bool]:
        """(the staff member, whether they were created) — an existing customer is promoted
        and keeps their password and name."""
        created = await self.create(email, display_name, password_hash, is_staff=True)
        if created is not None:
            return created, True
        async with self._db.writer.begin() as connection:
            row = (
                (
                    await connection.execute(
                        update(customers)
                        .where(customers.c.email_index == self._columns.index_of(email))
                        .values(is_staff=True, updated_at=func.now())
                        .returning(*_columns)
                    )
                )
                .mappings()
                .one()
            )
        return self._columns.customer(row), False
