"""Finding the discounts a cart may get: what pricing needs (domain.discounts'
DiscountContext), with the automatic discounts kept in process between cart reads."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from domain.catalog import Category, Product
from domain.discount_desk import DiscountStore, buyer_keys
from domain.discounts import Discount, DiscountContext, DiscountScope

MAX_KEPT_CODES = 10_000

CategoryLookup = Callable[[Sequence[int]], Awaitable[Mapping[int, Category]]]


class DiscountFinder:
    """Loads what pricing needs to apply discounts (domain.discounts.DiscountContext).

    The automatic discounts, and the discounts of codes looked up (up to `MAX_KEPT_CODES`,
    an unknown code too), are kept in process for `ttl_seconds`: carts are read and
    checked out far more often than staff change promotions, and each read would
    otherwise pay a statement for them. `forget` drops them at once after a staff write
    in this process. Checkout sees what the cart saw; the order transaction checks again
    what the count depends on (active, dates, limit), and a refusal there drops the kept
    ones, so the retry sees the discount as it is now.
    The categories are loaded only when a candidate is scoped to categories, the buyer's
    past uses only when one is once per customer."""

    def __init__(
        self,
        store: DiscountStore,
        email_pseudonym: Callable[[str], str],
        ttl_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._pseudonym = email_pseudonym
        self._ttl = ttl_seconds
        self._clock = clock
        self._automatic: tuple[float, Sequence[Discount]] | None = None
        # code -> (when read, its discount or None): oldest first, at most MAX_KEPT_CODES.
        self._coded: OrderedDict[str, tuple[float, Discount | None]] = OrderedDict()

    def forget(self) -> None:
        self._automatic = None
        self._coded.clear()

    async def by_codes(self, codes: Sequence[str]) -> Mapping[str, Discount]:
        """The discounts with these codes, read now."""
        found = await self._store.by_codes(codes) if codes else ()
        return {d.code: d for d in found if d.code is not None}

    def buyer(self, customer_id: int | None, email: str | None) -> tuple[str, ...]:
        """The buyer keys of a signed-in customer and/or a (normalised) email."""
        return buyer_keys(customer_id, None if email is None else self._pseudonym(email))

    async def context(
        self,
        codes: Sequence[str],
        products: Mapping[int, Product],
        categories: CategoryLookup,
        buyer: Sequence[str],
        now: datetime,
    ) -> DiscountContext:
        candidates = list(await self._automatic_now(now))
        if codes:
            candidates.extend(await self._coded_now(codes))
        found: Mapping[int, Category] = {}
        if any(d.scope is DiscountScope.CATEGORIES for d in candidates):
            ids = sorted({p.category_id for p in products.values() if p.category_id is not None})
            found = await categories(ids) if ids else {}
        once = [d.id for d in candidates if d.once_per_customer]
        used = await self._store.used_by(buyer, once) if once and buyer else frozenset()
        return DiscountContext(candidates, found, used, now)

    async def _coded_now(self, codes: Sequence[str]) -> list[Discount]:
        moment = self._clock()
        kept: dict[str, Discount | None] = {}
        for code in codes:
            entry = self._coded.get(code)
            if entry is not None and moment - entry[0] < self._ttl:
                kept[code] = entry[1]
        missing = [code for code in codes if code not in kept]
        if missing:
            read = {d.code: d for d in await self._store.by_codes(missing)}
            for code in missing:
                kept[code] = read.get(code)
                if self._ttl > 0:
                    self._coded[code] = (moment, read.get(code))
                    self._coded.move_to_end(code)
            while len(self._coded) > MAX_KEPT_CODES:
                self._coded.popitem(last=False)
        return [d for code in codes if (d := kept[code]) is not None]

    async def _automatic_now(self, now: datetime) -> Sequence[Discount]:
        cached = self._automatic
        moment = self._clock()
        if cached is not None and moment - cached[0] < self._ttl:
            # Kept: one that ended since is refused by its dates when applied.
            return cached[1]
        found = await self._store.automatic(now)
        if self._ttl > 0:
            self._automatic = (moment, found)
        return found
