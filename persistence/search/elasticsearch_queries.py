"""Elasticsearch request bodies and response parsing: pure functions, no I/O.

Everything Elasticsearch-specific that can be decided without a cluster lives here, so
it is unit-tested on its own; `persistence/search/elasticsearch.py` only sends and
receives.

Choices, and why:

- Attributes are indexed as flat keywords `attr_kv = "name\\u001fvalue"`, not as nested
  objects. A terms aggregation over a multi-valued keyword counts *products* per pair
  directly (nested would need `reverse_nested` to count products and nested queries to
  filter), the unit separator cannot occur in a name typed into the admin, and a filter
  on one attribute is a plain `terms` query.
- Category labels travel with the documents as `category_labels = "slug\\u001fname"`
  keywords (one per category in the document's path, 1:1 with `category_slugs`), so the
  category facet is one terms aggregation that already carries its labels: no second
  lookup in the database on the search path.
- Filters go into `post_filter`, and every facet aggregation is a `filter` aggregation
  applying all filters except its own, so choosing a brand keeps the other brands' counts.
- A price filter bounds a product's lowest price (inclusive), as the SQL search does and
  as the price facet counts: choosing a bucket keeps exactly the products it counted.
- Responses become `FacetCount`s handed to `domain.search.assemble_facets`, the code the
  SQL adapters use, so facet order, value order, caps and labels cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain.catalog import ProductFilter
from domain.pagination import Page, decode_cursor, encode_cursor, invalid_cursor
from domain.search import (
    ATTRIBUTE_FACET_PREFIX,
    FACET_BRAND,
    FACET_CATEGORY,
    FACET_IN_STOCK,
    FACET_PRICE,
    MAX_FACET_VALUES,
    PRICE_BUCKETS,
    FacetCount,
    SearchDocument,
    SearchFacet,
    SearchHit,
    SearchRequest,
    SearchResult,
    SearchSortKey,
    assemble_facets,
    price_bucket_value,
)

ENGINE = "elasticsearch"
SEPARATOR = "\u001f"  # between a name and its value inside one keyword
# One terms aggregation over every (attribute, value) pair: enough for a storefront's
# attribute vocabulary; pairs past it are left out of the facets, never miscounted.
ATTRIBUTE_PAIRS_LIMIT = 1_000

Json = dict[str, Any]

_TEXT_FIELDS = ("title^3", "brand^2", "category_names^2", "description")
_PREFIX_FIELDS = ("title.prefix^3", "brand.prefix^2", "category_names.prefix^2")
_SORT_FIELDS = {
    SearchSortKey.TITLE: "title.sort",
    SearchSortKey.PRICE: "price_min",
    SearchSortKey.CREATED_AT: "created_at",
    SearchSortKey.RATING: "rating",
}


def index_definition() -> Json:
    """Settings and mappings for a new products index (strict: unknown fields fail)."""
    english = {"type": "text", "analyzer": "english"}
    # Edge n-grams at index time, whole words at search time: "head" matches the
    # indexed gram "head" of "headphones", while "headphones" does not match "head".
    prefix = {"type": "text", "analyzer": "prefix", "search_analyzer": "standard"}
    return {
        "settings": {
            "analysis": {
                "filter": {
                    "prefix_edge_ngram": {"type": "edge_ngram", "min_gram": 2, "max_gram": 20}
                },
                "analyzer": {
                    "prefix": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["lowercase", "asciifolding", "prefix_edge_ngram"],
                    }
                },
                "normalizer": {
                    "sortable": {"type": "custom", "filter": ["lowercase", "asciifolding"]}
                },
            }
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "product_id": {"type": "long"},
                "slug": {"type": "keyword"},
                "title": {
                    **english,
                    "fields": {
                        "prefix": prefix,
                        "sort": {"type": "keyword", "normalizer": "sortable"},
                    },
                },
                "brand": {
                    **english,
                    "fields": {"keyword": {"type": "keyword"}, "prefix": prefix},
                },
                "description": english,
                "category_names": {**english, "fields": {"prefix": prefix}},
                "category_slugs": {"type": "keyword"},
                "category_labels": {"type": "keyword"},
                "attr_kv": {"type": "keyword"},
                "price_min": {"type": "long"},
                "price_max": {"type": "long"},
                "in_stock": {"type": "boolean"},
                "rating": {"type": "float"},
                "created_at": {"type": "date"},
            },
        },
    }


def document_body(doc: SearchDocument) -> Json:
    return {
        "product_id": doc.product_id,
        "slug": doc.slug,
        "title": doc.title,
        "brand": doc.brand,
        "description": doc.description,
        "category_names": list(doc.category_names),
        "category_slugs": list(doc.category_slugs),
        "category_labels": [
            f"{slug}{SEPARATOR}{name}"
            for slug, name in zip(doc.category_slugs, doc.category_names, strict=True)
        ],
        "attr_kv": [f"{name}{SEPARATOR}{value}" for name, value in doc.attributes],
        "price_min": doc.price_min,
        "price_max": doc.price_max,
        "in_stock": doc.in_stock,
        "rating": doc.rating,
        "created_at": doc.created_at.isoformat(),
    }


# -- search ------------------------------------------------------------------------


def ordering(request: SearchRequest) -> str:
    """What a cursor is bound to: this engine, the sort key and its direction."""
    return f"es:{request.sort_key.value}:{'desc' if request.reverse else 'asc'}"


def build_search_body(request: SearchRequest) -> Json:
    """The `_search` body for a request; a bad `after` cursor raises INVALID_CURSOR."""
    clauses = _filter_clauses(request.filter)
    body: Json = {
        "query": _text_query(request.text),
        "post_filter": _all_but(clauses, None),
        "sort": _sort(request),
        "size": request.first + 1,  # one more than asked: is there a next page?
        "track_total_hits": request.with_total,
        "_source": False,
    }
    if request.after is not None:
        body["search_after"] = list(_search_after(request))
    if request.with_facets:
        body["aggs"] = _aggregations(request.filter, clauses)
    return body


def _text_query(text: str) -> Json:
    if not text:
        return {"match_all": {}}
    return {
        "bool": {
            "should": [
                # Whole words, a typo or two forgiven ("televsion"), all in one field.
                {
                    "multi_match": {
                        "query": text,
                        "type": "best_fields",
                        "fields": list(_TEXT_FIELDS),
                        "operator": "and",
                        "fuzziness": "AUTO",
                        "prefix_length": 1,
                    }
                },
                # Whole words spread over fields ("sony headphones": brand + title).
                {
                    "multi_match": {
                        "query": text,
                        "type": "cross_fields",
                        "fields": list(_TEXT_FIELDS),
                        "operator": "and",
                    }
                },
                # Beginnings of words ("head"), weighted below whole words.
                {
                    "multi_match": {
                        "query": text,
                        "type": "cross_fields",
                        "fields": list(_PREFIX_FIELDS),
                        "operator": "and",
                        "boost": 0.5,
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def _filter_clauses(f: ProductFilter) -> dict[str, Json]:
    """One query clause per facet the filter touches, keyed by that facet's name."""
    clauses: dict[str, Json] = {}
    if f.category_slug is not None:
        clauses[FACET_CATEGORY] = {"term": {"category_slugs": f.category_slug}}
    if f.brands is not None:
        clauses[FACET_BRAND] = {"terms": {"brand.keyword": list(f.brands)}}
    if f.price_min is not None or f.price_max is not None:
        # A product's lowest price, as the price facet counts it (and the SQL search).
        bounds: Json = {}
        if f.price_min is not None:
            bounds["gte"] = f.price_min
        if f.price_max is not None:
            bounds["lte"] = f.price_max
        clauses[FACET_PRICE] = {"range": {"price_min": bounds}}
    if f.in_stock is not None:
        clauses[FACET_IN_STOCK] = {"term": {"in_stock": f.in_stock}}
    for attribute in f.attributes:
        pairs = [f"{attribute.name}{SEPARATOR}{value}" for value in attribute.values]
        name = ATTRIBUTE_FACET_PREFIX + attribute.name
        # The same attribute named twice narrows twice, as in the catalog listing.
        if name in clauses:
            clauses[name] = {"bool": {"filter": [clauses[name], {"terms": {"attr_kv": pairs}}]}}
        else:
            clauses[name] = {"terms": {"attr_kv": pairs}}
    return clauses


