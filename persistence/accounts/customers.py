"""Customers in SQL: creation with unique emails, credential lookup, staff promotion,
profile changes, token redemptions and erasure.

Email and name rest encrypted (persistence/pii.py); an email is found, and kept unique
in any spelling, through its blind index. Every statement on the customers table lives
in this module, and `CustomerColumns.stored` is the one place that turns an email and a
name into column values. Account-token and order statements come from account_tokens.py
and erasure.py, composed into one transaction per change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.account_changes import VerificationFailure
from domain.account_tokens import IssuedToken, TokenPurpose
from domain.customers import Customer
from domain.erasure import ERASED_NAME
from domain.events import EmailVerificationRequested, PasswordResetRequested
from persistence.accounts.account_tokens import (
    delete_tokens_of,
    insert_token,
    redeem_token,
    token_is_open,
    void_open_tokens,
)
from persistence.accounts.erasure import drop_account_mails_of, erase_orders_of
from persistence.db import Database, aware
from persistence.events.outbox import emit
from persistence.pii import BlindIndex, PiiCipher
from persistence.tables import customers

_columns = (
    customers.c.id,
    customers.c.email_encrypted,
    customers.c.display_name_encrypted,
    customers.c.is_staff,
    customers.c.created_at,
    customers.c.email_verified_at,
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

    @property
    def cipher(self) -> PiiCipher:
        return self._cipher

    def index_of(self, email: str) -> str:
        return self._index.of_email(email)

    def customer(self, row: RowMapping | dict[str, Any]) -> Customer:
        return Customer(
            id=row["id"],
            email=self._cipher.decrypt(row["email_encrypted"]),
            display_name=self._cipher.decrypt(row["display_name_encrypted"]),
            is_staff=bool(row["is_staff"]),
            created_at=aware(row["created_at"]),
            email_verified=row.get("email_verified_at") is not None,
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
        # The primary: the viewer of a request right after sign-up or an account change.
        async with self._db.primary_reader.connect() as connection:
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

    async def update_profile(
        self,
        customer_id: int,
        *,
        display_name: str | None,
        password_hash: str | None,
        verification: tuple[str, IssuedToken, str] | None,
    ) -> Customer | None:
        async with self._db.writer.begin() as connection:
            if display_name is not None:
                await _set_display_name(connection, self._columns, customer_id, display_name)
            if password_hash is not None:
                await _set_password_hash(connection, customer_id, password_hash)
                # A reset code mailed before the change must not undo it.
                await void_open_tokens(connection, customer_id, TokenPurpose.PASSWORD_RESET)
            if verification is not None:
                email, token, sealed = verification
                purpose = TokenPurpose.EMAIL_VERIFICATION
                await void_open_tokens(connection, customer_id, purpose)
                encrypted = self._columns.cipher.encrypt(email)
                await insert_token(connection, customer_id, purpose, token, encrypted)
                await emit(connection, EmailVerificationRequested(customer_id, sealed))
            return await _customer(connection, self._columns, customer_id)

    async def queue_password_reset(self, sealed: str) -> None:
        async with self._db.writer.begin() as connection:
            await emit(connection, PasswordResetRequested(sealed))

    async def grant_password_reset(self, email: str, token: IssuedToken) -> Customer | None:
        async with self._db.writer.begin() as connection:
            customer = await _customer_by_email(connection, self._columns, email)
            if customer is not None:
                await insert_token(connection, customer.id, TokenPurpose.PASSWORD_RESET, token)
        return customer

    async def token_is_open(self, token_digest: str) -> bool:
        async with self._db.writer.connect() as connection:
            return await token_is_open(connection, token_digest)

    async def reset_password(self, token_digest: str, password_hash: str) -> Customer | None:
        async with self._db.writer.begin() as connection:
            redeemed = await redeem_token(connection, TokenPurpose.PASSWORD_RESET, token_digest)
            if redeemed is None:
                return None
            customer_id = int(redeemed["customer_id"])
            await _set_password_hash(connection, customer_id, password_hash)
            await void_open_tokens(connection, customer_id, TokenPurpose.PASSWORD_RESET)
            return await _customer(connection, self._columns, customer_id)

    async def verify_email(self, token_digest: str) -> Customer | VerificationFailure:
        purpose = TokenPurpose.EMAIL_VERIFICATION
        try:
            async with self._db.writer.begin() as connection:
                redeemed = await redeem_token(connection, purpose, token_digest)
                if redeemed is None or redeemed["email_encrypted"] is None:
                    return VerificationFailure.INVALID_TOKEN
                customer_id = int(redeemed["customer_id"])
                email = self._columns.cipher.decrypt(redeemed["email_encrypted"])
                await _set_verified_email(connection, self._columns, customer_id, email)
                await void_open_tokens(connection, customer_id, purpose)
                customer = await _customer(connection, self._columns, customer_id)
        except IntegrityError:  # the unique blind index: someone took it since
            return VerificationFailure.EMAIL_TAKEN
        return VerificationFailure.INVALID_TOKEN if customer is None else customer

    async def erase(self, customer_id: int) -> bool:
        async with self._db.writer.begin() as connection:
            if not await _erase_customer(connection, self._columns, customer_id):
                return False
            await delete_tokens_of(connection, customer_id)
            await drop_account_mails_of(connection, customer_id)
            await erase_orders_of(connection, self._columns.cipher, customer_id)
        return True


async def _customer(
    connection: AsyncConnection, columns: CustomerColumns, customer_id: int
) -> Customer | None:
    row = (
        (await connection.execute(select(*_columns).where(customers.c.id == customer_id)))
        .mappings()
        .first()
    )
    return None if row is None else columns.customer(row)


async def _customer_by_email(
    connection: AsyncConnection, columns: CustomerColumns, email: str
) -> Customer | None:
    statement = select(*_columns).where(customers.c.email_index == columns.index_of(email))
    row = (await connection.execute(statement)).mappings().first()
    return None if row is None else columns.customer(row)


async def _set_display_name(
    connection: AsyncConnection, columns: CustomerColumns, customer_id: int, name: str
) -> None:
    await connection.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(**columns.stored(display_name=name), updated_at=func.now())
    )


async def _set_password_hash(
    connection: AsyncConnection, customer_id: int, password_hash: str
) -> None:
    await connection.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(password_hash=password_hash, updated_at=func.now())
    )


async def _set_verified_email(
    connection: AsyncConnection, columns: CustomerColumns, customer_id: int, email: str
) -> None:
    """The address becomes the customer's, verified now (the same one: just verified)."""
    await connection.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(
            **columns.stored(email=email),
            email_verified_at=datetime.now(UTC),
            updated_at=func.now(),
        )
    )


async def _erase_customer(
    connection: AsyncConnection, columns: CustomerColumns, customer_id: int
) -> bool:
    """Email, name and password replaced: the id stays (orders and reviews point at it),
    the address is free for a new sign-up, and nobody can log in."""
    erased = await connection.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(
            **columns.stored(
                email=f"erased-{customer_id}@erased.invalid", display_name=ERASED_NAME
            ),
            password_hash=None,
            email_verified_at=None,
            updated_at=func.now(),
        )
    )
    return bool(erased.rowcount)
