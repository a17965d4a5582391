"""The shared layer of the response cache, and the tail that purges each process's own.

Keys (one hash tag, so a Redis Cluster keeps them in one slot and one script can touch
an entry, its tags and the epoch):

- `responses:{<ns>}:entry:<key>`: etag, tags and body of one answer (TTL);
- `responses:{<ns>}:tag:<tag>`: the entry keys carrying the tag (a set, TTL refreshed);
- `responses:{<ns>}:epoch`: bumped by every purge; an answer is stored only if the
  epoch read before it was computed is still current, so an answer computed from data
  older than a purge never outlives it;
- `responses:{<ns>}:purges`: a stream of the purged tags, which every API process tails
  (plain XREAD, like the live tail) to purge its in-process layer. A process whose tail
  is not following stops using that layer (and clears it) until it is again.

A look-up is one MGET (entry and epoch); a store and a purge are one script each.
Redis unavailable: look-ups miss and nothing is stored (the skip window spares the
timeouts); a purge raises, so the event is retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from domain.response_cache import CachedResponse, LocalResponses
from persistence.redis.client import RedisClient
from persistence.redis.skip_window import SkipWindow

log = logging.getLogger(__name__)

# A tag with more entries than this is purged whole when one more is stored: its set
# cannot grow without bound (entries are only a cache).
MAX_TAG_MEMBERS = 10_000
PURGE_STREAM_LENGTH = 10_000
TAIL_BLOCK_MS = 1_000
TAIL_RETRY_SECONDS = 1.0

_STORE = """
local current = redis.call('GET', KEYS[2]) or '0'
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
for i = 3, #KEYS do
  if redis.call('SCARD', KEYS[i]) >= tonumber(ARGV[4]) then
    for _, member in ipairs(redis.call('SMEMBERS', KEYS[i])) do
      redis.call('DEL', member)
    end
    redis.call('DEL', KEYS[i])
    redis.call('INCR', KEYS[2])
  end
  redis.call('SADD', KEYS[i], KEYS[1])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
return 1
"""

_PURGE = """
local dropped = 0
for i = 3, #KEYS do
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    dropped = dropped + redis.call('DEL', member)
  end
  redis.call('DEL', KEYS[i])
end
redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'tags', ARGV[1])
return dropped
"""


def encode_entry(response: CachedResponse) -> bytes:
    return b"\n".join((response.etag.encode(), " ".join(response.tags).encode(), response.body))


def decode_entry(blob: bytes) -> CachedResponse | None:
    etag, separator, rest = blob.partition(b"\n")
    tags, separator2, body = rest.partition(b"\n")
    if not separator or not separator2:
        return None  # not an entry of ours
    return CachedResponse(
        body=body, etag=etag.decode(), tags=tuple(tags.decode().split()) if tags else ()
    )


class RedisResponseCache:
    def __init__(
        self,
        redis: RedisClient,
        tail_redis: RedisClient,
        *,
        namespace: str,
        ttl_seconds: int,
        timeout_seconds: float,
        retry_after_seconds: float = 5.0,
        tail_block_ms: int = TAIL_BLOCK_MS,
    ) -> None:
        self._redis = redis
        self._tail_redis = tail_redis  # its reads block: a client without the short timeout
        self._prefix = f"responses:{{{namespace}}}:"
        self._epoch = self._prefix + "epoch"
        self._stream = self._prefix + "purges"
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._tail_block_ms = tail_block_ms
        self._store = redis.register_script(_STORE)
        self._purge = redis.register_script(_PURGE)
        self._tail: asyncio.Task[None] | None = None
        self.window = SkipWindow(
            retry_after_seconds, log, "response cache unavailable, requests run uncached"
        )
        self.purges_seen = 0  # purge entries this process's tail delivered

    def _entry(self, key: str) -> str:
        return self._prefix + "entry:" + key

    def _tag(self, tag: str) -> str:
        return self._prefix + "tag:" + tag

    async def fetch(self, key: str) -> tuple[CachedResponse | None, int | None]:
        if self.window.skipping():
            return None, None
        try:
            async with asyncio.timeout(self._timeout):
                blob, epoch = await self._redis.mget(self._entry(key), self._epoch)
        except (RedisError, OSError, TimeoutError) as error:
            self.window.failed(error)
            return None, None
        # bytes: our clients never decode replies (see record_cache._send).
        found = decode_entry(blob) if isinstance(blob, bytes) else None
        return found, int(epoch or 0)

    async def store(self, key: str, response: CachedResponse, epoch: int) -> bool:
        if self.window.skipping():
            return False
        keys = [self._entry(key), self._epoch, *(self._tag(t) for t in response.tags)]
        try:
            async with asyncio.timeout(self._timeout):
                kept = await self._store(
                    keys=keys,
                    args=[str(epoch), encode_entry(response), self._ttl, MAX_TAG_MEMBERS],
                )
        except (RedisError, OSError, TimeoutError) as error:
            self.window.failed(error)
            return False
        return bool(kept)

    async def purge(self, tags: Sequence[str]) -> None:
        keys = [self._epoch, self._stream, *(self._tag(t) for t in tags)]
        async with asyncio.timeout(self._timeout):
            await self._purge(keys=keys, args=[" ".join(tags), PURGE_STREAM_LENGTH])

    # The tail: every purge reaches this process's in-process layer.

    def follow_purges(self, local: LocalResponses) -> None:
        if self._tail is None:
            self._tail = asyncio.create_task(self._follow(local), name="response-cache-purges")

    async def stop(self) -> None:
        task, self._tail = self._tail, None
        if task is not None:
            task.cancel()
            # Bounded: a cancellation redis-py turned into an error must not hold up
            # the app's shutdown (the loop below also stops on one).
            await asyncio.wait({task}, timeout=2.0)

    async def _follow(self, local: LocalResponses) -> None:
        position: Any = None
        while True:
            try:
                if position is None:
                    # From the server's clock: what was purged before this process kept
                    # anything cannot concern it.
                    seconds, micros = await self._tail_redis.time()
                    position = f"{int(seconds) * 1000 + int(micros) // 1000}-0"
                    local.following(True)  # what is purged from now on is read below
                replies: Any = await self._tail_redis.xread(
                    {self._stream: position}, count=1_000, block=self._tail_block_ms
                )
            except (RedisError, OSError, TimeoutError) as error:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from error  # stopping, not failing
                if local.usable:
                    log.warning(
                        "response cache: following purges failed (%s); "
                        "the in-process layer is off until it follows again",
                        error,
                    )
                local.following(False)
                await asyncio.sleep(TAIL_RETRY_SECONDS)
                continue
            for _, entries in replies or ():
                for entry_id, fields in entries:
                    position = entry_id
                    self.purges_seen += 1
                    raw = fields.get(b"tags", b"")
                    local.purge(raw.decode().split())
            local.following(True)  # following again (after a failure: caught up first)
