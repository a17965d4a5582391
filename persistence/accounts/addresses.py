"""The address book in SQL: one encrypted row per address, writes serialised per customer.

Every write first locks the customer's row (`SELECT ... FOR UPDATE`), so two concurrent
saves cannot both see 49 addresses and make 51, and default changes never interleave.
SQLite has no row locks; its single writer serialises the embedded mode.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy import ARRAY, any_, delete, func, insert, literal, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.address_book import ADDRESSES_ORDERING, CustomerAddress
from domain.addresses import MailingAddress
from domain.pagination import Page, PageRequest, encode_cursor
from persistence.cursor_keys import cursor_id
from persistence.db import Database, aware
from persistence.pii import PiiCipher
from persistence.tables import customer_addresses, customers

_table = customer_addresses
_columns = (_table.c.id, _table.c.customer_id, _table.c.address_encrypted, _table.c.is_default)
# Made once: building an ARRAY type per statement registers schema events each time.
_ids = ARRAY(_table.c.id.type)


class SqlAddressBook:
    def __init__(self, db: Database, cipher: PiiCipher) -> None:
        self._db = db
        self._cipher = cipher

    # -- writes ------------------------------------------------------------------------

    async def add(
        self, customer_id: int, address: MailingAddress, *, make_default: bool, limit: int
    ) -> CustomerAddress | None:
        async with self._db.writer.begin() as connection:
            if not await _lock_customer(connection, customer_id):
                return None
            count = (
                await connection.execute(
                    select(func.count()).where(_table.c.customer_id == customer_id)
                )
            ).scalar_one()
            if count >= limit:
                return None
            make_default = make_default or count == 0
            if make_default:
                await _clear_default(connection, customer_id)
            row = (
                (
                    await connection.execute(
                        insert(_table)
                        .values(
                            customer_id=customer_id,
                            address_encrypted=self._encrypt(address),
                            is_default=make_default,
                        )
                        .returning(*_columns, _table.c.created_at)
                    )
                )
                .mappings()
                .one()
            )
        return self._record(row)

    async def replace(
        self, customer_id: int, address_id: int, address: MailingAddress, *, make_default: bool
    ) -> CustomerAddress | None:
        async with self._db.writer.begin() as connection:
            if not await _lock_customer(connection, customer_id):
                return None
            changed = (
                await connection.execute(
                    update(_table)
                    .where(_table.c.id == address_id, _table.c.customer_id == customer_id)
                    .values(address_encrypted=self._encrypt(address), updated_at=func.now())
                    .returning(_table.c.id)
                )
            ).first()
            if changed is None:
                return None
            if make_default:
                await _set_default(connection, customer_id, address_id)
            return await self._one(connection, customer_id, address_id)

    async def delete(self, customer_id: int, address_id: int) -> bool:
        async with self._db.writer.begin() as connection:
            if not await _lock_customer(connection, customer_id):
                return False
            deleted = (
                await connection.execute(
                    delete(_table)
                    .where(_table.c.id == address_id, _table.c.customer_id == customer_id)
                    .returning(_table.c.is_default)
                )
            ).first()
            if deleted is None:
                return False
            if deleted.is_default:
                # The newest remaining address takes over: a customer with addresses
                # always has a default.
                newest = select(func.max(_table.c.id)).where(_table.c.customer_id == customer_id)
                await connection.execute(
                    update(_table)
                    .where(_table.c.id == newest.scalar_subquery())
                    .values(is_default=True, updated_at=func.now())
                )
        return True

    async def make_default(self, customer_id: int, address_id: int) -> CustomerAddress | None:
        async with self._db.writer.begin() as connection:
            if not await _lock_customer(connection, customer_id):
                return None
            if await self._one(connection, customer_id, address_id) is None:
                return None
            await _set_default(connection, customer_id, address_id)
            return await self._one(connection, customer_id, address_id)

    async def delete_all_of(self, customer_id: int) -> int:
        async with self._db.writer.begin() as connection:
            result = await connection.execute(
                delete(_table).where(_table.c.customer_id == customer_id)
            )
        return result.rowcount or 0

    # -- reads -------------------------------------------------------------------------
    # The primary, not a replica: a customer reads their book right after saving to it.

    async def by_ids(self, customer_id: int, ids: Sequence[int]) -> dict[int, CustomerAddress]:
        wanted = list(ids)
        matches = (
            _table.c.id == any_(literal(wanted, _ids))
            if self._db.is_postgres
            else _table.c.id.in_(wanted)
        )
        statement = select(*_columns, _table.c.created_at).where(
            _table.c.customer_id == customer_id, matches
        )
        async with self._db.writer.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return {row["id"]: self._record(row) for row in rows}

    async def default_of(self, customer_id: int) -> CustomerAddress | None:
        statement = select(*_columns, _table.c.created_at).where(
            _table.c.customer_id == customer_id, _table.c.is_default.is_(True)
        )
        async with self._db.writer.connect() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return None if row is None else self._record(row)

    async def page(self, customer_id: int, page: PageRequest) -> Page[CustomerAddress]:
        condition = _table.c.customer_id == customer_id
        if page.after is not None:
            condition = condition & (_table.c.id > cursor_id(page.after[0]))
        statement = (
            select(*_columns, _table.c.created_at)
            .where(condition)
            .order_by(_table.c.id)
            .limit(page.first + 1)
        )
        async with self._db.writer.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return Page.from_rows(
            [self._record(row) for row in rows],
            first=page.first,
            after=page.after,
            cursor_of=lambda a: encode_cursor(ADDRESSES_ORDERING, (a.id,)),
        )

    # -- rows --------------------------------------------------------------------------

    async def _one(
        self, connection: AsyncConnection, customer_id: int, address_id: int
    ) -> CustomerAddress | None:
        row = (
            (
                await connection.execute(
                    select(*_columns, _table.c.created_at).where(
                        _table.c.id == address_id, _table.c.customer_id == customer_id
                    )
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else self._record(row)

    def _encrypt(self, address: MailingAddress) -> str:
        return self._cipher.encrypt(orjson.dumps(address).decode())

    def _record(self, row: RowMapping) -> CustomerAddress:
        fields = orjson.loads(self._cipher.decrypt(row["address_encrypted"]))
        return CustomerAddress(
            id=row["id"],
            customer_id=row["customer_id"],
            address=MailingAddress(**fields),
            is_default=bool(row["is_default"]),
            created_at=aware(row["created_at"]),
        )


async def _lock_customer(connection: AsyncConnection, customer_id: int) -> bool:
    """Hold the customer's row until the transaction ends; False if there is none."""
    found = await connection.execute(
        select(customers.c.id).where(customers.c.id == customer_id).with_for_update()
    )
    return found.first() is not None


async def _clear_default(connection: AsyncConnection, customer_id: int) -> None:
    await connection.execute(
        update(_table)
        .where(_table.c.customer_id == customer_id, _table.c.is_default.is_(True))
        .values(is_default=False, updated_at=func.now())
    )


async def _set_default(connection: AsyncConnection, customer_id: int, address_id: int) -> None:
    # Clear first: the partial unique index allows one default at any moment.
    await connection.execute(
        update(_table)
        .where(
            _table.c.customer_id == customer_id,
            _table.c.is_default.is_(True),
            _table.c.id != address_id,
        )
        .values(is_default=False, updated_at=func.now())
    )
    await connection.execute(
        update(_table)
        .where(_table.c.id == address_id, _table.c.is_default.is_(False))
        .values(is_default=True, updated_at=func.now())
    )
