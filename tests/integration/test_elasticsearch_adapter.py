"""The Elasticsearch adapter through the real `AsyncElasticsearch` client, against a local
fake cluster: failures become `SearchUnavailable` fast (and a fallback answers), a real
response shape is parsed end to end, bulk writes and the alias switch reach the cluster."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from elasticsearch import AsyncElasticsearch

from domain.catalog import ProductFilter
from domain.errors import ErrorCode, InvalidInput
from domain.search import (
    FacetValue,
    SearchFacet,
    SearchRequest,
    SearchUnavailable,
)
from domain.search_fallback import FallbackSearchIndex
from persistence.search.elasticsearch import ElasticsearchSearchIndex, create_elasticsearch_index
from persistence.search.elasticsearch_queries import build_search_body, index_definition
from settings import Settings
from tests.fakes.document_source import DocumentCatalog, search_document
from tests.fakes.elasticsearch_server import ElasticsearchFake, running_elasticsearch_fake
from tests.fakes.search_index import FakeSearchIndex

TIMEOUT = 0.2
US = "\u001f"


@pytest.fixture
def cluster() -> Iterator[ElasticsearchFake]:
    with running_elasticsearch_fake() as fake:
        yield fake


def adapter_for(url: str, catalog: DocumentCatalog | None = None) -> ElasticsearchSearchIndex:
    client = AsyncElasticsearch(url, request_timeout=TIMEOUT, max_retries=0)
    return ElasticsearchSearchIndex(client, catalog or DocumentCatalog(), timeout_seconds=TIMEOUT)


async def test_an_error_status_is_unavailable_and_the_fallback_answers(
    cluster: ElasticsearchFake,
) -> None:
    cluster.answer_search(
        {"error": {"root_cause": [], "type": "cluster_block_exception"}, "status": 503},
        status=503,
    )
    index = adapter_for(cluster.url)
    try:
        with pytest.raises(SearchUnavailable, match="status 503"):
            await index.search(SearchRequest(text="head"))

        search = FallbackSearchIndex(index, FakeSearchIndex("postgres", {5}), 10.0)
        result = await search.search(SearchRequest(text="head"))
    finally:
        await index.aclose()

    assert result.engine == "postgres"
    assert [h.product_id for h in result.hits] == [5]
    assert result.fallback_reason == "elasticsearch unavailable: status 503"


async def test_a_response_slower_than_the_timeout_is_unavailable_quickly(
    cluster: ElasticsearchFake,
) -> None:
    cluster.answer_search({"hits": {"hits": []}}, delay=1.0)
    index = adapter_for(cluster.url)
    started = time.monotonic()
    try:
        with pytest.raises(SearchUnavailable, match="timeout"):
            await index.search(SearchRequest(text="head"))
    finally:
        await index.aclose()

    assert time.monotonic() - started < 0.8  # the cluster would have taken 1 s


async def test_a_cluster_nobody_listens_on_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    index = adapter_for(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(SearchUnavailable, match="unreachable"):
            await index.search(SearchRequest(text="head"))
    finally:
        await index.aclose()


async def test_a_bad_cursor_is_refused_before_asking_the_cluster(
    cluster: ElasticsearchFake,
) -> None:
    index = adapter_for(cluster.url)
    try:
        with pytest.raises(InvalidInput) as raised:
            await index.search(SearchRequest(text="head", after="bm90LWEtY3Vyc29y"))
    finally:
        await index.aclose()

    assert raised.value.code is ErrorCode.INVALID_CURSOR
    assert cluster.searches() == []


async def test_a_successful_answer_is_parsed_end_to_end(cluster: ElasticsearchFake) -> None:
    cluster.answer_search(
        {
            "took": 4,
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {
                "total": {"value": 3, "relation": "eq"},
                "max_score": None,
                "hits": [
                    {"_index": "products-1", "_id": "12", "_score": 9.1, "sort": [9.1, 12]},
                    {"_index": "products-1", "_id": "3", "_score": 4.2, "sort": [4.2, 3]},
                ],
            },
            "aggregations": {
                "brand": {
                    "doc_count": 3,
                    "values": {
                        "doc_count_error_upper_bound": 0,
                        "sum_other_doc_count": 0,
                        "buckets": [
                            {"key": "Acme", "doc_count": 2},
                            {"key": "Bolt", "doc_count": 1},
                        ],
                    },
                },
                "category": {
                    "doc_count": 3,
                    "values": {"buckets": [{"key": f"audio{US}Audio", "doc_count": 3}]},
                },
                "price": {
                    "doc_count": 2,
                    "values": {
                        "buckets": [
                            {"key": "*-2500", "to": 2500.0, "doc_count": 0},
                            {"key": "2500-5000", "from": 2500.0, "to": 5000.0, "doc_count": 2},
                            {"key": "50000-*", "from": 50000.0, "doc_count": 1},
                        ]
                    },
                },
            },
        }
    )
    index = adapter_for(cluster.url)
    request = SearchRequest(text="headphones", first=1, filter=ProductFilter(brands=("Acme",)))
    try:
        result = await index.search(request)
    finally:
        await index.aclose()

    assert [h.product_id for h in result.hits] == [12]
    assert result.has_next_page is True
    assert result.total_count == 3
    assert result.engine == "elasticsearch"
    assert result.facets == (
        SearchFacet("category", "Category", (FacetValue("audio", "Audio", 3),)),
        SearchFacet(
            "brand", "Brand", (FacetValue("Acme", "Acme", 2), FacetValue("Bolt", "Bolt", 1))
        ),
        # The SQL search's labels; the empty bucket is left out.
        SearchFacet(
            "price",
            "Price",
            (
                FacetValue("2500-5000", "25 to 50", 2),
                FacetValue("50000-*", "500 and above", 1),
            ),
        ),
    )
    # What reached the cluster: the pure body, through the alias.
    assert [r.path for r in cluster.requests] == ["/products/_search"]
    assert cluster.searches() == [build_search_body(request)]


async def test_indexing_creates_the_index_once_writes_documents_and_deletes_the_missing(
    cluster: ElasticsearchFake,
) -> None:
    catalog = DocumentCatalog(
        search_document(1, "Quiet Headphones"), search_document(2, "Loud Speaker")
    )
    index = adapter_for(cluster.url, catalog)
    try:
        await index.index_products([1, 2])
        assert set(cluster.documents("products")) == {"1", "2"}
        assert cluster.documents("products")["1"]["title"] == "Quiet Headphones"

        # Product 2 is archived, product 9 never existed: both leave (a 404 is fine).
        del catalog.docs[2]
        await index.index_products([2, 9, 1])
    finally:
        await index.aclose()

    assert set(cluster.documents("products")) == {"1"}
    assert list(cluster.indexes) == ["products-initial"]
    assert cluster.aliases["products"] == {"products-initial"}
    assert cluster.definitions["products-initial"]["mappings"] == index_definition()["mappings"]


async def test_rebuild_fills_a_new_index_and_moves_the_alias(cluster: ElasticsearchFake) -> None:
    catalog = DocumentCatalog(*(search_document(i, f"Product {i}") for i in range(1, 6)))
    index = adapter_for(cluster.url, catalog)
    try:
        await index.index_products([1])  # the old index, behind the alias
        count = await index.rebuild()
    finally:
        await index.aclose()

    assert count == 5
    (new_index,) = cluster.aliases["products"]
    assert new_index.startswith("products-2")
    assert list(cluster.indexes) == [new_index]  # the old one is gone
    assert set(cluster.documents("products")) == {"1", "2", "3", "4", "5"}
    alias_moves = [r for r in cluster.requests if r.path == "/_aliases"]
    assert len(alias_moves) == 1  # one atomic switch


async def test_the_factory_builds_an_adapter_from_settings(cluster: ElasticsearchFake) -> None:
    settings = Settings(
        elasticsearch_url=cluster.url,
        elasticsearch_index="shop-products",
        elasticsearch_timeout_seconds=TIMEOUT,
    )
    cluster.answer_search({"hits": {"hits": []}}, delay=1.0)
    index = create_elasticsearch_index(settings, DocumentCatalog())
    try:
        with pytest.raises(SearchUnavailable, match="timeout"):
            await index.search(SearchRequest(text="x", with_total=False, with_facets=False))
    finally:
        await index.aclose()

    assert index.engine == "elasticsearch"
    assert [r.path for r in cluster.requests] == ["/shop-products/_search"]
