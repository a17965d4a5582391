"""Live updates: which subscribers an event concerns, and bounded delivery to them.

One reader per process tails the event streams and hands each event to `LiveFeed`,
which wakes the listeners registered under the event's keys (an order, a cart, a
variant, a product). A listener holds at most `queue_size` undelivered events: one
more and it is dropped as a slow consumer (its connection is closed), so a client
that stops reading costs a bounded amount of memory, never a growing buffer.

Listeners are told *that* something changed, not what: each one loads the object
afresh, so what it sends is what a query would answer now.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from domain.addresses import MailingAddress
from domain.carts import Cart, CartLine, CartStore, CartStoreError
from domain.events import ORDER_TOPICS, Topic

# Not an outbox topic: cart writes live in Redis, and say so on a stream of their own.
CART_CHANGED = "CartChanged"

ORDER_STATUS_TOPICS: tuple[str, ...] = (*ORDER_TOPICS, Topic.ORDER_DISPUTED)
INVENTORY_TOPICS: tuple[str, ...] = (
    Topic.STOCK_CHANGED,
    Topic.VARIANT_CREATED,
    Topic.VARIANT_UPDATED,
    Topic.PRODUCT_UPDATED,
    Topic.PRODUCT_ARCHIVED,
)
LIVE_TOPICS: tuple[str, ...] = (*ORDER_STATUS_TOPICS, *INVENTORY_TOPICS, CART_CHANGED)


def order_key(public_id: str) -> str:
    return f"order:{public_id}"


def cart_key(cart_id: str) -> str:
    return f"cart:{cart_id}"


def variant_key(variant_id: int) -> str:
    return f"variant:{variant_id}"


def product_key(product_id: int) -> str:
    return f"product:{product_id}"


def event_keys(topic: str, payload: Mapping[str, object]) -> tuple[str, ...]:
    """The listener keys an event concerns; none for a payload missing its ids."""
    if topic in ORDER_STATUS_TOPICS:
        order = payload.get("order")
        return (order_key(order),) if isinstance(order, str) else ()
    if topic == CART_CHANGED:
        cart = payload.get("cart")
        return (cart_key(cart),) if isinstance(cart, str) else ()
    keys: list[str] = []
    variant = payload.get("variant")
    if isinstance(variant, int) and not isinstance(variant, bool):
        keys.append(variant_key(variant))
    product = payload.get("product")
    if isinstance(product, int) and not isinstance(product, bool):
        keys.append(product_key(product))
    return tuple(keys)


class SlowConsumer(Exception):
    """The listener fell `queue_size` events behind and was dropped."""


class Listener:
    """One subscription's mailbox: the topics of events not yet delivered."""

    __slots__ = ("_limit", "_on_overflow", "_overflowed", "_pending", "_wake", "keys")

    def __init__(self, keys: frozenset[str], limit: int, on_overflow: Callable[[], None]) -> None:
        self.keys = keys
        self._limit = limit
        self._on_overflow = on_overflow
        self._pending: deque[str] = deque()
        self._wake = asyncio.Event()
        self._overflowed = False

    def offer(self, topic: str) -> None:
        if self._overflowed:
            return
        if len(self._pending) >= self._limit:
            self._overflowed = True
            self._pending.clear()
            self._wake.set()
            self._on_overflow()
            return
        self._pending.append(topic)
        self._wake.set()

    async def next(self) -> str:
        """The next event's topic; SlowConsumer once the listener was dropped."""
        while not self._pending:
            if self._overflowed:
                raise SlowConsumer
            self._wake.clear()
            await self._wake.wait()
        return self._pending.popleft()


