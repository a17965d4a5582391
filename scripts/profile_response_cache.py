"""Python calls, own time, Redis commands and SQL statements of one warm persisted
listing GET: uncached (RESPONSE_CACHE_ENABLED=false) against a response-cache hit.

    PROFILE_DATABASE_URL=postgresql+asyncpg://...commerce_bench \
    PROFILE_REDIS_URL=redis://127.0.0.1:6379/12 python scripts/profile_response_cache.py

It only reads the database (the bench's, seeded); Redis gets what a server writes
(the persisted document, record cache entries, rate-limit buckets, cached responses).
The app is driven over ASGI directly (no HTTP client in the profile), as a guest,
with the bench's listing document (bench/queries/listing_screen.graphql, first 20).
"""

from __future__ import annotations

import asyncio
import cProfile
import hashlib
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr
from starlette.types import ASGIApp, Message

from settings import Settings
from tests.client import CountingRedis, running_app
from tests.conftest import (
    TEST_GIFT_CARD_CODE_KEY,
    TEST_PII_INDEX_KEY,
    TEST_PII_KEY,
    TEST_STATUS_TOKEN_KEY,
)

LISTING = (Path(__file__).resolve().parents[1] / "bench/queries/listing_screen.graphql").read_text()
HASH = hashlib.sha256(LISTING.encode()).hexdigest()
REQUESTS = 200


def settings(enabled: bool) -> Settings:
    return Settings(
        environment="test",
        database_url=os.environ["PROFILE_DATABASE_URL"],
        redis_url=os.environ["PROFILE_REDIS_URL"],
        expose_statement_count=True,
        pii_encryption_keys=SecretStr(TEST_PII_KEY),
        pii_index_key=SecretStr(TEST_PII_INDEX_KEY),
        order_status_token_key=SecretStr(TEST_STATUS_TOKEN_KEY),
        gift_card_code_key=SecretStr(TEST_GIFT_CARD_CODE_KEY),
        rate_limit_capacity=1e9,
        rate_limit_restore_rate=1e9,
        response_cache_enabled=enabled,
    )


async def call(
    app: ASGIApp, method: str, query: str, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"accept", b"application/json"),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 0
    headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers.update({k.decode(): v.decode() for k, v in message["headers"]})
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, b"".join(chunks)


async def measure(enabled: bool) -> dict[str, Any]:
    config = settings(enabled)
    redis = CountingRedis.from_url(os.environ["PROFILE_REDIS_URL"])
    params = urlencode(
        {
            "extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": HASH}}),
            "variables": json.dumps({"first": 20}),
        }
    )
    async with running_app(config, redis=redis) as client:
        app = client.app
        register = json.dumps(
            {
                "query": LISTING,
                "variables": {"first": 20},
                "extensions": {"persistedQuery": {"version": 1, "sha256Hash": HASH}},
            }
        ).encode()
        await call(app, "POST", "", register)
        for _ in range(10):
            status, headers, body = await call(app, "GET", params)
            assert status == 200 and b'"errors"' not in body, body[:300]
        await asyncio.sleep(0.2)  # the purge tail has started following
        for _ in range(5):
            status, headers, body = await call(app, "GET", params)
        redis.commands.clear()
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for _ in range(REQUESTS):
            status, headers, body = await call(app, "GET", params)
        profile.disable()
        elapsed = time.perf_counter() - started
        commands = dict(redis.commands)
        stats = pstats.Stats(profile)
        own = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:8]  # type: ignore[attr-defined]
        return {
            "cache": headers.get("x-response-cache"),
            "status": status,
            "bytes": len(body),
            "statements": headers.get("x-sql-statements"),
            "calls_per_request": stats.total_calls / REQUESTS,  # type: ignore[attr-defined]
            "ms_per_request_profiled": elapsed * 1000 / REQUESTS,
            "redis_commands_per_request": {k: v / REQUESTS for k, v in commands.items()},
            "top_own_time": [
                (f"{Path(func[0]).name}:{func[1]}:{func[2]}", round(v[2] * 1e6 / REQUESTS, 1))
                for func, v in own
            ],
        }


async def main() -> None:
    for enabled in (False, True):
        result = await measure(enabled)
        print(("cached" if enabled else "uncached"), json.dumps(result, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
