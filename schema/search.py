"""Search types: the connection of matching products, its total and its facets."""

from __future__ import annotations

from enum import Enum

import strawberry

from domain import search
from schema.catalog import ProductEdge
from schema.common import PageInfo


@strawberry.enum(description="Orderings for search results; RELEVANCE is best match first.")
class SearchSortKey(Enum):
    RELEVANCE = "RELEVANCE"
    TITLE = "TITLE"
    PRICE = "PRICE"
    CREATED_AT = "CREATED_AT"
    RATING = "RATING"


@strawberry.type(description="One value of a facet and how many results have it.")
class FacetValue:
    value: str = strawberry.field(description="What to put in the filter to choose it.")
    label: str
    count: int = strawberry.field(
        description="Results with this value under the query and every other filter."
    )


@strawberry.type(
    description="A way to narrow the results: category, brand, price, inStock or "
    "attribute:<name>. Counts leave out the facet's own filter."
)
class SearchFacet:
    name: str
    label: str
    values: list[FacetValue]

    @classmethod
    def of(cls, facet: search.SearchFacet) -> SearchFacet:
        return cls(
            name=facet.name,
            label=facet.label,
            values=[FacetValue(value=v.value, label=v.label, count=v.count) for v in facet.values],
        )


@strawberry.type(description="A page of products matching a search.")
class SearchConnection:
    edges: list[ProductEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Results under the query and filters.")
    facets: list[SearchFacet]
