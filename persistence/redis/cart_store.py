"""Carts in Redis: one hash per cart, every write one atomic Lua script.

    cart:<id>              owner, email, country, address, created, updated,
                           delivery (the chosen delivery option's handle),
                           giftcards (applied gift card ids, comma-separated),
                           discounts (entered discount codes, canonical, comma-separated),
                           merged (the cart last merged in, as "<id>@<updated>"),
                           seq (line counter), l:<variant id> -> "<quantity>:<seq>"
    {cart:<id>}:write:<hex> a write id (below); its hash tag puts it in the cart's slot
    customer-cart:<id>     the customer's open cart

The buyer's email and the shipping address (JSON) rest as Fernet tokens (PII_ENCRYPTION_KEYS,
like orders'); the scripts only ever test them for presence. A cart written before
encryption (a plain email has an `@`, a plain address starts with `{`, neither ever
appears in a token) still reads, and `pii-rotate` encrypts it.

A script checks everything before it changes anything, so a refused write leaves the
cart exactly as it was, and concurrent writes to one cart serialise in Redis: none is
lost. Each write restarts the cart's 30-day expiry.

The client retries a command once after a connection error (app.py's `redis_options`),
which is also what a reply lost after the script ran looks like. The scripts that are
not idempotent (add, set quantities, remove) therefore carry a random write id as their
last key: the run that applies sets it for a minute, and a retried run that finds it
answers OK without applying again.

Redis Cluster: every script and MULTI/EXEC touches one cart's slot only (a key without
braces hashes whole, so `cart:<id>` and `{cart:<id>}:...` share a slot, and no cart key
had to be renamed). The customer's pointer lives in another slot, so it is written by a
command of its own: a write to an owned cart answers `OK:<owner>` and the pointer's
expiry follows it; deleting a cart answers its owner and the pointer goes if it still
names that cart. Attaching a guest cart to a customer touches two carts and the pointer,
three slots, so it runs in steps, each atomic in its slot (`attach`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import cast

import orjson
from redis.commands.core import AsyncScript
from redis.typing import EncodableT, FieldT

from domain.addresses import MailingAddress
from domain.carts import Cart, CartLine, CartStoreError
from persistence.pii import PiiCipher
from persistence.redis.client import RedisClient
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
-- The reply of a write that applied: 'OK', or 'OK:<owner>' so that the caller extends
-- the expiry of the owner's pointer too (a customer's open cart and the pointer to it
-- live, and expire, together; the pointer is in another slot, so not from here).
local function touch(key, ttl, now)
  redis.call('HSET', key, 'updated', now)
  redis.call('EXPIRE', key, ttl)
  local owner = redis.call('HGET', key, 'owner')
  if owner then return 'OK:' .. owner end
  return 'OK'
end
"""

# Prepended to the non-idempotent scripts; `applied()` replaces their `return 'OK'`.
_ONCE = """
local write_id = KEYS[#KEYS]
if redis.call('EXISTS', write_id) == 1 then return 'OK' end
local function applied(reply)
  redis.call('SET', write_id, 1, 'EX', 60)
  return reply
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
return applied(touch(key, ttl, now))
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
return applied(touch(key, ttl, now))
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
return applied(touch(key, ttl, now))
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
return touch(key, ttl, now)
"""
)

# attach, step 2 (see there). KEYS: the guest cart. ARGV: ttl, now, max quantity, max
# lines, customer id, email, "<other cart id>@<its updated>" ('' for none), then the other
# cart's lines as variant id, quantity pairs in their order. Merging the same version of
# the other cart twice (a retried call) adds its lines once.
_MERGE_INTO = (
    _LINES
    + """
local cart = KEYS[1]
local ttl, now, maxq, maxl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local customer, email, merged = ARGV[5], ARGV[6], ARGV[7]
if redis.call('EXISTS', cart) == 0 then return 'NOT_FOUND' end
local owner = redis.call('HGET', cart, 'owner')
if owner and owner ~= customer then return 'NOT_FOUND' end
if merged ~= '' and redis.call('HGET', cart, 'merged') ~= merged then
  local lines = count_lines(cart)
  for i = 8, #ARGV, 2 do
    local field, add = 'l:' .. ARGV[i], tonumber(ARGV[i + 1])
    local mine = redis.call('HGET', cart, field)
    if mine then
      local q, s = parse(mine)
      redis.call('HSET', cart, field, math.min(maxq, q + add) .. ':' .. s)
    elseif lines < maxl then
      local s = redis.call('HINCRBY', cart, 'seq', 1)
      redis.call('HSET', cart, field, add .. ':' .. s)
      lines = lines + 1
    end
  end
  redis.call('HSET', cart, 'merged', merged)
end
redis.call('HSET', cart, 'owner', customer)
if not redis.call('HGET', cart, 'email') and email ~= '' then
  redis.call('HSET', cart, 'email', email)
end
return touch(cart, ttl, now)
"""
)

