"""Discounts as stored: the store port the cart, checkout and staff use.

The rules (how discounts combine, why a code does not apply) are domain.discounts'. The
count of uses and the once-per-customer guard are taken in the order transaction
(persistence.orders.order_store), never here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from domain.discounts import Discount


def buyer_keys(customer_id: int | None, email_index: str | None) -> tuple[str, ...]:
    """Who a once-per-customer discount counts: a signed-in customer by id, and (signed in
    or not) the blind index of the order's normalised email, so a guest cannot use a code
    twice by checking out twice with one email, nor a customer by signing out."""
    keys = []
    if customer_id is not None:
        keys.append(f"customer:{customer_id}")
    if email_index is not None:
        keys.append(f"email:{email_index}")
    return tuple(keys)


class DiscountStore(Protocol):
    async def in_force(self, codes: Sequence[str], now: datetime) -> Sequence[Discount]:
        """The active automatic discounts that have not ended at `now`, and the discounts
        with these canonical codes whatever their state (so a refusal can say why). One
        statement."""
        ...

    async def used_by(self, keys: Sequence[str], discount_ids: Collection[int]) -> frozenset[int]:
        """The ids among `discount_ids` that one of these buyers already used."""
        ...

    async def create(self, discount: Discount) -> Discount:
        """Writes it (its id ignored) and DiscountChanged in one transaction; the stored
        discount with its id. Raises DiscountCodeTaken when another has its code."""
        ...


class DiscountCodeTaken(Exception):
    """Another discount has this code."""
