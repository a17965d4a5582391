"""Shared fixtures: a migrated PostgreSQL database, a Redis db, and an app per settings.

Integration tests run against the real services (`TEST_DATABASE_URL`, `TEST_REDIS_URL`);
each test starts from empty tables and an empty Redis database.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from persistence.accounts.customers import CustomerColumns  # noqa: E402
from persistence.db import Database, create_database  # noqa: E402
from persistence.migrate import upgrade  # noqa: E402
from persistence.pii import BlindIndex, PiiCipher  # noqa: E402
from persistence.tables import metadata  # noqa: E402
from settings import Settings  # noqa: E402
from tests.client import AppClient, running_app  # noqa: E402

TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/commerce_test"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
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
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def clean(db: Database, redis: Redis) -> None:
    """Empty tables and an empty Redis database before the test."""
    names = ", ".join(table.name for table in metadata.sorted_tables)
    async with db.writer.begin() as connection:
        await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await redis.flushdb()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=TEST_REDIS_URL,
        expose_statement_count=True,
        pii_encryption_keys=TEST_PII_KEY,
        pii_index_key=TEST_PII_INDEX_KEY,
        order_status_token_key=TEST_STATUS_TOKEN_KEY,
        gift_card_code_key=TEST_GIFT_CARD_CODE_KEY,
        # Tests send many requests from one address; test_rate_limits.py sets real limits.
        rate_limit_capacity=1e9,
        rate_limit_restore_rate=1e9,
        **FAST_PASSWORDS,
    )


@pytest.fixture
async def client(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(settings) as app_client:
        yield app_client
