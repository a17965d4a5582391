"""Customers in SQL: creation with case-insensitive unique emails, credential lookup."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from domain.customers import Customer
from persistence.db import Database, aware
from persistence.tables import customers

_columns = (
    customers.c.id,
    customers.c.email,
    customers.c.display_name,
    customers.c.is_staff,
    customers.c.created_at,
)


class SqlCustomerRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, email: str, display_name: str, password_hash: str, *, is_staff: bool = False
    ) -> Customer | None:
        statement = (
            insert(customers)
            .values(
                email=email,
                display_name=display_name,
                password_hash=password_hash,
                is_staff=is_staff,
            )
            .returning(*_columns)
        )
        try:
            async with self._db.writer.begin() as connection:
                row = (await connection.execute(statement)).mappings().one()
        except IntegrityError:  # the unique index on lower(email)
            return None
        return customer_from_row(row)

    async def credentials(self, email: str) -> tuple[Customer, str | None] | None:
        # The primary, not a replica: a customer logs in right after signing up.
        statement = select(*_columns, customers.c.password_hash).where(
            func.lower(customers.c.email) == email.lower()
        )
        async with self._db.writer.connect() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return None if row is None else (customer_from_row(row), row["password_hash"])

    async def by_ids(self, ids: Sequence[int]) -> dict[int, Customer]:
        statement = select(*_columns).where(customers.c.id.in_(list(ids)))
        async with self._db.reader.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return {row["id"]: customer_from_row(row) for row in rows}

    async def make_staff(
        self, email: str, display_name: str, password_hash: str
    ) -> tuple[Customer, bool]:
        """(the staff member, whether they were created) — an existing customer is promoted
        and keeps their password."""
        created = await self.create(email, display_name, password_hash, is_staff=True)
        if created is not None:
            return created, True
        async with self._db.writer.begin() as connection:
            row = (
                (
                    await connection.execute(
                        update(customers)
                        .where(func.lower(customers.c.email) == email.lower())
                        .values(is_staff=True, updated_at=func.now())
                        .returning(*_columns)
                    )
                )
                .mappings()
                .one()
            )
        return customer_from_row(row), False


def customer_from_row(row: RowMapping | dict[str, Any]) -> Customer:
    return Customer(
        id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        is_staff=bool(row["is_staff"]),
        created_at=aware(row["created_at"]),
    )
