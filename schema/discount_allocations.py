"""What discounts took off a cart or an order, and the codes a cart holds."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import strawberry

from domain import discounts
from schema.common import Money
from schema.errors import UserErrorCode


@strawberry.type(description="What one discount takes off (a line, the cart, or an order).")
class DiscountAllocation:
    discounted_amount: Money
    title: str
    code: str | None = strawberry.field(description="Null for an automatic discount.")

    @classmethod
    def each(
        cls, allocations: Iterable[discounts.DiscountAllocation], money: Callable[[int], Money]
    ) -> list[DiscountAllocation]:
        return [
            cls(discounted_amount=money(a.amount), title=a.title, code=a.code) for a in allocations
        ]

    @classmethod
    def per_discount(
        cls, allocations: Iterable[discounts.DiscountAllocation], money: Callable[[int], Money]
    ) -> list[DiscountAllocation]:
        """One per discount (its allocations summed), in the order they first appear."""
        totals: dict[int | None, list[discounts.DiscountAllocation]] = {}
        for allocation in allocations:
            totals.setdefault(allocation.discount_id, []).append(allocation)
        return [
            cls(
                discounted_amount=money(sum(a.amount for a in found)),
                title=found[0].title,
                code=found[0].code,
            )
            for found in totals.values()
        ]


@strawberry.type(description="A discount code entered on a cart, and whether it applies now.")
class CartDiscountCode:
    code: str = strawberry.field(description="As stored: upper case, trimmed.")
    applicable: bool
    reason: UserErrorCode | None = strawberry.field(
        description="Why it does not apply (DISCOUNT_NOT_FOUND, DISCOUNT_NOT_APPLICABLE, "
        "DISCOUNT_EXPIRED, DISCOUNT_EXHAUSTED, DISCOUNT_MINIMUM_NOT_MET); null when it does."
    )


@strawberry.input
class CartDiscountCodesUpdateInput:
    cart_id: strawberry.ID
    discount_codes: list[str] = strawberry.field(
        description="Replaces the cart's codes (at most 5, case-insensitive; [] removes them all)."
    )
