"""Elasticsearch request bodies and response parsing: pure, no cluster needed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.catalog import AttributeFilter, ProductFilter
from domain.errors import ErrorCode, InvalidInput
from domain.pagination import encode_cursor
from domain.search import (
    MAX_FACET_VALUES,
    FacetCount,
    FacetValue,
    SearchDocument,
    SearchFacet,
    SearchRequest,
    SearchSortKey,
    assemble_facets,
)
from persistence.search.elasticsearch_queries import (
    build_search_body,
    document_body,
    index_definition,
    parse_search_response,
)

US = "\u001f"


def clauses_of(bool_query: dict[str, Any]) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = bool_query["bool"]["filter"]
    return clauses


# -- mapping and documents -----------------------------------------------------------


def test_the_mapping_has_prefix_subfields_and_keyword_facets() -> None:
    definition = index_definition()
    fields = definition["mappings"]["properties"]

    assert fields["title"]["analyzer"] == "english"
    assert fields["title"]["fields"]["prefix"] == {
        "type": "text",
        "analyzer": "prefix",
        "search_analyzer": "standard",
    }
    assert fields["brand"]["fields"]["prefix"]["analyzer"] == "prefix"
    assert fields["category_names"]["fields"]["prefix"]["analyzer"] == "prefix"
    prefix = definition["settings"]["analysis"]["analyzer"]["prefix"]
    gram = definition["settings"]["analysis"]["filter"][prefix["filter"][-1]]
    assert gram["type"] == "edge_ngram"
    assert gram["min_gram"] == 2
    for keyword in ("category_slugs", "category_labels", "attr_kv"):
        assert fields[keyword]["type"] == "keyword"
    assert fields["brand"]["fields"]["keyword"]["type"] == "keyword"
    assert fields["in_stock"]["type"] == "boolean"
    assert fields["price_min"]["type"] == fields["price_max"]["type"] == "long"
    assert fields["created_at"]["type"] == "date"
    assert definition["mappings"]["dynamic"] == "strict"


def test_a_document_carries_labels_and_attribute_pairs() -> None:
    doc = SearchDocument(
        product_id=7,
        slug="quiet-headphones",
        title="Quiet Headphones",
        brand="Acme",
        description="Over-ear.",
        category_slugs=("headphones", "audio"),
        category_names=("Headphones", "Audio"),
        attributes=(("color", "black"), ("fit", "over-ear")),
        price_min=4_999,
        price_max=5_999,
        in_stock=True,
        rating=4.5,
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )

    body = document_body(doc)

    assert body["category_labels"] == [f"headphones{US}Headphones", f"audio{US}Audio"]
    assert body["attr_kv"] == [f"color{US}black", f"fit{US}over-ear"]
    assert body["created_at"] == "2026-01-02T03:04:05+00:00"
    assert set(body) == set(index_definition()["mappings"]["properties"])


# -- queries -------------------------------------------------------------------------


def test_text_matches_weighted_fields_with_typos_and_prefixes() -> None:
    body = build_search_body(SearchRequest(text="televsion"))

    should = body["query"]["bool"]["should"]
    fuzzy, across, prefixes = (clause["multi_match"] for clause in should)
    assert body["query"]["bool"]["minimum_should_match"] == 1
    assert fuzzy["query"] == "televsion"
    assert fuzzy["fields"] == ["title^3", "brand^2", "category_names^2", "description"]
    assert fuzzy["fuzziness"] == "AUTO"
    assert across["type"] == "cross_fields"
    assert prefixes["fields"] == ["title.prefix^3", "brand.prefix^2", "category_names.prefix^2"]
    assert prefixes["boost"] < 1


def test_no_text_matches_everything_and_no_filter_filters_nothing() -> None:
    body = build_search_body(SearchRequest(text=""))

    assert body["query"] == {"match_all": {}}
    assert body["post_filter"] == {"bool": {"filter": []}}
    assert "search_after" not in body


def test_size_asks_one_more_than_the_page_and_totals_only_when_wanted() -> None:
    body = build_search_body(SearchRequest(text="", first=20, with_total=False))

    assert body["size"] == 21
    assert body["track_total_hits"] is False
    assert build_search_body(SearchRequest(text="", first=0))["track_total_hits"] is True


def test_without_facets_there_are_no_aggregations() -> None:
    assert "aggs" not in build_search_body(SearchRequest(text="x", with_facets=False))


@pytest.mark.parametrize(
    ("product_filter", "clause"),
    [
        (ProductFilter(category_slug="audio"), {"term": {"category_slugs": "audio"}}),
        (
            ProductFilter(brands=("Acme", "Zed")),
            {"terms": {"brand.keyword": ["Acme", "Zed"]}},
        ),
        # Prices bound the lowest price, both ends inclusive (the SQL search's rule).
        (
            ProductFilter(price_min=2_500, price_max=4_999),
            {"range": {"price_min": {"gte": 2_500, "lte": 4_999}}},
        ),
        (ProductFilter(price_min=50_000), {"range": {"price_min": {"gte": 50_000}}}),
        (ProductFilter(price_max=999), {"range": {"price_min": {"lte": 999}}}),
        (ProductFilter(brands=()), {"terms": {"brand.keyword": []}}),
        (ProductFilter(in_stock=True), {"term": {"in_stock": True}}),
        (ProductFilter(in_stock=False), {"term": {"in_stock": False}}),
        (
            ProductFilter(attributes=(AttributeFilter("color", ("red", "blue")),)),
            {"terms": {"attr_kv": [f"color{US}red", f"color{US}blue"]}},
        ),
    ],
)
def test_each_filter_becomes_a_post_filter_clause(
    product_filter: ProductFilter, clause: dict[str, Any]
) -> None:
    body = build_search_body(SearchRequest(text="", filter=product_filter))

    assert clauses_of(body["post_filter"]) == [clause]


def test_each_facet_counts_under_every_filter_but_its_own() -> None:
    product_filter = ProductFilter(
        category_slug="audio",
        brands=("Acme",),
        price_min=1_000,
        in_stock=True,
        attributes=(AttributeFilter("color", ("red",)), AttributeFilter("fit", ("slim",))),
    )
    body = build_search_body(SearchRequest(text="head", filter=product_filter))
    aggs = body["aggs"]
    category = {"term": {"category_slugs": "audio"}}
    brand = {"terms": {"brand.keyword": ["Acme"]}}
    price = {"range": {"price_min": {"gte": 1_000}}}
    stock = {"term": {"in_stock": True}}
    color = {"terms": {"attr_kv": [f"color{US}red"]}}
    fit = {"terms": {"attr_kv": [f"fit{US}slim"]}}

    assert clauses_of(body["post_filter"]) == [category, brand, price, stock, color, fit]
    assert clauses_of(aggs["category"]["filter"]) == [brand, price, stock, color, fit]
    assert clauses_of(aggs["brand"]["filter"]) == [category, price, stock, color, fit]
    assert clauses_of(aggs["price"]["filter"]) == [category, brand, stock, color, fit]
    assert clauses_of(aggs["inStock"]["filter"]) == [category, brand, price, color, fit]
    assert clauses_of(aggs["attributes"]["filter"]) == [category, brand, price, stock, color, fit]
    assert clauses_of(aggs["attribute_0"]["filter"]) == [category, brand, price, stock, fit]
    assert clauses_of(aggs["attribute_1"]["filter"]) == [category, brand, price, stock, color]
    # A filtered attribute's own aggregation sees only its own pairs.
    assert aggs["attribute_0"]["aggs"]["values"]["terms"]["include"] == f"color\\{US}.*"
    assert aggs["category"]["aggs"]["values"]["terms"]["field"] == "category_labels"
    assert aggs["brand"]["aggs"]["values"]["terms"]["field"] == "brand.keyword"


def test_attribute_names_are_escaped_in_the_include_pattern() -> None:
    product_filter = ProductFilter(attributes=(AttributeFilter("size (EU)", ("42",)),))

    aggs = build_search_body(SearchRequest(text="", filter=product_filter))["aggs"]

    assert aggs["attribute_0"]["aggs"]["values"]["terms"]["include"] == f"size\\ \\(EU\\)\\{US}.*"


def test_price_buckets_are_a_range_aggregation_over_the_lowest_price() -> None:
    aggs = build_search_body(SearchRequest(text=""))["aggs"]

    price = aggs["price"]["aggs"]["values"]["range"]
    assert price["field"] == "price_min"
    assert price["ranges"] == [
        {"key": "*-2500", "to": 2_500},
        {"key": "2500-5000", "from": 2_500, "to": 5_000},
        {"key": "5000-10000", "from": 5_000, "to": 10_000},
        {"key": "10000-25000", "from": 10_000, "to": 25_000},
        {"key": "25000-50000", "from": 25_000, "to": 50_000},
        {"key": "50000-*", "from": 50_000},
    ]


@pytest.mark.parametrize(
    ("sort_key", "reverse", "sort"),
    [
        (
            SearchSortKey.RELEVANCE,
            False,
            [{"_score": {"order": "desc"}}, {"product_id": {"order": "asc"}}],
        ),
        (
            SearchSortKey.RELEVANCE,
            True,
            [{"_score": {"order": "asc"}}, {"product_id": {"order": "desc"}}],
        ),
        (
            SearchSortKey.TITLE,
            False,
            [{"title.sort": {"order": "asc"}}, {"product_id": {"order": "asc"}}],
        ),
        (
            SearchSortKey.PRICE,
            True,
            [{"price_min": {"order": "desc"}}, {"product_id": {"order": "desc"}}],
        ),
        (
            SearchSortKey.CREATED_AT,
            False,
            [{"created_at": {"order": "asc"}}, {"product_id": {"order": "asc"}}],
        ),
        (
            SearchSortKey.RATING,
            True,
            [{"rating": {"order": "desc"}}, {"product_id": {"order": "desc"}}],
        ),
    ],
)
def test_every_sort_key_has_the_product_id_as_tiebreaker(
    sort_key: SearchSortKey, reverse: bool, sort: list[dict[str, Any]]
) -> None:
    body = build_search_body(SearchRequest(text="x", sort_key=sort_key, reverse=reverse))

    assert body["sort"] == sort


def test_relevance_is_the_default_sort() -> None:
    assert build_search_body(SearchRequest(text="x"))["sort"][0] == {"_score": {"order": "desc"}}


@pytest.mark.parametrize(
    ("sort_key", "reverse", "ordering", "key"),
    [
        (SearchSortKey.RELEVANCE, False, "es:RELEVANCE:asc", (3.25, 17)),
        (SearchSortKey.TITLE, False, "es:TITLE:asc", ("quiet headphones", 17)),
        (SearchSortKey.PRICE, True, "es:PRICE:desc", (4_999, 17)),
        (SearchSortKey.CREATED_AT, False, "es:CREATED_AT:asc", (1_767_322_245_000, 17)),
        (SearchSortKey.RATING, False, "es:RATING:asc", (4.5, 17)),
    ],
)
def test_a_cursor_becomes_search_after(
    sort_key: SearchSortKey, reverse: bool, ordering: str, key: tuple[Any, ...]
) -> None:
    request = SearchRequest(
        text="x", sort_key=sort_key, reverse=reverse, after=encode_cursor(ordering, key)
    )

    assert build_search_body(request)["search_after"] == list(key)


@pytest.mark.parametrize(
    ("sort_key", "reverse", "cursor"),
    [
        (SearchSortKey.RELEVANCE, False, "not-a-cursor"),
        # A cursor of another sort, direction, engine or listing.
        (SearchSortKey.PRICE, False, encode_cursor("es:TITLE:asc", ("a", 1))),
        (SearchSortKey.PRICE, False, encode_cursor("es:PRICE:desc", (100, 1))),
        (SearchSortKey.PRICE, False, encode_cursor("p:PRICE:asc", (100, 1))),
        # The right ordering, but a sort value of the wrong type.
        (SearchSortKey.PRICE, False, encode_cursor("es:PRICE:asc", ("100", 1))),
        (SearchSortKey.TITLE, False, encode_cursor("es:TITLE:asc", (5, 1))),
        (SearchSortKey.RELEVANCE, False, encode_cursor("es:RELEVANCE:asc", ("high", 1))),
        (SearchSortKey.RELEVANCE, False, encode_cursor("es:RELEVANCE:asc", (1.0, "1"))),
    ],
)
def test_a_bad_cursor_is_invalid_cursor(
    sort_key: SearchSortKey, reverse: bool, cursor: str
) -> None:
    request = SearchRequest(text="x", sort_key=sort_key, reverse=reverse, after=cursor)

    with pytest.raises(InvalidInput) as raised:
        build_search_body(request)
    assert raised.value.code is ErrorCode.INVALID_CURSOR
    assert raised.value.field == "after"


# -- responses -----------------------------------------------------------------------


def terms(*buckets: tuple[Any, int], **extra: Any) -> dict[str, Any]:
    return {
        "doc_count": sum(count for _, count in buckets),
        "values": {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": 0,
            "buckets": [{"key": key, "doc_count": count, **extra} for key, count in buckets],
        },
    }


def es_response(
    hits: list[dict[str, Any]], total: int | None, aggregations: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Shaped like Elasticsearch 8/9 `_search` answers (`_source` off, sorted)."""
    response: dict[str, Any] = {
        "took": 3,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"max_score": None, "hits": hits},
    }
    if total is not None:
        response["hits"]["total"] = {"value": total, "relation": "eq"}
    if aggregations is not None:
        response["aggregations"] = aggregations
    return response


