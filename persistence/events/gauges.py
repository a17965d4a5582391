"""The event pipeline's health as gauges, sampled by the worker on a timer.

Sampled where the state is shared (the outbox table, the streams), so any one worker's
reading is the truth: `python app.py worker` runs `sample` every
`METRICS_SAMPLE_SECONDS` as an interval job. A scrape never waits on PostgreSQL or
Redis, and under multiprocess mode a scrape-time collector would not be exported at all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError
from sqlalchemy import func, select

from persistence.db import Database, aware, pool_usage
from persistence.events.consumer import DEAD_LETTER_STREAM, StreamConsumer
from persistence.redis.client import RedisClient
from persistence.tables import outbox

if TYPE_CHECKING:
    from domain.live_updates import LiveFeed
    from observability.metrics import Metrics

log = logging.getLogger(__name__)


class EventGauges:
    def __init__(
        self,
        db: Database,
        redis: RedisClient,
        consumers: Sequence[StreamConsumer],
        metrics: Metrics,
    ) -> None:
        self._db = db
        self._redis = redis
        self._metrics = metrics
        self._groups = {(c.group, stream) for c in consumers for stream in c.streams}

    async def sample(self) -> int:
        """Read every gauge once; 0, so the worker's job log stays quiet."""
        await self._outbox_age()
        await self._streams()
        sample_pools(self._db, self._metrics)
        return 0

    async def _outbox_age(self) -> None:
        async with self._db.primary_reader.connect() as connection:
            oldest = (
                await connection.execute(
                    select(func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
                )
            ).scalar_one_or_none()
        age = 0.0 if oldest is None else (datetime.now(UTC) - aware(oldest)).total_seconds()
        self._metrics.outbox_oldest_age.set(max(age, 0.0))

    async def _streams(self) -> None:
        for stream in sorted({stream for _, stream in self._groups}):
            try:
                groups: list[dict[Any, Any]] = await self._redis.xinfo_groups(stream)
            except ResponseError:  # the stream does not exist yet
                groups = []
            by_name = {_text(g.get("name", g.get(b"name", b""))): g for g in groups}
            for group, group_stream in self._groups:
                if group_stream != stream:
                    continue
                info = by_name.get(group, {})
                self._metrics.consumer_pending.labels(group, stream).set(
                    int(info.get("pending", 0) or 0)
                )
                # Redis 7 reports lag; None when it cannot tell (after XDEL/trim).
                self._metrics.consumer_lag.labels(group, stream).set(int(info.get("lag") or 0))
        self._metrics.dead_letters.set(int(await self._redis.xlen(DEAD_LETTER_STREAM)))


def sample_live_feed(feed: LiveFeed, metrics: Metrics, delivered_before: int) -> int:
    """The feed's listeners now, and its deliveries since `delivered_before` (returned
    for the next sample)."""
    metrics.live_subscriptions.set(feed.listeners)
    delivered = feed.delivered
    if delivered > delivered_before:
        metrics.live_deliveries.inc(delivered - delivered_before)
    return delivered


def sample_pools(db: Database, metrics: Metrics) -> None:
    for engine_name, engine in db.engines.items():
        for state, value in pool_usage(engine).items():
            metrics.db_pool.labels(engine_name, state).set(value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
