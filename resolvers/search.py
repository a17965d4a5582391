"""The `search` root field: the configured index finds ids, the loaders build products."""

from __future__ import annotations

import dataclasses

import strawberry

from domain import catalog
from domain.errors import DomainError, ServiceUnavailable
from domain.listing import build_filter
from domain.pagination import Edge, Page
from domain.search import (
    SearchIndex,
    SearchRequest,
    SearchResult,
    SearchUnavailable,
    search_request,
)
from domain.search import SearchSortKey as DomainSortKey
from schema.catalog import ProductEdge, build_products, in_connection
from schema.catalog_inputs import ProductFilter, filter_input
from schema.common import PageInfo
from schema.context import Info
from schema.degradation import DegradedReason, degrade, response_paths
from schema.search import SearchConnection, SearchFacet, SearchSortKey
from schema.selection import selected_names


@strawberry.type
class SearchQuery:
    @strawberry.field(
        description="Products matching the shopper's words (typos and prefixes forgiven), "
        "with facets; `first` at most 100, `query` at most 200 characters."
    )
    async def search(
        self,
        info: Info,
        query: str,
        first: int | None = 20,
        after: str | None = None,
        filter: ProductFilter | None = None,
        sort_key: SearchSortKey = SearchSortKey.RELEVANCE,
        reverse: bool = False,
    ) -> SearchConnection:
        settings = info.context.settings
        selection = selected_names(info)
        request = search_request(
            text=query,
            filter=build_filter(
                None if filter is None else filter_input(filter), settings.currency_code
            ),
            sort_key=DomainSortKey(sort_key.value),
            reverse=reverse,
            first=first,
            after=after,
            with_facets="facets" in selection,
            with_total="totalCount" in selection,
            max_size=settings.max_page_size,
        )
        index = info.context.search
        if index is None:
            raise ServiceUnavailable("search is not configured")
        try:
            result = await _results(info, index, request)
        except SearchUnavailable:
            raise ServiceUnavailable("search is unavailable; try again shortly") from None
        info.context.state.search_report = {
            "engine": result.engine,
            "fallbackReason": result.fallback_reason,
        }
        records = await info.context.loaders.product_by_id.load_many(
            [hit.product_id for hit in result.hits]
        )
        # A product archived since it was indexed is left out until the indexer catches up.
        found = [
            (hit, record)
            for hit, record in zip(result.hits, records, strict=True)
            if record is not None and record.is_visible
        ]
        page: Page[catalog.Product] = Page(
            edges=[Edge(cursor=hit.cursor, node=record) for hit, record in found],
            has_next_page=result.has_next_page,
            has_previous_page=after is not None,
        )
        nodes = await build_products(
            info,
            [record for _, record in found],
            selected_names(info, "edges", "node"),
            in_connection,
        )
        return SearchConnection(
            edges=[
                ProductEdge(cursor=e.cursor, node=n) for e, n in zip(page.edges, nodes, strict=True)
            ],
            page_info=PageInfo.of(page),
            total_count=result.total_count,
            facets=[SearchFacet.of(f) for f in result.facets],
        )


async def _results(info: Info, index: SearchIndex, request: SearchRequest) -> SearchResult:
    """The index's answer; when it fails with facets asked for, the answer without them.

    Facets are optional and the costly part of a search (counts over every match), so
    a search that times out or breaks while faceting is asked once more without them.
    A client mistake (a bad cursor) is not retried, nor is an index that cannot answer
    at all reported as degraded: the second failure is the search's error.
    """
    try:
        return await index.search(request)
    except Exception as error:
        if not request.with_facets or isinstance(error, DomainError):
            raise
        failure = error
    result = await index.search(dataclasses.replace(request, with_facets=False))
    degrade(info, failure, DegradedReason.FACETS_UNAVAILABLE, response_paths(info, ["facets"]))
    return result