class LiveFeed:
    """This process's listeners by key. `on_first_listener` starts the stream reader
    lazily (a process nobody subscribes to never reads the streams)."""

    def __init__(
        self, queue_size: int, on_first_listener: Callable[[], None] | None = None
    ) -> None:
        self._queue_size = queue_size
        self._by_key: dict[str, set[Listener]] = {}
        self.on_first_listener = on_first_listener
        self._listeners = 0
        self.delivered = 0

    @property
    def listeners(self) -> int:
        return self._listeners

    def listen(self, keys: Iterable[str], on_overflow: Callable[[], None]) -> Listener:
        listener = Listener(frozenset(), self._queue_size, on_overflow)
        self._listeners += 1
        self.watch(listener, keys)
        if self.on_first_listener is not None:
            self.on_first_listener()
        return listener

    def watch(self, listener: Listener, keys: Iterable[str]) -> None:
        """Replace the keys a listener hears (a cart's lines change its variants)."""
        wanted = frozenset(keys)
        for key in listener.keys - wanted:
            self._forget(key, listener)
        for key in wanted - listener.keys:
            self._by_key.setdefault(key, set()).add(listener)
        listener.keys = wanted

    def drop(self, listener: Listener) -> None:
        for key in listener.keys:
            self._forget(key, listener)
        listener.keys = frozenset()
        self._listeners -= 1

    def dispatch(self, keys: Sequence[str], topic: str) -> int:
        """Wake every listener of these keys (once each); how many were woken."""
        woken: set[Listener] = set()
        for key in keys:
            woken.update(self._by_key.get(key, ()))
        for listener in woken:
            listener.offer(topic)
        self.delivered += len(woken)
        return len(woken)

    def _forget(self, key: str, listener: Listener) -> None:
        listeners = self._by_key.get(key)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._by_key[key]


class ConnectionQuota:
    """Open connections per client (an address or a partner), in this process."""

    def __init__(self, per_client: int) -> None:
        self._per_client = per_client
        self._open: dict[str, int] = {}

    def take(self, client: str) -> bool:
        count = self._open.get(client, 0)
        if count >= self._per_client:
            return False
        self._open[client] = count + 1
        return True

    def give_back(self, client: str) -> None:
        count = self._open.get(client, 0) - 1
        if count > 0:
            self._open[client] = count
        else:
            self._open.pop(client, None)

    def open(self, client: str) -> int:
        return self._open.get(client, 0)


class CartChanges(Protocol):
    async def cart_changed(self, cart_id: str) -> None:
        """Tell live subscribers the cart changed; never raises (the write stands)."""
        ...


class ObservedCartStore:
    """A CartStore that says so after every write that changed a cart."""

    def __init__(self, store: CartStore, changes: CartChanges) -> None:
        self._store = store
        self._changes = changes

    async def _after(self, cart_id: str, error: CartStoreError | None) -> CartStoreError | None:
        if error is None:
            await self._changes.cart_changed(cart_id)
        return error

    async def create(
        self,
        owner_id: int | None,
        email: str | None,
        country_code: str | None,
        lines: Sequence[CartLine],
    ) -> str:
        return await self._store.create(owner_id, email, country_code, lines)

    async def get(self, cart_id: str) -> Cart | None:
        return await self._store.get(cart_id)

    async def add(self, cart_id: str, lines: Sequence[CartLine]) -> CartStoreError | None:
        return await self._after(cart_id, await self._store.add(cart_id, lines))

    async def set_quantities(
        self, cart_id: str, lines: Sequence[CartLine]
    ) -> CartStoreError | None:
        return await self._after(cart_id, await self._store.set_quantities(cart_id, lines))

    async def remove(self, cart_id: str, variant_ids: Sequence[int]) -> CartStoreError | None:
        return await self._after(cart_id, await self._store.remove(cart_id, variant_ids))

    async def set_buyer(
        self, cart_id: str, email: str | None, country_code: str | None
    ) -> CartStoreError | None:
        return await self._after(cart_id, await self._store.set_buyer(cart_id, email, country_code))

    async def set_address(self, cart_id: str, address: MailingAddress) -> CartStoreError | None:
        return await self._after(cart_id, await self._store.set_address(cart_id, address))

    async def set_delivery_handle(self, cart_id: str, handle: str) -> CartStoreError | None:
        return await self._after(cart_id, await self._store.set_delivery_handle(cart_id, handle))

    async def set_gift_card_ids(self, cart_id: str, ids: Sequence[int]) -> CartStoreError | None:
        return await self._after(cart_id, await self._store.set_gift_card_ids(cart_id, ids))

    async def set_discount_codes(self, cart_id: str, codes: Sequence[str]) -> CartStoreError | None:
        return await self._after(cart_id, await self._store.set_discount_codes(cart_id, codes))

    async def delete(self, cart_id: str) -> None:
        await self._store.delete(cart_id)
        await self._changes.cart_changed(cart_id)

    async def attach(self, cart_id: str, customer_id: int, email: str) -> CartStoreError | None:
        return await self._after(cart_id, await self._store.attach(cart_id, customer_id, email))
