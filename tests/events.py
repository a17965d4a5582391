"""Helpers for tests of the event pipeline: outbox rows, fast policies, and fakes that
implement the handler and search-writer ports."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, insert, select, update

from domain.events import Event
from persistence.db import Database
from persistence.events.consumer import StreamConsumer
from persistence.tables import outbox

# Short waits so a reclaim or a retry happens in a fraction of a second.
FAST: dict[str, Any] = {
    "block_ms": 50,
    "claim_idle_ms": 200,
    "max_deliveries": 3,
    "done_ttl_seconds": 600,
    "batch_size": 50,
}


@dataclass
class RecordingHandler:
    """Records the events it handled; raises for those `poisoned` says are poison."""

    name: str
    topics: tuple[str, ...]
    poisoned: Callable[[Event], bool] = lambda _event: False
    handled: list[Event] = field(default_factory=list)
    attempts: Counter[int] = field(default_factory=Counter)

    async def handle(self, events: Sequence[Event]) -> None:
        self.attempts.update(event.id for event in events)
        for event in events:
            if self.poisoned(event):
                raise RuntimeError(f"cannot handle event {event.id}")
        self.handled.extend(events)


@dataclass
class RecordingIndexWriter:
    """The SearchIndexWriter port, remembering each call."""

    calls: list[list[int]] = field(default_factory=list)

    async def index_products(self, product_ids: Sequence[int]) -> int:
        self.calls.append(list(product_ids))
        return len(product_ids)


async def emit_rows(db: Database, topic: str, payloads: list[dict[str, Any]]) -> list[int]:
    async with db.writer.begin() as connection:
        rows = await connection.execute(
            insert(outbox).returning(outbox.c.id),
            [{"topic": topic, "payload": payload} for payload in payloads],
        )
        return [int(row[0]) for row in rows]


async def unpublished(db: Database) -> int:
    async with db.reader.connect() as connection:
        return int(
            (
                await connection.execute(
                    select(func.count()).where(outbox.c.published_at.is_(None))
                )
            ).scalar_one()
        )


async def forget_published(db: Database, topic: str) -> None:
    """What a relay that died between XADD and COMMIT leaves: sent, yet unpublished."""
    async with db.writer.begin() as connection:
        await connection.execute(
            update(outbox).where(outbox.c.topic == topic).values(published_at=None)
        )


async def stream_event_ids(redis: Redis, stream: str) -> list[int]:
    return [int(fields[b"id"]) for _id, fields in await redis.xrange(stream)]


async def eventually(condition: Callable[[], Any], seconds: float = 10.0) -> None:
    """Wait until `condition()` (awaited if it returns a coroutine) is truthy."""
    async with asyncio.timeout(seconds):
        while True:
            outcome = condition()
            if asyncio.iscoroutine(outcome):
                outcome = await outcome
            if outcome:
                return
            await asyncio.sleep(0.02)


async def consume_until(consumer: StreamConsumer, done: Callable[[], Any]) -> None:
    """Reclaim and poll (as `run` does) until `done()` (awaited if need be) is truthy."""
    await consumer.ensure_groups()
    async with asyncio.timeout(10):
        while True:
            outcome = done()
            if asyncio.iscoroutine(outcome):
                outcome = await outcome
            if outcome:
                return
            await consumer.reclaim_once()
            await consumer.poll_once()


async def pending_count(redis: Redis, stream: str, group: str) -> int:
    summary = await redis.xpending(stream, group)
    return int(summary["pending"])
