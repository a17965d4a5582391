"""Search answers cached in Redis, for a short time and never past a change to the index.

Storefront search is heavy-headed: the same few queries, filters and pages come again and
again, and each costs PostgreSQL a match and an aggregate over hundreds or thousands of
documents. The page of ids, the total and the facets are kept for `ttl_seconds` under a
key that names the request, stamped with the index's *generation*, which every write to
the index bumps: re-indexing a product (a staff edit, a stock move, a review) makes every
earlier answer stale at once, on every server. The generation and the answer are read
in one round trip (a pipeline, not a script: on a Redis Cluster they live in different
slots, and answers spread over the nodes rather than crowding one slot). The products
in a result are still read live by the loaders, so prices and stock shown are never
from here.

With a read replica, the generation is bumped only once the replica has replayed the
index write (or the staleness bound has passed): bumped earlier, a search there would
compute the old answer and keep it under the new generation for the whole TTL.

Not cached: answers from a fallback engine (the primary may be back any moment). Redis
trouble: the index answers directly, with a logged warning, and the cache is not asked
for `retry_after_seconds`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import astuple
from typing import Any

import orjson
from redis.exceptions import RedisError

from domain.search import (
    FacetValue,
    SearchFacet,
    SearchHit,
    SearchIndex,
    SearchRequest,
    SearchResult,
)
from persistence.redis.client import RedisClient
from persistence.redis.skip_window import SkipWindow

log = logging.getLogger(__name__)


class CachedSearchIndex:
    def __init__(
        self,
        inner: SearchIndex,
        redis: RedisClient,
        *,
        ttl_seconds: int,
        timeout_seconds: float,
        namespace: str,
        retry_after_seconds: float = 5.0,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._inner = inner
        self._settle = settle
        self._redis = redis
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._generation_key = f"{namespace}:search-generation"
        self._prefix = f"{namespace}:search:"
        self.engine = inner.engine
        self.window = SkipWindow(
            retry_after_seconds, log, "search cache unavailable, asking the index"
        )

    async def search(self, request: SearchRequest) -> SearchResult:
        if self.window.skipping():
            return await self._inner.search(request)
        digest = _digest(request)
        key = f"{self._prefix}{digest}"
        try:
            async with asyncio.timeout(self._timeout):
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.get(self._generation_key)
                    pipe.get(key)
                    stored, cached = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as error:
            self.window.failed(error)
            return await self._inner.search(request)
        stamp = (stored or b"0") + b":"
        if cached is not None and cached.startswith(stamp):
            return _decode(cached[len(stamp) :])
        result = await self._inner.search(request)
        if result.fallback_reason is None:
            try:
                async with asyncio.timeout(self._timeout):
                    # Stamped with the generation read before searching: an answer
                    # raced by a re-index is already stale when stored.
                    await self._redis.set(key, stamp + _encode(result), ex=self._ttl)
            except (RedisError, OSError, TimeoutError) as error:
                self.window.failed(error)
        return result

    async def index_products(self, product_ids: Sequence[int]) -> int:
        changed = await self._inner.index_products(product_ids)
        if changed:  # a stock move that leaves every product as it was keeps the answers
            await self._bump()
        return changed

    async def rebuild(self) -> int:
        count = await self._inner.rebuild()
        await self._bump()
        return count

    async def aclose(self) -> None:
        closer = getattr(self._inner, "aclose", None)
        if closer is not None:
            await closer()

    async def _bump(self) -> None:
        if self._settle is not None:
            await self._settle()  # the read replica has the change: searches there see it
        # Raised, not swallowed: the indexer retries the event, so a cache that could not
        # be told about a change is not left serving the old answers for a whole TTL.
        async with asyncio.timeout(self._timeout):
            await self._redis.incr(self._generation_key)


def _digest(request: SearchRequest) -> str:
    return hashlib.sha256(repr(astuple(request)).encode()).hexdigest()[:40]


def _encode(result: SearchResult) -> bytes:
    return orjson.dumps(
        {
            "hits": [[hit.product_id, hit.cursor] for hit in result.hits],
            "next": result.has_next_page,
            "total": result.total_count,
            "facets": [
                [f.name, f.label, [[v.value, v.label, v.count] for v in f.values]]
                for f in result.facets
            ],
            "engine": result.engine,
        }
    )


def _decode(raw: bytes) -> SearchResult:
    data: dict[str, Any] = orjson.loads(raw)
    return SearchResult(
        hits=tuple(SearchHit(product_id=p, cursor=c) for p, c in data["hits"]),
        has_next_page=data["next"],
        total_count=data["total"],
        facets=tuple(
            SearchFacet(
                name=name,
                label=label,
                values=tuple(FacetValue(value=v, label=lab, count=n) for v, lab, n in values),
            )
            for name, label, values in data["facets"]
        ),
        engine=data["engine"],
    )
