"""Shared fixtures: a migrated PostgreSQL database, a Redis db, and an app per settings.

Integration tests run against the real services (`TEST_DATABASE_URL`, `TEST_REDIS_URL`);
each test starts from empty tables and an empty Redis database.

TEST_REDIS_CLUSTER=1 runs them on a Redis Cluster instead: a private three-master one
(tests/redis_cluster.py), or the one TEST_REDIS_CLUSTER_URL names. `make test` runs the
cart, rate-limit, events and checkout suites that way too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from persistence.accounts.customers import CustomerColumns  # noqa: E402
from persistence.db import Database, create_database  # noqa: E402
from persistence.migrate import upgrade  # noqa: E402
from persistence.pii import BlindIndex, PiiCipher  # noqa: E402
from persistence.redis.client import RedisClient  # noqa: E402
from persistence.tables import metadata  # noqa: E402
from settings import Settings, redis_cluster_nodes  # noqa: E402
from tests.client import AppClient, running_app  # noqa: E402
from tests.redis_cluster import private_cluster  # noqa: E402

TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/commerce_test"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_REDIS_CLUSTER_URL = os.environ.get("TEST_REDIS_CLUSTER_URL", "")
ON_REDIS_CLUSTER = os.environ.get("TEST_REDIS_CLUSTER", "") not in ("", "0") or bool(
    TEST_REDIS_CLUSTER_URL
)
# argon2id at test strength: the algorithm is the same, the cost a thousandth.
FAST_PASSWORDS = {"argon2_time_cost": 1, "argon2_memory_cost_kib": 64, "argon2_parallelism": 1}
# What production insists on besides its services; the key only ever encrypts test data.
TEST_PII_KEY = "sQ1N5rIxSnfVU0Lv7YRcHuy9klFd3gexrvUUV1GHOmE="
# model_copy(update=...) skips validation: secrets go in as the SecretStr a field holds.
TEST_PII_INDEX_KEY = "test-only-blind-index-key-never-in-production"
TEST_STATUS_TOKEN_KEY = "test-order-status-token-key-0123456789abcdef"
TEST_GIFT_CARD_CODE_KEY = "test-gift-card-code-key-0123456789abcdef"
PRODUCTION_EXTRAS = {
    "payment_gateway": "test",
    "pii_encryption_keys": SecretStr(TEST_PII_KEY),
    "pii_index_key": SecretStr(TEST_PII_INDEX_KEY),
    "order_status_token_key": SecretStr(TEST_STATUS_TOKEN_KEY),
    "gift_card_code_key": SecretStr(TEST_GIFT_CARD_CODE_KEY),
}
# How the test settings store customers: what seed_catalog writes for its reviewers.
SEED_COLUMNS = CustomerColumns(PiiCipher([TEST_PII_KEY]), BlindIndex(TEST_PII_INDEX_KEY))


async def _recreate_database(url: str) -> None:
    parsed = make_url(url)
    admin = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database="postgres"
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def database_url() -> str:
    await _recreate_database(TEST_DATABASE_URL)
    await upgrade(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = create_database(database_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A running Redis Cluster's `redis+cluster://` URL: TEST_REDIS_CLUSTER_URL's, else a
    private one started for the session (the cluster tests ask for it in any run)."""
    if TEST_REDIS_CLUSTER_URL:
        yield TEST_REDIS_CLUSTER_URL
        return
    with private_cluster() as cluster:
        yield cluster.url


@pytest.fixture(scope="session")
def shared_redis_url(request: pytest.FixtureRequest) -> str:
    """What the app's REDIS_URL is in this run: the test Redis db, or the cluster."""
    if ON_REDIS_CLUSTER:
        return str(request.getfixturevalue("redis_cluster_url"))
    return TEST_REDIS_URL


def cluster_client(url: str) -> RedisCluster:
    nodes = redis_cluster_nodes(url)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes.nodes],
        username=nodes.username,
        password=nodes.password,
    )


@pytest.fixture(scope="session")
async def redis(shared_redis_url: str) -> AsyncIterator[RedisClient]:
    client: RedisClient = (
        cluster_client(shared_redis_url) if ON_REDIS_CLUSTER else Redis.from_url(shared_redis_url)
    )
    yield client
    await client.aclose()


@pytest.fixture
async def clean(db: Database, redis: RedisClient) -> None:
    """Empty tables and an empty Redis database (every master of a cluster) before the test."""
    names = ", ".join(table.name for table in metadata.sorted_tables)
    async with db.writer.begin() as connection:
        await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    if isinstance(redis, RedisCluster):
        await redis.flushdb(target_nodes=RedisCluster.PRIMARIES)
    else:
        await redis.flushdb()


@pytest.fixture
def settings(database_url: str, shared_redis_url: str) -> Settings:
    return settings_for(database_url, shared_redis_url)


def settings_for(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    """What every test app runs with: the test keys, fast passwords, no rate limits."""
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=redis_url,
        expose_statement_count=True,
        pii_encryption_keys=TEST_PII_KEY,
        pii_index_key=TEST_PII_INDEX_KEY,
        order_status_token_key=TEST_STATUS_TOKEN_KEY,
        gift_card_code_key=TEST_GIFT_CARD_CODE_KEY,
        # Tests send many requests from one address; test_rate_limits.py sets real limits.
        rate_limit_capacity=1e9,
        rate_limit_restore_rate=1e9,
        **{**FAST_PASSWORDS, **overrides},
    )


@pytest.fixture
async def client(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(settings) as app_client:
        yield app_client
