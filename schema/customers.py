"""Customer accounts, access tokens and their payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import customers
from domain.address_book import addresses_page_request
from domain.listing import orders_page_request, reviews_page_request
from schema.addresses import CustomerAddress, CustomerAddressConnection
from schema.catalog import ReviewConnection
from schema.common import Node
from schema.context import Info
from schema.errors import UserError
from schema.global_id import encode_gid
from schema.orders import OrderConnection


@strawberry.type(description="A customer account; only its owner can see it.")
class Customer(Node):
    email: str = strawberry.field(
        description="The login email; a new one replaces it only once verified."
    )
    name: str
    email_verified: bool = strawberry.field(
        description="Whether the email was proven with a mailed token. Unverified "
        "accounts may log in and buy; they receive no marketing mail."
    )
    record: strawberry.Private[customers.Customer]

    @classmethod
    def of(cls, record: customers.Customer) -> Customer:
        return cls(
            id=strawberry.ID(encode_gid("Customer", record.id)),
            email=record.email,
            name=record.display_name,
            email_verified=record.email_verified,
            record=record,
        )

    @strawberry.field(description="This customer's orders, newest first.")
    async def orders(
        self, info: Info, first: int | None = 10, after: str | None = None
    ) -> OrderConnection:
        request = orders_page_request(first, after, info.context.settings.max_page_size)
        return OrderConnection.of(await info.context.orders.of_customer(self.record.id, request))

    @strawberry.field(description="This customer's reviews, newest first.")
    async def reviews(
        self, info: Info, first: int | None = 10, after: str | None = None
    ) -> ReviewConnection:
        request = reviews_page_request(first, after, info.context.settings.max_page_size)
        return ReviewConnection.of(await info.context.reviews.of_customer(self.record.id, request))

    @strawberry.field(description="Saved addresses, in the order they were saved (at most 50).")
    async def addresses(
        self, info: Info, first: int | None = 10, after: str | None = None
    ) -> CustomerAddressConnection:
        request = addresses_page_request(first, after, info.context.settings.max_page_size)
        page = await info.context.address_book.page(self.record.id, request)
        return CustomerAddressConnection.of(page)

    @strawberry.field(description="The default address; null when the address book is empty.")
    async def default_address(self, info: Info) -> CustomerAddress | None:
        found = await info.context.address_book.default(self.record.id)
        return None if found is None else CustomerAddress.of_saved(found)


@strawberry.type(description="Send as `Authorization: Bearer <accessToken>`.")
class CustomerAccessToken:
    access_token: str
    expires_at: datetime


@strawberry.input
class CustomerCreateInput:
    email: str
    password: str = strawberry.field(description="8 to 256 characters.")
    name: str


@strawberry.input
class CustomerAccessTokenCreateInput:
    email: str
    password: str


@strawberry.input
class CustomerAccessTokenDeleteInput:
    access_token: str


@strawberry.type
class CustomerCreatePayload:
    customer: Customer | None
    user_errors: list[UserError]


@strawberry.type
class CustomerAccessTokenCreatePayload:
    customer_access_token: CustomerAccessToken | None
    user_errors: list[UserError]


@strawberry.type
class CustomerAccessTokenDeletePayload:
    deleted_access_token: str | None
    user_errors: list[UserError]
