"""The address book: saved addresses, their connection, inputs and payloads."""

from __future__ import annotations

import dataclasses

import strawberry

from domain import address_book
from domain.pagination import Page
from schema.carts import MailingAddress, MailingAddressInput
from schema.common import Node, PageInfo
from schema.global_id import encode_gid, int_gid_or_none

ADDRESS_TYPE = "CustomerAddress"


@strawberry.type(
    description="An address in the signed-in customer's address book: a MailingAddress "
    "with an id (only its owner can see it)."
)
class CustomerAddress(MailingAddress, Node):
    is_default: bool = strawberry.field(description="Whether this is the default address.")

    @classmethod
    def of_saved(cls, saved: address_book.CustomerAddress) -> CustomerAddress:
        return cls(
            id=address_gid(saved.id),
            is_default=saved.is_default,
            **dataclasses.asdict(saved.address),
        )


def address_gid(address_id: int) -> strawberry.ID:
    return strawberry.ID(encode_gid(ADDRESS_TYPE, address_id))


def address_id_or_none(value: strawberry.ID) -> int | None:
    """The key of an address id, or None for anything else (answered ADDRESS_NOT_FOUND,
    like an address that is not yours)."""
    return int_gid_or_none(value, ADDRESS_TYPE)


@strawberry.type
class CustomerAddressEdge:
    cursor: str
    node: CustomerAddress


@strawberry.type
class CustomerAddressConnection:
    edges: list[CustomerAddressEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[address_book.CustomerAddress]) -> CustomerAddressConnection:
        return cls(
            edges=[
                CustomerAddressEdge(cursor=e.cursor, node=CustomerAddress.of_saved(e.node))
                for e in page.edges
            ],
            page_info=PageInfo.of(page),
        )


@strawberry.input
class CustomerAddressCreateInput:
    address: MailingAddressInput = strawberry.field(
        description="Checked like a cart's shipping address."
    )
    default: bool | None = strawberry.field(
        default=None, description="Make it the default (the first address always is)."
    )


@strawberry.input
class CustomerAddressUpdateInput:
    id: strawberry.ID
    address: MailingAddressInput = strawberry.field(description="Replaces the whole address.")
    default: bool | None = strawberry.field(
        default=None, description="Make it the default; false or null leaves the default as it is."
    )


@strawberry.input
class CustomerAddressDeleteInput:
    id: strawberry.ID


@strawberry.input
class CustomerDefaultAddressUpdateInput:
    id: strawberry.ID
