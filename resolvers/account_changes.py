"""A customer's account changes: customerUpdate, customerRecover, customerReset,
customerEmailVerify, customerDelete."""

from __future__ import annotations

import strawberry

from domain.account_changes import ProfileChanges
from domain.errors import UnauthenticatedError
from schema.account_changes import (
    CustomerDeleteInput,
    CustomerDeletePayload,
    CustomerEmailVerifyInput,
    CustomerEmailVerifyPayload,
    CustomerRecoverInput,
    CustomerRecoverPayload,
    CustomerResetInput,
    CustomerResetPayload,
    CustomerUpdateInput,
    CustomerUpdatePayload,
)
from schema.context import Info
from schema.customers import Customer, CustomerAccessToken
from schema.global_id import encode_gid
from schema.refusals import refusals_as


@strawberry.type
class AccountChangeMutation:
    @strawberry.mutation(
        description="Change the signed-in customer's name, email or password; email and "
        "password need currentPassword (INVALID_CREDENTIALS, THROTTLED like logins)."
    )
    @refusals_as(CustomerUpdatePayload)
    async def customer_update(
        self, info: Info, input: CustomerUpdateInput
    ) -> CustomerUpdatePayload:
        context = info.context
        viewer = await context.require_viewer()
        token = context.access_token
        if token is None:  # require_viewer had one; this tells mypy
            raise UnauthenticatedError()
        changes = ProfileChanges(input.name, input.email, input.password, input.current_password)
        customer = await context.account_changes.update(
            viewer, token, context.client_address, changes
        )
        return CustomerUpdatePayload(
            customer=Customer.of(customer), customer_access_token=None, user_errors=[]
        )

    @strawberry.mutation(
        description="Mail a password reset code to the address, if it has an account. The "
        "answer is the same either way."
    )
    @refusals_as(CustomerRecoverPayload)
    async def customer_recover(
        self, info: Info, input: CustomerRecoverInput
    ) -> CustomerRecoverPayload:
        context = info.context
        await context.account_changes.recover(input.email, context.client_address)
        return CustomerRecoverPayload(user_errors=[])

    @strawberry.mutation(
        description="A new password from a reset code (single use, INVALID_TOKEN once "
        "used or expired); ends every access token and returns a new one."
    )
    @refusals_as(CustomerResetPayload)
    async def customer_reset(self, info: Info, input: CustomerResetInput) -> CustomerResetPayload:
        customer, token = await info.context.account_changes.reset(input.token, input.password)
        return CustomerResetPayload(
            customer=Customer.of(customer),
            customer_access_token=CustomerAccessToken(
                access_token=token.token, expires_at=token.expires_at
            ),
            user_errors=[],
        )

    @strawberry.mutation(description="Prove an email with the code mailed to it.")
    @refusals_as(CustomerEmailVerifyPayload)
    async def customer_email_verify(
        self, info: Info, input: CustomerEmailVerifyInput
    ) -> CustomerEmailVerifyPayload:
        customer = await info.context.account_changes.verify_email(input.token)
        return CustomerEmailVerifyPayload(customer=Customer.of(customer), user_errors=[])

    @strawberry.mutation(
        description="Erase the signed-in customer's account: personal data and access "
        "tokens go; orders stay, without the personal data."
    )
    @refusals_as(CustomerDeletePayload)
    async def customer_delete(
        self, info: Info, input: CustomerDeleteInput
    ) -> CustomerDeletePayload:
        context = info.context
        viewer = await context.require_viewer()
        await context.account_changes.confirm_password(
            viewer, input.current_password, context.client_address
        )
        await context.erasure.erase(viewer.id)
        return CustomerDeletePayload(
            deleted_customer_id=strawberry.ID(encode_gid("Customer", viewer.id)), user_errors=[]
        )
