"""Leaky-bucket rate limits in Redis, answered from a local bucket per worker.

Each client has a bucket of `capacity` points that refills at `restore_rate` points a
second; a request takes its query cost. Redis holds the bucket every worker shares; one
atomic Lua script charges it.

Off the request path: each worker keeps, per client, the bucket Redis last reported (its
*view*) and the points it admitted since (its *unflushed* spend). A take is answered from
memory when the worker's unflushed spend, this cost included, stays within the client's
*allowance* (`local_share` x capacity) and the view, less that spend, still holds the cost
plus one allowance of headroom. Every `sync_seconds` a background task sends each dirty
client's spend to Redis (one script per client, sent together: keys of different clients
live in different slots of a Redis Cluster) and sets the view from the reply. Anything
else goes to Redis on the request path, exactly as it did before local buckets: a client
new to this worker, or whose view is older than `stale_seconds` (its first request after
a pause), a client near its limit (so a refusal, its `Retry-After` and the remaining
points come from Redis), a cost larger than the allowance.

The error bound: a worker admits at most one allowance `a` that Redis has not been told
of, and admits locally only against a view that Redis confirmed; a spend that lands on a
bucket other workers drained since is charged in full (the bucket goes into debt, and the
client waits for it to refill). Over any interval of `T` seconds a client is admitted at
most `capacity + restore_rate * T + (2W - 1) * a` points across `W` workers: at most `W *
a` still unflushed, at most `(W - 1) * a` of debt from spends admitted on views that
others had already drained. One worker (W = 1) sees every charge of its own, so its
answers are those of the exact bucket, but for one thing: a flush charges the spends it
carries at once, after the refill that the bucket's cap cut short, so a bucket near full
may hold up to one allowance less than the exact one would (stricter, never looser).
`local_share = 0` asks Redis on every take.

Memory: at most `max_clients` local buckets; the least recently used one with nothing
unflushed makes room, and when every candidate still owes Redis a spend the new client is
simply answered by Redis, so a flood of distinct clients costs round trips, not memory
and not forgotten charges.

Redis unavailable: requests pass (fail open) with a logged warning, because refusing every
request is worse than briefly not limiting; and for `retry_after_seconds` after a failure
the limiter does not ask Redis at all, so a hung Redis costs one timeout per window, not
one per request. A spend whose flush failed is forgotten with the window (fail open).

The script is not idempotent (a second run takes the cost again), and the client retries
a command once only after a connection error, never after a timeout (see app.py's
`redis_options`): a retried take after a restart charges the new server once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from redis.exceptions import RedisError

from domain.rate_limits import BucketSize, Decision
from persistence.events.trace_context import untraced
from persistence.redis.client import RedisClient
from persistence.redis.skip_window import SkipWindow

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV capacity, restore per second, now (ms), spent, cost. `spent` was
# admitted already (by a worker's local bucket): it is charged whatever the bucket holds,
# down into debt; `cost` is taken only when the bucket holds it. Each caller's clock is
# read before its round trip, so a script may carry an earlier time than the one before
# it: that refills nothing (never a negative refill, a charge) and leaves `at` as it was.
_TAKE = """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local now, spent, cost = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'points', 'at')
local points, at = tonumber(state[1]), tonumber(state[2])
if points == nil then points, at = capacity, now end
points = math.min(capacity, points + math.max(0, now - at) * rate / 1000) - spent
local allowed = 0
if points >= cost then
  points = points - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'points', tostring(points), 'at', tostring(math.max(at, now)))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - math.min(points, 0)) / rate * 1000) + 1000)
