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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from domain.catalog import ProductFilter

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

    async def index_products(self, product_ids: Sequence[int]) -> None:
        """(Re)index these products from the catalog as it is now; archived or deleted
        ones leave the index. Idempotent: indexing twice changes nothing."""
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
