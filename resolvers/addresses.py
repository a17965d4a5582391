"""The address book mutations: thin shells around domain.address_book.AddressBook.

Each needs the customer's access token (UNAUTHENTICATED otherwise); an id that is not an
address of the signed-in customer, theirs deleted, another customer's or not an id at
all, is ADDRESS_NOT_FOUND on `id`, one answer for every case.
"""

from __future__ import annotations

import dataclasses

import strawberry

from domain.addresses import MailingAddress
from schema.address_payloads import (
    CustomerAddressDeletePayload,
    CustomerAddressPayload,
    CustomerDefaultAddressUpdatePayload,
)
from schema.addresses import (
    CustomerAddress,
    CustomerAddressCreateInput,
    CustomerAddressDeleteInput,
    CustomerAddressUpdateInput,
    CustomerDefaultAddressUpdateInput,
    address_gid,
    address_id_or_none,
)
from schema.carts import MailingAddressInput
from schema.context import Info
from schema.customers import Customer
from schema.refusals import refusals_as


@strawberry.type
class AddressBookMutation:
    @strawberry.mutation(
        description="Save an address to the signed-in customer's address book (at most 50)."
    )
    @refusals_as(CustomerAddressPayload)
    async def customer_address_create(
        self, info: Info, input: CustomerAddressCreateInput
    ) -> CustomerAddressPayload:
        viewer = await info.context.require_viewer()
        saved = await info.context.address_book.add(
            viewer.id, _address(input.address), bool(input.default)
        )
        return CustomerAddressPayload(
            customer_address=CustomerAddress.of_saved(saved),
            customer=Customer.of(viewer),
            user_errors=[],
        )

    @strawberry.mutation(description="Replace a saved address; `default: true` makes it default.")
    @refusals_as(CustomerAddressPayload)
    async def customer_address_update(
        self, info: Info, input: CustomerAddressUpdateInput
    ) -> CustomerAddressPayload:
        viewer = await info.context.require_viewer()
        saved = await info.context.address_book.update(
            viewer.id, address_id_or_none(input.id), _address(input.address), bool(input.default)
        )
        return CustomerAddressPayload(
            customer_address=CustomerAddress.of_saved(saved),
            customer=Customer.of(viewer),
            user_errors=[],
        )

    @strawberry.mutation(
        description="Delete a saved address; deleting the default makes the newest remaining "
        "address the default."
    )
    @refusals_as(CustomerAddressDeletePayload)
    async def customer_address_delete(
        self, info: Info, input: CustomerAddressDeleteInput
    ) -> CustomerAddressDeletePayload:
        viewer = await info.context.require_viewer()
        deleted = await info.context.address_book.delete(viewer.id, address_id_or_none(input.id))
        return CustomerAddressDeletePayload(
            deleted_customer_address_id=address_gid(deleted), user_errors=[]
        )

    @strawberry.mutation(description="Make a saved address the default.")
    @refusals_as(CustomerDefaultAddressUpdatePayload)
    async def customer_default_address_update(
        self, info: Info, input: CustomerDefaultAddressUpdateInput
    ) -> CustomerDefaultAddressUpdatePayload:
        viewer = await info.context.require_viewer()
        await info.context.address_book.set_default(viewer.id, address_id_or_none(input.id))
        return CustomerDefaultAddressUpdatePayload(customer=Customer.of(viewer), user_errors=[])


def _address(given: MailingAddressInput) -> MailingAddress:
    return MailingAddress(**dataclasses.asdict(given))
