"""Elasticsearch request bodies and response parsing: pure functions, no I/O.

Everything Elasticsearch-specific that can be decided without a cluster lives here, so
it is unit-tested on its own; `persistence/search_elasticsearch.py` only sends and
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
- A price filter matches products whose price range overlaps the asked range (a document
  knows its lowest and highest variant price, not each variant's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain.catalog import ProductFilter
from domain.pagination import decode_cursor, encode_cursor
from domain.search import (
    MAX_FACET_VALUES,
    PRICE_BUCKETS,
    FacetValue,
    SearchDocument,
    SearchFacet,
    SearchHit,
    SearchRequest,
    SearchResult,
    SearchSortKey,
)
from domain.search_facets import (
    BRAND,
    CATEGORY,
    IN_STOCK,
    IN_STOCK_LABELS,
    PRICE,
    attribute_facet_name,
    facet,
    price_bucket_label,
    price_bucket_value,
)
from persistence.cursor_keys import bad_cursor

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
        clauses[CATEGORY] = {"term": {"category_slugs": f.category_slug}}
    if f.brands is not None:
        clauses[BRAND] = {"terms": {"brand.keyword": list(f.brands)}}
    if f.price_min is not None or f.price_max is not None:
        overlap: list[Json] = []
        if f.price_min is not None:
            overlap.append({"range": {"price_max": {"gte": f.price_min}}})
        if f.price_max is not None:
            overlap.append({"range": {"price_min": {"lte": f.price_max}}})
        clauses[PRICE] = {"bool": {"filter": overlap}}
    if f.in_stock is not None:
        clauses[IN_STOCK] = {"term": {"in_stock": f.in_stock}}
    for attribute in f.attributes:
        pairs = [f"{attribute.name}{SEPARATOR}{value}" for value in attribute.values]
        name = attribute_facet_name(attribute.name)
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
        raise bad_cursor()
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
        CATEGORY: within(CATEGORY, _terms("category_labels", MAX_FACET_VALUES)),
        BRAND: within(BRAND, _terms("brand.keyword", MAX_FACET_VALUES, exclude=[""])),
        PRICE: within(
            PRICE,
            {
                "range": {
                    "field": "price_min",
                    "ranges": [
                        _range(price_bucket_value(low, high), low, high)
                        for low, high in PRICE_BUCKETS
                    ],
                }
            },
        ),
        IN_STOCK: within(IN_STOCK, _terms("in_stock", 2)),
        # Attributes nobody filtered on: counted under every filter.
        "attributes": within(None, _terms("attr_kv", ATTRIBUTE_PAIRS_LIMIT)),
    }
    # Each filtered attribute: its own values, counted without its own filter.
    for position, name in enumerate(_filtered_attribute_names(f)):
        include = _regex_literal(f"{name}{SEPARATOR}") + ".*"
        aggs[f"attribute_{position}"] = within(
            attribute_facet_name(name), _terms("attr_kv", MAX_FACET_VALUES, include=include)
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


def parse_search_response(
    response: Mapping[str, Any], request: SearchRequest, *, currency_code: str = "USD"
) -> SearchResult:
    raw_hits: Sequence[Mapping[str, Any]] = response["hits"]["hits"]
    key = ordering(request)
    hits = tuple(
        SearchHit(product_id=int(hit["sort"][-1]), cursor=encode_cursor(key, tuple(hit["sort"])))
        for hit in raw_hits[: request.first]
    )
    total = int(response["hits"]["total"]["value"]) if request.with_total else 0
    facets: tuple[SearchFacet, ...] = ()
    if request.with_facets:
        facets = _facets(response.get("aggregations", {}), request.filter, currency_code)
    return SearchResult(
        hits=hits,
        has_next_page=len(raw_hits) > request.first,
        total_count=total,
        facets=facets,
        engine=ENGINE,
    )


def _buckets(aggs: Mapping[str, Any], name: str) -> Sequence[Mapping[str, Any]]:
    agg = aggs.get(name)
    if agg is None:
        return ()
    buckets: Sequence[Mapping[str, Any]] = agg["values"]["buckets"]
    return buckets


def _facets(
    aggs: Mapping[str, Any], f: ProductFilter, currency_code: str
) -> tuple[SearchFacet, ...]:
    found: list[SearchFacet | None] = []

    # Category: merge by slug, in case a rename left old labels in some documents.
    categories: dict[str, tuple[str, int]] = {}
    for bucket in _buckets(aggs, CATEGORY):
        slug, _, label = str(bucket["key"]).partition(SEPARATOR)
        known_label, count = categories.get(slug, (label, 0))
        categories[slug] = (known_label, count + int(bucket["doc_count"]))
    found.append(
        facet(
            CATEGORY,
            (FacetValue(slug, label, count) for slug, (label, count) in categories.items()),
        )
    )

    found.append(
        facet(
            BRAND,
            (
                FacetValue(str(b["key"]), str(b["key"]), int(b["doc_count"]))
                for b in _buckets(aggs, BRAND)
            ),
        )
    )

    labels = {
        price_bucket_value(low, high): price_bucket_label(low, high, currency_code)
        for low, high in PRICE_BUCKETS
    }
    found.append(
        facet(
            PRICE,
            (
                FacetValue(
                    str(b["key"]), labels.get(str(b["key"]), str(b["key"])), int(b["doc_count"])
                )
                for b in _buckets(aggs, PRICE)
            ),
        )
    )

    stock_values = []
    for bucket in _buckets(aggs, IN_STOCK):
        # Booleans come back as key 1/0 with key_as_string "true"/"false".
        value = str(bucket.get("key_as_string", bucket["key"])).lower()
        value = {"1": "true", "0": "false"}.get(value, value)
        stock_values.append(
            FacetValue(value, IN_STOCK_LABELS.get(value, value), int(bucket["doc_count"]))
        )
    found.append(facet(IN_STOCK, stock_values))

    found.extend(_attribute_facets(aggs, f))
    return tuple(item for item in found if item is not None)


def _attribute_facets(aggs: Mapping[str, Any], f: ProductFilter) -> list[SearchFacet | None]:
    filtered = _filtered_attribute_names(f)
    values: dict[str, list[FacetValue]] = {}
    for bucket in _buckets(aggs, "attributes"):
        name, _, value = str(bucket["key"]).partition(SEPARATOR)
        if name not in filtered:
            values.setdefault(name, []).append(FacetValue(value, value, int(bucket["doc_count"])))
    for position, name in enumerate(filtered):
        values[name] = []
        for bucket in _buckets(aggs, f"attribute_{position}"):
            bucket_name, _, value = str(bucket["key"]).partition(SEPARATOR)
            if bucket_name == name:
                values[name].append(FacetValue(value, value, int(bucket["doc_count"])))
    return [facet(attribute_facet_name(name), values[name]) for name in sorted(values)]
