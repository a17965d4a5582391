"""Leaky buckets per client in Redis: the query cost is charged, an empty bucket answers
429 with Retry-After, and a Redis outage lets requests through."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

import pytest
from pydantic import SecretStr

from persistence.redis.client import RedisClient
from persistence.redis.rate_limiter import RedisRateLimiter
from settings import Settings
from tests.client import CountingRedis, customer_token, running_app
from tests.conftest import ON_REDIS_CLUSTER, TEST_REDIS_URL, cluster_client

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


# Local buckets: each worker answers from memory within an allowance and sends its spend
# to Redis in the background (persistence/redis/rate_limiter.py states the bound).


def worker_limiter(
    redis: RedisClient,
    *,
    capacity: float,
    restore_rate: float,
    local_share: float,
    sync_seconds: float = 10.0,  # by default, only what the request path sends
    max_clients: int = 10_000,
) -> RedisRateLimiter:
    """One worker's limiter, as app.py builds it."""
    return RedisRateLimiter(
        redis,
        capacity=capacity,
        restore_rate=restore_rate,
        timeout_seconds=2.0,  # a loaded 2-core machine must not pass for an outage
        local_share=local_share,
        sync_seconds=sync_seconds,
        max_clients=max_clients,
    )


def new_client(url: str) -> RedisClient:
    return cluster_client(url) if ON_REDIS_CLUSTER else CountingRedis.from_url(url)


def reconciler_tasks() -> int:
    return sum(
        1 for t in asyncio.all_tasks() if t.get_name() == "rate-limit-reconciler" and not t.done()
    )


async def stored_points(redis: RedisClient, client: str) -> float:
    stored = await redis.hget(f"ratelimit:{client}", "points")  # type: ignore[misc]
    assert stored is not None
    return float(stored)


async def test_two_workers_hammering_one_bucket_admit_no_more_than_the_stated_bound(
    shared_redis_url: str, clean: None
) -> None:
    capacity, rate, share, workers = 200.0, 20.0, 0.1, 2
    allowance = capacity * share
    clients = [new_client(shared_redis_url) for _ in range(workers)]
    limiters = [
        worker_limiter(
            c, capacity=capacity, restore_rate=rate, local_share=share, sync_seconds=0.02
        )
        for c in clients
    ]
    admitted: list[int] = []

    async def hammer(limiter: RedisRateLimiter, cost: int, until: float) -> None:
        while time.monotonic() < until:
            decision = await limiter.take("hammered", cost)
            if decision.allowed:
                admitted.append(cost)
            await asyncio.sleep(0)  # a local answer never yields; other requests would

    started = time.time()
    until = time.monotonic() + 1.5
    await asyncio.gather(
        *(hammer(limiter, cost, until) for limiter in limiters for cost in (1, 2, 3))
    )
    refused = [await limiter.take("hammered", 100) for limiter in limiters]
    for limiter in limiters:
        await limiter.stop()
    elapsed = time.time() - started
    for c in clients:
        await c.aclose()

    bound = capacity + rate * elapsed + (2 * workers - 1) * allowance
    assert capacity <= sum(admitted) <= bound, (sum(admitted), bound)
    # Over its limit, the client is refused by either worker, with a Retry-After.
    assert [d.allowed for d in refused] == [False, False]
    assert all(d.retry_after_seconds >= 1 for d in refused)


async def test_one_worker_answers_from_memory_and_admits_exactly_its_capacity(
    shared_redis_url: str, redis: RedisClient, clean: None
) -> None:
    client = new_client(shared_redis_url)
    limiter = worker_limiter(client, capacity=100, restore_rate=0.001, local_share=0.25)
    await limiter.take("warm-up", 1)  # Redis knows the script now (no NOSCRIPT retry)
    scripts = client.commands["EVALSHA"] if isinstance(client, CountingRedis) else 0

    decisions = [await limiter.take("exact", 5) for _ in range(30)]
    await limiter.stop()
    await client.aclose()

    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 20  # 100 points, 5 a take: one worker's answers are exact
    assert [round(d.available) for d in allowed] == list(range(95, -1, -5))
    assert all(not d.allowed and d.retry_after_seconds >= 1 for d in decisions[20:])
    assert 0 <= await stored_points(redis, "exact") < 0.5  # every admitted point charged
    if isinstance(client, CountingRedis):
        # The first take; then one script per allowance (25 points: 5 takes) while more
        # than an allowance is left (takes 7 and 13, the 5 before each answered from
        # memory, and 14-15); below that every take is Redis's (16-30): 18 of 30.
        assert client.commands["EVALSHA"] - scripts == 18


