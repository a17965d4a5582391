"""Runs one event handler as a Redis Streams consumer group.

- One group per handler (its `name`), created idempotently at the start of each stream
  (`XGROUP CREATE ... 0 MKSTREAM`), so events relayed before the first start are seen.
- `XREADGROUP` over the streams of the handler's topics (in one slot: STREAM_PREFIX),
  blocking at most `block_ms` so `stop()` takes effect promptly; the batch is handled,
  then `XACK`ed.
- Messages another consumer read and never acknowledged (it died, or the handler
  raised) are taken over with `XAUTOCLAIM` once idle for `claim_idle_ms`; that is also
  the retry delay of a failed message.
- A message that failed on its `max_deliveries`-th delivery goes to `events:dead-letter`
  with its error and is acknowledged; the others go on.
- Dedupe: after a successful handle, `events:done:{<group>}:<event id>` counts the
  handlings (INCR, with a TTL), and an event whose key exists is acknowledged without
  handling (one MGET per batch: the hash tag keeps a group's keys in one slot of a Redis
  Cluster). The count is 1 unless a race handled it twice: what an operator (and the
  multi-process test) reads to see that every event was handled once per group. Handlers are
  idempotent as well, because a crash between handling and setting the key repeats it
  (and a handler slower than `claim_idle_ms` may be reclaimed while still running).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.trace import SpanKind, Tracer
from redis.exceptions import ResponseError

from domain.events import Event, EventHandler, MalformedEvent
from integrations.tracing import hooks_only_if_recorded
from persistence.events.relay import stream_of
from persistence.events.trace_context import from_stream_fields, links_to, new_trace, untraced
from persistence.redis.client import RedisClient

log = logging.getLogger(__name__)

DEAD_LETTER_STREAM = "events:dead-letter"


@dataclass(frozen=True, slots=True)
class ConsumerPolicy:
    block_ms: int = 1_000
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    done_ttl_seconds: int = 7 * 24 * 3600
    batch_size: int = 100
    dead_letter_max_length: int = 100_000


@dataclass(slots=True)
class _Delivery:
    stream: str
    message_id: str
    fields: dict[bytes, bytes]
    deliveries: int  # this one included
    event: Event | None = None


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class StreamConsumer:
    def __init__(
        self,
        redis: RedisClient,
        handler: EventHandler,
        policy: ConsumerPolicy,
        consumer_name: str | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._redis = redis
        self._tracer = tracer  # None: tracing is off
        self.handler = handler
        self._policy = policy
        self.group = handler.name
        self.name = consumer_name or default_consumer_name()
        self.streams = [stream_of(topic) for topic in handler.topics]
        self._stopping = asyncio.Event()

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Read, handle, acknowledge and reclaim until `stop()`."""
        # Half the idle time: a dead consumer's message waits at most 1.5x it.
        claim_every = max(self._policy.claim_idle_ms / 2000, 0.05)
        next_claim = 0.0
        ready = False
        while not self._stopping.is_set():
            try:
                if not ready:
                    await self.ensure_groups()
                    ready = True
                if time.monotonic() >= next_claim:
                    await self.reclaim_once()
                    next_claim = time.monotonic() + claim_every
                await self.poll_once()
            except Exception:
                # Redis away, or its data flushed (NOGROUP): recreate the groups and go on.
                log.exception("consumer %s/%s failed; retrying", self.group, self.name)
                ready = False
                await self._pause(max(self._policy.block_ms / 1000, 0.1))

    def stop(self) -> None:
        self._stopping.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                await self._redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    # -- one step each -----------------------------------------------------------------

    async def poll_once(self) -> int:
        """Read new messages (waiting up to `block_ms`) and process them: how many."""
        if self._tracer is None:
            return await self._poll_once()
        with untraced():  # the handling spans are a trace each; the reads are none
            return await self._poll_once()

    async def _poll_once(self) -> int:
        answer: Any = await self._redis.xreadgroup(
            self.group,
            self.name,
            dict.fromkeys(self.streams, ">"),
            count=self._policy.batch_size,
            block=self._policy.block_ms,
        )
        deliveries = [
            _Delivery(_text(stream), _text(message_id), fields or {}, 1)
            for stream, messages in answer or []
            for message_id, fields in messages
        ]
        await self._process(deliveries)
        return len(deliveries)

    async def reclaim_once(self) -> int:
        """Take over messages idle past `claim_idle_ms` and process them: how many."""
        if self._tracer is None:
            return await self._reclaim_once()
        with untraced():
            return await self._reclaim_once()

    async def _reclaim_once(self) -> int:
        claimed: list[_Delivery] = []
        for stream in self.streams:
            answer: Any = await self._redis.xautoclaim(
                stream,
                self.group,
                self.name,
                min_idle_time=self._policy.claim_idle_ms,
                start_id="0-0",
                count=self._policy.batch_size,
            )
            messages = answer[1]  # [next start, messages, ids deleted meanwhile]
            claimed += [
                _Delivery(stream, _text(message_id), fields or {}, 0)
                for message_id, fields in messages
            ]
        if not claimed:
            return 0
        # XAUTOCLAIM counted this delivery; XPENDING says how many there have been.
        async with self._redis.pipeline(transaction=False) as pipe:
            for delivery in claimed:
                pipe.xpending_range(
                    delivery.stream,
                    self.group,
                    min=delivery.message_id,
                    max=delivery.message_id,
                    count=1,
                )
            pending = await pipe.execute()
        for delivery, entries in zip(claimed, pending, strict=True):
            delivery.deliveries = int(entries[0]["times_delivered"]) if entries else 1
        log.info("consumer %s/%s reclaimed %d messages", self.group, self.name, len(claimed))
        await self._process(claimed)
        return len(claimed)

    # -- processing --------------------------------------------------------------------

    async def _process(self, deliveries: list[_Delivery]) -> None:
        readable: list[_Delivery] = []
        for delivery in deliveries:
            if not delivery.fields:
                await self._ack([delivery])  # trimmed from the stream while pending
                continue
            try:
                delivery.event = _event(delivery.fields)
            except (MalformedEvent, ValueError, KeyError) as error:
                await self._dead_letter(delivery, f"unreadable message: {error!r}")
                continue
            readable.append(delivery)
        if not readable:
            return
        done = await self._redis.mget([self._done_key(d) for d in readable])
        await self._ack([d for d, flag in zip(readable, done, strict=True) if flag])
        live: list[_Delivery] = []
        for delivery, flag in zip(readable, done, strict=True):
            if flag:
                continue
            if delivery.deliveries > self._policy.max_deliveries:
                # Its consumers kept dying on it without ever recording a failure.
                await self._dead_letter(
                    delivery, f"delivered {delivery.deliveries} times without an ack"
                )
                continue
            live.append(delivery)
        # The same event twice in one batch (relayed twice) is handled once.
        copies: dict[int, list[_Delivery]] = {}
        for delivery in live:
            copies.setdefault(_event_id(delivery), []).append(delivery)
        if not copies:
            return
        try:
            await self._handle([group[0] for group in copies.values()])
        except Exception as error:
            if len(copies) == 1:
                await self._failed(next(iter(copies.values())), error)
                return
            log.warning("%s: a batch of %d failed; one at a time", self.group, len(copies))
            for group in copies.values():
                try:
                    await self._handle([group[0]])
                except Exception as single_error:
                    await self._failed(group, single_error)
                else:
                    await self._succeeded(group)
            return
        await self._succeeded([d for group in copies.values() for d in group])

    async def _handle(self, deliveries: list[_Delivery]) -> None:
        events = [_event_of(delivery) for delivery in deliveries]
        if self._tracer is None:
            await self.handler.handle(events)
            return
        # A trace of its own per batch, linked to the trace of each request (a checkout,
        # an edit) that wrote its events: a batch serves many requests, so it can be
        # the child of none of them.
        with (
            new_trace(),
            self._tracer.start_as_current_span(
                f"{self.group} process",
                kind=SpanKind.CONSUMER,
                links=links_to(from_stream_fields(d.fields) for d in deliveries),
                attributes={
                    "messaging.system": "redis",
                    "messaging.consumer.group.name": self.group,
                    "messaging.batch.message_count": len(events),
                    "messaging.destination.name": ",".join(sorted({e.topic for e in events})),
                    "commerce.event.ids": [e.id for e in events][:100],
                },
            ) as span,
            hooks_only_if_recorded(span),
        ):
            await self.handler.handle(events)

    async def _succeeded(self, deliveries: Sequence[_Delivery]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            # One count per event handled, however many copies of it were delivered.
            for key in dict.fromkeys(self._done_key(delivery) for delivery in deliveries):
                pipe.incr(key)
                pipe.expire(key, self._policy.done_ttl_seconds)
            for stream, ids in _by_stream(deliveries).items():
                pipe.xack(stream, self.group, *ids)
            await pipe.execute()

    async def _failed(self, copies: list[_Delivery], exception: Exception) -> None:
        first = copies[0]
        error = f"{type(exception).__name__}: {exception}"
        if first.deliveries >= self._policy.max_deliveries:
            await self._dead_letter(first, error)
            await self._ack(copies[1:])
            return
        # Left pending: reclaimed (by anyone in the group) after the idle time.
        log.warning(
            "%s: event %s failed on delivery %d of %d: %s",
            self.group,
            _event_id(first),
            first.deliveries,
            self._policy.max_deliveries,
            error,
        )

    async def _dead_letter(self, delivery: _Delivery, error: str) -> None:
        log.error(
            "%s: message %s of %s dead-lettered: %s",
            self.group,
            delivery.message_id,
            delivery.stream,
            error,
        )
        fields: dict[Any, Any] = {
            **delivery.fields,
            "stream": delivery.stream,
            "group": self.group,
            "message_id": delivery.message_id,
            "deliveries": str(delivery.deliveries),
            "error": error[:2000],
        }
        # No MULTI: the two keys may live on different cluster nodes. A crash between
        # them dead-letters the message twice at worst.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(
                DEAD_LETTER_STREAM,
                fields,
                maxlen=self._policy.dead_letter_max_length,
                approximate=True,
            )
            pipe.xack(delivery.stream, self.group, delivery.message_id)
            await pipe.execute()

    async def _ack(self, deliveries: Sequence[_Delivery]) -> None:
        for stream, ids in _by_stream(deliveries).items():
            await self._redis.xack(stream, self.group, *ids)

    def _done_key(self, delivery: _Delivery) -> str:
        return f"events:done:{{{self.group}}}:{_event_id(delivery)}"


def _event(fields: dict[bytes, bytes]) -> Event:
    payload = orjson.loads(fields[b"payload"])
    if not isinstance(payload, dict):
        raise MalformedEvent("the payload is not an object")
    return Event(
        id=int(fields[b"id"]),
        topic=fields[b"topic"].decode(),
        payload=payload,
        created_at=fields.get(b"created_at", b"").decode(),
    )


def _event_of(delivery: _Delivery) -> Event:
    assert delivery.event is not None, "only parsed deliveries are handled"
    return delivery.event


def _event_id(delivery: _Delivery) -> int:
    return _event_of(delivery).id


def _by_stream(deliveries: Sequence[_Delivery]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for delivery in deliveries:
        grouped.setdefault(delivery.stream, []).append(delivery.message_id)
    return grouped


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
