"""Carts in Redis: one hash per cart, every write one atomic Lua script.

    cart:<id>              owner, email, country, address (JSON), created, updated,
                           seq (line counter), l:<variant id> -> "<quantity>:<seq>"
    customer-cart:<id>     the customer's open cart

A script checks everything before it changes anything, so a refused write leaves the
cart exactly as it was, and concurrent writes to one cart serialise in Redis: none is
lost. Each write restarts the cart's 30-day expiry.

The client retries a command once after a connection error (app.py's `redis_options`),
which is also what a reply lost after the script ran looks like. The scripts that are
not idempotent (add, set quantities, remove, attach) therefore carry a random write id
as their last key: the run that applies sets it for a minute, and a retried run that
finds it answers OK without applying again. Attaching a guest cart to a customer
touches two carts and the pointer in one script; on Redis Cluster those keys would need
one hash slot (not the case today: one Redis).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.typing import EncodableT, FieldT

from domain.carts import Cart, CartLine, CartStoreError, MailingAddress
from persistence.redis.errors import redis_required

_LINES = """
local function count_lines(key)
  local n = 0
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, 1, 2) == 'l:' then n = n + 1 end
  end
  return n
end
local function parse(value)
  local q, s = string.match(value, '^(%d+):(%d+)$')
  return tonumber(q), s
end
local function touch(key, ttl, now)
  redis.call('HSET', key, 'updated', now)
  redis.call('EXPIRE', key, ttl)
  -- A customer's open cart and the pointer to it live (and expire) together.
  local owner = redis.call('HGET', key, 'owner')
  if owner then
    local pointer = 'customer-cart:' .. owner
    if redis.call('GET', pointer) == string.sub(key, 6) then redis.call('EXPIRE', pointer, ttl) end
  end
