"""The outbox relay on PostgreSQL + Redis: every row reaches its stream, once in normal
operation even with several relays, and a Redis failure publishes nothing."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select, update

from persistence.db import Database
from persistence.events.relay import OutboxRelay, stream_of
from persistence.tables import outbox
from tests.events import emit_rows, eventually, stream_event_ids, unpublished

TOPICS = ("OrderPlaced", "StockChanged", "ProductUpdated")


async def test_two_relays_at_once_publish_every_row_exactly_once(
    db: Database, redis: Redis, clean: None
) -> None:
    ids: list[int] = []
    for number, topic in enumerate(TOPICS):
        ids += await emit_rows(db, topic, [{"n": number * 1000 + i} for i in range(170)])
    relays = [
        OutboxRelay(db, redis, batch_size=20, poll_seconds=0.01, stream_max_length=10_000)
        for _ in range(2)
    ]

    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    await eventually(lambda: _all_published(db), seconds=20)
    for relay in relays:
        relay.stop()
    await asyncio.gather(*tasks)

    relayed = Counter[int]()
    for topic in TOPICS:
        relayed.update(await stream_event_ids(redis, stream_of(topic)))
    assert len(ids) == 510
    assert set(relayed) == set(ids) and max(relayed.values()) == 1  # each exactly once
    assert relays[0].published + relays[1].published == 510
    assert relays[0].published > 0 and relays[1].published > 0  # they shared the work


async def test_a_relayed_message_carries_the_event_id_topic_payload_and_time(
    db: Database, redis: Redis, clean: None
) -> None:
    [event_id] = await emit_rows(db, "OrderPaid", [{"order": "ord_1", "payment": "pi_1"}])

    assert await OutboxRelay(db, redis).drain() == 1

    [(_message_id, fields)] = await redis.xrange(stream_of("OrderPaid"))
    assert int(fields[b"id"]) == event_id and fields[b"topic"] == b"OrderPaid"
    assert orjson.loads(fields[b"payload"]) == {"order": "ord_1", "payment": "pi_1"}
    assert fields[b"created_at"].startswith(b"20")
    assert await unpublished(db) == 0
    assert await OutboxRelay(db, redis).drain() == 0  # nothing left to send


async def test_streams_are_bounded_to_about_their_max_length(
    db: Database, redis: Redis, clean: None
) -> None:
    await emit_rows(db, "StockChanged", [{"variant": i, "available": 1} for i in range(1500)])

    await OutboxRelay(db, redis, batch_size=500, stream_max_length=100).drain()

    # MAXLEN ~ trims whole macro nodes (100 entries each by default): about, not exactly.
    assert 100 <= await redis.xlen(stream_of("StockChanged")) < 300


async def _all_published(db: Database) -> bool:
    return await unpublished(db) == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_when_redis_fails_nothing_is_marked_published_and_a_later_pass_sends_it(
    db: Database, redis: Redis, clean: None
) -> None:
    ids = await emit_rows(db, "OrderPlaced", [{"order": f"ord_{i}"} for i in range(3)])
    down = Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=0.2)

    with pytest.raises((RedisError, OSError)):
        await OutboxRelay(db, down).publish_batch()
    await down.aclose()

    assert await unpublished(db) == 3
    assert await OutboxRelay(db, redis).drain() == 3
    assert await stream_event_ids(redis, stream_of("OrderPlaced")) == ids


async def test_cleanup_forgets_only_rows_published_long_enough_ago(
    db: Database, redis: Redis, clean: None
) -> None:
    old, recent = await emit_rows(db, "OrderPaid", [{"order": "A"}, {"order": "B"}])
    await OutboxRelay(db, redis).drain()
    [waiting] = await emit_rows(db, "OrderPaid", [{"order": "C"}])
    async with db.writer.begin() as connection:
        await connection.execute(
            update(outbox)
            .where(outbox.c.id == old)
            .values(published_at=datetime.now(UTC) - timedelta(days=8))
        )

    deleted = await OutboxRelay(db, redis).delete_published(timedelta(days=7))

    async with db.reader.connect() as connection:
        left = sorted((await connection.execute(select(outbox.c.id))).scalars())
    assert deleted == 1
    assert left == [recent, waiting]  # the recent one and the one not yet published
