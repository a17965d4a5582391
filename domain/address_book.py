"""A customer's address book: at most 50 saved addresses, one of them the default.

Every address is checked by domain.addresses.check_address, the cart's own rule. The
default is kept one-or-zero per customer: the first address saved becomes the default,
and deleting the default makes the newest remaining address the default, so a customer
has a default exactly when they have an address. An address of another customer answers
exactly like an address that does not exist (ADDRESS_NOT_FOUND on `id`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.addresses import MailingAddress, check_address
from domain.errors import Rejected, UserErrorCode
from domain.pagination import Page, PageRequest, page_request

MAX_ADDRESSES = 50
ADDRESSES_ORDERING = "a:saved"


@dataclass(frozen=True, slots=True)
class CustomerAddress:
    id: int
    customer_id: int
    address: MailingAddress
    is_default: bool
    created_at: datetime


class AddressBookStore(Protocol):
    """Writes for one customer are serialised (the limit holds under concurrency); every
    method sees only `customer_id`'s own addresses."""

    async def add(
        self, customer_id: int, address: MailingAddress, *, make_default: bool, limit: int
    ) -> CustomerAddress | None:
        """The saved address (the default when asked, or when it is the first one); None
        when the customer already has `limit` addresses (nothing is written)."""
        ...

    async def replace(
        self, customer_id: int, address_id: int, address: MailingAddress, *, make_default: bool
    ) -> CustomerAddress | None: ...

    async def delete(self, customer_id: int, address_id: int) -> bool: ...

    async def make_default(self, customer_id: int, address_id: int) -> CustomerAddress | None: ...

    async def by_ids(self, customer_id: int, ids: Sequence[int]) -> dict[int, CustomerAddress]:
        """Those of `ids` that are `customer_id`'s addresses."""
        ...

    async def default_of(self, customer_id: int) -> CustomerAddress | None: ...

    async def page(self, customer_id: int, page: PageRequest) -> Page[CustomerAddress]:
        """Oldest first (the order they were saved in)."""
        ...

    async def delete_all_of(self, customer_id: int) -> int:
        """Erasure: every address of the customer gone; how many there were."""
        ...


def addresses_page_request(first: int | None, after: str | None, max_size: int) -> PageRequest:
    return page_request(first, after, ordering=ADDRESSES_ORDERING, arity=1, max_size=max_size)


def address_not_found() -> Rejected:
    return Rejected.one(UserErrorCode.ADDRESS_NOT_FOUND, "no such address", "id")


class AddressBook:
    def __init__(self, store: AddressBookStore, limit: int = MAX_ADDRESSES) -> None:
        self._store = store
        self._limit = limit

    async def add(
        self, customer_id: int, address: MailingAddress, make_default: bool
    ) -> CustomerAddress:
        saved = await self._store.add(
            customer_id, check_address(address), make_default=make_default, limit=self._limit
        )
        if saved is None:
            raise Rejected.one(
                UserErrorCode.ADDRESS_LIMIT_REACHED,
                f"an address book holds at most {self._limit} addresses; delete one first",
                "address",
            )
        return saved

    async def update(
        self,
        customer_id: int,
        address_id: int | None,
        address: MailingAddress,
        make_default: bool,
    ) -> CustomerAddress:
        """Replace the whole address; `make_default` False leaves the default as it is."""
        cleaned = check_address(address)
        if address_id is None:
            raise address_not_found()
        saved = await self._store.replace(
            customer_id, address_id, cleaned, make_default=make_default
        )
        if saved is None:
            raise address_not_found()
        return saved

    async def delete(self, customer_id: int, address_id: int | None) -> int:
        if address_id is None or not await self._store.delete(customer_id, address_id):
            raise address_not_found()
        return address_id

    async def set_default(self, customer_id: int, address_id: int | None) -> CustomerAddress:
        chosen = (
            None if address_id is None else await self._store.make_default(customer_id, address_id)
        )
        if chosen is None:
            raise address_not_found()
        return chosen

    async def by_ids(self, customer_id: int, ids: Sequence[int]) -> dict[int, CustomerAddress]:
        return await self._store.by_ids(customer_id, ids)

    async def default(self, customer_id: int) -> CustomerAddress | None:
        return await self._store.default_of(customer_id)

    async def default_address(self, customer_id: int) -> MailingAddress | None:
        """What a signed-in customer's new cart starts with (domain.carts.DefaultAddresses)."""
        found = await self._store.default_of(customer_id)
        return None if found is None else found.address

    async def page(self, customer_id: int, page: PageRequest) -> Page[CustomerAddress]:
        return await self._store.page(customer_id, page)

    async def delete_all_of(self, customer_id: int) -> int:
        return await self._store.delete_all_of(customer_id)
