"""Redis failures where nothing can stand in for Redis (sessions, carts, login throttles)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisError

from domain.errors import ServiceUnavailable


@asynccontextmanager
async def redis_required() -> AsyncIterator[None]:
    """Where Redis has no safe fallback, its failure is a coded, retryable error."""
    try:
        yield
    except (RedisError, OSError) as error:
        raise ServiceUnavailable() from error
