"""Access tokens and failed-login counters in Redis.

A token is 256 random bits handed to the client once; Redis keeps only its SHA-256,
so a dump of Redis holds nothing anyone can log in with. Expiry is Redis's TTL, and
logging out deletes the key.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from domain.customers import AccessToken
from persistence.redis.errors import redis_required


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class RedisSessionStore:
    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def create(self, customer_id: int) -> AccessToken:
        token = secrets.token_urlsafe(32)
        async with redis_required():
            await self._redis.set(f"session:{digest(token)}", customer_id, ex=self._ttl)
        return AccessToken(token=token, expires_at=datetime.now(UTC) + timedelta(seconds=self._ttl))

    async def customer_id(self, token: str) -> int | None:
        if len(token) > 200:
            return None
        async with redis_required():
            value = await self._redis.get(f"session:{digest(token)}")
        return None if value is None else int(value)

    async def revoke(self, token: str) -> bool:
        if len(token) > 200:
            return False
        async with redis_required():
            return bool(await self._redis.delete(f"session:{digest(token)}"))


class RedisLoginThrottle:
    """Fixed windows: the first failure opens a window; at the limit, logins for that
    email (or from that address) are refused until the window ends."""

    def __init__(
        self, redis: Redis, *, per_email: int, per_client: int, window_seconds: int
    ) -> None:
        self._redis = redis
        self._per_email = per_email
        self._per_client = per_client
        self._window = window_seconds

    def _keys(self, email: str, client: str) -> tuple[str, str]:
        return f"login-failures:email:{digest(email)}", f"login-failures:client:{digest(client)}"

    async def blocked(self, email: str, client: str) -> bool:
        async with redis_required():
            by_email, by_client = await self._redis.mget(self._keys(email, client))
        return int(by_email or 0) >= self._per_email or int(by_client or 0) >= self._per_client

    async def failed(self, email: str, client: str) -> None:
        async with redis_required(), self._redis.pipeline(transaction=True) as pipe:
            for key in self._keys(email, client):
                pipe.set(key, 0, ex=self._window, nx=True)
                pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, email: str) -> None:
        async with redis_required():
            await self._redis.delete(self._keys(email, "")[0])
