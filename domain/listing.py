"""Use cases for browsing the catalog: validate what the client asked, then read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.catalog import AttributeFilter, ProductFilter, ProductSortKey
from domain.errors import InvalidInput
from domain.money import parse_amount
from domain.pagination import PageRequest, page_request

MAX_FILTER_VALUES = 100
MAX_ATTRIBUTE_FILTERS = 20


@dataclass(frozen=True, slots=True)
class ProductFilterInput:
    """The filter as the client sent it: prices still decimal strings."""

    category: str | None = None
    brands: Sequence[str] | None = None
    price_min: str | None = None
    price_max: str | None = None
    in_stock: bool | None = None
    attributes: Sequence[tuple[str, Sequence[str]]] = ()


def build_filter(raw: ProductFilterInput | None, currency_code: str) -> ProductFilter:
    if raw is None:
        return ProductFilter()
    if raw.brands is not None and len(raw.brands) > MAX_FILTER_VALUES:
        raise InvalidInput(f"at most {MAX_FILTER_VALUES} brands", field="filter.brands")
    if len(raw.attributes) > MAX_ATTRIBUTE_FILTERS:
        raise InvalidInput(
            f"at most {MAX_ATTRIBUTE_FILTERS} attribute filters", field="filter.attributes"
        )
    attributes = []
    for name, values in raw.attributes:
        if not name.strip():
            raise InvalidInput(
                "attribute filter name must not be empty", field="filter.attributes.name"
            )
        if not values or len(values) > MAX_FILTER_VALUES:
            raise InvalidInput(
                f"attribute filter values must hold 1 to {MAX_FILTER_VALUES} values",
                field="filter.attributes.values",
            )
        attributes.append(AttributeFilter(name=name, values=tuple(values)))
    price_min = (
        None
        if raw.price_min is None
        else parse_amount(raw.price_min, currency_code, field="filter.priceMin")
    )
    price_max = (
        None
        if raw.price_max is None
        else parse_amount(raw.price_max, currency_code, field="filter.priceMax")
    )
    if price_min is not None and price_max is not None and price_min > price_max:
        raise InvalidInput(
            "filter.priceMin must not exceed filter.priceMax", field="filter.priceMin"
        )
    return ProductFilter(
        category_slug=raw.category,
        brands=None if raw.brands is None else tuple(raw.brands),
        price_min=price_min,
        price_max=price_max,
        in_stock=raw.in_stock,
        attributes=tuple(attributes),
    )


def products_page_request(
    sort_key: ProductSortKey, reverse: bool, first: int | None, after: str | None, max_size: int
) -> PageRequest:
    return page_request(
        first, after, ordering=product_ordering(sort_key, reverse), arity=2, max_size=max_size
    )


def product_ordering(sort_key: ProductSortKey, reverse: bool) -> str:
    return f"p:{sort_key.value}:{'desc' if reverse else 'asc'}"


@dataclass(frozen=True, slots=True)
class ProductListQuery:
    """A validated request for a page of products: hashable, so loaders can group by it."""

    product_filter: ProductFilter
    sort_key: ProductSortKey
    reverse: bool
    page: PageRequest


def product_list_query(
    *,
    raw_filter: ProductFilterInput | None,
    sort_key: ProductSortKey,
    reverse: bool,
    first: int | None,
    after: str | None,
    currency_code: str,
    max_size: int,
) -> ProductListQuery:
    return ProductListQuery(
        product_filter=build_filter(raw_filter, currency_code),
        sort_key=sort_key,
        reverse=reverse,
        page=products_page_request(sort_key, reverse, first, after, max_size),
    )


REVIEWS_ORDERING = "r:newest"
ORDERS_ORDERING = "o:newest"
CATEGORIES_ORDERING = "c:id"


def reviews_page_request(first: int | None, after: str | None, max_size: int) -> PageRequest:
    return page_request(first, after, ordering=REVIEWS_ORDERING, arity=2, max_size=max_size)


def orders_page_request(first: int | None, after: str | None, max_size: int) -> PageRequest:
    return page_request(first, after, ordering=ORDERS_ORDERING, arity=2, max_size=max_size)


def categories_page_request(first: int | None, after: str | None, max_size: int) -> PageRequest:
    return page_request(first, after, ordering=CATEGORIES_ORDERING, arity=2, max_size=max_size)


def related_count(first: int | None, max_size: int) -> int:
    return page_request(first, None, ordering="related", arity=2, max_size=max_size).first
