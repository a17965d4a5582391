"""Inputs and payloads of a customer's account changes: profile, password reset, email
verification, deletion."""

from __future__ import annotations

import strawberry

from schema.customers import Customer, CustomerAccessToken
from schema.errors import UserError


@strawberry.input(description="Fields left out stay as they are.")
class CustomerUpdateInput:
    name: str | None = None
    email: str | None = strawberry.field(
        default=None,
        description="Replaces the login email once the token mailed to it is verified "
        "(customerEmailVerify); needs currentPassword. The current, unverified email "
        "again mails a new verification token.",
    )
    password: str | None = strawberry.field(
        default=None,
        description="8 to 256 characters; needs currentPassword. Every other access "
        "token of the customer stops working; the one sent with this request stays.",
    )
    current_password: str | None = None


@strawberry.input
class CustomerRecoverInput:
    email: str


@strawberry.input
class CustomerResetInput:
    token: str = strawberry.field(description="The code from the password reset mail.")
    password: str = strawberry.field(description="8 to 256 characters.")


@strawberry.input
class CustomerEmailVerifyInput:
    token: str = strawberry.field(description="The code from the verification mail.")


@strawberry.input
class CustomerDeleteInput:
    current_password: str


@strawberry.type
class CustomerUpdatePayload:
    customer: Customer | None
    customer_access_token: CustomerAccessToken | None = strawberry.field(
        description="Always null: the access token sent with the request stays valid."
    )
    user_errors: list[UserError]


@strawberry.type
class CustomerRecoverPayload:
    user_errors: list[UserError]


@strawberry.type
class CustomerResetPayload:
    customer: Customer | None
    customer_access_token: CustomerAccessToken | None = strawberry.field(
        description="A new access token; every earlier one has stopped working."
    )
    user_errors: list[UserError]


@strawberry.type
class CustomerEmailVerifyPayload:
    customer: Customer | None
    user_errors: list[UserError]


@strawberry.type
class CustomerDeletePayload:
    deleted_customer_id: strawberry.ID | None
    user_errors: list[UserError]