return {allowed, tostring(points)}
"""

# How many least recently used buckets a new client looks at for one to replace.
_EVICTION_SCAN = 8


@dataclass(slots=True)
class _Bucket:
    """What this worker knows of one client's bucket: Redis's last word, with this
    worker's takes since applied to it one by one, as Redis would have (each refilled up
    to the moment it was taken)."""

    capacity: float
    rate: float
    points: float  # at `at`
    at: float  # time.monotonic() of the last change
    synced: float  # time.monotonic() of Redis's last reply
    unflushed: float = 0.0  # admitted here, not yet sent
    in_flight: float = 0.0  # sent, the reply not back yet

    def estimate(self, now: float) -> float:
        return min(self.capacity, self.points + (now - self.at) * self.rate)

    def charge(self, cost: int, now: float) -> float:
        self.points, self.at = self.estimate(now) - cost, now
        self.unflushed += cost
        return self.points

    def sync(self, reply: float, now: float) -> None:
        """Redis's reply, less what this worker admitted that it has not counted yet."""
        self.points = reply - self.unflushed - self.in_flight
        self.at = self.synced = now


class RedisRateLimiter:
    def __init__(
        self,
        redis: RedisClient,
        *,
        capacity: float,
        restore_rate: float,
        timeout_seconds: float,
        retry_after_seconds: float = 5.0,
        local_share: float = 0.0,
        sync_seconds: float = 0.05,
        stale_seconds: float = 1.0,
        max_clients: int = 10_000,
    ) -> None:
        self._redis = redis
        self._capacity = capacity
        self._rate = restore_rate
        self._timeout = timeout_seconds
        self._take = redis.register_script(_TAKE)
        self._share = local_share
        self._sync_seconds = sync_seconds
        self._stale_seconds = stale_seconds
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._dirty: dict[str, _Bucket] = {}  # buckets with an unflushed spend
        self._reconciler: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.window = SkipWindow(
            retry_after_seconds, log, "rate limiter unavailable, letting the request through"
        )

    @property
    def failures(self) -> int:
        return self.window.failures

    @property
    def skipped(self) -> int:
        return self.window.skipped

    @property
    def local_clients(self) -> int:
        """How many clients this worker keeps a local bucket for."""
        return len(self._buckets)

    async def take(self, client: str, cost: int, limit: BucketSize | None = None) -> Decision:
        """Take `cost` points from `client`'s bucket; `limit` overrides the default size
        and rate (a partner's tier)."""
        capacity, rate = (self._capacity, self._rate) if limit is None else limit
        if self.window.skipping():
            return Decision(True, capacity, capacity, rate, 0)
        bucket = self._buckets.get(client) if self._share > 0 else None
        if bucket is not None:
            self._buckets.move_to_end(client)
            now = time.monotonic()
            if self._answers(bucket, cost, bucket.estimate(now) - cost, capacity, rate, now):
                left = bucket.charge(cost, now)
                self._dirty[client] = bucket
                self._ensure_reconciling()
                return Decision(True, left, capacity, rate, 0)
        return await self._take_in_redis(client, cost, capacity, rate, bucket)

    def _answers(
        self, bucket: _Bucket, cost: int, left: float, capacity: float, rate: float, now: float
    ) -> bool:
        """Whether this worker may admit `cost` without asking Redis: the same bucket
        size, a view Redis gave recently, this worker's unsent spend within the allowance,
        and one allowance of headroom left after it."""
        allowance = self._share * capacity
        return (
            (bucket.capacity, bucket.rate) == (capacity, rate)
            and now - bucket.synced <= self._stale_seconds
            and bucket.unflushed + bucket.in_flight + cost <= allowance
            and left >= allowance
        )

    async def flush(self) -> None:
        """Send every client's unflushed spend to Redis and refresh their views: what the
        background task does every `sync_seconds` (and once more when it stops)."""
        due, self._dirty = self._dirty, {}
        sent = []
        for client, bucket in due.items():
            spent, bucket.unflushed = bucket.unflushed, 0.0
            if spent:  # else a take on the request path carried it already
                sent.append((client, bucket, spent))
        if not sent or self.window.skipping():
            return  # nothing to send, or fail open: Redis is not being asked
        for _, bucket, spent in sent:
            bucket.in_flight += spent
        now_ms = int(time.time() * 1000)
        try:
            async with asyncio.timeout(self._timeout):
                replies = await asyncio.gather(
                    *(
                        self._take(
                            keys=[_key(client)],
                            args=[bucket.capacity, bucket.rate, now_ms, spent, 0],
                        )
                        for client, bucket, spent in sent
                    )
                )
        except (RedisError, OSError, TimeoutError) as error:
            self.window.failed(error)
            return
        finally:
            for _, bucket, spent in sent:
                bucket.in_flight -= spent
        now = time.monotonic()
        for (_, bucket, _), (_, points) in zip(sent, replies, strict=True):
            bucket.sync(float(points), now)

    async def stop(self) -> None:
        """Stop the background task (after the flush it may be in, never cutting one off
        halfway) and send what is still unflushed."""
        task, self._reconciler = self._reconciler, None
        if task is not None:
            self._stopping.set()
            await asyncio.gather(task, return_exceptions=True)
        await self.flush()

    async def _take_in_redis(
        self, client: str, cost: int, capacity: float, rate: float, bucket: _Bucket | None
    ) -> Decision:
        # Whatever this worker admitted for the client travels with the take.
        spent = 0.0
        if bucket is not None:
            spent, bucket.unflushed = bucket.unflushed, 0.0
            bucket.in_flight += spent
        try:
            async with asyncio.timeout(self._timeout):
                allowed, points = await self._take(
                    keys=[_key(client)],
                    args=[capacity, rate, int(time.time() * 1000), spent, cost],
                )
        except (RedisError, OSError, TimeoutError) as error:
            self.window.failed(error)
            return Decision(True, capacity, capacity, rate, 0)
        finally:
            if bucket is not None:
                bucket.in_flight -= spent
        available = float(points)
        if self._share > 0:
            self._remember(client, capacity, rate, available, bucket)
        missing = max(0.0, cost - available)
        retry_after = 0 if allowed else max(1, int(-(-missing // rate)))
        return Decision(bool(allowed), available, capacity, rate, retry_after)

    def _remember(
        self, client: str, capacity: float, rate: float, points: float, bucket: _Bucket | None
    ) -> None:
        now = time.monotonic()
        if bucket is None:
            bucket = self._buckets.get(client)
        if bucket is not None:
            bucket.capacity, bucket.rate = capacity, rate
            bucket.sync(points, now)
            if client in self._buckets:
                self._buckets.move_to_end(client)
            return
        if len(self._buckets) >= self._max_clients and not self._make_room():
            return  # every candidate owes Redis a spend: this client is asked each time
        self._buckets[client] = _Bucket(capacity, rate, points, now, now)

    def _make_room(self) -> bool:
        for index, (client, bucket) in enumerate(self._buckets.items()):
            if index >= _EVICTION_SCAN:
                return False
            if not bucket.unflushed and not bucket.in_flight:
                del self._buckets[client]
                return True
        return False

    def _ensure_reconciling(self) -> None:
        if self._reconciler is None or self._reconciler.done():
            self._stopping = asyncio.Event()
            # A context of its own: the request that happened to start it is not the
            # parent of every flush after it (its trace, its log fields).
            self._reconciler = asyncio.get_running_loop().create_task(
                self._reconcile(self._stopping),
                name="rate-limit-reconciler",
                context=contextvars.Context(),
            )

    async def _reconcile(self, stopping: asyncio.Event) -> None:
        # Untraced: a flush every `sync_seconds` would otherwise be a trace of its own.
        with untraced():
            while not stopping.is_set():
                try:
                    async with asyncio.timeout(self._sync_seconds):
                        await stopping.wait()
                except TimeoutError:
                    pass
                try:
                    await self.flush()
                except Exception:  # a bug must not stop the flushes for the process's life
                    log.exception("rate limit flush failed")


def _key(client: str) -> str:
    return f"ratelimit:{client}"
