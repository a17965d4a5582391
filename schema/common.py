"""Types shared by every part of the graph: Node, Money, PageInfo."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import TypeVar

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
