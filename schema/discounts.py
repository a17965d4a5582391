"""Discounts as staff see and edit them: the Discount node, its inputs and payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import discounts
from domain.money import Money as DomainMoney
from domain.pagination import Page
from schema.common import Money, Node, PageInfo
from schema.errors import UserError
from schema.global_id import encode_gid

# Registered in place (see schema/catalog.py's ProductStatus): the domain classes.
strawberry.enum(
    discounts.DiscountKind,
    name="DiscountValueType",
    description="What a discount takes off: a percentage, a fixed amount, or the shipping.",
)
strawberry.enum(
    discounts.DiscountScope,
    description="What a discount applies to: the whole order, some products, or the "
    "products of some categories (a category covers its descendants).",
)
DiscountValueType = discounts.DiscountKind
DiscountScope = discounts.DiscountScope


@strawberry.type(description="Staff: a discount code or an automatic discount.")
class Discount(Node):
    title: str = strawberry.field(description="What carts and orders show the discount as.")
    code: str | None = strawberry.field(
        description="The code shoppers enter (upper case; case-insensitive when entered); "
        "null for an automatic discount."
    )
    automatic: bool = strawberry.field(description="Applies without a code to every cart it fits.")
    value_type: DiscountValueType
    percentage: int | None = strawberry.field(
        description="In basis points (1000 = 10%); null unless valueType is PERCENTAGE."
    )
    amount: Money | None = strawberry.field(
        description="Off each line in scope once (or off the order); null unless valueType "
        "is FIXED_AMOUNT."
    )
    scope: DiscountScope
    product_ids: list[strawberry.ID] = strawberry.field(
        description="The products a PRODUCTS discount covers (Product ids)."
    )
    category_ids: list[strawberry.ID] = strawberry.field(
        description="The categories a CATEGORIES discount covers, with their descendants."
    )
    minimum_subtotal: Money | None = strawberry.field(
        description="The cart subtotal, before any discount, it needs; null: none."
    )
    starts_at: datetime | None = strawberry.field(
        description="In force from this moment (inclusive); null: already."
    )
    ends_at: datetime | None = strawberry.field(
        description="No longer in force from this moment (exclusive); null: never ends."
    )
    usage_limit: int | None = strawberry.field(
        description="How many orders may use it in all; null: no limit."
    )
    times_used: int = strawberry.field(
        description="Orders that used it (given back when an order's payment fails)."
    )
    once_per_customer: bool = strawberry.field(
        description="One use per customer account or guest email."
    )
    active: bool = strawberry.field(description="False once deactivated.")

    @classmethod
    def of(cls, discount: discounts.Discount, currency_code: str) -> Discount:
        def money(amount: int | None) -> Money | None:
            return None if amount is None else Money.of(DomainMoney(amount, currency_code))

        value = discount.value
        return cls(
            id=discount_gid(discount.id),
            title=discount.title,
            code=discount.code,
            automatic=discount.automatic,
            value_type=value.kind,
            percentage=value.amount if value.kind is DiscountValueType.PERCENTAGE else None,
            amount=money(value.amount) if value.kind is DiscountValueType.FIXED_AMOUNT else None,
            scope=discount.scope,
            product_ids=[
                strawberry.ID(encode_gid("Product", i)) for i in sorted(discount.product_ids)
            ],
            category_ids=[
                strawberry.ID(encode_gid("Category", i)) for i in sorted(discount.category_ids)
            ],
            minimum_subtotal=money(discount.minimum_subtotal),
            starts_at=discount.starts_at,
            ends_at=discount.ends_at,
            usage_limit=discount.usage_limit,
            times_used=discount.times_used,
            once_per_customer=discount.once_per_customer,
            active=discount.active,
        )


def discount_gid(discount_id: int) -> strawberry.ID:
    return strawberry.ID(encode_gid("Discount", discount_id))


@strawberry.type
class DiscountEdge:
    cursor: str
    node: Discount


@strawberry.type
class DiscountConnection:
    edges: list[DiscountEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[discounts.Discount], currency_code: str) -> DiscountConnection:
        return cls(
            edges=[
                DiscountEdge(cursor=e.cursor, node=Discount.of(e.node, currency_code))
                for e in page.edges
            ],
            page_info=PageInfo.of(page),
        )


@strawberry.input
class DiscountInput:
    title: str = strawberry.field(description='1 to 200 characters, e.g. "Summer sale".')
    code: str | None = strawberry.field(
        default=None,
        description="Letters, digits, - and _, at most 64; stored upper case. Null or left "
        "out: an automatic discount.",
    )
    value_type: DiscountValueType
    basis_points: int | None = strawberry.field(
        default=None, description="PERCENTAGE only: 1 to 10000 (1000 = 10%)."
    )
    amount: str | None = strawberry.field(
        default=None,
        description='FIXED_AMOUNT only: a decimal string in the store currency, e.g. "5.00".',
    )
    scope: DiscountScope = DiscountScope.ORDER
    product_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Scope PRODUCTS: 1 to 100 Product ids."
    )
    category_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Scope CATEGORIES: 1 to 100 Category ids."
    )
    minimum_subtotal: str | None = strawberry.field(
        default=None, description='A decimal string, 0 or more, e.g. "50.00".'
    )
    starts_at: datetime | None = strawberry.field(
        default=None, description="With a UTC offset; before endsAt."
    )
    ends_at: datetime | None = strawberry.field(default=None, description="With a UTC offset.")
    usage_limit: int | None = strawberry.field(default=None, description="1 to 1000000000.")
    once_per_customer: bool = False


@strawberry.input(
    description="Fields left out keep their values; null clears a nullable one. A kept "
    "value that no longer fits a new valueType or scope is dropped."
)
class DiscountUpdateInput:
    id: strawberry.ID
    title: str | None = None
    code: str | None = strawberry.field(
        default=strawberry.UNSET, description="Null makes the discount automatic."
    )
    value_type: DiscountValueType | None = None
    basis_points: int | None = None
    amount: str | None = None
    scope: DiscountScope | None = None
    product_ids: list[strawberry.ID] | None = None
    category_ids: list[strawberry.ID] | None = None
    minimum_subtotal: str | None = strawberry.field(default=strawberry.UNSET)
    starts_at: datetime | None = strawberry.field(default=strawberry.UNSET)
    ends_at: datetime | None = strawberry.field(default=strawberry.UNSET)
    usage_limit: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Never below timesUsed; null removes the limit.",
    )
    once_per_customer: bool | None = None
    active: bool | None = strawberry.field(
        default=None, description="True reactivates a deactivated discount."
    )


@strawberry.input
class DiscountDeactivateInput:
    id: strawberry.ID


@strawberry.type
class DiscountPayload:
    discount: Discount | None
    user_errors: list[UserError]
