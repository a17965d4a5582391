"""Customer accounts: sign up, log in, log out, `me`."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.customers import (
    Customer,
    CustomerAccessToken,
    CustomerAccessTokenCreateInput,
    CustomerAccessTokenCreatePayload,
    CustomerAccessTokenDeleteInput,
    CustomerAccessTokenDeletePayload,
    CustomerCreateInput,
    CustomerCreatePayload,
)
from schema.refusals import refusals_as


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="The signed-in customer; null without a valid access token.")
    async def me(self, info: Info) -> Customer | None:
        viewer = await info.context.viewer()
        return None if viewer is None else Customer.of(viewer)


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(
        description="Sign up. An email that has an account gives EMAIL_TAKEN. A "
        "verification code is mailed to the address (customerEmailVerify)."
    )
    @refusals_as(CustomerCreatePayload)
    async def customer_create(
        self, info: Info, input: CustomerCreateInput
    ) -> CustomerCreatePayload:
        customer = await info.context.account_changes.register(
            input.email, input.password, input.name
        )
        return CustomerCreatePayload(customer=Customer.of(customer), user_errors=[])

    @strawberry.mutation(description="Log in: an access token valid for 30 days.")
    @refusals_as(CustomerAccessTokenCreatePayload)
    async def customer_access_token_create(
        self, info: Info, input: CustomerAccessTokenCreateInput
    ) -> CustomerAccessTokenCreatePayload:
        context = info.context
        token = await context.accounts.log_in(input.email, input.password, context.client_address)
        return CustomerAccessTokenCreatePayload(
            customer_access_token=CustomerAccessToken(
                access_token=token.token, expires_at=token.expires_at
            ),
            user_errors=[],
        )

    @strawberry.mutation(description="Log out: the token stops working at once.")
    async def customer_access_token_delete(
        self, info: Info, input: CustomerAccessTokenDeleteInput
    ) -> CustomerAccessTokenDeletePayload:
        deleted = await info.context.accounts.log_out(input.access_token)
        return CustomerAccessTokenDeletePayload(
            deleted_access_token=input.access_token if deleted else None, user_errors=[]
        )
