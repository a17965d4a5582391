"""Redis read-through cache for catalog records, and the invalidation writes call.

One MGET per loader batch, the misses from the database in one statement, written
back in one pipeline with a TTL. Redis trouble never reaches the client: reads fall
back to the database and the cache is bypassed for a short while.

On a Redis Cluster the MGET is split by slot (`mget_nonatomic`: one MGET per node, sent
together). A screen's records need no atomic read, and a hash tag that kept them in one
slot would put the whole catalog cache, the busiest keys there are, on one node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar, cast

from redis.asyncio import RedisCluster
from redis.exceptions import RedisError

from persistence.redis.client import RedisClient
from persistence.redis.skip_window import SkipWindow

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _PendingRead:
    """MGETs asked for in one turn of the event loop, sent as one."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.done: asyncio.Future[list[bytes | None]] = asyncio.get_running_loop().create_future()


class RecordCache:
    def __init__(
        self,
        redis: RedisClient,
        *,
        ttl_seconds: int,
        namespace: str,
        retry_after_seconds: float,
        timeout_seconds: float = 0.25,
        on_lookup: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._namespace = namespace
        # One deadline per round trip (a pipeline included), on top of the client's
        # socket timeout, which bounds each read and write.
        self._timeout = timeout_seconds
        self.window = SkipWindow(
            retry_after_seconds, log, "redis unavailable, reading from the database"
        )
        self._pending: _PendingRead | None = None
        # (kind, hits, misses) per read, for the metrics; None when they are off.
        self._on_lookup = on_lookup
        self._read_many = redis.mget_nonatomic if isinstance(redis, RedisCluster) else redis.mget

    def _key(self, kind: str, key: object) -> str:
        return f"{self._namespace}:{kind}:{key}"

    async def read_through(
        self,
        kind: str,
        keys: Sequence[K],
        fetch: Callable[[list[K]], Awaitable[dict[K, V]]],
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V],
    ) -> dict[K, V]:
        found: dict[K, V] = {}
        cached = await self._mget([self._key(kind, k) for k in keys])
        misses: list[K] = []
        for key, raw in zip(keys, cached, strict=True):
            if raw is None:
                misses.append(key)
            else:
                found[key] = decode(raw)
        if self._on_lookup is not None:
            self._on_lookup(kind, len(keys) - len(misses), len(misses))
        if misses:
            fetched = await fetch(misses)
            found.update(fetched)
            await self.store(kind, fetched, encode)
        return found

    async def store(self, kind: str, values: dict[K, V], encode: Callable[[V], bytes]) -> None:
        """Write records read some other way (a join, a ranking) so the next read hits."""
        await self._set_many({self._key(kind, k): encode(v) for k, v in values.items()})

    async def invalidate_products(self, product_ids: list[int], slugs: Sequence[str] = ()) -> None:
        kinds = ("product", "product-variants", "product-images")
        keys = [self._key(kind, i) for i in product_ids for kind in kinds]
        await self._delete([*keys, *(self._key("product-slug", s) for s in slugs)])

    async def invalidate_variants(self, variant_ids: list[int]) -> None:
        await self._delete([self._key("variant", i) for i in variant_ids])

    async def invalidate_categories(self, category_ids: list[int]) -> None:
        await self._delete([self._key("category", i) for i in category_ids])

    async def _delete(self, keys: list[str]) -> None:
        if not keys:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.delete(*keys)
        except (RedisError, OSError, TimeoutError) as error:
            # Not swallowed silently: the TTL bounds the staleness, the log says why.
            log.warning("cache invalidation failed for %d keys: %s", len(keys), error)

    async def _mget(self, keys: list[str]) -> list[bytes | None]:
        """Values of `keys`; loaders batching in the same loop turn share one MGET."""
        if not keys or self.window.skipping():
            return [None] * len(keys)
        pending = self._pending
        if pending is None:
            pending = self._pending = _PendingRead()
            asyncio.get_running_loop().create_task(self._send(pending))
        start = len(pending.keys)
        pending.keys.extend(keys)
        values = await asyncio.shield(pending.done)
        return values[start : start + len(keys)]

    async def _send(self, pending: _PendingRead) -> None:
        self._pending = None
        try:
            async with asyncio.timeout(self._timeout):
                # Our clients never decode replies (app.py's redis_options leaves
                # decode_responses off), so they are bytes; redis-py types every reply
                # bytes | str whatever the flag.
                values = cast("list[bytes | None]", await self._read_many(pending.keys))
        except (RedisError, OSError, TimeoutError) as error:
            self.window.failed(error)
            values = [None] * len(pending.keys)
        pending.done.set_result(values)

    async def _set_many(self, values: dict[str, bytes]) -> None:
        if not values or self.window.skipping():
            return
        try:
            async with asyncio.timeout(self._timeout):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, value in values.items():
                        pipe.set(key, value, ex=self._ttl)
                    await pipe.execute()
        except (RedisError, OSError, TimeoutError) as error:
            self.window.failed(error)
