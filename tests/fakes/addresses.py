"""An in-memory `AddressBookStore` with the SQL store's rules: the first address is the
default, deleting the default promotes the newest remaining one, the limit refuses as a
whole, and a customer sees only their own addresses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from domain.address_book import ADDRESSES_ORDERING, CustomerAddress
from domain.addresses import MailingAddress
from domain.pagination import Page, PageRequest, encode_cursor

if TYPE_CHECKING:
    from domain.address_book import AddressBookStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class FakeAddressBookStore:
    def __init__(self) -> None:
        self.rows: dict[int, CustomerAddress] = {}
        self._next_id = 1

    def _of(self, customer_id: int) -> list[CustomerAddress]:
        return sorted(
            (a for a in self.rows.values() if a.customer_id == customer_id), key=lambda a: a.id
        )

    async def add(
        self, customer_id: int, address: MailingAddress, *, make_default: bool, limit: int
    ) -> CustomerAddress | None:
        mine = self._of(customer_id)
        if len(mine) >= limit:
            return None
        make_default = make_default or not mine
        if make_default:
            self._clear_default(customer_id)
        saved = CustomerAddress(self._next_id, customer_id, address, make_default, T0)
        self.rows[saved.id] = saved
        self._next_id += 1
        return saved

    async def replace(
        self, customer_id: int, address_id: int, address: MailingAddress, *, make_default: bool
    ) -> CustomerAddress | None:
        found = await self.get(customer_id, address_id)
        if found is None:
            return None
        self.rows[address_id] = replace(found, address=address)
        if make_default:
            await self.make_default(customer_id, address_id)
        return self.rows[address_id]

    async def delete(self, customer_id: int, address_id: int) -> bool:
        found = await self.get(customer_id, address_id)
        if found is None:
            return False
        del self.rows[address_id]
        remaining = self._of(customer_id)
        if found.is_default and remaining:
            self.rows[remaining[-1].id] = replace(remaining[-1], is_default=True)
        return True

    async def make_default(self, customer_id: int, address_id: int) -> CustomerAddress | None:
        if await self.get(customer_id, address_id) is None:
            return None
        self._clear_default(customer_id)
        self.rows[address_id] = replace(self.rows[address_id], is_default=True)
        return self.rows[address_id]

    async def get(self, customer_id: int, address_id: int) -> CustomerAddress | None:
        found = self.rows.get(address_id)
        return found if found is not None and found.customer_id == customer_id else None

    async def by_ids(self, customer_id: int, ids: Sequence[int]) -> dict[int, CustomerAddress]:
        found = {i: await self.get(customer_id, i) for i in ids}
        return {i: address for i, address in found.items() if address is not None}

    async def default_of(self, customer_id: int) -> CustomerAddress | None:
        return next((a for a in self._of(customer_id) if a.is_default), None)

    async def page(self, customer_id: int, page: PageRequest) -> Page[CustomerAddress]:
        after = page.after[0] if page.after is not None else None
        rows = [a for a in self._of(customer_id) if after is None or a.id > after]  # type: ignore[operator]
        return Page.from_rows(
            rows[: page.first + 1],
            first=page.first,
            after=page.after,
            cursor_of=lambda a: encode_cursor(ADDRESSES_ORDERING, (a.id,)),
        )

    async def delete_all_of(self, customer_id: int) -> int:
        mine = self._of(customer_id)
        for address in mine:
            del self.rows[address.id]
        return len(mine)

    def _clear_default(self, customer_id: int) -> None:
        for address in self._of(customer_id):
            if address.is_default:
                self.rows[address.id] = replace(address, is_default=False)


if TYPE_CHECKING:
    _store: AddressBookStore = FakeAddressBookStore()
