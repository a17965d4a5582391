"""Erasure: a customer's personal data leaves; their orders stay, for the books.

What goes: email, name, password, pending addresses and account tokens (the customer
row keeps its id, so orders and reviews still point somewhere), every access token,
their open cart and their address book. Orders keep their lines and totals, with the
email and shipping address replaced by placeholders (the country stays: tax records
need it); reviews stay, under a placeholder author name.

Each step is idempotent and the record is erased last, so an erasure that failed half
way is finished by running it again (`customer-erase` looks the customer up by email,
which the last step removes).
"""

from __future__ import annotations

from typing import Protocol

from domain.customers import SessionStore

ERASED_NAME = "Former customer"


class ErasableRecords(Protocol):
    async def erase(self, customer_id: int) -> bool:
        """Replace the customer's PII (and their orders') with placeholders, drop their
        account tokens and account mails; False when there is no such customer."""
        ...


class CustomerCarts(Protocol):
    async def discard_customer_cart(self, customer_id: int) -> None: ...


class AddressBook(Protocol):
    async def delete_all_of(self, customer_id: int) -> int:
        """Delete every saved address of the customer: how many went."""
        ...


class Erasure:
    def __init__(
        self,
        records: ErasableRecords,
        sessions: SessionStore,
        carts: CustomerCarts,
        addresses: AddressBook,
    ) -> None:
        self._records = records
        self._sessions = sessions
        self._carts = carts
        self._addresses = addresses

    async def erase(self, customer_id: int) -> bool:
        """Erase the customer (see the module): False when there is none."""
        await self._sessions.revoke_all(customer_id)
        await self._carts.discard_customer_cart(customer_id)
        await self._addresses.delete_all_of(customer_id)  # the address book's one call site
        erased = await self._records.erase(customer_id)
        # A login that slipped in before the password went: its token ends too.
        await self._sessions.revoke_all(customer_id)
        return erased
