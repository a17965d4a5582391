"""Consumer groups on the real Redis: acknowledged once handled, reclaimed from a dead
consumer, poison dead-lettered after N attempts, repeats handled once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from redis.asyncio import Redis

from domain.events import Event
from persistence.db import Database
from persistence.events.consumer import DEAD_LETTER_STREAM, ConsumerPolicy, StreamConsumer
from persistence.events.relay import OutboxRelay, stream_of
from tests.events import (
    FAST,
    RecordingHandler,
    consume_until,
    emit_rows,
    eventually,
    forget_published,
    pending_count,
)

TOPIC = "ProductUpdated"
STREAM = stream_of(TOPIC)


class StuckHandler:
    """Takes a message and never finishes: the consumer is killed while holding it."""

    name = "search-indexer-test"
    topics = (TOPIC,)

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def handle(self, events: Sequence[Event]) -> None:
        self.started.set()
        await asyncio.Event().wait()


async def test_a_consumer_killed_mid_message_leaves_it_for_another_to_reclaim(
    db: Database, redis: Redis, clean: None
) -> None:
    [event_id] = await emit_rows(db, TOPIC, [{"product": 7, "slug": "mug"}])
    await OutboxRelay(db, redis).drain()
    policy = ConsumerPolicy(**{**FAST, "claim_idle_ms": 500})
    stuck = StuckHandler()
    doomed = StreamConsumer(redis, stuck, policy, consumer_name="doomed")
    task = asyncio.create_task(doomed.run())
    async with asyncio.timeout(5):
        await stuck.started.wait()

    task.cancel()  # killed after reading, before acknowledging
    with contextlib.suppress(asyncio.CancelledError):
        await task
    handler = RecordingHandler(stuck.name, stuck.topics)
    survivor = StreamConsumer(redis, handler, policy, consumer_name="survivor")

    assert await pending_count(redis, STREAM, stuck.name) == 1
    assert await survivor.reclaim_once() == 0  # not idle long enough yet
    await consume_until(survivor, lambda: handler.handled)
    assert [event.id for event in handler.handled] == [event_id]
    assert event_id == handler.handled[0].id and handler.handled[0].payload["slug"] == "mug"
    assert await pending_count(redis, STREAM, stuck.name) == 0


async def test_a_poison_message_is_dead_lettered_after_n_attempts_and_the_rest_go_on(
    db: Database, redis: Redis, clean: None
) -> None:
    [good_before, poison, good_after] = await emit_rows(
        db,
        TOPIC,
        [{"product": 1, "slug": "a"}, {"product": 2, "poison": True}, {"product": 3, "slug": "c"}],
    )
    await OutboxRelay(db, redis).drain()
    handler = RecordingHandler(
        "poison-test", (TOPIC,), poisoned=lambda event: bool(event.payload.get("poison"))
    )
    consumer = StreamConsumer(redis, handler, ConsumerPolicy(**FAST))

    async def dead_lettered() -> bool:
        return bool(await redis.xlen(DEAD_LETTER_STREAM))

    await consume_until(consumer, dead_lettered)
    [later] = await emit_rows(db, TOPIC, [{"product": 4, "slug": "d"}])
    await OutboxRelay(db, redis).drain()
    await consume_until(consumer, lambda: len(handler.handled) == 3)

    [(_id, letter)] = await redis.xrange(DEAD_LETTER_STREAM)
    assert int(letter[b"id"]) == poison and letter[b"topic"] == TOPIC.encode()
    assert letter[b"error"] == f"RuntimeError: cannot handle event {poison}".encode()
    assert letter[b"deliveries"] == b"3" and letter[b"group"] == b"poison-test"
    assert handler.attempts[poison] == 1 + 3  # once in the first batch, then alone 3 times
    assert sorted(event.id for event in handler.handled) == [good_before, good_after, later]
    assert await pending_count(redis, STREAM, "poison-test") == 0


async def test_an_unreadable_message_is_dead_lettered_at_once(redis: Redis, clean: None) -> None:
    handler = RecordingHandler("unreadable-test", (TOPIC,))
    consumer = StreamConsumer(redis, handler, ConsumerPolicy(**FAST))
    await consumer.ensure_groups()
    await redis.xadd(STREAM, {"id": "1", "topic": TOPIC, "payload": "not json"})

    await consumer.poll_once()

    [(_id, letter)] = await redis.xrange(DEAD_LETTER_STREAM)
    assert letter[b"error"].startswith(b"unreadable message") and letter[b"deliveries"] == b"1"
    assert handler.attempts == {}
    assert await pending_count(redis, STREAM, "unreadable-test") == 0


async def test_a_repeated_event_is_handled_once(db: Database, redis: Redis, clean: None) -> None:
    [event_id] = await emit_rows(db, TOPIC, [{"product": 9, "slug": "pen"}])
    relay = OutboxRelay(db, redis)
    await relay.drain()
    await forget_published(db, TOPIC)
    await relay.drain()  # the same event twice in one read
    handler = RecordingHandler("repeat-test", (TOPIC,))
    consumer = StreamConsumer(redis, handler, ConsumerPolicy(**FAST))
    await consumer.ensure_groups()

    assert await consumer.poll_once() == 2
    await forget_published(db, TOPIC)
    await relay.drain()  # and once more, in a later read
    assert await consumer.poll_once() == 1

    assert await redis.xlen(STREAM) == 3
    assert [event.id for event in handler.handled] == [event_id]
    assert await pending_count(redis, STREAM, "repeat-test") == 0
    assert await redis.get(f"events:done:{{repeat-test}}:{event_id}") == b"1"  # handled once


class SlowFirstHandler:
    """Takes longer than the claim idle time on its first call only."""

    name = "slow-test"
    topics = (TOPIC,)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    async def handle(self, events: Sequence[Event]) -> None:
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(self.seconds)


async def test_the_done_marker_counts_an_event_handled_twice_by_a_reclaim_race(
    db: Database, redis: Redis, clean: None
) -> None:
    [event_id] = await emit_rows(db, TOPIC, [{"product": 5, "slug": "cup"}])
    await OutboxRelay(db, redis).drain()
    policy = ConsumerPolicy(**{**FAST, "claim_idle_ms": 100})
    handler = SlowFirstHandler(seconds=0.5)
    slow = StreamConsumer(redis, handler, policy, consumer_name="slow")
    fast = StreamConsumer(redis, handler, policy, consumer_name="fast")
    await slow.ensure_groups()

    reading = asyncio.create_task(slow.poll_once())  # still handling past the idle time
    await asyncio.sleep(0.25)
    assert await fast.reclaim_once() == 1  # so another consumer takes it over meanwhile
    await reading

    assert handler.calls == 2
    assert await redis.get(f"events:done:{{slow-test}}:{event_id}") == b"2"
    assert await pending_count(redis, STREAM, "slow-test") == 0


async def test_groups_each_get_every_event_and_run_stops_promptly(
    db: Database, redis: Redis, clean: None
) -> None:
    first = RecordingHandler("group-one", (TOPIC, "StockChanged"))
    second = RecordingHandler("group-two", (TOPIC,))
    consumers = [
        StreamConsumer(redis, handler, ConsumerPolicy(**{**FAST, "block_ms": 200}))
        for handler in (first, second)
    ]
    tasks = [asyncio.create_task(consumer.run()) for consumer in consumers]
    ids = await emit_rows(db, TOPIC, [{"product": 1, "slug": "a"}])
    ids += await emit_rows(db, "StockChanged", [{"variant": 5, "available": 2}])
    await OutboxRelay(db, redis).drain()

    await eventually(lambda: len(first.handled) == 2 and second.handled)
    for consumer in consumers:
        consumer.stop()
    async with asyncio.timeout(1):  # a blocked XREADGROUP returns within block_ms
        await asyncio.gather(*tasks)

    assert sorted(event.id for event in first.handled) == ids
    assert [event.id for event in second.handled] == ids[:1]
