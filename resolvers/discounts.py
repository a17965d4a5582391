"""Staff create, change, deactivate and list discounts. A guest gets UNAUTHENTICATED, a
customer FORBIDDEN, both before anything is read or written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import strawberry

from domain import discounts
from domain.catalog_admin import ensure_staff
from domain.customers import Customer
from domain.discount_desk import (
    KEEP,
    SCOPE_IDS_MAX,
    DiscountAdmin,
    DiscountChanges,
    DiscountDraft,
    Unchanged,
    discounts_page_request,
)
from schema.context import Info
from schema.discounts import (
    Discount,
    DiscountConnection,
    DiscountDeactivateInput,
    DiscountInput,
    DiscountPayload,
    DiscountUpdateInput,
)
from schema.global_id import int_gid_or_none
from schema.refusals import refusals_as

V = TypeVar("V")


@strawberry.type
class DiscountQuery:
    @strawberry.field(description="Staff: every discount, newest first; `first` at most 100.")
    async def discounts(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> DiscountConnection:
        staff, admin = await _staff(info)
        request = discounts_page_request(first, after, info.context.settings.max_page_size)
        page = await admin.page(staff, request)
        return DiscountConnection.of(page, info.context.settings.currency_code)


@strawberry.type
class DiscountMutation:
    @strawberry.mutation(
        description="Staff: a new discount: a code shoppers enter, or (without a code) an "
        "automatic discount every cart it fits gets."
    )
    @refusals_as(DiscountPayload)
    async def discount_create(self, info: Info, input: DiscountInput) -> DiscountPayload:
        staff, admin = await _staff(info)
        draft = DiscountDraft(
            title=input.title,
            code=input.code,
            value_type=input.value_type,
            basis_points=input.basis_points,
            amount=input.amount,
            scope=input.scope,
            product_ids=_ids(input.product_ids, "Product"),
            category_ids=_ids(input.category_ids, "Category"),
            minimum_subtotal=input.minimum_subtotal,
            starts_at=input.starts_at,
            ends_at=input.ends_at,
            usage_limit=input.usage_limit,
            once_per_customer=input.once_per_customer,
        )
        return _payload(info, await admin.create(staff, draft))

    @strawberry.mutation(
        description="Staff: change a discount; carts see it on their next read. Its count "
        "of uses is never changed here."
    )
    @refusals_as(DiscountPayload)
    async def discount_update(self, info: Info, input: DiscountUpdateInput) -> DiscountPayload:
        staff, admin = await _staff(info)
        changes = DiscountChanges(
            title=input.title,
            code=_unset(input.code),
            value_type=input.value_type,
            basis_points=input.basis_points,
            amount=input.amount,
            scope=input.scope,
            product_ids=None if input.product_ids is None else _ids(input.product_ids, "Product"),
            category_ids=None
            if input.category_ids is None
            else _ids(input.category_ids, "Category"),
            minimum_subtotal=_unset(input.minimum_subtotal),
            starts_at=_unset(input.starts_at),
            ends_at=_unset(input.ends_at),
            usage_limit=_unset(input.usage_limit),
            once_per_customer=input.once_per_customer,
            active=input.active,
        )
        discount = await admin.update(staff, int_gid_or_none(input.id, "Discount"), changes)
        return _payload(info, discount)

    @strawberry.mutation(
        description="Staff: a deactivated discount no longer applies; carts drop it on "
        "their next read, orders keep what it took off. discountUpdate(active: true) "
        "brings it back."
    )
    @refusals_as(DiscountPayload)
    async def discount_deactivate(
        self, info: Info, input: DiscountDeactivateInput
    ) -> DiscountPayload:
        staff, admin = await _staff(info)
        discount = await admin.deactivate(staff, int_gid_or_none(input.id, "Discount"))
        return _payload(info, discount)


async def _staff(info: Info) -> tuple[Customer, DiscountAdmin]:
    return ensure_staff(await info.context.require_viewer()), info.context.discount_admin


def _payload(info: Info, discount: discounts.Discount) -> DiscountPayload:
    return DiscountPayload(
        discount=Discount.of(discount, info.context.settings.currency_code), user_errors=[]
    )


def _ids(values: Sequence[strawberry.ID] | None, type_name: str) -> list[int | None]:
    """Decoded keys; None for a string that is not an id of `type_name` (the admin reports
    it as not found, at its index). A list past the limit is not decoded: its length is
    all the admin needs to refuse it."""
    values = values or ()
    if len(values) > SCOPE_IDS_MAX:
        return [None] * (SCOPE_IDS_MAX + 1)
    return [int_gid_or_none(value, type_name) for value in values]


def _unset(value: V | None) -> V | Unchanged | None:
    return KEEP if value is strawberry.UNSET else value
