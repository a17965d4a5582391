"""Access tokens and failed-login counters in Redis.

A token is 256 random bits handed to the client once; Redis keeps only its SHA-256,
so a dump of Redis holds nothing anyone can log in with. Expiry is Redis's TTL, and
logging out deletes the key.

Each customer also has an index, `customer-sessions:<id>`: a sorted set of their
sessions' digests scored by expiry, so `revoke_all` can end every token at once. Every
write trims the members already expired, and the set expires with its newest session,
so it holds at most the sessions that are alive.

Redis Cluster: a session's key is found from the token alone, so it cannot share the
index's slot. The index is therefore changed by commands on its own key (one MULTI, one
script), and the session keys by commands of their own: a session is stored before it
is indexed, so `revoke_all` never misses one that existed when it began.

The failed-login counters for an email and for a client address are two slots as well:
each is counted in its own atomic step, and read with one round trip (a pipeline, which
a cluster client sends to each node concerned).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from domain.customers import AccessToken
from persistence.redis.client import RedisClient
from persistence.redis.errors import redis_required


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _session_key(hashed: str) -> str:
    return f"session:{hashed}"


def _index_key(customer_id: int) -> str:
    return f"customer-sessions:{customer_id}"


# KEYS: the customer's index. ARGV: now (epoch seconds), the digest to keep ('' for
# none). Takes the live sessions out of the index and answers them: the caller deletes
# their keys, so a session indexed meanwhile is either answered or made after the call.
_REVOKE_ALL = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local ended = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if member ~= ARGV[2] then
    ended[#ended + 1] = member
    redis.call('ZREM', KEYS[1], member)
  end
end
return ended
"""

# KEYS: a counter. ARGV: the window. The first failure opens the window; all count.
_COUNT_FAILURE = """
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
return redis.call('INCR', KEYS[1])
"""


class RedisSessionStore:
    def __init__(self, redis: RedisClient, *, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._revoke_all = redis.register_script(_REVOKE_ALL)

    async def create(self, customer_id: int) -> AccessToken:
        token = secrets.token_urlsafe(32)
        hashed, index, now = digest(token), _index_key(customer_id), time.time()
        async with redis_required():
            await self._redis.set(_session_key(hashed), customer_id, ex=self._ttl)
        async with redis_required(), self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(index, "-inf", now)
            pipe.zadd(index, {hashed: now + self._ttl})
            pipe.expire(index, self._ttl)  # every session lives as long: this one is newest
            await pipe.execute()
        return AccessToken(token=token, expires_at=datetime.now(UTC) + timedelta(seconds=self._ttl))

    async def revoke_all(self, customer_id: int, *, keep: str | None = None) -> int:
        """End every access token of the customer but `keep` (the caller's, say): how
        many ended."""
        kept = digest(keep) if keep is not None and len(keep) <= 200 else ""
        async with redis_required():
            digests = await self._revoke_all(
                keys=[_index_key(customer_id)], args=[time.time(), kept]
            )
        if not digests:
            return 0
        async with redis_required():
            # DEL of many keys: a cluster client splits it by slot and adds the counts.
            return int(await self._redis.delete(*(_session_key(d.decode()) for d in digests)))

    async def customer_id(self, token: str) -> int | None:
        if len(token) > 200:
            return None
        async with redis_required():
            value = await self._redis.get(_session_key(digest(token)))
        return None if value is None else int(value)

    async def revoke(self, token: str) -> bool:
        if len(token) > 200:
            return False
        async with redis_required():
            return bool(await self._redis.delete(_session_key(digest(token))))


class RedisLoginThrottle:
    """Fixed windows: the first failure opens a window; at the limit, logins for that
    email (or from that address) are refused until the window ends."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        per_email: int,
        per_client: int,
        window_seconds: int,
        prefix: str = "login-failures",
        pseudonym: Callable[[str], str] = digest,
    ) -> None:
        self._redis = redis
        self._per_email = per_email
        self._per_client = per_client
        self._window = window_seconds
        self._prefix = prefix  # one family of counters: failed logins, recovery requests
        # What stands for the email and the client address in a key: production passes the
        # keyed blind index, so a Redis dump cannot confirm a guessed email or address.
        self._pseudonym = pseudonym
        self._count_failure = redis.register_script(_COUNT_FAILURE)

    def _keys(self, email: str, client: str) -> tuple[str, str]:
        of = self._pseudonym
        return f"{self._prefix}:email:{of(email)}", f"{self._prefix}:client:{of(client)}"

    async def blocked(self, email: str, client: str) -> bool:
        async with redis_required(), self._redis.pipeline(transaction=False) as pipe:
            for key in self._keys(email, client):
                pipe.get(key)
            by_email, by_client = await pipe.execute()
        return int(by_email or 0) >= self._per_email or int(by_client or 0) >= self._per_client

    async def failed(self, email: str, client: str) -> None:
        for key in self._keys(email, client):
            async with redis_required():
                await self._count_failure(keys=[key], args=[self._window])

    async def succeeded(self, email: str) -> None:
        async with redis_required():
            await self._redis.delete(self._keys(email, "")[0])
