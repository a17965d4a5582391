"""Search falls back to PostgreSQL when Elasticsearch cannot answer, and stops asking it
for a while after a failure."""

from __future__ import annotations

import logging

import pytest

from domain.errors import ErrorCode, InvalidInput
from domain.search import SearchRequest
from domain.search_fallback import FallbackSearchIndex
from tests.fakes.search_index import FakeSearchIndex


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def indexes(
    clock: Clock, retry_after: float = 10.0
) -> tuple[FakeSearchIndex, FakeSearchIndex, FallbackSearchIndex]:
    primary = FakeSearchIndex("elasticsearch", {1, 2, 3})
    fallback = FakeSearchIndex("postgres", {1, 2, 3})
    return primary, fallback, FallbackSearchIndex(primary, fallback, retry_after, clock)


async def test_a_healthy_primary_answers_without_a_fallback_reason() -> None:
    _, fallback, search = indexes(Clock())

    result = await search.search(SearchRequest(text="", first=2))

    assert result.engine == "elasticsearch"
    assert result.fallback_reason is None
    assert [h.product_id for h in result.hits] == [1, 2]
    assert fallback.searches == 0


async def test_an_unavailable_primary_is_answered_by_the_fallback_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary, _, search = indexes(Clock())
    primary.down = "timeout"

    with caplog.at_level(logging.WARNING, logger="domain.search_fallback"):
        result = await search.search(SearchRequest(text="", first=2))

    assert result.engine == "postgres"
    assert result.fallback_reason == "elasticsearch unavailable: timeout"
    assert [h.product_id for h in result.hits] == [1, 2]
    assert result.total_count == 3
    assert "elasticsearch unavailable (timeout)" in caplog.text


async def test_after_a_failure_the_primary_is_skipped_until_the_retry_period_ends() -> None:
    clock = Clock()
    primary, _, search = indexes(clock, retry_after=10.0)
    primary.down = "status 503"
    await search.search(SearchRequest(text=""))
    assert primary.searches == 1

    # Within the period: the primary is not asked, even though it is back.
    primary.down = None
    clock.now += 9.9
    skipped = await search.search(SearchRequest(text=""))
    assert primary.searches == 1
    assert skipped.engine == "postgres"
    assert skipped.fallback_reason == "elasticsearch unavailable: status 503"

    # After it: asked again, and it answers.
    clock.now += 0.2
    retried = await search.search(SearchRequest(text=""))
    assert primary.searches == 2
    assert retried.engine == "elasticsearch"
    assert retried.fallback_reason is None


async def test_a_primary_still_down_after_the_period_opens_a_new_period() -> None:
    clock = Clock()
    primary, _, search = indexes(clock, retry_after=10.0)
    primary.down = "timeout"
    await search.search(SearchRequest(text=""))
    clock.now += 10.0
    await search.search(SearchRequest(text=""))
    assert primary.searches == 2

    clock.now += 5.0
    result = await search.search(SearchRequest(text=""))

    assert primary.searches == 2
    assert result.engine == "postgres"


async def test_a_bad_cursor_is_the_clients_error_not_an_outage() -> None:
    _, _, search = indexes(Clock())

    with pytest.raises(InvalidInput) as raised:
        await search.search(SearchRequest(text="", after="garbage"))

    assert raised.value.code is ErrorCode.INVALID_CURSOR
    # The primary stays trusted: the next search goes to it.
    assert (await search.search(SearchRequest(text=""))).engine == "elasticsearch"


async def test_paging_that_began_on_the_fallback_continues_there_after_recovery() -> None:
    clock = Clock()
    primary, _, search = indexes(clock, retry_after=10.0)
    primary.down = "timeout"
    first_page = await search.search(SearchRequest(text="", first=2))
    primary.down = None
    clock.now += 11

    second_page = await search.search(
        SearchRequest(text="", first=2, after=first_page.hits[-1].cursor)
    )

    assert [h.product_id for h in second_page.hits] == [3]
    assert second_page.engine == "postgres"
    assert second_page.fallback_reason == "the cursor came from postgres"


async def test_writes_reach_both_and_a_primary_failure_is_raised_for_the_retry() -> None:
    primary, fallback, search = indexes(Clock())

    await search.index_products([7])
    assert 7 in primary.product_ids
    assert 7 in fallback.product_ids

    primary.writes_fail = True
    with pytest.raises(ConnectionError):
        await search.index_products([8])
    assert 8 in fallback.product_ids  # the fallback was written first


async def test_rebuild_rebuilds_both_and_counts_the_primary() -> None:
    primary, fallback, search = indexes(Clock())
    primary.product_ids.add(4)

    assert await search.rebuild() == 4
    assert (primary.rebuilds, fallback.rebuilds) == (1, 1)
    assert search.engine == "elasticsearch"
