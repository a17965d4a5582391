"""The one reader per API process behind GraphQL subscriptions, and the cart stream.

`LiveTail` follows the live topics' streams with plain XREAD (not a consumer group:
every process must see every event) from the moment it starts, and hands each event
to the process's `LiveFeed`, which wakes the subscribers of its keys. One blocking
read serves every subscriber of the process; no subscriber has a Redis connection or
polls. It starts with the first subscription and runs until the app stops.

Between a process's reads nothing is lost (each read starts after the last id seen,
and a Redis outage resumes from there); what a process never read (it was down, or
started later) its subscribers never hear: they catch up by querying the object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from redis.exceptions import RedisError

from domain.live_updates import CART_CHANGED, LIVE_TOPICS, LiveFeed, event_keys
from persistence.events.relay import stream_of
from persistence.redis.client import RedisClient

log = logging.getLogger(__name__)

# Cart changes are no outbox events (no id, no consumer group): a stream beside the
# event streams, outside `events:*`, in the same Redis Cluster slot (the hash tag), so one
# XREAD reads them all.
CART_STREAM = "live:{stream}:" + CART_CHANGED
READ_COUNT = 1_000  # entries per XREAD
RETRY_SECONDS = 1.0


class LiveTail:
    def __init__(
        self,
        redis: RedisClient,
        feed: LiveFeed,
        *,
        block_ms: int,
        topics: tuple[str, ...] = LIVE_TOPICS,
    ) -> None:
        self._redis = redis
        self._feed = feed
        self._block_ms = block_ms
        self._streams = [
            CART_STREAM if topic == CART_CHANGED else stream_of(topic) for topic in topics
        ]
        self._task: asyncio.Task[None] | None = None
        self.read = 0  # entries read, for tests and figures

    def ensure_started(self) -> None:
        """Start reading, once; later calls cost a check."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-tail")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        positions: dict[Any, Any] | None = None
        while True:
            try:
                if positions is None:
                    positions = await self._now()
                replies: Any = await self._redis.xread(
                    positions, count=READ_COUNT, block=self._block_ms
                )
            except (RedisError, OSError, TimeoutError) as error:
                log.warning("live updates: reading the event streams failed (%s)", error)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for stream, entries in replies or ():
                name = stream.decode() if isinstance(stream, bytes) else stream
                for entry_id, fields in entries:
                    positions[name] = entry_id
                    self.read += 1
                    self._deliver(fields)

    async def _now(self) -> dict[Any, Any]:
        # "$" in every read would skip what arrived between two reads of a quiet stream:
        # start every stream at the server's clock instead, then follow each stream's
        # last id.
        seconds, micros = await self._redis.time()
        start = f"{int(seconds) * 1000 + int(micros) // 1000}-0"
        return dict.fromkeys(self._streams, start)

    def _deliver(self, fields: dict[bytes, bytes]) -> None:
        try:
            topic = fields[b"topic"].decode()
            payload = orjson.loads(fields[b"payload"])
        except (KeyError, ValueError, UnicodeDecodeError):
            return  # not an event of ours: nothing to wake
        if isinstance(payload, dict):
            self._feed.dispatch(event_keys(topic, payload), topic)


class RedisCartChanges:
    """CartChanges on the cart stream: one XADD after a cart write. A failure is logged
    and swallowed: the write stands, and only live subscribers miss it."""

    def __init__(self, redis: RedisClient, *, max_length: int, timeout_seconds: float) -> None:
        self._redis = redis
        self._stream = CART_STREAM
        self._max_length = max_length
        self._timeout = timeout_seconds

    async def cart_changed(self, cart_id: str) -> None:
        fields: dict[Any, Any] = {
            "topic": CART_CHANGED,
            "payload": orjson.dumps({"cart": cart_id}).decode(),
        }
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.xadd(
                    self._stream, fields, maxlen=self._max_length, approximate=True
                )
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("live updates: announcing a cart change failed (%s)", error)
