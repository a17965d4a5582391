"""Leaky buckets per client in Redis: the query cost is charged, an empty bucket answers
429 with Retry-After, and a Redis outage lets requests through."""

from __future__ import annotations

import logging

import pytest

from settings import Settings
from tests.client import running_app

QUERY = "{ products(first: 10) { edges { cursor } } }"  # costs 1 + 10 x 1 = 11


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limit_capacity": 25, "rate_limit_restore_rate": 1})


async def test_an_empty_bucket_gets_429_with_retry_after(limited: Settings, clean: None) -> None:
    async with running_app(limited) as client:
        first = await client.http.post("/graphql", json={"query": QUERY})
        second = await client.http.post("/graphql", json={"query": QUERY})
        third = await client.http.post("/graphql", json={"query": QUERY})
        other_client = await client.http.post(
            "/graphql", json={"query": QUERY}, headers={"Authorization": "Bearer someone-else"}
        )

    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert first.json()["extensions"]["cost"] == {
        "requestedQueryCost": 11,
        "actualQueryCost": 11,
        "maximumCost": 1000,
        "throttleStatus": {
            "maximumAvailable": 25.0,
            "currentlyAvailable": 14.0,
            "restoreRate": 1.0,
        },
    }
    body = third.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert 1 <= int(third.headers["retry-after"]) <= 11
    assert other_client.status_code == 200  # each client has its own bucket


async def test_redis_down_fails_open_with_a_warning(
    limited: Settings, clean: None, caplog: pytest.LogCaptureFixture
) -> None:
    broken = limited.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with caplog.at_level(logging.WARNING, logger="persistence.rate_limiter"):
        async with running_app(broken) as client:
            responses = [
                await client.http.post("/graphql", json={"query": QUERY}) for _ in range(4)
            ]

    assert [r.status_code for r in responses] == [200] * 4
    assert any("letting the request through" in r.getMessage() for r in caplog.records)