def hit(product_id: int, *sort: Any) -> dict[str, Any]:
    return {
        "_index": "products-20260101000000000000",
        "_id": str(product_id),
        "_score": sort[0] if sort and isinstance(sort[0], float) else None,
        "sort": [*sort, product_id],
    }


def test_hits_become_cursors_of_their_sort_values_and_a_next_page() -> None:
    request = SearchRequest(text="head", first=2, with_facets=False)
    response = es_response([hit(4, 7.5), hit(9, 7.5), hit(2, 1.25)], total=3)

    result = parse_search_response(response, request)

    assert [h.product_id for h in result.hits] == [4, 9]
    assert result.has_next_page is True
    assert result.total_count == 3
    assert result.engine == "elasticsearch"
    assert result.fallback_reason is None
    assert result.facets == ()
    # The last cursor continues right after product 9.
    follow = SearchRequest(text="head", first=2, after=result.hits[-1].cursor)
    assert build_search_body(follow)["search_after"] == [7.5, 9]


def test_the_last_page_has_no_next_page_and_totals_can_be_skipped() -> None:
    request = SearchRequest(
        text="", sort_key=SearchSortKey.PRICE, first=5, with_total=False, with_facets=False
    )
    response = es_response([hit(3, 1_999), hit(1, 2_500)], total=None)

    result = parse_search_response(response, request)

    assert [h.product_id for h in result.hits] == [3, 1]
    assert result.has_next_page is False
    assert result.total_count == 0
    follow = SearchRequest(text="", sort_key=SearchSortKey.PRICE, after=result.hits[0].cursor)
    assert build_search_body(follow)["search_after"] == [1_999, 3]


