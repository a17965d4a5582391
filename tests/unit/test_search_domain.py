"""Search rules that need no index: request validation, facet assembly, typo patterns."""

from __future__ import annotations

import pytest

from domain.catalog import ProductFilter
from domain.errors import ErrorCode, InvalidInput
from domain.search import (
    MAX_FACET_VALUES,
    PRICE_BUCKETS,
    FacetCount,
    SearchSortKey,
    assemble_facets,
    price_bucket_of,
    price_bucket_value,
    search_request,
    search_words,
)
from persistence.search.sqlite import one_edit_patterns


def _request(text: str = "lamp", first: int | None = 20) -> object:
    return search_request(
        text=text,
        filter=ProductFilter(),
        sort_key=SearchSortKey.RELEVANCE,
        reverse=False,
        first=first,
        after=None,
        with_facets=True,
        with_total=True,
        max_size=100,
    )


def test_a_request_is_trimmed_and_bounded() -> None:
    assert _request("  red   lamp ").text == "red lamp"  # type: ignore[attr-defined]
    assert _request(first=None).first == 20  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput) as too_long:
        _request("x" * 201)
    assert (too_long.value.code, too_long.value.field) == (ErrorCode.BAD_USER_INPUT, "query")
    with pytest.raises(InvalidInput) as too_many:
        _request(first=101)
    assert too_many.value.code is ErrorCode.INVALID_PAGE_SIZE


def test_facets_come_in_a_fixed_order_with_values_by_count_then_value() -> None:
    counts = [
        FacetCount("attribute:fit", "Slim", 3),
        FacetCount("brand", "Vox", 2),
        FacetCount("brand", "Acme", 2),
        FacetCount("brand", "Sona", 5),
        FacetCount("inStock", "false", 1),
        FacetCount("category", "audio", 4, "Audio"),
        FacetCount("price", "2500-5000", 0),
    ]

    facets = assemble_facets(counts)

    assert [f.name for f in facets] == ["category", "brand", "inStock", "attribute:fit"]
    assert [v.value for v in facets[1].values] == ["Sona", "Acme", "Vox"]
    assert facets[0].values[0].label == "Audio"
    assert facets[2].values[0].label == "Out of stock"
    assert facets[3].label == "fit"


def test_a_facet_keeps_its_best_values_only() -> None:
    counts = [FacetCount("brand", f"b{i:03d}", i) for i in range(1, 80)]

    (brand,) = assemble_facets(counts)

    assert len(brand.values) == MAX_FACET_VALUES
    assert brand.values[0].count == 79


def test_price_buckets_cover_every_price_once() -> None:
    assert price_bucket_value(price_bucket_of(0)) == "*-2500"
    assert price_bucket_value(price_bucket_of(2_500)) == "2500-5000"
    assert price_bucket_value(price_bucket_of(10**9)) == "50000-*"
    assert len({price_bucket_value(b) for b in PRICE_BUCKETS}) == len(PRICE_BUCKETS)


def test_words_are_safe_in_any_query_syntax() -> None:
    assert search_words("Head-phones & 'TV' | 4K!") == ["head", "phones", "tv", "4k"]


def test_one_edit_patterns_cover_a_missing_letter_and_skip_short_words() -> None:
    patterns = one_edit_patterns("televsion")
    assert "telev_sion" in patterns  # "television" with the shopper's missing i
    assert "televsion" not in patterns
    assert one_edit_patterns("lamp") == []
