"""An in-memory DiscountStore for domain tests: the port's behaviour, no SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime

from domain.discount_desk import (
    DISCOUNTS_ORDERING,
    DiscountCodeTaken,
    DiscountMissing,
    UsageLimitBelowUses,
)
from domain.discounts import Discount
from domain.pagination import Page, PageRequest, encode_cursor


class FakeDiscountStore:
    """Implements domain.discount_desk.DiscountStore."""

    def __init__(self, products: Collection[int] = (), categories: Collection[int] = ()) -> None:
        self.rows: dict[int, Discount] = {}
        self.products, self.categories = frozenset(products), frozenset(categories)
        self.looked_up: list[tuple[frozenset[int], frozenset[int]]] = []

    async def automatic(self, now: datetime) -> Sequence[Discount]:
        return [
            d
            for d in self.rows.values()
            if d.automatic and d.active and (d.ends_at is None or d.ends_at > now)
        ]

    async def by_codes(self, codes: Sequence[str]) -> Sequence[Discount]:
        return [d for d in self.rows.values() if d.code in codes]

    async def used_by(self, keys: Sequence[str], discount_ids: Collection[int]) -> frozenset[int]:
        return frozenset()

    async def create(self, discount: Discount) -> Discount:
        self._check_code(discount)
        stored = replace(discount, id=len(self.rows) + 1, times_used=0)
        self.rows[stored.id] = stored
        return stored

    async def by_id(self, discount_id: int) -> Discount | None:
        return self.rows.get(discount_id)

    async def update(self, discount: Discount) -> Discount:
        current = self.rows.get(discount.id)
        if current is None:
            raise DiscountMissing()
        if discount.usage_limit is not None and current.times_used > discount.usage_limit:
            raise UsageLimitBelowUses()
        self._check_code(discount)
        stored = replace(discount, times_used=current.times_used)
        self.rows[stored.id] = stored
        return stored

    async def deactivate(self, discount_id: int) -> Discount:
        current = self.rows.get(discount_id)
        if current is None:
            raise DiscountMissing()
        self.rows[discount_id] = replace(current, active=False)
        return self.rows[discount_id]

    async def page(self, request: PageRequest) -> Page[Discount]:
        newest = sorted(self.rows.values(), key=lambda d: -d.id)
        if request.after is not None:
            last = request.after[0]
            newest = [d for d in newest if isinstance(last, int) and d.id < last]
        return Page.from_rows(
            newest[: request.first + 1],
            first=request.first,
            after=request.after,
            cursor_of=lambda d: encode_cursor(DISCOUNTS_ORDERING, (d.id,)),
        )

    async def existing(
        self, product_ids: Collection[int], category_ids: Collection[int]
    ) -> tuple[frozenset[int], frozenset[int]]:
        self.looked_up.append((frozenset(product_ids), frozenset(category_ids)))
        return (
            self.products.intersection(product_ids),
            self.categories.intersection(category_ids),
        )

    def _check_code(self, discount: Discount) -> None:
        if discount.code is not None and any(
            d.code == discount.code and d.id != discount.id for d in self.rows.values()
        ):
            raise DiscountCodeTaken()
