"""Two API servers (two processes, as behind a load balancer) charge one client's bucket
in the shared Redis: each answers from its local bucket and sends its spend in the
background, yet together they admit no more than the bound the limiter states
(persistence/redis/rate_limiter.py), and once the bucket is empty either one answers
THROTTLED with a Retry-After."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import app_processes
from tests.e2e.server import production_env

pytestmark = pytest.mark.e2e

QUERY = "{ products(first: 10) { edges { cursor } } }"  # costs 11
CAPACITY, RATE, SHARE, SERVERS = 2_000, 0.01, 0.1, 2


async def test_two_server_processes_hammering_one_bucket_keep_within_the_bound(
    database_url: str, clean: None, tmp_path: Path
) -> None:
    env = production_env(
        database_url,
        RATE_LIMIT_CAPACITY=str(CAPACITY),
        RATE_LIMIT_RESTORE_RATE=str(RATE),
        RATE_LIMIT_LOCAL_SHARE=str(SHARE),
        REDIS_TIMEOUT_SECONDS="2",  # a loaded machine must not pass for an outage
        DATABASE_POOL_SIZE="3",
    )
    admitted: list[int] = []
    refused: list[httpx.Response] = []
    with app_processes(tmp_path, env, servers=SERVERS, workers=0) as (servers, _):
        await asyncio.gather(*(server.ready() for server in servers))
        started = time.time()

        async def hammer(url: str) -> None:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                while True:
                    response = await client.post("/graphql", json={"query": QUERY})
                    if response.status_code == 429:
                        refused.append(response)
                        return
                    assert response.status_code == 200, response.text
                    admitted.append(11)

        # Eight connections to each server until each connection is refused.
        await asyncio.gather(*(hammer(s.url) for s in servers for _ in range(8)))
        elapsed = time.time() - started
        last = []
        for server in servers:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                last.append(await client.post("/graphql", json={"query": QUERY}))

    bound = CAPACITY + RATE * elapsed + (2 * SERVERS - 1) * SHARE * CAPACITY
    assert CAPACITY - 11 < sum(admitted) <= bound, (sum(admitted), bound, len(refused))
    for response in [*refused, *last]:
        assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
        assert response.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