def _all_but(clauses: Mapping[str, Json], own: str | None) -> Json:
    return {"bool": {"filter": [clause for name, clause in clauses.items() if name != own]}}


def _sort(request: SearchRequest) -> list[Json]:
    if request.sort_key is SearchSortKey.RELEVANCE:
        # Best match first; ties (and every row of an empty query) by product id.
        score = "asc" if request.reverse else "desc"
        tiebreak = "desc" if request.reverse else "asc"
        return [{"_score": {"order": score}}, {"product_id": {"order": tiebreak}}]
    order = "desc" if request.reverse else "asc"
    return [
        {_SORT_FIELDS[request.sort_key]: {"order": order}},
        {"product_id": {"order": order}},
    ]


def _search_after(request: SearchRequest) -> tuple[Any, ...]:
    assert request.after is not None
    key = decode_cursor(ordering(request), request.after, arity=2)
    value = key[0]
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    expected_type_ok = {
        SearchSortKey.RELEVANCE: numeric,
        SearchSortKey.RATING: numeric,
        SearchSortKey.TITLE: isinstance(value, str),
        SearchSortKey.PRICE: isinstance(value, int) and not isinstance(value, bool),
        SearchSortKey.CREATED_AT: isinstance(value, int) and not isinstance(value, bool),
    }[request.sort_key]
    if not expected_type_ok:
        raise invalid_cursor()
    return key


