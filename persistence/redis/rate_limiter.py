"""Leaky-bucket rate limits in Redis: one atomic Lua script per request.

Each client has a bucket of `capacity` points that refills at `restore_rate` points a
second; a request takes its query cost. Redis unavailable: requests pass (fail open) with
a logged warning, because refusing every request is worse than briefly not limiting; and
for `retry_after_seconds` after a failure the limiter does not ask Redis at all, so a hung
Redis costs one timeout per window, not one per request.

The script is not idempotent (a second run takes the cost again), and the client retries
a command once only after a connection error, never after a timeout (see app.py's
`redis_options`): a retried take after a restart charges the new server once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError

from domain.rate_limits import BucketSize, Decision
from persistence.redis.client import RedisClient
from persistence.redis.skip_window import SkipWindow

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV capacity, restore per second, now (ms), cost.
_TAKE = """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local now, cost = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'points', 'at')
local points, at = tonumber(state[1]), tonumber(state[2])
if points == nil then points, at = capacity, now end
points = math.min(capacity, points + (now - at) * rate / 1000)
local allowed = 0
if points >= cost then
  points = points - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'points', tostring(points), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {allowed, tostring(points)}
"""


class RedisRateLimiter:
    def __init__(
        self,
        redis: RedisClient,
        *,
        capacity: float,
        restore_rate: float,
        timeout_seconds: float,
        retry_after_seconds: float = 5.0,
    ) -> None:
        self._redis = redis
        self._capacity = capacity
        self._rate = restore_rate
        self._timeout = timeout_seconds
        self._take = redis.register_script(_TAKE)
        self.window = SkipWindow(
            retry_after_seconds, log, "rate limiter unavailable, letting the request through"
        )

    @property
    def failures(self) -> int:
        return self.window.failures

    @property
    def skipped(self) -> int:
        return self.window.skipped

    async def take(self, client: str, cost: int, limit: BucketSize | None = None) -> Decision:
        """Take `cost` points from `client`'s bucket; `limit` overrides the default size
        and rate (a partner's tier)."""
        capacity, rate = (self._capacity, self._rate) if limit is None else limit
        if self.window.skipping():
            return Decision(True, capacity, capacity, rate, 0)
        try:
            async with asyncio.timeout(self._timeout):
                allowed, points = await self._take(
                    keys=[f"ratelimit:{client}"],
                    args=[capacity, rate, int(time.time() * 1000), cost],
                )
        except (RedisError, OSError, TimeoutError) as error:
            self.window.failed(error)
            return Decision(True, capacity, capacity, rate, 0)
        available = float(points)
        missing = max(0.0, cost - available)
        retry_after = 0 if allowed else max(1, int(-(-missing // rate)))
        return Decision(bool(allowed), available, capacity, rate, retry_after)
