"""Leaky buckets per client in Redis: the query cost is charged, an empty bucket answers
429 with Retry-After, and a Redis outage lets requests through."""

from __future__ import annotations

import logging
import secrets

import pytest
from pydantic import SecretStr

from settings import Settings
from tests.client import CountingRedis, customer_token, running_app
from tests.conftest import TEST_REDIS_URL

QUERY = "{ products(first: 10) { edges { cursor } } }"  # costs 1 + 10 x 1 = 11


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limit_capacity": 25, "rate_limit_restore_rate": 1})


async def test_an_empty_bucket_gets_429_with_retry_after(
    settings: Settings, limited: Settings, clean: None
) -> None:
    async with running_app(settings) as unlimited:
        someone_else = await customer_token(unlimited, "someone@example.com")
    async with running_app(limited) as client:
        first = await client.http.post("/graphql", json={"query": QUERY})
        second = await client.http.post("/graphql", json={"query": QUERY})
        third = await client.http.post("/graphql", json={"query": QUERY})
        other_client = await client.http.post(
            "/graphql", json={"query": QUERY}, headers={"Authorization": f"Bearer {someone_else}"}
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
    broken = limited.model_copy(update={"redis_url": SecretStr("redis://127.0.0.1:1/0")})
    with caplog.at_level(logging.WARNING, logger="persistence.redis.rate_limiter"):
        async with running_app(broken) as client:
            responses = [
                await client.http.post("/graphql", json={"query": QUERY}) for _ in range(4)
            ]

    assert [r.status_code for r in responses] == [200] * 4
    assert any("letting the request through" in r.getMessage() for r in caplog.records)


async def test_made_up_bearer_tokens_pay_from_the_address_bucket(
    limited: Settings, clean: None
) -> None:
    async with running_app(limited) as client:
        statuses = [
            (await client.http.post("/graphql", json={"query": QUERY}, headers=headers)).status_code
            for headers in (
                {},
                {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"},
                {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"},
                {"Authorization": "Bearer x"},
            )
        ]

    # 25 points, 11 a request: the same as three requests without any header.
    assert statuses == [200, 200, 429, 429]


async def test_every_token_of_one_customer_drains_one_bucket(
    settings: Settings, clean: None
) -> None:
    heavy = "{ products(first: 40) { edges { cursor } } }"  # 41 points
    configured = settings.model_copy(
        update={"rate_limit_capacity": 100, "rate_limit_restore_rate": 0.01}
    )
    async with running_app(configured) as client:
        first_login = await customer_token(client, "ada@example.com")
        second_login = await customer_token(client, "ada@example.com")
        other = await customer_token(client, "bob@example.com")
        statuses = [
            (await client.query(heavy, token=token)).status
            for token in (first_login, second_login, first_login, other)
        ]
        logged_out = await client.query("{ products(first: 1) { edges { cursor } } }")

    assert first_login != second_login
    assert statuses == [200, 200, 429, 200]  # Ada's two sessions: one bucket of 100
    assert logged_out.status == 200  # the address's bucket paid only for the sign-ups


async def test_a_signed_in_request_reads_its_session_once(settings: Settings, clean: None) -> None:
    redis = CountingRedis.from_url(TEST_REDIS_URL)
    async with running_app(settings, redis=redis) as client:
        token = await customer_token(client, "ada@example.com")
        before = redis.commands["GET"]
        result = await client.query("{ me { email } a: me { id } }", token=token)
        reads = redis.commands["GET"] - before

    assert result.data["me"] == {"email": "ada@example.com"}
    assert reads == 1  # the rate limiter and the viewer share one session lookup