def test_every_facet_kind_is_parsed_ordered_and_labelled() -> None:
    request = SearchRequest(
        text="", filter=ProductFilter(attributes=(AttributeFilter("color", ("red",)),))
    )
    aggregations = {
        "category": terms(
            (f"audio{US}Audio", 5), (f"headphones{US}Headphones", 3), (f"cables{US}Cables", 3)
        ),
        "brand": terms(("Zed", 2), ("Acme", 2), ("Bolt", 4)),
        "price": {
            "doc_count": 5,
            "values": {
                "buckets": [
                    {"key": "*-2500", "to": 2500.0, "doc_count": 1},
                    {"key": "2500-5000", "from": 2500.0, "to": 5000.0, "doc_count": 3},
                    {"key": "5000-10000", "from": 5000.0, "to": 10000.0, "doc_count": 0},
                    {"key": "10000-25000", "from": 10000.0, "to": 25000.0, "doc_count": 0},
                    {"key": "25000-50000", "from": 25000.0, "to": 50000.0, "doc_count": 0},
                    {"key": "50000-*", "from": 50000.0, "doc_count": 1},
                ]
            },
        },
        "inStock": {
            "doc_count": 5,
            "values": {
                "buckets": [
                    {"key": 1, "key_as_string": "true", "doc_count": 4},
                    {"key": 0, "key_as_string": "false", "doc_count": 1},
                ]
            },
        },
        "attributes": terms(
            (f"color{US}red", 2),  # filtered: counted by its own aggregation below
            (f"fit{US}slim", 1),
            (f"fit{US}regular", 1),
            (f"material{US}steel", 2),
        ),
        "attribute_0": terms((f"color{US}red", 2), (f"color{US}blue", 3)),
    }

    result = parse_search_response(es_response([], 5, aggregations), request)

    assert result.facets == (
        SearchFacet(
            "category",
            "Category",
            (
                FacetValue("audio", "Audio", 5),
                FacetValue("cables", "Cables", 3),
                FacetValue("headphones", "Headphones", 3),
            ),
        ),
        SearchFacet(
            "brand",
            "Brand",
            (
                FacetValue("Bolt", "Bolt", 4),
                FacetValue("Acme", "Acme", 2),
                FacetValue("Zed", "Zed", 2),
            ),
        ),
        SearchFacet(
            "price",
            "Price",
            (
                FacetValue("2500-5000", "25 to 50", 3),
                FacetValue("*-2500", "Under 25", 1),
                FacetValue("50000-*", "500 and above", 1),
            ),
        ),
        SearchFacet(
            "inStock",
            "Availability",
            (FacetValue("true", "In stock", 4), FacetValue("false", "Out of stock", 1)),
        ),
        SearchFacet(
            "attribute:color",
            "color",
            (FacetValue("blue", "blue", 3), FacetValue("red", "red", 2)),
        ),
        SearchFacet(
            "attribute:fit",
            "fit",
            (FacetValue("regular", "regular", 1), FacetValue("slim", "slim", 1)),
        ),
        SearchFacet("attribute:material", "material", (FacetValue("steel", "steel", 2),)),
    )