# attach, step 3. KEYS: the customer's pointer. ARGV: the cart id it held when read
# ('' for none), the cart id it now names, ttl.
_MOVE_POINTER = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 'RETRY' end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 'OK'
"""

# attach, step 4. KEYS: the cart merged in. ARGV: its `updated` when read. A cart
# written since keeps what it got meanwhile (it is no longer the customer's open cart,
# but nothing in it is lost).
_DELETE_IF_UNCHANGED = """
if redis.call('HGET', KEYS[1], 'updated') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: the pointer. ARGV: the cart id, ttl. The pointer's expiry follows its cart's.
_EXTEND_POINTER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 'OK'
"""

# KEYS: the pointer. ARGV: the cart id. Gone with its cart, unless it names another.
_DROP_POINTER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# pii-rotate's compare-and-set: KEYS[1] the cart; ARGV field, token read, new token, ...
# Nothing changes unless every field still holds what was read (the expiry stays).
_REPLACE_BUYER_FIELDS = """
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then return 0 end
end
for i = 1, #ARGV, 3 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2]) end
return 1
"""

_BUYER_FIELDS = ((b"email", b"@"), (b"address", b"{"))

# KEYS: the cart. The reply is its owner ('' for none), whose pointer goes next.
_DELETE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
redis.call('DEL', KEYS[1])
return owner or ''
"""