end
"""

# Prepended to the non-idempotent scripts; `applied()` replaces their `return 'OK'`.
_ONCE = """
local write_id = KEYS[#KEYS]
if redis.call('EXISTS', write_id) == 1 then return 'OK' end
local function applied()
  redis.call('SET', write_id, 1, 'EX', 60)
  return 'OK'
end
"""

_ADD = (
    _LINES
    + _ONCE
    + """
local key, ttl, now = KEYS[1], ARGV[1], ARGV[2]
local maxq, maxl = tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', key) == 0 then return 'NOT_FOUND' end
local lines = count_lines(key)
local writes = {}
for i = 5, #ARGV, 2 do
  local field, add = 'l:' .. ARGV[i], tonumber(ARGV[i + 1])
  local current = redis.call('HGET', key, field)
  local qty, seq = 0, false
  if current then qty, seq = parse(current) else lines = lines + 1 end
  if qty + add > maxq then return 'QUANTITY' end
  writes[#writes + 1] = {field, qty + add, seq}
end
if lines > maxl then return 'TOO_MANY_LINES' end
for _, w in ipairs(writes) do
  local seq = w[3] or redis.call('HINCRBY', key, 'seq', 1)
  redis.call('HSET', key, w[1], w[2] .. ':' .. seq)
end
touch(key, ttl, now)
return applied()
"""
)

_SET_QUANTITIES = (
    _LINES
    + _ONCE
    + """
local key, ttl, now, maxq = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', key) == 0 then return 'NOT_FOUND' end
local writes = {}
for i = 4, #ARGV, 2 do
  local field, qty = 'l:' .. ARGV[i], tonumber(ARGV[i + 1])
  local current = redis.call('HGET', key, field)
  if not current then return 'LINE_NOT_FOUND' end
  if qty > maxq then return 'QUANTITY' end
  local _, seq = parse(current)
  writes[#writes + 1] = {field, qty, seq}
end
for _, w in ipairs(writes) do
  if w[2] == 0 then redis.call('HDEL', key, w[1])
  else redis.call('HSET', key, w[1], w[2] .. ':' .. w[3]) end
end
touch(key, ttl, now)
return applied()
"""
)

_REMOVE = (
    _LINES
    + _ONCE
    + """
local key, ttl, now = KEYS[1], ARGV[1], ARGV[2]
if redis.call('EXISTS', key) == 0 then return 'NOT_FOUND' end
for i = 3, #ARGV do
  if redis.call('HEXISTS', key, 'l:' .. ARGV[i]) == 0 then return 'LINE_NOT_FOUND' end
end
for i = 3, #ARGV do redis.call('HDEL', key, 'l:' .. ARGV[i]) end
touch(key, ttl, now)
return applied()
"""
)

_SET_FIELDS = (
    _LINES
    + """
local key, ttl, now = KEYS[1], ARGV[1], ARGV[2]
if redis.call('EXISTS', key) == 0 then return 'NOT_FOUND' end
for i = 3, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', key, ARGV[i])
  else redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
end
touch(key, ttl, now)
return 'OK'
"""
)

# KEYS: the guest cart, the customer's pointer, the customer's open cart (or the guest
# cart again when there is none), the write id. ARGV: ttl, now, max quantity, max lines,
# customer id, email, guest cart id, the open cart id the caller saw ('' for none).
_ATTACH = (
    _LINES
    + _ONCE
    + """
local cart, pointer, other = KEYS[1], KEYS[2], KEYS[3]
local ttl, now, maxq, maxl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local customer, email, cart_id, seen = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if redis.call('EXISTS', cart) == 0 then return 'NOT_FOUND' end
local owner = redis.call('HGET', cart, 'owner')
if owner and owner ~= customer then return 'NOT_FOUND' end
if (redis.call('GET', pointer) or '') ~= seen then return 'RETRY' end
if seen ~= '' and seen ~= cart_id and redis.call('EXISTS', other) == 1 then
  local lines = count_lines(cart)
  local theirs = {}
  local flat = redis.call('HGETALL', other)
  for i = 1, #flat, 2 do
    if string.sub(flat[i], 1, 2) == 'l:' then
      local q, s = parse(flat[i + 1])
      theirs[#theirs + 1] = {flat[i], q, tonumber(s)}
    end
  end
  table.sort(theirs, function(a, b) return a[3] < b[3] end)
  for _, line in ipairs(theirs) do
    local mine = redis.call('HGET', cart, line[1])
    if mine then
      local q, s = parse(mine)
      redis.call('HSET', cart, line[1], math.min(maxq, q + line[2]) .. ':' .. s)
    elseif lines < maxl then
      local s = redis.call('HINCRBY', cart, 'seq', 1)
      redis.call('HSET', cart, line[1], line[2] .. ':' .. s)
      lines = lines + 1
    end
  end
  redis.call('DEL', other)
end
redis.call('HSET', cart, 'owner', customer)
if not redis.call('HGET', cart, 'email') and email ~= '' then
  redis.call('HSET', cart, 'email', email)
end
touch(cart, ttl, now)
redis.call('SET', pointer, cart_id, 'EX', ttl)
return applied()
"""
)


_DELETE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner then
  local pointer = 'customer-cart:' .. owner
  if redis.call('GET', pointer) == ARGV[1] then redis.call('DEL', pointer) end
end
redis.call('DEL', KEYS[1])
return 'OK'
"""


class RedisCartStore:
    def __init__(
        self, redis: Redis, *, ttl_seconds: int, max_quantity: int, max_lines: int
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._max_quantity = max_quantity
        self._max_lines = max_lines
        self._add = redis.register_script(_ADD)
        self._set_quantities = redis.register_script(_SET_QUANTITIES)
        self._remove = redis.register_script(_REMOVE)
        self._set_fields = redis.register_script(_SET_FIELDS)
        self._attach = redis.register_script(_ATTACH)
        self._delete = redis.register_script(_DELETE)

    async def create(
        self,
        owner_id: int | None,
        email: str | None,
        country_code: str | None,
        lines: Sequence[CartLine],
    ) -> str:
        cart_id = secrets.token_urlsafe(16)  # 128 random bits: the guest's capability
        now = _now_ms()
        fields: dict[FieldT, EncodableT] = {"created": now, "updated": now, "seq": len(lines)}
        if owner_id is not None:
            fields["owner"] = owner_id
        if email:
            fields["email"] = email
        if country_code:
            fields["country"] = country_code
        for seq, line in enumerate(lines, start=1):
            fields[f"l:{line.variant_id}"] = f"{line.quantity}:{seq}"
        async with redis_required(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(_cart_key(cart_id), mapping=fields)
            pipe.expire(_cart_key(cart_id), self._ttl)
            if owner_id is not None:
                pipe.set(_pointer_key(owner_id), cart_id, ex=self._ttl)
            await pipe.execute()
        return cart_id

    async def get(self, cart_id: str) -> Cart | None:
        async with redis_required():
            # bytes: our clients never decode replies (see record_cache._send).
            raw = cast("dict[bytes, bytes]", await self._redis.hgetall(_cart_key(cart_id)))
        return _cart_from_hash(cart_id, raw) if raw else None

    async def add(self, cart_id: str, lines: Sequence[CartLine]) -> CartStoreError | None:
        args = [self._ttl, _now_ms(), self._max_quantity, self._max_lines, *_pairs(lines)]
        return await self._run(self._add, [_cart_key(cart_id), _write_id()], args)

    async def set_quantities(
        self, cart_id: str, lines: Sequence[CartLine]
    ) -> CartStoreError | None:
        args = [self._ttl, _now_ms(), self._max_quantity, *_pairs(lines)]
        return await self._run(self._set_quantities, [_cart_key(cart_id), _write_id()], args)

    async def remove(self, cart_id: str, variant_ids: Sequence[int]) -> CartStoreError | None:
        args = [self._ttl, _now_ms(), *variant_ids]
        return await self._run(self._remove, [_cart_key(cart_id), _write_id()], args)

    async def set_buyer(
        self, cart_id: str, email: str | None, country_code: str | None
    ) -> CartStoreError | None:
        fields: list[str] = []
        if email is not None:
            fields += ["email", email]
        if country_code is not None:
            fields += ["country", country_code]
        return await self._run(
            self._set_fields, [_cart_key(cart_id)], [self._ttl, _now_ms(), *fields]
        )

    async def set_address(self, cart_id: str, address: MailingAddress) -> CartStoreError | None:
        encoded = orjson.dumps(address).decode()
        return await self._run(
            self._set_fields, [_cart_key(cart_id)], [self._ttl, _now_ms(), "address", encoded]
        )

    async def delete(self, cart_id: str) -> None:
        """Checked out: the cart, and the owner's pointer to it, go."""
        async with redis_required():
            await self._delete(keys=[_cart_key(cart_id)], args=[cart_id])

    async def discard_customer_cart(self, customer_id: int) -> None:
        """Erasure: the customer's open cart (its email and address) and the pointer go."""
        pointer = _pointer_key(customer_id)
        async with redis_required():
            cart_id = cast("bytes | None", await self._redis.get(pointer))
        if cart_id:
            await self.delete(cart_id.decode())
        async with redis_required():
            await self._redis.delete(pointer)

    async def attach(self, cart_id: str, customer_id: int, email: str) -> CartStoreError | None:
        pointer = _pointer_key(customer_id)
        write_id = _write_id()  # a RETRY answer applied nothing, so one id serves all tries
        for _ in range(5):  # the pointer moved between reading it and the script: retry
            async with redis_required():
                seen = (cast("bytes | None", await self._redis.get(pointer)) or b"").decode()
            other = _cart_key(seen) if seen else _cart_key(cart_id)
            args: list[EncodableT] = [
                self._ttl,
                _now_ms(),
                self._max_quantity,
                self._max_lines,
                customer_id,
                email,
                cart_id,
                seen,
            ]
            async with redis_required():
                result = (
                    await self._attach(
                        keys=[_cart_key(cart_id), pointer, other, write_id], args=args
                    )
                ).decode()
            if result != "RETRY":
                return None if result == "OK" else CartStoreError(result)
        return CartStoreError.NOT_FOUND

    async def _run(
        self, script: AsyncScript, keys: list[str], args: Sequence[EncodableT]
    ) -> CartStoreError | None:
        async with redis_required():
            result = (await script(keys=keys, args=args)).decode()
        return None if result == "OK" else CartStoreError(result)


def _pairs(lines: Sequence[CartLine]) -> list[int]:
    return [value for line in lines for value in (line.variant_id, line.quantity)]


def _cart_key(cart_id: str) -> str:
    return f"cart:{cart_id}"


def _pointer_key(customer_id: int) -> str:
    return f"customer-cart:{customer_id}"


def _write_id() -> str:
    return f"cart-write:{secrets.token_hex(8)}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _from_ms(value: bytes) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _cart_from_hash(cart_id: str, raw: dict[bytes, bytes]) -> Cart:
    lines: list[tuple[int, CartLine]] = []
    for field, value in raw.items():
        if field.startswith(b"l:"):
            quantity, seq = value.split(b":")
            lines.append((int(seq), CartLine(int(field[2:]), int(quantity))))
    lines.sort(key=lambda item: item[0])
    address = raw.get(b"address")
    owner = raw.get(b"owner")
    return Cart(
        id=cart_id,
        owner_id=int(owner) if owner else None,
        email=raw[b"email"].decode() if b"email" in raw else None,
        country_code=raw[b"country"].decode() if b"country" in raw else None,
        shipping_address=MailingAddress(**orjson.loads(address)) if address else None,
        lines=tuple(line for _, line in lines),
        created_at=_from_ms(raw[b"created"]),
        updated_at=_from_ms(raw[b"updated"]),
    )
