"""Types shared by every part of the graph: Node, Money, PageInfo."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Generic, TypeVar

import strawberry

from domain import money
from domain.pagination import Page

T = TypeVar("T")

# An object that requests share (built once from immutable inputs and never changed
# afterwards) carries a dict under this attribute, where the compiled executor keeps
# what each selection of it completed to (see resolvers/extensions/compiled.py).
SHARED_COMPLETIONS = "_shared_completions"
SHARED_SELECTIONS_MAX = 4  # selections kept per object (a screen or two ask for it)


def shared(value: T) -> T:
    """`value`, marked as shared between requests: never change it after this."""
    setattr(value, SHARED_COMPLETIONS, {})
    return value


class SharedBuilds(Generic[T]):
    """Objects built lately from immutable inputs, found again for equal inputs: the
    same inputs give the same (shared) object, so a hot product or variant is built,
    and its selections completed, once per worker rather than once per request.

    Found by the first input's identity (a cached record decodes to the same object
    while its bytes are unchanged; a product read from the database is made canonical
    first); a hit needs every input equal, which for what the screens pass (the same
    records and objects, in fresh lists) is a comparison of identities. An entry holds
    its inputs, so no other object can take the first one's id while it is here.
    Bounded: cleared when full.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self._entries: dict[int, tuple[tuple[object, ...], T]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, inputs: tuple[object, ...]) -> T | None:
        known = self._entries.get(id(inputs[0]))
        if known is not None and known[0][0] is inputs[0] and known[0] == inputs:
            return known[1]
        return None

    def put(self, inputs: tuple[object, ...], built: T) -> T:
        if len(self._entries) >= self.maximum:
            self._entries.clear()
        self._entries[id(inputs[0])] = (inputs, built)
        return shared(built)


@strawberry.interface(description="An object with a globally unique, opaque id.")
class Node:
    id: strawberry.ID = strawberry.field(description="Globally unique, opaque id.")


@strawberry.type(description="An amount in a currency; amount is a decimal string, never a float.")
class Money:
    amount: Decimal = strawberry.field(description='Decimal amount, e.g. "19.99".')
    currency_code: str = strawberry.field(description="ISO 4217 currency code.")

    @classmethod
    def of(cls, value: money.Money) -> Money:
        return _money_of(value)


@functools.lru_cache(maxsize=16_384)
def _money_of(value: money.Money) -> Money:
    # A screen shows a few distinct prices many times (a listing: ~140 amounts, each a
    # Decimal); the objects are only read once built, so requests may share them.
    return shared(Money(amount=value.amount, currency_code=value.currency_code))


@strawberry.type(description="Relay page information for keyset-paginated connections.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page[T]) -> PageInfo:
        return cls(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.start_cursor,
            end_cursor=page.end_cursor,
        )
