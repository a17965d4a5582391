"""Facet names, labels and values every search index presents the same way.

Pure helpers shared by the adapters, so a shopper sees the same facets whichever engine
answered (a fallback must not rename the price buckets under the shopper's cursor).
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.money import Money
from domain.search import MAX_FACET_VALUES, PRICE_BUCKETS, FacetValue, SearchFacet

CATEGORY = "category"
BRAND = "brand"
PRICE = "price"
IN_STOCK = "inStock"
ATTRIBUTE_PREFIX = "attribute:"

FACET_LABELS = {CATEGORY: "Category", BRAND: "Brand", PRICE: "Price", IN_STOCK: "Availability"}
IN_STOCK_LABELS = {"true": "In stock", "false": "Out of stock"}


def attribute_facet_name(attribute: str) -> str:
    return f"{ATTRIBUTE_PREFIX}{attribute}"


def price_bucket_value(low: int | None, high: int | None) -> str:
    """ "2500-5000" in minor units; an open end is "*" ("*-2500", "50000-*")."""
    return f"{'*' if low is None else low}-{'*' if high is None else high}"


def price_bucket_label(low: int | None, high: int | None, currency_code: str = "USD") -> str:
    def major(amount: int) -> str:
        return Money(amount, currency_code).to_decimal_string()

    if low is None and high is not None:
        return f"Under {major(high)}"
    if high is None and low is not None:
        return f"{major(low)} and over"
    if low is not None and high is not None:
        return f"{major(low)}\u2013{major(high)}"
    return "Any price"


def price_bucket_values() -> tuple[str, ...]:
    return tuple(price_bucket_value(low, high) for low, high in PRICE_BUCKETS)


def facet(name: str, values: Iterable[FacetValue], label: str | None = None) -> SearchFacet | None:
    """A facet with its values ordered by count (descending) then value, empties and
    zero counts dropped, capped at MAX_FACET_VALUES; None when nothing is left."""
    kept = sorted((v for v in values if v.count > 0), key=lambda v: (-v.count, v.value))
    if not kept:
        return None
    if label is None:
        label = FACET_LABELS.get(name, name.removeprefix(ATTRIBUTE_PREFIX))
    return SearchFacet(name=name, label=label, values=tuple(kept[:MAX_FACET_VALUES]))
