"""Failed attempts per client in Redis: a fixed window opened by the first failure.

Like the login throttle (persistence/accounts/sessions.py): at the limit, the client is
refused until its window ends. Only failures are counted; the key holds a pseudonym of
the client address (the keyed blind index in the app), not the address.
"""

from __future__ import annotations

from collections.abc import Callable

from persistence.accounts.sessions import digest
from persistence.redis.client import RedisClient
from persistence.redis.errors import redis_required


class RedisFailureThrottle:
    def __init__(
        self,
        redis: RedisClient,
        *,
        name: str,
        limit: int,
        window_seconds: int,
        pseudonym: Callable[[str], str] = digest,
    ) -> None:
        self._redis = redis
        self._pseudonym = pseudonym
        self._name = name
        self._limit = limit
        self._window = window_seconds

    def _key(self, client: str) -> str:
        return f"{self._name}-failures:client:{self._pseudonym(client)}"

    async def blocked(self, client: str) -> bool:
        async with redis_required():
            failures = await self._redis.get(self._key(client))
        return int(failures or 0) >= self._limit

    async def failed(self, client: str) -> None:
        key = self._key(client)
        async with redis_required(), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=self._window, nx=True)
            pipe.incr(key)
            await pipe.execute()