def _terms(field: str, size: int, **extra: Any) -> Json:
    return {
        "terms": {
            "field": field,
            "size": size,
            "order": [{"_count": "desc"}, {"_key": "asc"}],
            **extra,
        }
    }


def _aggregations(f: ProductFilter, clauses: Mapping[str, Json]) -> Json:
    def within(own: str | None, agg: Json) -> Json:
        return {"filter": _all_but(clauses, own), "aggs": {"values": agg}}

    aggs: Json = {
        FACET_CATEGORY: within(FACET_CATEGORY, _terms("category_labels", MAX_FACET_VALUES)),
        FACET_BRAND: within(FACET_BRAND, _terms("brand.keyword", MAX_FACET_VALUES, exclude=[""])),
        FACET_PRICE: within(
            FACET_PRICE,
            {
                "range": {
                    "field": "price_min",
                    "ranges": [
                        _range(price_bucket_value((low, high)), low, high)
                        for low, high in PRICE_BUCKETS
                    ],
                }
            },
        ),
        FACET_IN_STOCK: within(FACET_IN_STOCK, _terms("in_stock", 2)),
        # Attributes nobody filtered on: counted under every filter.
        "attributes": within(None, _terms("attr_kv", ATTRIBUTE_PAIRS_LIMIT)),
    }
    # Each filtered attribute: its own values, counted without its own filter.
    for position, name in enumerate(_filtered_attribute_names(f)):
        include = _regex_literal(f"{name}{SEPARATOR}") + ".*"
        aggs[f"attribute_{position}"] = within(
            ATTRIBUTE_FACET_PREFIX + name, _terms("attr_kv", MAX_FACET_VALUES, include=include)
        )
    return aggs


def _range(key: str, low: int | None, high: int | None) -> Json:
    bucket: Json = {"key": key}
    if low is not None:
        bucket["from"] = low
    if high is not None:
        bucket["to"] = high
    return bucket


def _filtered_attribute_names(f: ProductFilter) -> list[str]:
    return list(dict.fromkeys(attribute.name for attribute in f.attributes))


