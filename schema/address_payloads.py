"""What the address book mutations answer: the address and its customer, or userErrors."""

from __future__ import annotations

import strawberry

from schema.addresses import CustomerAddress
from schema.customers import Customer
from schema.errors import UserError


@strawberry.type
class CustomerAddressPayload:
    customer_address: CustomerAddress | None
    customer: Customer | None
    user_errors: list[UserError]


@strawberry.type
class CustomerAddressDeletePayload:
    deleted_customer_address_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type
class CustomerDefaultAddressUpdatePayload:
    customer: Customer | None
    user_errors: list[UserError]
