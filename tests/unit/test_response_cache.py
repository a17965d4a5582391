"""The response cache's rules without I/O: keys, tags, validators, the in-process layer's
bounds and purges, and what each catalog event purges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from domain.events import Event, MalformedEvent
from domain.response_cache import (
    MAX_TAG_BYTES,
    OVERFLOW_TAG,
    CachedResponse,
    LocalResponses,
    ResponseTags,
    etag_matches,
    purge_tags,
)
from domain.response_purge import ResponsePurging
from resolvers.http.response_cache import candidate_key
from tests.fakes.catalog import FakeCacheInvalidator, FakeProductsOfVariants

HASH = "a" * 64
EXTENSIONS = '{"persistedQuery": {"version": 1, "sha256Hash": "' + HASH + '"}}'


class FakeRequest:
    def __init__(self, params: list[tuple[str, str]], method: str = "GET", **headers: str) -> None:
        self.method = method
        self.headers = {k.lower().replace("_", "-"): v for k, v in headers.items()}
        self.query_params = FakeParams(params)


class FakeParams:
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._items)


def key_of(*params: tuple[str, str], method: str = "GET", **headers: str) -> str | None:
    return candidate_key(FakeRequest(list(params), method, **headers), "fingerprint")


def test_variables_in_any_key_order_at_any_depth_share_one_key() -> None:
    one = key_of(("extensions", EXTENSIONS), ("variables", '{"a": 1, "f": {"y": 2, "x": 1}}'))
    other = key_of(("variables", '{"f": {"x": 1, "y": 2}, "a": 1}'), ("extensions", EXTENSIONS))
    different = key_of(("extensions", EXTENSIONS), ("variables", '{"a": 2, "f": {}}'))
    named = key_of(
        ("extensions", EXTENSIONS),
        ("variables", '{"a": 1, "f": {"y": 2, "x": 1}}'),
        ("operationName", "Listing"),
    )

    assert one is not None and one == other
    assert len({one, different, named}) == 3
    assert key_of(("extensions", EXTENSIONS)) == key_of(
        ("extensions", EXTENSIONS), ("variables", "null")
    )


@pytest.mark.parametrize(
    ("params", "method", "headers"),
    [
        ([("extensions", EXTENSIONS)], "POST", {}),
        ([("extensions", EXTENSIONS)], "GET", {"authorization": "Bearer x"}),
        ([("extensions", EXTENSIONS)], "GET", {"x-api-key": "k"}),
        ([("extensions", EXTENSIONS), ("query", "{ products { edges { cursor } } }")], "GET", {}),
        ([("extensions", EXTENSIONS), ("extensions", EXTENSIONS)], "GET", {}),
        ([("extensions", EXTENSIONS), ("variables", '{"a": "' + "x" * 5_000 + '"}')], "GET", {}),
        ([("extensions", EXTENSIONS), ("variables", "[1, 2]")], "GET", {}),
        ([("extensions", EXTENSIONS), ("variables", "{not json")], "GET", {}),
        ([("extensions", EXTENSIONS), ("variables", "[" * 5_000 + "]" * 5_000)], "GET", {}),
        ([("extensions", EXTENSIONS), ("operationName", "x" * 200)], "GET", {}),
        ([("extensions", EXTENSIONS.replace("a" * 64, "A" * 64))], "GET", {}),
        (
            [("extensions", '{"persistedQuery": {"version": 2, "sha256Hash": "' + HASH + '"}}')],
            "GET",
            {},
        ),
        ([("variables", "{}")], "GET", {}),
        ([("extensions", EXTENSIONS), ("debug", "1")], "GET", {}),
    ],
)
def test_anything_but_a_small_anonymous_persisted_get_is_no_candidate(
    params: list[tuple[str, str]], method: str, headers: dict[str, str]
) -> None:
    assert key_of(*params, method=method, **headers) is None


def test_tags_fall_back_to_products_then_to_the_overflow_tag_under_the_cap() -> None:
    small = ResponseTags()
    small.note_products([1, 2], [9])
    small.note_variants([11, 12], [1, 1])
    small.note_collection("products")
    large = ResponseTags()
    large.note_products(range(100), [])
    large.note_variants(range(1_000, 1_400), [])
    huge = ResponseTags()
    huge.note_products(range(10_000), [])
    huge.note_collection("products")

    assert small.tags() == (
        "products",
        "product:1",
        "product:2",
        "category:9",
        "variant:11",
        "variant:12",
    )
    assert all(not t.startswith("variant:") for t in large.tags()) and "product:99" in large.tags()
    assert huge.tags() == (OVERFLOW_TAG, "products")
    for tags in (small, large, huge):
        assert len(" ".join(tags.tags())) <= MAX_TAG_BYTES


def test_every_purge_includes_the_overflow_tag_and_lists_only_when_products_changed() -> None:
    assert purge_tags([3], [30], collection=False) == (OVERFLOW_TAG, "product:3", "variant:30")
    assert purge_tags([3, 3], [], collection=True) == (OVERFLOW_TAG, "products", "product:3")


def test_if_none_match_is_compared_weakly_and_read_only_so_far() -> None:
    etag = '"abc"'
    assert etag_matches(etag, etag) and etag_matches(f"W/{etag}", etag)
    assert etag_matches(f'"x", "y", {etag}', etag) and etag_matches("*", etag)
    assert (
        not etag_matches('"x"', etag)
        and not etag_matches(None, etag)
        and not etag_matches("", etag)
    )
    assert not etag_matches('"x",' * 100 + etag, etag)  # past the entries read
    assert not etag_matches(" " * 100_000 + etag, etag)


def entry(size: int, *tags: str) -> CachedResponse:
    return CachedResponse.of(b"x" * size, tags)


def test_the_local_layer_is_bounded_by_bytes_and_drops_the_oldest() -> None:
    local = LocalResponses(max_bytes=10_000, ttl_seconds=60)
    local.following(True)
    for n in range(20):
        assert local.put(f"k{n}", entry(1_000, f"product:{n}"), local.generation)

    assert local.bytes_used <= 10_000
    assert local.get("k0") is None and local.get("k19") is not None
    assert not local.put("big", entry(20_000, "products"), local.generation)  # never fits


def test_a_purge_drops_tagged_answers_and_refuses_answers_computed_before_it() -> None:
    local = LocalResponses(max_bytes=100_000, ttl_seconds=60)
    local.following(True)
    local.put("listing", entry(10, "products", "product:1"), local.generation)
    local.put("other", entry(10, "product:2"), local.generation)
    before = local.generation

    assert local.purge(["product:1"]) == 1
    assert local.get("listing") is None and local.get("other") is not None
    assert not local.put("listing", entry(10, "products"), before)  # read before the purge
    local.following(False)  # nothing follows the purges: the layer answers nothing
    assert local.get("other") is None and len(local) == 0


def test_what_was_computed_before_the_purges_were_followed_is_not_kept() -> None:
    local = LocalResponses(max_bytes=100_000, ttl_seconds=60)
    before = local.generation
    assert not local.put("listing", entry(10, "products"), before)  # not following yet
    local.following(True)
    assert not local.put("listing", entry(10, "products"), before)  # may have missed one
    assert local.put("listing", entry(10, "products"), local.generation)


class FakePurger:
    def __init__(self) -> None:
        self.purged: list[tuple[str, ...]] = []

    async def purge(self, tags: Sequence[str]) -> None:
        self.purged.append(tuple(tags))


def event(topic: str, **payload: Any) -> Event:
    return Event(id=1, topic=topic, payload=payload)


async def test_each_catalog_event_purges_its_products_variants_and_lists() -> None:
    records = FakeCacheInvalidator()
    purger = FakePurger()
    purging = ResponsePurging(records, purger, FakeProductsOfVariants({30: 3}))

    await purging.handle([event("StockChanged", variant=30, available=0)])
    await purging.handle([event("ReviewCreated", product=4, review=1)])
    await purging.handle([event("VariantUpdated", variant=50, product=5)])
    await purging.handle([event("ProductUpdated", product=6, slug="new", previous_slug="old")])
    await purging.handle([event("ProductCreated", product=7, slug="seven")])

    assert purger.purged == [
        (OVERFLOW_TAG, "product:3", "variant:30"),
        (OVERFLOW_TAG, "product:4"),
        (OVERFLOW_TAG, "product:5", "variant:50"),
        (OVERFLOW_TAG, "products", "product:6"),
        (OVERFLOW_TAG, "products", "product:7"),
    ]
    # The records an answer is rebuilt from go first (stock and reviews are never cached).
    assert ("products", [6], ["new", "old"]) in records.calls
    assert ("variants", [50], []) in records.calls
    assert all(call[1] != [3] for call in records.calls)


async def test_a_topic_it_does_not_read_is_malformed() -> None:
    purging = ResponsePurging(FakeCacheInvalidator(), FakePurger(), FakeProductsOfVariants({}))
    with pytest.raises(MalformedEvent):
        await purging.handle([event("OrderPaid", order="o", payment=None)])
