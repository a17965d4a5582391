"""The event worker: the outbox relay and every stream consumer as tasks of one loop.

`python app.py worker` runs it until SIGTERM/SIGINT; the embedded mode runs it inside
the server's lifespan (`RUN_WORKER_IN_PROCESS`). Stopping asks each loop to finish its
current step - a blocked XREADGROUP returns within `EVENT_CONSUMER_BLOCK_MS` - and only
cancels what is still running after a grace period; a message cancelled mid-handle is
not acknowledged, so another consumer reclaims it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from persistence.event_relay import OutboxRelay
from persistence.stream_consumer import StreamConsumer

log = logging.getLogger(__name__)


class EventWorker:
    def __init__(
        self,
        relay: OutboxRelay | None,
        consumers: Sequence[StreamConsumer],
        *,
        stop_grace_seconds: float = 5.0,
    ) -> None:
        self.relay = relay
        self.consumers = list(consumers)
        self._grace = stop_grace_seconds
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.relay is not None:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        for consumer in self.consumers:
            # Each creates its groups (at the stream's start) when it first reaches Redis.
            self._tasks.append(
                asyncio.create_task(consumer.run(), name=f"consumer-{consumer.group}")
            )
        log.info(
            "event worker started: relay %s, consumer groups %s",
            "on" if self.relay is not None else "off",
            ", ".join(c.group for c in self.consumers),
        )

    async def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        for consumer in self.consumers:
            consumer.stop()
        if not self._tasks:
            return
        _done, late = await asyncio.wait(self._tasks, timeout=self._grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        log.info("event worker stopped")