class RedisCartStore:
    def __init__(
        self,
        redis: RedisClient,
        *,
        ttl_seconds: int,
        max_quantity: int,
        max_lines: int,
        cipher: PiiCipher,
    ) -> None:
        self._redis = redis
        self._cipher = cipher
        self._ttl = ttl_seconds
        self._max_quantity = max_quantity
        self._max_lines = max_lines
        self._add = redis.register_script(_ADD)
        self._set_quantities = redis.register_script(_SET_QUANTITIES)
        self._remove = redis.register_script(_REMOVE)
        self._set_fields = redis.register_script(_SET_FIELDS)
        self._merge_into = redis.register_script(_MERGE_INTO)
        self._move_pointer = redis.register_script(_MOVE_POINTER)
        self._delete_if_unchanged = redis.register_script(_DELETE_IF_UNCHANGED)
        self._extend_pointer = redis.register_script(_EXTEND_POINTER)
        self._drop_pointer = redis.register_script(_DROP_POINTER)
        self._delete = redis.register_script(_DELETE)
        self._replace_buyer_fields = redis.register_script(_REPLACE_BUYER_FIELDS)

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
            fields["email"] = self._cipher.encrypt(email)
        if country_code:
            fields["country"] = country_code
        for seq, line in enumerate(lines, start=1):
            fields[f"l:{line.variant_id}"] = f"{line.quantity}:{seq}"
        async with redis_required(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(_cart_key(cart_id), mapping=fields)
            pipe.expire(_cart_key(cart_id), self._ttl)
            await pipe.execute()
        if owner_id is not None:  # another slot: its own command, once the cart exists
            async with redis_required():
                await self._redis.set(_pointer_key(owner_id), cart_id, ex=self._ttl)
        return cart_id

    async def get(self, cart_id: str) -> Cart | None:
        async with redis_required():
            # bytes: our clients never decode replies (see record_cache._send).
            raw = cast("dict[bytes, bytes]", await self._redis.hgetall(_cart_key(cart_id)))
        return _cart_from_hash(cart_id, raw, self._cipher) if raw else None

    async def add(self, cart_id: str, lines: Sequence[CartLine]) -> CartStoreError | None:
        args = [self._ttl, _now_ms(), self._max_quantity, self._max_lines, *_pairs(lines)]
        return await self._run(self._add, cart_id, [_cart_key(cart_id), _write_id(cart_id)], args)

    async def set_quantities(
        self, cart_id: str, lines: Sequence[CartLine]
    ) -> CartStoreError | None:
        args = [self._ttl, _now_ms(), self._max_quantity, *_pairs(lines)]
        return await self._run(
            self._set_quantities, cart_id, [_cart_key(cart_id), _write_id(cart_id)], args
        )

    async def remove(self, cart_id: str, variant_ids: Sequence[int]) -> CartStoreError | None:
        args = [self._ttl, _now_ms(), *variant_ids]
        return await self._run(
            self._remove, cart_id, [_cart_key(cart_id), _write_id(cart_id)], args
        )

    async def set_buyer(
        self, cart_id: str, email: str | None, country_code: str | None
    ) -> CartStoreError | None:
        fields: list[str] = []
        if email is not None:
            fields += ["email", self._cipher.encrypt(email) if email else ""]
        if country_code is not None:
            fields += ["country", country_code]
        return await self._set_cart_fields(cart_id, fields)

    async def set_address(self, cart_id: str, address: MailingAddress) -> CartStoreError | None:
        encoded = self._cipher.encrypt(orjson.dumps(address).decode())
        return await self._set_cart_fields(cart_id, ["address", encoded])

    async def set_delivery_handle(self, cart_id: str, handle: str) -> CartStoreError | None:
        return await self._set_cart_fields(cart_id, ["delivery", handle])

    async def set_gift_card_ids(self, cart_id: str, ids: Sequence[int]) -> CartStoreError | None:
        value = ",".join(str(card_id) for card_id in ids)
        return await self._set_cart_fields(cart_id, ["giftcards", value])

    async def set_discount_codes(self, cart_id: str, codes: Sequence[str]) -> CartStoreError | None:
        value = ",".join(codes)  # canonical codes hold no comma
        return await self._set_cart_fields(cart_id, ["discounts", value])

    async def delete(self, cart_id: str) -> None:
        """Checked out: the cart, and the owner's pointer to it, go."""
        async with redis_required():
            owner = (await self._delete(keys=[_cart_key(cart_id)])).decode()
        if owner:
            async with redis_required():
                await self._drop_pointer(keys=[_pointer_key(int(owner))], args=[cart_id])

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
        """The guest cart becomes the customer's open cart, with the lines of the one it
        replaces merged in. Three slots (two carts, the pointer), so in steps, each
        atomic where it runs: read the pointer and the cart it names; merge those lines
        into the guest cart; move the pointer if it still names what was read (else
        start again); delete the replaced cart unless it was written meanwhile."""
        pointer = _pointer_key(customer_id)
        encrypted = self._cipher.encrypt(email) if email else ""
        for _ in range(5):  # the pointer moved between reading it and moving it: again
            async with redis_required():
                seen = (cast("bytes | None", await self._redis.get(pointer)) or b"").decode()
            merged, theirs, version = "", [], b""
            if seen and seen != cart_id:
                async with redis_required():
                    other = cast("dict[bytes, bytes]", await self._redis.hgetall(_cart_key(seen)))
                if other:
                    version = other[b"updated"]
                    merged = f"{seen}@{version.decode()}"
                    theirs = _lines_in_order(other)
            args: list[EncodableT] = [
                self._ttl,
                _now_ms(),
                self._max_quantity,
                self._max_lines,
                customer_id,
                encrypted,
                merged,
                *_pairs(theirs),
            ]
            async with redis_required():
                result = (await self._merge_into(keys=[_cart_key(cart_id)], args=args)).decode()
            if not result.startswith("OK"):
                return CartStoreError(result)
            async with redis_required():
                moved = await self._move_pointer(keys=[pointer], args=[seen, cart_id, self._ttl])
            if moved.decode() == "RETRY":
                continue
            if merged:
                async with redis_required():
                    await self._delete_if_unchanged(keys=[_cart_key(seen)], args=[version])
            return None
        return CartStoreError.NOT_FOUND

    async def reencrypt_buyer_fields(
        self, *, batch_size: int = 500, attempts: int = 3
    ) -> AsyncIterator[tuple[int, int, int, int]]:
        """pii-rotate for carts: every cart's email and address under the newest key (a
        plain one from before encryption encrypted), each with a compare-and-set, so a
        buyer's concurrent change is never overwritten. Yields (carts read, rewritten,
        current, raced) so far after each SCAN batch; SCAN may return a cart twice,
        which the second time is current."""
        read = rewritten = current = raced = 0
        # scan_iter walks every master of a cluster (SCAN alone asks one node).
        keys = self._redis.scan_iter(match="cart:*", count=batch_size, _type="hash")
        while True:
            batch: list[bytes] = []
            async with redis_required():
                async for key in keys:
                    batch.append(key)
                    if len(batch) == batch_size:
                        break
            for key in batch:
                read += 1
                for _ in range(attempts):
                    async with redis_required():
                        stored = await self._redis.hmget(key, [f for f, _ in _BUYER_FIELDS])
                    args = self._rotated_buyer_fields(cast("list[bytes | None]", stored))
                    if not args:
                        current += 1
                        break
                    async with redis_required():
                        if await self._replace_buyer_fields(keys=[key], args=args):
                            rewritten += 1
                            break
                    raced += 1
            yield read, rewritten, current, raced
            if len(batch) < batch_size:
                return

    def _rotated_buyer_fields(self, stored: list[bytes | None]) -> list[bytes | str]:
        args: list[bytes | str] = []
        for (name, plain_mark), value in zip(_BUYER_FIELDS, stored, strict=True):
            if value is None:
                continue
            if plain_mark in value:
                new: str | None = self._cipher.encrypt(value.decode())
            else:
                new = self._cipher.rotated(value.decode())
            if new is not None:
                args += [name, value, new]
        return args

    async def _set_cart_fields(
        self, cart_id: str, fields: Sequence[EncodableT]
    ) -> CartStoreError | None:
        args = [self._ttl, _now_ms(), *fields]
        return await self._run(self._set_fields, cart_id, [_cart_key(cart_id)], args)

    async def _run(
        self, script: AsyncScript, cart_id: str, keys: list[str], args: Sequence[EncodableT]
    ) -> CartStoreError | None:
        async with redis_required():
            result = (await script(keys=keys, args=args)).decode()
        if not result.startswith("OK"):
            return CartStoreError(result)
        _, _, owner = result.partition(":")
        if owner:  # an owned cart: its pointer expires with it
            async with redis_required():
                await self._extend_pointer(
                    keys=[_pointer_key(int(owner))], args=[cart_id, self._ttl]
                )
        return None


def buyer_text(cipher: PiiCipher, stored: bytes, plain_mark: bytes) -> str:
    """A buyer field as stored: a token, or (a cart from before encryption) plain text,
    told apart by a byte no token contains (tokens are URL-safe base64)."""
    if plain_mark in stored:
        return stored.decode()
    return cipher.decrypt(stored.decode())


def _pairs(lines: Sequence[CartLine]) -> list[int]:
    return [value for line in lines for value in (line.variant_id, line.quantity)]


def _cart_key(cart_id: str) -> str:
    return f"cart:{cart_id}"


def _pointer_key(customer_id: int) -> str:
    return f"customer-cart:{customer_id}"


def _write_id(cart_id: str) -> str:
    # The braces hold the cart's whole key: this id hashes to the cart's slot.
    return f"{{{_cart_key(cart_id)}}}:write:{secrets.token_hex(8)}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _from_ms(value: bytes) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _lines_in_order(raw: dict[bytes, bytes]) -> list[CartLine]:
    lines: list[tuple[int, CartLine]] = []
    for field, value in raw.items():
        if field.startswith(b"l:"):
            quantity, seq = value.split(b":")
            lines.append((int(seq), CartLine(int(field[2:]), int(quantity))))
    lines.sort(key=lambda item: item[0])
    return [line for _, line in lines]


def _cart_from_hash(cart_id: str, raw: dict[bytes, bytes], cipher: PiiCipher) -> Cart:
    email, address = raw.get(b"email"), raw.get(b"address")
    owner = raw.get(b"owner")
    return Cart(
        id=cart_id,
        owner_id=int(owner) if owner else None,
        email=buyer_text(cipher, email, b"@") if email else None,
        country_code=raw[b"country"].decode() if b"country" in raw else None,
        shipping_address=(
            MailingAddress(**orjson.loads(buyer_text(cipher, address, b"{"))) if address else None
        ),
        lines=tuple(_lines_in_order(raw)),
        created_at=_from_ms(raw[b"created"]),
        updated_at=_from_ms(raw[b"updated"]),
        delivery_handle=raw[b"delivery"].decode() if b"delivery" in raw else None,
        gift_card_ids=tuple(int(i) for i in raw[b"giftcards"].split(b","))
        if b"giftcards" in raw
        else (),
        discount_codes=tuple(raw[b"discounts"].decode().split(",")) if b"discounts" in raw else (),
    )