async def test_a_flood_of_new_clients_keeps_the_local_table_bounded_and_charges_all(
    shared_redis_url: str, redis: RedisClient, clean: None
) -> None:
    client = new_client(shared_redis_url)
    limiter = worker_limiter(
        client, capacity=100, restore_rate=0.001, local_share=0.25, max_clients=50
    )

    first, second = await limiter.take("hot", 5), await limiter.take("hot", 5)  # 5 unsent
    flood = [await limiter.take(f"203.0.113.{n % 256}:{n}", 1) for n in range(500)]
    table = limiter.local_clients
    third = await limiter.take("hot", 5)
    await limiter.stop()
    await client.aclose()

    assert first.allowed and second.allowed and third.allowed
    assert all(d.allowed for d in flood)
    assert table <= 50
    assert 84.9 < await stored_points(redis, "hot") <= 85.1  # 15 points, none forgotten


async def test_warm_requests_answer_their_limit_without_a_round_trip(
    settings: Settings, redis: RedisClient, clean: None
) -> None:
    configured = settings.model_copy(
        update={
            "rate_limit_capacity": 10_000,
            "rate_limit_restore_rate": 0.001,
            "rate_limit_local_share": 0.25,
            "rate_limit_sync_ms": 1_000,
        }
    )
    counting = CountingRedis.from_url(TEST_REDIS_URL)
    async with running_app(configured, redis=counting) as client:
        responses = [await client.http.post("/graphql", json={"query": QUERY}) for _ in range(20)]
        scripts = counting.commands["EVALSHA"]
        reconcilers = reconciler_tasks()
    keys = [key async for key in counting.scan_iter("ratelimit:*")]
    left = float(await counting.hget(keys[0], "points"))  # type: ignore[misc]
    await counting.aclose()

    available = [r.json()["extensions"]["cost"]["throttleStatus"] for r in responses]
    assert [r.status_code for r in responses] == [200] * 20
    for n, status in enumerate(available, start=1):
        assert abs(status["currentlyAvailable"] - (10_000 - 11 * n)) < 0.1, (n, status)
        assert status["maximumAvailable"] == 10_000.0
    assert scripts <= 3  # the first request's, and at most two flushes of a second each
    assert len(keys) == 1
    assert abs(left - (10_000 - 11 * 20)) < 0.1  # the spend reached Redis when it closed
    assert reconcilers == 1 and reconciler_tasks() == 0  # it stopped with the app


async def test_two_servers_share_one_bucket_and_either_throttles_it_when_empty(
    settings: Settings, clean: None
) -> None:
    configured = settings.model_copy(
        update={
            "rate_limit_capacity": 110,
            "rate_limit_restore_rate": 0.001,
            "rate_limit_local_share": 0.25,  # 27.5 points unsent per server at most
        }
    )
    async with running_app(configured) as first, running_app(configured) as second:
        responses = [
            await server.http.post("/graphql", json={"query": QUERY})
            for _ in range(15)
            for server in (first, second)
        ]

    admitted = [r for r in responses if r.status_code == 200]
    # 110 points at 11 a request: 10 exactly; two servers may admit 3 x 27.5 more.
    assert 10 <= len(admitted) <= 10 + int(3 * 27.5 // 11)
    for last in responses[-2:]:  # one from each server
        assert last.status_code == 429 and int(last.headers["retry-after"]) >= 1
        assert last.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
