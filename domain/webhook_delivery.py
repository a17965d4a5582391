"""Delivering partner events: a consumer group turns each event into one delivery per
matching webhook, and a sender posts due deliveries, signed, retrying with backoff.

The sender runs in the event worker, never in a request: checkout only writes its
outbox row. It keeps at most `concurrency` requests in flight, at most
`per_webhook` of them to one webhook, each bounded by the transport's timeout, so a
slow receiver holds one or two slots and nobody else's deliveries. A claimed delivery
is leased (its next attempt moved past the timeout): a worker that dies mid-request
leaves it to be claimed again, so a receiver may see an event twice and dedupes on
its id (at least once, like every consumer here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from domain.events import Event
from domain.notifications import Message, NotificationKind, NotificationStatus, NotificationStore
from domain.webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    SOURCE_TOPICS,
    OutgoingEvent,
    RetryPolicy,
    outgoing_events,
    signature,
)

log = logging.getLogger(__name__)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    SUCCEEDED = "succeeded"  # the receiver answered 2xx
    FAILED = "failed"  # given up after the retry window (webhook-redeliver sends it again)


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: int
    webhook_id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    body: str
    attempts: int  # made before this one
    expires_at: datetime  # no retry is scheduled past this


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None  # None: no HTTP answer (timeout, refused, blocked address)
    error: str | None  # why it failed, short and safe to show staff; None on 2xx
    latency_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One row of the delivery log, as staff and its partner see it."""

    id: int
    webhook_id: int
    partner_id: int
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_response_status: int | None
    last_error: str | None
    last_latency_ms: int | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryQueue(Protocol):
    async def enqueue(self, events: Sequence[OutgoingEvent], expires_in_seconds: float) -> int:
        """One pending delivery per enabled webhook subscribed to each event's type,
        none twice for a (webhook, event id): how many were new."""
        ...

    async def claim_due(
        self, limit: int, per_webhook: int, busy: Mapping[int, int], lease_seconds: float
    ) -> list[DueDelivery]:
        """Up to `limit` due deliveries of enabled webhooks (rows locked with SKIP LOCKED,
        so concurrent workers take different ones), at most `per_webhook` per webhook
        counting the `busy` ones already in flight; their next attempt is moved
        `lease_seconds` on."""
        ...

    async def record(
        self, delivery: DueDelivery, result: AttemptResult, retry_in_seconds: float | None
    ) -> datetime | None:
        """Store the attempt: succeeded, retried in `retry_in_seconds`, or (None) given
        up. The webhook's failing-since moment after it (None once it succeeded)."""
        ...

    async def disable(self, webhook_id: int, reason: str) -> bool:
        """Disable an enabled webhook: whether this call did."""
        ...


class WebhookTransport(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """POST once; every failure (timeout, refusal, a blocked address) is a result."""
        ...


@dataclass
class WebhookFanOut:
    """The consumer group: each event becomes a delivery per matching webhook (idempotent:
    a redelivered event adds nothing)."""

    queue: DeliveryQueue
    currency_code: str
    retry: RetryPolicy
    name: str = "webhooks"
    topics: tuple[str, ...] = SOURCE_TOPICS

    async def handle(self, events: Sequence[Event]) -> None:
        outgoing = [o for event in events for o in outgoing_events(event, self.currency_code)]
        if outgoing:
            await self.queue.enqueue(outgoing, self.retry.give_up_after_seconds)


@dataclass(frozen=True, slots=True)
class SenderPolicy:
    concurrency: int = 20
    per_webhook: int = 2
    poll_seconds: float = 1.0
    lease_seconds: float = 60.0  # longer than a request may take
    disable_after_seconds: float = 5 * 24 * 3600.0
    stop_grace_seconds: float = 3.0  # under the event worker's 5 s


@dataclass
class WebhookSender:
    queue: DeliveryQueue
    transport: WebhookTransport
    notifications: NotificationStore
    policy: SenderPolicy
    retry: RetryPolicy
    clock: Callable[[], float] = time.time
    jitter: Callable[[], float] = random.random
    _in_flight: dict[asyncio.Task[None], int] = field(default_factory=dict)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Claim and send until `stop()`: a new claim whenever a slot frees or every
        `poll_seconds`."""
        while not self._stopping.is_set():
            try:
                await self.dispatch_once()
            except Exception:
                log.exception("webhook sender: claiming failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.policy.poll_seconds)
        await self._drain()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def dispatch_once(self) -> int:
        """Claim what fits in the free slots and start sending it: how many started."""
        free = self.policy.concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        busy: dict[int, int] = {}
        for webhook_id in self._in_flight.values():
            busy[webhook_id] = busy.get(webhook_id, 0) + 1
        claimed = await self.queue.claim_due(
            free, self.policy.per_webhook, busy, self.policy.lease_seconds
        )
        for delivery in claimed:
            task = asyncio.create_task(self.send(delivery), name=f"webhook-{delivery.id}")
            self._in_flight[task] = delivery.webhook_id
            task.add_done_callback(self._finished)
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery failed", exc_info=task.exception())
        self._wake.set()  # a slot is free: claim again now

    async def _drain(self) -> None:
        tasks = list(self._in_flight)
        if not tasks:
            return
        try:
            await asyncio.wait(tasks, timeout=self.policy.stop_grace_seconds)
        finally:  # also when the worker, out of patience, cancels us
            for task in tasks:
                task.cancel()  # a finished one ignores it; a late one's lease runs out
            await asyncio.gather(*tasks, return_exceptions=True)

    async def send(self, delivery: DueDelivery) -> None:
        body = delivery.body.encode()
        now = self.clock()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(delivery.secret, int(now), body),
            EVENT_ID_HEADER: delivery.event_id,
            EVENT_TYPE_HEADER: delivery.event_type,
            "User-Agent": "commerce-webhooks/1",
        }
        result = await self.transport.post(delivery.url, body, headers)
        retry_in: float | None = None
        if not result.succeeded:
            retry_in = self.retry.delay(delivery.attempts + 1, self.jitter())
            if now + retry_in > delivery.expires_at.timestamp():
                retry_in = None  # past the window: given up
        failing_since = await self.queue.record(delivery, result, retry_in)
        if failing_since is not None:
            await self._maybe_disable(delivery, failing_since, now)

    async def _maybe_disable(
        self, delivery: DueDelivery, failing_since: datetime, now: float
    ) -> None:
        failing_for = now - failing_since.timestamp()
        if failing_for < self.policy.disable_after_seconds:
            return
        days = self.policy.disable_after_seconds / 86400
        reason = f"every delivery failed for {days:g} days"
        if not await self.queue.disable(delivery.webhook_id, reason):
            return  # disabled already (another worker, or staff)
        log.warning("webhook %d disabled: %s", delivery.webhook_id, reason)
        await self.notifications.claim(
            NotificationKind.WEBHOOK_DISABLED,
            f"webhook:{delivery.webhook_id}:{int(now)}",
            Message(
                to=None,
                subject=f"Webhook {delivery.webhook_id} disabled",
                body=(
                    f"Webhook {delivery.webhook_id} ({delivery.url}) was disabled: {reason}. "
                    "Once the receiver is fixed: python app.py webhook-enable --id "
                    f"{delivery.webhook_id}, then webhook-redeliver --webhook "
                    f"{delivery.webhook_id} sends what it missed."
                ),
            ),
            NotificationStatus.RECORDED,
        )
