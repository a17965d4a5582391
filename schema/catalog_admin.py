"""Inputs and payloads of the staff catalog mutations."""

from __future__ import annotations

import strawberry

from domain import catalog
from schema.catalog import Product, ProductStatus, ProductVariant
from schema.errors import UserError


@strawberry.input(description="A name and value pair describing a product, e.g. material.")
class ProductAttributeInput:
    name: str = strawberry.field(description="1 to 100 characters, unique per product.")
    value: str = strawberry.field(description="At most 500 characters.")


@strawberry.input(description="One option of a variant, e.g. Size: M.")
class SelectedOptionInput:
    name: str = strawberry.field(description="1 to 100 characters, unique per variant.")
    value: str = strawberry.field(description="At most 500 characters.")


@strawberry.input
class ProductCreateInput:
    title: str = strawberry.field(description="1 to 200 characters.")
    slug: str | None = strawberry.field(
        default=None,
        description="Lowercase words joined by hyphens, at most 120 characters; "
        "made from the title when omitted.",
    )
    description: str = strawberry.field(default="", description="At most 20,000 characters.")
    brand: str = strawberry.field(default="", description="At most 120 characters.")
    category_id: strawberry.ID | None = strawberry.field(default=None)
    attributes: list[ProductAttributeInput] = strawberry.field(
        default_factory=list, description="At most 50."
    )
    status: ProductStatus = strawberry.field(
        default=catalog.ProductStatus.DRAFT, description="DRAFT unless given."
    )


@strawberry.input(description="Fields left out keep their values.")
class ProductUpdateInput:
    id: strawberry.ID
    title: str | None = None
    slug: str | None = strawberry.field(
        default=None, description="Changing it breaks links to the old one."
    )
    description: str | None = None
    brand: str | None = None
    category_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="null takes the product out of its category."
    )
    attributes: list[ProductAttributeInput] | None = strawberry.field(
        default=None, description="Replaces all attributes."
    )
    status: ProductStatus | None = None


@strawberry.input
class ProductArchiveInput:
    id: strawberry.ID


@strawberry.input
class VariantCreateInput:
    product_id: strawberry.ID
    sku: str = strawberry.field(description="Unique in the store, at most 64 characters.")
    title: str = strawberry.field(description='1 to 200 characters, e.g. "M / Blue".')
    price: str = strawberry.field(description='Decimal string, more than zero, e.g. "19.99".')
    compare_at_price: str | None = strawberry.field(
        default=None, description="The price before a sale; more than the price."
    )
    options: list[SelectedOptionInput] = strawberry.field(
        default_factory=list, description="At most 5."
    )
    stock: int = strawberry.field(default=0, description="Units available to sell, 0 or more.")


@strawberry.input(description="Fields left out keep their values.")
class VariantUpdateInput:
    id: strawberry.ID
    sku: str | None = None
    title: str | None = None
    price: str | None = strawberry.field(default=None, description='Decimal string, e.g. "19.99".')
    compare_at_price: str | None = strawberry.field(
        default=strawberry.UNSET, description="More than the price; null ends the sale."
    )
    options: list[SelectedOptionInput] | None = strawberry.field(
        default=None, description="Replaces all options."
    )


@strawberry.input(description="Give exactly one of delta and setQuantity.")
class InventoryAdjustInput:
    variant_id: strawberry.ID
    delta: int | None = strawberry.field(
        default=None, description="Units to add (negative to remove); stock never goes below 0."
    )
    set_quantity: int | None = strawberry.field(
        default=None, description="The count after a stocktake, 0 or more."
    )


@strawberry.type
class ProductCreatePayload:
    product: Product | None
    user_errors: list[UserError]


@strawberry.type
class ProductUpdatePayload:
    product: Product | None
    user_errors: list[UserError]


@strawberry.type
class ProductArchivePayload:
    product: Product | None
    user_errors: list[UserError]


@strawberry.type
class VariantCreatePayload:
    variant: ProductVariant | None
    user_errors: list[UserError]


@strawberry.type
class VariantUpdatePayload:
    variant: ProductVariant | None
    user_errors: list[UserError]


@strawberry.type
class InventoryAdjustPayload:
    variant: ProductVariant | None = strawberry.field(
        description="The variant with its new quantityAvailable."
    )
    user_errors: list[UserError]
