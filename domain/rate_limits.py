"""Rate limits: what a client's bucket holds, what taking from it answers, and the port
the edge charges through (a Redis leaky bucket in production)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# (capacity in points, restore rate in points per second)
BucketSize = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    available: float
    capacity: float
    restore_rate: float
    retry_after_seconds: int


class RateLimiter(Protocol):
    async def take(self, client: str, cost: int, limit: BucketSize | None = None) -> Decision:
        """Take `cost` points from `client`'s bucket; `limit` overrides the default size
        and rate (a partner's tier)."""
        ...
