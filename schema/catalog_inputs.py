"""Catalog inputs: product filters and sort keys, review input, and their conversion to
the domain's list query (shared by the listing, categories and search)."""

from __future__ import annotations

from enum import Enum

import strawberry

from domain import catalog
from domain.listing import ProductFilterInput, ProductListQuery, product_list_query
from schema.context import Info


@strawberry.enum(description="Orderings for product lists; `reverse: true` flips them.")
class ProductSortKeys(Enum):
    ID = "ID"
    TITLE = "TITLE"
    PRICE = "PRICE"
    CREATED_AT = "CREATED_AT"
    RATING = "RATING"


@strawberry.input(description="Products having one of these values for the attribute.")
class AttributeFilterInput:
    name: str
    values: list[str]


@strawberry.input(description="Narrows a product list; all given conditions must hold.")
class ProductFilter:
    category: str | None = strawberry.field(
        default=None, description="A category slug; includes its descendants."
    )
    brands: list[str] | None = None
    price_min: str | None = strawberry.field(
        default=None, description='Decimal string, e.g. "10.00".'
    )
    price_max: str | None = strawberry.field(
        default=None, description='Decimal string, e.g. "99.99".'
    )
    in_stock: bool | None = None
    attributes: list[AttributeFilterInput] | None = None


def list_query(
    info: Info,
    first: int | None,
    after: str | None,
    filter: ProductFilter | None,
    sort_key: ProductSortKeys,
    reverse: bool,
) -> ProductListQuery:
    settings = info.context.settings
    return product_list_query(
        raw_filter=None if filter is None else filter_input(filter),
        sort_key=catalog.ProductSortKey(sort_key.value),
        reverse=reverse,
        first=first,
        after=after,
        currency_code=settings.currency_code,
        max_size=settings.max_page_size,
    )


def filter_input(value: ProductFilter) -> ProductFilterInput:
    """The GraphQL filter as the domain's raw input (the listing's and search's)."""
    return ProductFilterInput(
        category=value.category,
        brands=value.brands,
        price_min=value.price_min,
        price_max=value.price_max,
        in_stock=value.in_stock,
        attributes=[(a.name, a.values) for a in value.attributes or ()],
    )
