"""The shared search contract, run against a real Elasticsearch (`ELASTICSEARCH_URL`).

A small hand-built catalog is indexed into a fresh alias of its own (removed afterwards);
the cases are the ones every `SearchIndex` adapter must pass: weighting, typos, prefixes,
filters with own-filter-free facet counts, and keyset paging.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from elasticsearch import AsyncElasticsearch

from domain.catalog import AttributeFilter, ProductFilter
from domain.search import FacetValue, SearchRequest, SearchResult, SearchSortKey
from persistence.search.elasticsearch import ElasticsearchSearchIndex
from tests.fakes.document_source import DocumentCatalog, search_document

ELASTICSEARCH_URL = os.environ.get("ELASTICSEARCH_URL")
if not ELASTICSEARCH_URL:
    pytest.skip(
        "set ELASTICSEARCH_URL (e.g. http://127.0.0.1:9200) to run the search contract "
        "against a real Elasticsearch",
        allow_module_level=True,
    )

HEADPHONES = ("headphones", "audio")
HEADPHONE_NAMES = ("Headphones", "Audio")
CATALOG = DocumentCatalog(
    search_document(
        1,
        "Studio Headphones",
        brand="Acme",
        description="Closed-back, for long mixing sessions.",
        category_slugs=HEADPHONES,
        category_names=HEADPHONE_NAMES,
        attributes=(("color", "black"),),
        price_min=9_999,
        price_max=12_999,
    ),
    search_document(
        2,
        "Smart Television 55",
        brand="Bolt",
        description="A bright 4K panel.",
        category_slugs=("tv", "video"),
        category_names=("Televisions", "Video"),
        price_min=49_900,
        price_max=49_900,
    ),
    search_document(
        3,
        "Wall Mount",
        brand="Acme",
        description="Holds any television up to 65 inches.",
        category_slugs=("accessories",),
        category_names=("Accessories",),
        price_min=2_999,
        price_max=2_999,
    ),
    search_document(
        4,
        "Wireless Earbuds",
        brand="Zed",
        description="Small and light.",
        category_slugs=HEADPHONES,
        category_names=HEADPHONE_NAMES,
        attributes=(("color", "white"),),
        price_min=7_900,
        price_max=7_900,
    ),
    search_document(
        5,
        "Bluetooth Speaker",
        brand="Bolt",
        description="Loud enough for a garden party.",
        category_slugs=("speakers", "audio"),
        category_names=("Speakers", "Audio"),
        attributes=(("color", "black"),),
        price_min=4_900,
        price_max=4_900,
        in_stock=False,
    ),
)


@pytest.fixture(scope="module")
async def index() -> AsyncIterator[ElasticsearchSearchIndex]:
    assert ELASTICSEARCH_URL is not None
    alias = f"contract-products-{uuid.uuid4().hex[:8]}"
    client = AsyncElasticsearch(ELASTICSEARCH_URL, request_timeout=10, max_retries=0)
    adapter = ElasticsearchSearchIndex(
        client, CATALOG, alias=alias, timeout_seconds=10, refresh=True
    )
    assert await adapter.rebuild() == 5
    yield adapter
    # By name: Elasticsearch refuses wildcard deletes by default.
    behind = await client.indices.get_alias(name=alias)
    await client.indices.delete(index=",".join(behind.body))
    await adapter.aclose()


def ids(result: SearchResult) -> list[int]:
    return [hit.product_id for hit in result.hits]


def facet_values(result: SearchResult, name: str) -> tuple[FacetValue, ...]:
    return next((f.values for f in result.facets if f.name == name), ())


async def test_a_title_match_outranks_a_description_only_match(
    index: ElasticsearchSearchIndex,
) -> None:
    result = await index.search(SearchRequest(text="television"))

    assert ids(result) == [2, 3]
    assert result.total_count == 2
    assert result.engine == "elasticsearch"


async def test_a_typo_still_finds_the_television(index: ElasticsearchSearchIndex) -> None:
    result = await index.search(SearchRequest(text="televsion"))

    assert ids(result)[0] == 2


async def test_the_beginning_of_a_word_finds_it(index: ElasticsearchSearchIndex) -> None:
    result = await index.search(SearchRequest(text="head"))

    assert 1 in ids(result)
    assert 2 not in ids(result)


async def test_a_brand_filter_keeps_the_other_brands_counts(
    index: ElasticsearchSearchIndex,
) -> None:
    result = await index.search(SearchRequest(text="", filter=ProductFilter(brands=("Acme",))))

    assert sorted(ids(result)) == [1, 3]
    assert result.total_count == 2
    assert facet_values(result, "brand") == (
        FacetValue("Acme", "Acme", 2),
        FacetValue("Bolt", "Bolt", 2),
        FacetValue("Zed", "Zed", 1),
    )
    # Other facets count under the brand filter.
    assert facet_values(result, "category") == (
        FacetValue("accessories", "Accessories", 1),
        FacetValue("audio", "Audio", 1),
        FacetValue("headphones", "Headphones", 1),
    )
    assert facet_values(result, "inStock") == (FacetValue("true", "In stock", 2),)


async def test_a_category_filter_matches_its_subtree_and_other_filters_narrow(
    index: ElasticsearchSearchIndex,
) -> None:
    product_filter = ProductFilter(
        category_slug="audio",
        in_stock=True,
        attributes=(AttributeFilter("color", ("black",)),),
    )

    result = await index.search(SearchRequest(text="", filter=product_filter))

    assert ids(result) == [1]
    # The color facet ignores the color filter: under audio + in stock, both colors.
    assert facet_values(result, "attribute:color") == (
        FacetValue("black", "black", 1),
        FacetValue("white", "white", 1),
    )
    assert facet_values(result, "price") == (FacetValue("5000-10000", "50 to 100", 1),)


async def test_a_price_filter_bounds_the_lowest_price_as_the_price_facet_counts(
    index: ElasticsearchSearchIndex,
) -> None:
    # Given 100.00 to 499.99: the headphones (99.99 to 129.99) overlap it, but their
    # lowest price is below it, so they are left out, as in the SQL search.
    product_filter = ProductFilter(price_min=10_000, price_max=49_999)

    result = await index.search(SearchRequest(text="", filter=product_filter))

    assert ids(result) == [2]
    assert result.total_count == 1
    # The price facet ignores its own filter; the buckets inside the range count exactly
    # the products the filter keeps.
    assert facet_values(result, "price") == (
        FacetValue("2500-5000", "25 to 50", 2),
        FacetValue("5000-10000", "50 to 100", 2),
        FacetValue("25000-50000", "250 to 500", 1),
    )


async def test_pages_follow_each_other_without_gaps_or_repeats(
    index: ElasticsearchSearchIndex,
) -> None:
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        result = await index.search(
            SearchRequest(text="", sort_key=SearchSortKey.TITLE, first=2, after=after)
        )
        seen += ids(result)
        pages += 1
        if not result.has_next_page:
            break
        after = result.hits[-1].cursor

    titles = {doc.product_id: doc.title for doc in CATALOG.docs.values()}
    assert seen == sorted(titles, key=lambda pid: titles[pid].lower())
    assert pages == 3


async def test_reindexing_an_archived_product_removes_it(
    index: ElasticsearchSearchIndex,
) -> None:
    archived = CATALOG.docs.pop(3)
    try:
        await index.index_products([3])
        result = await index.search(SearchRequest(text="mount"))
    finally:
        CATALOG.docs[3] = archived
        await index.index_products([3])

    assert ids(result) == []
