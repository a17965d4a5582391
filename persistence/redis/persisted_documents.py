"""Automatic persisted queries: documents by sha256 in Redis, an LRU in front of it.

Every server shares the Redis copy (a client registers once, whichever server it hits);
each keeps its hottest documents in process, so a hit usually costs no round trip; that
copy is bounded by the bytes of text it holds, not by a number of documents.
Redis unavailable: a lookup misses (the client resends the query, which runs) and a
registration is skipped, with a warning; for `retry_after_seconds` after a failure Redis
is not asked at all (the LRU still answers). Persisted queries never fail a request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from cachetools import LRUCache
from redis.exceptions import RedisError

from persistence.redis.client import RedisClient
from persistence.redis.skip_window import SkipWindow

log = logging.getLogger(__name__)


class RedisDocumentStore:
    def __init__(
        self,
        redis: RedisClient,
        *,
        ttl_seconds: int,
        lru_bytes: int,
        timeout_seconds: float,
        retry_after_seconds: float = 5.0,
        namespace: str = "apq",
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._namespace = namespace
        self._lru: LRUCache[str, str] | None = (
            LRUCache(maxsize=lru_bytes, getsizeof=len) if lru_bytes else None
        )
        self.window = SkipWindow(
            retry_after_seconds, log, "persisted query store unavailable, lookups miss"
        )

    async def get(self, sha256_hash: str) -> str | None:
        body = self._lru.get(sha256_hash) if self._lru is not None else None
        if body is not None:
            return body
        if self.window.skipping():
            return None
        try:
            async with asyncio.timeout(self._timeout):
                # bytes: our clients never decode replies (see record_cache._send).
                stored = cast("bytes | None", await self._redis.get(self._key(sha256_hash)))
        except (RedisError, OSError, TimeoutError) as error:
            self.window.failed(error)
            return None
        if stored is None:
            return None
        body = stored.decode()
        self._remember(sha256_hash, body)
        return body

    async def put(self, sha256_hash: str, body: str) -> None:
        self._remember(sha256_hash, body)  # this server knows it either way
        if self.window.skipping():
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.set(self._key(sha256_hash), body, ex=self._ttl)
        except (RedisError, OSError, TimeoutError) as error:
            self.window.failed(error)

    @property
    def lru_bytes_used(self) -> int:
        return 0 if self._lru is None else int(self._lru.currsize)

    def _remember(self, sha256_hash: str, body: str) -> None:
        if self._lru is not None and len(body) <= self._lru.maxsize:
            self._lru[sha256_hash] = body

    def _key(self, sha256_hash: str) -> str:
        return f"{self._namespace}:{sha256_hash}"
