"""Per-request loader of saved addresses by id: `nodes(ids)` with many address ids is one
statement, not one per id. Keyed by (customer id, address id), so a batch only ever finds
the viewer's own addresses."""

from __future__ import annotations

from collections import defaultdict

from dataloaders.catalog import MappingLoader
from domain.address_book import AddressBook, CustomerAddress

AddressKey = tuple[int, int]  # (customer id, address id)


class CustomerAddressByIdLoader(MappingLoader[AddressKey, CustomerAddress | None]):
    def __init__(self, book: AddressBook) -> None:
        async def fetch(keys: list[AddressKey]) -> dict[AddressKey, CustomerAddress | None]:
            wanted: dict[int, list[int]] = defaultdict(list)
            for customer_id, address_id in keys:
                wanted[customer_id].append(address_id)
            found: dict[AddressKey, CustomerAddress | None] = {}
            for customer_id, ids in wanted.items():  # one customer per request in practice
                for address_id, address in (await book.by_ids(customer_id, ids)).items():
                    found[(customer_id, address_id)] = address
            return found

        super().__init__(fetch, lambda: None)