def test_facets_without_values_are_left_out() -> None:
    aggregations = {
        "category": terms(),
        "brand": terms(),
        "price": {"doc_count": 0, "values": {"buckets": [{"key": "*-2500", "doc_count": 0}]}},
        "inStock": terms(),
        "attributes": terms(),
    }

    result = parse_search_response(es_response([], 0, aggregations), SearchRequest(text="zzz"))

    assert result.facets == ()
    assert result.hits == ()
    assert result.has_next_page is False


def test_a_renamed_category_still_counts_once_per_slug() -> None:
    aggregations = {"category": terms((f"audio{US}Audio", 4), (f"audio{US}Sound", 1))}

    result = parse_search_response(es_response([], 5, aggregations), SearchRequest(text=""))

    assert result.facets == (
        SearchFacet("category", "Category", (FacetValue("audio", "Audio", 5),)),
    )


def test_the_facets_are_the_ones_the_sql_search_assembles_from_the_same_counts() -> None:
    # Given the counts a SQL index would read from its rows for one catalog
    counts = [
        FacetCount("attribute:size", "M", 2),
        FacetCount("inStock", "false", 1),
        FacetCount("price", "10000-25000", 2),
        FacetCount("category", "audio", 3, "Audio"),
        FacetCount("brand", "Acme", 3),
        FacetCount("inStock", "true", 2),
    ]
    # and the aggregations Elasticsearch answers for the same catalog
    aggregations = {
        "attributes": terms((f"size{US}M", 2)),
        "inStock": {
            "doc_count": 3,
            "values": {
                "buckets": [
                    {"key": 1, "key_as_string": "true", "doc_count": 2},
                    {"key": 0, "key_as_string": "false", "doc_count": 1},
                ]
            },
        },
        "price": {
            "doc_count": 3,
            "values": {
                "buckets": [
                    {"key": "*-2500", "to": 2500.0, "doc_count": 0},
                    {"key": "10000-25000", "from": 10000.0, "to": 25000.0, "doc_count": 2},
                ]
            },
        },
        "category": terms((f"audio{US}Audio", 3)),
        "brand": terms(("Acme", 3)),
    }

    # When the response is parsed
    result = parse_search_response(es_response([], 3, aggregations), SearchRequest(text=""))

    # Then the shopper sees exactly what the SQL search would show
    assert result.facets == assemble_facets(counts)
    assert [f.name for f in result.facets] == [
        "category",
        "brand",
        "price",
        "inStock",
        "attribute:size",
    ]
    assert result.facets[2].values == (FacetValue("10000-25000", "100 to 250", 2),)


def test_a_facet_keeps_its_max_facet_values_best_values() -> None:
    many = [(f"size{US}{n:03d}", 100 - n) for n in range(MAX_FACET_VALUES + 5)]
    aggregations = {"attributes": terms(*many)}

    result = parse_search_response(es_response([], 100, aggregations), SearchRequest(text=""))

    (size,) = result.facets
    assert len(size.values) == MAX_FACET_VALUES
    assert size.values[0] == FacetValue("000", "000", 100)
    assert size.values[-1].value == f"{MAX_FACET_VALUES - 1:03d}"
