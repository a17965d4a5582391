"""Product search: what the storefront asks and what an index must answer.

Adapters (PostgreSQL full-text, SQLite for the embedded mode, Elasticsearch) implement
`SearchIndex`; the search indexer consumer keeps them current through `index_products`.
Every adapter answers the same `SearchRequest` with the same `SearchResult` shape, and
the same facet semantics:

- a facet's counts are taken under the query text and every filter *except the facet's
  own* (choosing a brand does not hide the other brands' counts);
- `category`: one value per category slug; a product counts for its own category and
  every ancestor (a document's `category_slugs`), so a parent's count includes its
  subtree, and the `category_slug` filter matches the whole subtree;
- `brand`: one value per brand; `inStock`: values "true" / "false";
- `price`: the fixed `PRICE_BUCKETS` over a product's lowest price (empty buckets left out);
- `attribute:<name>`: one facet per attribute name, one value per attribute value.
Values are ordered by count (descending), then value; facets with no values are left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from domain.catalog import ProductFilter
from domain.errors import ErrorCode, InvalidInput

MAX_QUERY_LENGTH = 200
DEFAULT_PAGE_SIZE = 20
MAX_FACET_VALUES = 50

# Lower bounds (inclusive) and upper bounds (exclusive) in minor units; None is open.
PRICE_BUCKETS: tuple[tuple[int | None, int | None], ...] = (
    (None, 2_500),
    (2_500, 5_000),
    (5_000, 10_000),
    (10_000, 25_000),
    (25_000, 50_000),
    (50_000, None),
)


class SearchSortKey(StrEnum):
    RELEVANCE = "RELEVANCE"
    TITLE = "TITLE"
    PRICE = "PRICE"
    CREATED_AT = "CREATED_AT"
    RATING = "RATING"


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """One product as every index sees it (archived and draft products have none)."""

    product_id: int
    slug: str
    title: str
    brand: str
    description: str
    category_slugs: tuple[str, ...]  # own category first, then its ancestors
    category_names: tuple[str, ...]  # in the same order
    attributes: tuple[tuple[str, str], ...]  # (name, value) pairs
    price_min: int
    price_max: int
    in_stock: bool
    rating: float
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SearchRequest:
    text: str  # the shopper's words, trimmed; empty lists everything the filter lets through
    filter: ProductFilter = field(default_factory=ProductFilter)
    sort_key: SearchSortKey = SearchSortKey.RELEVANCE
    reverse: bool = False
    first: int = DEFAULT_PAGE_SIZE
    after: str | None = None  # a cursor an earlier result of the same index produced
    with_facets: bool = True  # only computed when the client selected them
    with_total: bool = True


@dataclass(frozen=True, slots=True)
class FacetValue:
    value: str
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class SearchFacet:
    name: str
    label: str
    values: tuple[FacetValue, ...]


@dataclass(frozen=True, slots=True)
class SearchHit:
    product_id: int
    cursor: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: tuple[SearchHit, ...]
    has_next_page: bool
    total_count: int
    facets: tuple[SearchFacet, ...]
    engine: str  # "postgres", "sqlite" or "elasticsearch": who answered
    # Set when the configured engine failed and another answered instead (and why).
    fallback_reason: str | None = None


class SearchIndexWriter(Protocol):
    """Keeps an index in step with the catalog (the search indexer consumer calls it)."""

    async def index_products(self, product_ids: Sequence[int]) -> int:
        """(Re)index these products from the catalog as it is now; archived or deleted
        ones leave the index. Idempotent: indexing twice changes nothing. Returns how
        many documents changed (an index that cannot tell returns how many it wrote)."""
        ...


class SearchIndex(SearchIndexWriter, Protocol):
    engine: str

    async def search(self, request: SearchRequest) -> SearchResult:
        """A bad cursor raises `domain.errors.InvalidInput` (code INVALID_CURSOR); an
        engine that is down or too slow raises `SearchUnavailable`."""
        ...

    async def rebuild(self) -> int:
        """Index the whole catalog from scratch; returns the number of documents."""
        ...


class SearchUnavailable(Exception):
    """The engine could not answer (down, timed out, refused): a fallback may."""


# -- shared by every adapter and the API edge ---------------------------------------------

FACET_CATEGORY = "category"
FACET_BRAND = "brand"
FACET_PRICE = "price"
FACET_IN_STOCK = "inStock"
ATTRIBUTE_FACET_PREFIX = "attribute:"
_FIXED_FACETS = {
    FACET_CATEGORY: "Category",
    FACET_BRAND: "Brand",
    FACET_PRICE: "Price",
    FACET_IN_STOCK: "Availability",
}


def search_request(
    *,
    text: str,
    filter: ProductFilter,
    sort_key: SearchSortKey,
    reverse: bool,
    first: int | None,
    after: str | None,
    with_facets: bool,
    with_total: bool,
    max_size: int,
) -> SearchRequest:
    """A validated request; the cursor is checked by the index that made it."""
    text = " ".join(text.split())
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidInput(f"query must be at most {MAX_QUERY_LENGTH} characters", field="query")
    first = DEFAULT_PAGE_SIZE if first is None else first
    if first < 0 or first > max_size:
        raise InvalidInput(
            f"first must be between 0 and {max_size}",
            code=ErrorCode.INVALID_PAGE_SIZE,
            field="first",
        )
    return SearchRequest(
        text=text,
        filter=filter,
        sort_key=sort_key,
        reverse=reverse,
        first=first,
        after=after,
        with_facets=with_facets,
        with_total=with_total,
    )


def price_bucket_value(bucket: tuple[int | None, int | None]) -> str:
    """The value of a bucket: "*-2500", "2500-5000", "50000-*" (minor units, ES-style)."""
    low, high = bucket
    return f"{'*' if low is None else low}-{'*' if high is None else high}"


def price_bucket_label(bucket: tuple[int | None, int | None]) -> str:
    low, high = bucket
    if low is None:
        return f"Under {_major(high)}"
    if high is None:
        return f"{_major(low)} and above"
    return f"{_major(low)} to {_major(high)}"


def _major(minor: int | None) -> str:
    return f"{(minor or 0) // 100:,}"


def price_bucket_of(price: int) -> tuple[int | None, int | None]:
    for bucket in PRICE_BUCKETS:
        low, high = bucket
        if (low is None or price >= low) and (high is None or price < high):
            return bucket
    raise AssertionError("PRICE_BUCKETS cover every price")


@dataclass(frozen=True, slots=True)
class FacetCount:
    """One (facet, value) count as an index aggregates it, before ordering and labels."""

    facet: str  # "category", "brand", "price", "inStock" or "attribute:<name>"
    value: str
    count: int
    label: str = ""


def assemble_facets(counts: Sequence[FacetCount]) -> tuple[SearchFacet, ...]:
    """Counts into facets in a fixed order (category, brand, price, inStock, then
    attributes by name); values by count descending, then value; at most
    MAX_FACET_VALUES each; empty facets and zero counts left out."""
    grouped: dict[str, list[FacetCount]] = {}
    for count in counts:
        if count.count > 0:
            grouped.setdefault(count.facet, []).append(count)
    fixed = [name for name in _FIXED_FACETS if name in grouped]
    attributes = sorted(name for name in grouped if name.startswith(ATTRIBUTE_FACET_PREFIX))
    facets = []
    for name in fixed + attributes:
        values = sorted(grouped[name], key=lambda c: (-c.count, c.value))[:MAX_FACET_VALUES]
        label = _FIXED_FACETS.get(name) or name.removeprefix(ATTRIBUTE_FACET_PREFIX)
        facets.append(
            SearchFacet(
                name=name,
                label=label,
                values=tuple(
                    FacetValue(value=c.value, label=_value_label(name, c), count=c.count)
                    for c in values
                ),
            )
        )
    return tuple(facets)


def _value_label(facet: str, count: FacetCount) -> str:
    if facet == FACET_PRICE:
        for bucket in PRICE_BUCKETS:
            if price_bucket_value(bucket) == count.value:
                return price_bucket_label(bucket)
    if facet == FACET_IN_STOCK:
        return "In stock" if count.value == "true" else "Out of stock"
    return count.label or count.value


def search_words(text: str) -> list[str]:
    """The shopper's words, lower-cased, letters and digits only (safe in any query syntax)."""
    return re.findall(r"[^\W_]+", text.lower())
