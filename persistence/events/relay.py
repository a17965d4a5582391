"""The outbox relay: committed outbox rows -> Redis Streams, one stream per topic.

One pass is one transaction: lock a batch of unpublished rows, XADD them all in one
pipeline, mark them published, commit. On PostgreSQL the batch is taken `FOR UPDATE
SKIP LOCKED`, so several relays split the rows between them instead of waiting for, or
repeating, each other's. SQLite has no row locks: the embedded mode runs one relay.

Delivery is at least once, never "exactly": if the process dies (or the commit fails)
after Redis accepted the XADDs and before the UPDATE committed, the rows are still
unpublished and the next pass sends them again. Redis and the database cannot commit
together, so consumers dedupe on the event id (the outbox id, the same in every copy).
If Redis fails instead, the transaction rolls back and nothing was sent for those rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from opentelemetry.trace import Tracer
from sqlalchemy import delete, func, select, update

from persistence.db import Database
from persistence.events.trace_context import links_to, stream_fields, untraced
from persistence.redis.client import RedisClient
from persistence.tables import outbox

log = logging.getLogger(__name__)

# The hash tag puts every topic's stream in one slot of a Redis Cluster: a consumer
# reads all its topics with one blocking XREADGROUP, which a cluster only runs when the
# streams share a slot. (Events are a trickle next to carts and the cache: one slot
# carries them easily.)
STREAM_PREFIX = "events:{stream}:"
MAX_BACKOFF_SECONDS = 5.0


def stream_of(topic: str) -> str:
    return f"{STREAM_PREFIX}{topic}"


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        redis: RedisClient,
        *,
        batch_size: int = 100,
        poll_seconds: float = 0.5,
        stream_max_length: int = 100_000,
        tracer: Tracer | None = None,
    ) -> None:
        self._db = db
        self._tracer = tracer  # None: tracing is off
        self._redis = redis
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._max_length = stream_max_length
        self._stopping = asyncio.Event()
        self.published = 0  # rows this relay has published, for logs and tests

    async def publish_batch(self) -> int:
        """One pass: how many rows this relay published (0 when none were waiting)."""
        if self._tracer is None:
            return await self._publish_batch()
        with untraced():
            return await self._publish_batch()

    async def _publish_batch(self) -> int:
        query = (
            select(
                outbox.c.id,
                outbox.c.topic,
                outbox.c.payload,
                outbox.c.created_at,
                outbox.c.trace_context,
            )
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.id)
            .limit(self._batch_size)
        )
        if self._db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        async with self._db.writer.begin() as connection:
            rows = (await connection.execute(query)).all()
            if not rows:
                return 0
            if self._tracer is None:
                await self._xadd(rows)
            else:
                # A span of its own trace, linked to each checkout (or edit) it relays.
                with self._tracer.start_as_current_span(
                    "outbox.relay",
                    links=links_to(row.trace_context for row in rows),
                    attributes={"messaging.batch.message_count": len(rows)},
                ):
                    await self._xadd(rows)
            await connection.execute(
                update(outbox)
                .where(outbox.c.id.in_([row.id for row in rows]))
                .values(published_at=func.now())
            )
        self.published += len(rows)
        return len(rows)

    async def _xadd(self, rows: Any) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.xadd(
                    stream_of(row.topic),
                    _fields(row.id, row.topic, row.payload, row.created_at)
                    | stream_fields(row.trace_context),
                    maxlen=self._max_length,
                    approximate=True,
                )
            await pipe.execute()  # raises on any failure: the transaction rolls back

    async def drain(self) -> int:
        """Publish while batches come back full; the rows published."""
        total = 0
        while True:
            count = await self.publish_batch()
            total += count
            if count < self._batch_size:
                return total

    async def run(self) -> None:
        """Drain, then wait a poll interval, until `stop()`; failures are logged and
        retried on the next poll (the rows stay unpublished)."""
        pause = self._poll_seconds
        while not self._stopping.is_set():
            try:
                await self.drain()
                pause = self._poll_seconds
            except Exception:
                # Backing off to MAX_BACKOFF_SECONDS: an outage logs a line every few
                # seconds, not two a second.
                pause = min(pause * 2, max(MAX_BACKOFF_SECONDS, self._poll_seconds))
                log.exception("outbox relay pass failed; retrying in %.1f s", pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    def stop(self) -> None:
        self._stopping.set()

    async def delete_published(self, older_than: timedelta) -> int:
        """Forget rows published more than `older_than` ago (the streams and the
        consumers' dedupe memory have long moved on); unpublished rows always stay."""
        cutoff = datetime.now(UTC) - older_than
        async with self._db.writer.begin() as connection:
            result = await connection.execute(delete(outbox).where(outbox.c.published_at < cutoff))
        return int(result.rowcount)


def _fields(event_id: int, topic: str, payload: Any, created_at: datetime) -> dict[Any, Any]:
    return {
        "id": str(event_id),
        "topic": topic,
        "payload": orjson.dumps(payload).decode(),
        "created_at": created_at.isoformat(),
    }
