"""The event worker: the outbox relay and every stream consumer as tasks of one loop.

It also runs the housekeeping jobs (expiring unpaid orders, deleting old idempotency keys
and published outbox rows) every `HOUSEKEEPING_EVERY_SECONDS`, and the payment reconciler
every `PAYMENT_RECONCILE_EVERY_SECONDS`; each is safe to run on
several workers at once, so no job needs a leader.

`python app.py worker` runs it until SIGTERM/SIGINT; the embedded mode runs it inside
the server's lifespan (`RUN_WORKER_IN_PROCESS`). Stopping asks each loop to finish its
current step - a blocked XREADGROUP returns within `EVENT_CONSUMER_BLOCK_MS` - and only
cancels what is still running after a grace period; a message cancelled mid-handle is
not acknowledged, so another consumer reclaims it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from persistence.events.consumer import StreamConsumer
from persistence.events.relay import OutboxRelay

log = logging.getLogger(__name__)

# A job's name and what runs it; it returns how many things it did.
Job = tuple[str, Callable[[], Awaitable[int]]]


class Loop(Protocol):
    """A long-running part (the webhook sender): runs until asked to stop."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


class EventWorker:
    def __init__(
        self,
        relay: OutboxRelay | None,
        consumers: Sequence[StreamConsumer],
        *,
        jobs: Sequence[Job] = (),
        jobs_every_seconds: float = 60.0,
        stop_grace_seconds: float = 5.0,
        interval_jobs: Sequence[tuple[str, Callable[[], Awaitable[int]], float]] = (),
        loops: Sequence[tuple[str, Loop]] = (),
        on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.relay = relay
        self.consumers = list(consumers)
        self.jobs = list(jobs)
        # Jobs on their own interval (the payment reconciler), each in its own loop.
        self.interval_jobs = list(interval_jobs)
        self.loops = list(loops)
        self._on_stop = list(on_stop)  # after every task ended: close what they used
        self._jobs_every = jobs_every_seconds
        self._grace = stop_grace_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        if self.relay is not None:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        for consumer in self.consumers:
            # Each creates its groups (at the stream's start) when it first reaches Redis.
            self._tasks.append(
                asyncio.create_task(consumer.run(), name=f"consumer-{consumer.group}")
            )
        if self.jobs:
            self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        for name, job, every in self.interval_jobs:
            self._tasks.append(
                asyncio.create_task(self._every(name, job, every), name=f"job-{name}")
            )
        for name, loop in self.loops:
            self._tasks.append(asyncio.create_task(loop.run(), name=name))
        log.info(
            "event worker started: relay %s, consumer groups %s",
            "on" if self.relay is not None else "off",
            ", ".join(c.group for c in self.consumers),
        )

    async def run_jobs(self) -> dict[str, int]:
        """Every job once; a failing one is logged and the others still run."""
        done: dict[str, int] = {}
        for name, job in self.jobs:
            try:
                done[name] = await job()
            except Exception:
                log.exception(
                    "housekeeping job %s failed; next try in %.0f s", name, self._jobs_every
                )
                continue
            if done[name]:
                log.info("housekeeping: %s did %d", name, done[name])
        return done

    async def _housekeeping(self) -> None:
        while not self._stopping.is_set():
            await self.run_jobs()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._jobs_every)

    async def _every(self, name: str, job: Callable[[], Awaitable[int]], seconds: float) -> None:
        while not self._stopping.is_set():
            try:
                done = await job()
            except Exception:
                log.exception("job %s failed; next try in %.0f s", name, seconds)
            else:
                if done:
                    log.info("%s did %d", name, done)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    async def stop(self) -> None:
        self._stopping.set()
        if self.relay is not None:
            self.relay.stop()
        for consumer in self.consumers:
            consumer.stop()
        for _name, loop in self.loops:
            loop.stop()
        if self._tasks:
            _done, late = await asyncio.wait(self._tasks, timeout=self._grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
        for close in self._on_stop:
            await close()
        self._on_stop.clear()
        log.info("event worker stopped")
