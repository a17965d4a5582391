"""The benchmark database and Redis db: created, counted, vacuumed, flushed; one-off
statements for the checkout checks."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis

from bench.config import (
    ADMIN_DATABASE,
    CART_KEY_PATTERN,
    LOOPBACK_HOSTS,
    PROTECTED_DATABASES,
    BenchError,
    log,
)

# --------------------------------------------------------------------------- database, cache


def require_loopback(url: str, what: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise BenchError(f"{what} must point at 127.0.0.1 (got host {host!r})")


def asyncpg_dsn(database_url: str, database: str | None = None) -> str:
    """SQLAlchemy URL (`postgresql+asyncpg://...`) -> plain libpq-style DSN for asyncpg."""
    parts = urlsplit(database_url)
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit(("postgresql", parts.netloc, path, parts.query, ""))


def database_name(database_url: str) -> str:
    name = urlsplit(database_url).path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise BenchError(f"unsupported database name {name!r} in --database-url")
    return name


async def ensure_database(database_url: str, fresh: bool) -> None:
    name = database_name(database_url)
    if fresh and name in PROTECTED_DATABASES:
        raise BenchError(f"refusing to drop database {name!r}")
    admin = await asyncpg.connect(asyncpg_dsn(database_url, ADMIN_DATABASE), timeout=10)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and fresh:
            log(f"--fresh: dropping database {name}")
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            log(f"creating database {name}")
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def fetch_counts(database_url: str) -> dict[str, int | None]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        counts: dict[str, int | None] = {}
        for table in ("products", "product_variants", "reviews"):
            exists = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
            counts[table] = (
                await connection.fetchval(f"SELECT count(*) FROM {table}") if exists else None
            )
        if counts["products"] is not None:
            counts["active_products"] = await connection.fetchval(
                "SELECT count(*) FROM products WHERE status = 'active'"
            )
        return counts
    finally:
        await connection.close()


async def fetch_slugs(database_url: str, limit: int) -> list[str]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT slug FROM products WHERE status = 'active' ORDER BY id LIMIT $1", limit
        )
        return [row["slug"] for row in rows]
    finally:
        await connection.close()


async def vacuum_analyze(database_url: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()


def flush_cache(redis_url: str, *, keep_carts: bool = False) -> None:
    """FLUSHDB; with keep_carts, put the cart hashes back afterwards (DUMP/RESTORE, with
    their expiry), so the catalog cache is empty but the benchmark's carts still exist."""
    if not urlsplit(redis_url).path.strip("/").isdigit():
        raise BenchError("--redis-url must name a database number, e.g. redis://127.0.0.1:6379/14")
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        saved: list[tuple[Any, Any, Any]] = []
        if keep_carts:
            keys = list(client.scan_iter(match=CART_KEY_PATTERN, count=1000))
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.dump(key)
                pipe.pttl(key)
            dumped = pipe.execute()
            saved = [
                (key, dumped[2 * i], dumped[2 * i + 1])
                for i, key in enumerate(keys)
                if dumped[2 * i] is not None
            ]
        client.flushdb()
        if saved:
            pipe = client.pipeline(transaction=False)
            for key, value, pttl in saved:
                pipe.restore(key, max(int(pttl), 0), value)
            pipe.execute()
    finally:
        client.close()


def db_fetch(database_url: str, query: str, *params: Any) -> list[Any]:
    """Run one statement on its own connection; its rows (asyncpg Records)."""

    async def run() -> list[Any]:
        connection = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
        try:
            return list(await connection.fetch(query, *params, timeout=60))
        finally:
            await connection.close()

    return asyncio.run(run())