def _regex_literal(text: str) -> str:
    # Lucene regular expressions: escape everything but letters and digits.
    return "".join(c if c.isalnum() else "\\" + c for c in text)


# -- responses ---------------------------------------------------------------------


def parse_search_response(response: Mapping[str, Any], request: SearchRequest) -> SearchResult:
    raw_hits: Sequence[Mapping[str, Any]] = response["hits"]["hits"]
    key = ordering(request)
    page = Page.from_rows(
        raw_hits,
        first=request.first,
        after=request.after,
        cursor_of=lambda hit: encode_cursor(key, tuple(hit["sort"])),
        node_of=lambda hit: int(hit["sort"][-1]),
    )
    hits = tuple(SearchHit(product_id=edge.node, cursor=edge.cursor) for edge in page.edges)
    total = int(response["hits"]["total"]["value"]) if request.with_total else 0
    facets: tuple[SearchFacet, ...] = ()
    if request.with_facets:
        counts = facet_counts(response.get("aggregations", {}), request.filter)
        facets = assemble_facets(counts)
    return SearchResult(
        hits=hits,
        has_next_page=page.has_next_page,
        total_count=total,
        facets=facets,
        engine=ENGINE,
    )


def facet_counts(aggs: Mapping[str, Any], f: ProductFilter) -> list[FacetCount]:
    """The aggregations as the (facet, value) counts the SQL search reads from its rows;
    ordering, caps and labels are `assemble_facets`' business."""
    counts: list[FacetCount] = []

    # Category: merge by slug, in case a rename left old labels in some documents (the
    # label of the most documents wins: buckets come by count).
    categories: dict[str, tuple[str, int]] = {}
    for bucket in _buckets(aggs, FACET_CATEGORY):
        slug, _, label = str(bucket["key"]).partition(SEPARATOR)
        known_label, count = categories.get(slug, (label, 0))
        categories[slug] = (known_label, count + int(bucket["doc_count"]))
    counts.extend(
        FacetCount(FACET_CATEGORY, slug, count, label)
        for slug, (label, count) in categories.items()
    )

    counts.extend(
        FacetCount(FACET_BRAND, str(b["key"]), int(b["doc_count"]))
        for b in _buckets(aggs, FACET_BRAND)
    )
    # Range buckets are keyed by `price_bucket_value`, the values `assemble_facets` labels.
    counts.extend(
        FacetCount(FACET_PRICE, str(b["key"]), int(b["doc_count"]))
        for b in _buckets(aggs, FACET_PRICE)
    )
    for bucket in _buckets(aggs, FACET_IN_STOCK):
        # Booleans come back as key 1/0 with key_as_string "true"/"false".
        value = str(bucket.get("key_as_string", bucket["key"])).lower()
        value = {"1": "true", "0": "false"}.get(value, value)
        counts.append(FacetCount(FACET_IN_STOCK, value, int(bucket["doc_count"])))

    filtered = _filtered_attribute_names(f)
    for bucket in _buckets(aggs, "attributes"):
        name, _, value = str(bucket["key"]).partition(SEPARATOR)
        if name not in filtered:  # a filtered attribute is counted by its own aggregation
            counts.append(
                FacetCount(ATTRIBUTE_FACET_PREFIX + name, value, int(bucket["doc_count"]))
            )
    for position, name in enumerate(filtered):
        for bucket in _buckets(aggs, f"attribute_{position}"):
            bucket_name, _, value = str(bucket["key"]).partition(SEPARATOR)
            if bucket_name == name:
                counts.append(
                    FacetCount(ATTRIBUTE_FACET_PREFIX + name, value, int(bucket["doc_count"]))
                )
    return counts


def _buckets(aggs: Mapping[str, Any], name: str) -> Sequence[Mapping[str, Any]]:
    agg = aggs.get(name)
    if agg is None:
        return ()
    buckets: Sequence[Mapping[str, Any]] = agg["values"]["buckets"]
    return buckets
