"""Search that survives its engine: a primary index, and a fallback when it cannot answer.

A search the primary (Elasticsearch) cannot answer — down, too slow, refusing — is answered
by the fallback (PostgreSQL) with `fallback_reason` set, so the storefront degrades in
relevance, never into an error. After a failure the primary is skipped for
`retry_after_seconds` (a small circuit breaker): a dead cluster costs one timeout per
period, not one per request.

Writes go to both indexes, the fallback first. A primary failure on a write is logged and
re-raised: the search indexer consumer retries the event (writes are idempotent), so the
primary converges once it is back, whereas a swallowed failure would leave it stale until
the next full rebuild. Writes ignore the breaker for the same reason.

Cursors belong to the engine that made them. A page-2 request carrying a fallback cursor
after the primary recovered is answered by the fallback; a primary cursor reaching the
fallback during an outage is refused by it (INVALID_CURSOR): the shopper starts over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from domain.errors import ErrorCode, InvalidInput
from domain.search import SearchIndex, SearchRequest, SearchResult, SearchUnavailable

log = logging.getLogger(__name__)


class FallbackSearchIndex:
    def __init__(
        self,
        primary: SearchIndex,
        fallback: SearchIndex,
        retry_after_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._retry_after = retry_after_seconds
        self._clock = clock
        self._skip_until: float | None = None
        self._last_failure = ""
        self.engine = primary.engine

    async def search(self, request: SearchRequest) -> SearchResult:
        if self._skip_until is not None and self._clock() < self._skip_until:
            return await self._from_fallback(request, self._last_failure)
        try:
            result = await self._primary.search(request)
        except InvalidInput as error:
            if request.after is None or error.code is not ErrorCode.INVALID_CURSOR:
                raise
            return await self._cursor_from_fallback(request, error)
        except SearchUnavailable as error:
            self._last_failure = str(error) or type(error).__name__
            self._skip_until = self._clock() + self._retry_after
            log.warning(
                "%s unavailable (%s); answering from %s for the next %.0f s",
                self._primary.engine,
                self._last_failure,
                self._fallback.engine,
                self._retry_after,
            )
            return await self._from_fallback(request, self._last_failure)
        self._skip_until = None
        return result

    async def _from_fallback(self, request: SearchRequest, failure: str) -> SearchResult:
        result = await self._fallback.search(request)
        reason = f"{self._primary.engine} unavailable: {failure}"
        return replace(result, fallback_reason=reason)

    async def _cursor_from_fallback(
        self, request: SearchRequest, refused: InvalidInput
    ) -> SearchResult:
        """A shopper paging through results the fallback gave during an outage keeps
        paging there once the primary is back, instead of hitting INVALID_CURSOR."""
        try:
            result = await self._fallback.search(request)
        except InvalidInput:
            raise refused from None
        reason = f"the cursor came from {self._fallback.engine}"
        return replace(result, fallback_reason=reason)

    async def index_products(self, product_ids: Sequence[int]) -> int:
        """The fallback's count: it compares against what it holds."""
        changed = await self._fallback.index_products(product_ids)
        try:
            await self._primary.index_products(product_ids)
        except Exception:
            log.warning("%s could not index %d products", self._primary.engine, len(product_ids))
            raise
        return changed

    async def aclose(self) -> None:
        for index in (self._primary, self._fallback):
            closer = getattr(index, "aclose", None)
            if closer is not None:
                await closer()

    async def rebuild(self) -> int:
        """Rebuilds both; the count is the primary's (the index searches read)."""
        await self._fallback.rebuild()
        return await self._primary.rebuild()
