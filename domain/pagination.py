"""Keyset pagination: page requests, pages and opaque cursors.

A cursor is the sort key of the last row seen plus the sort it belongs to, so a
page never uses OFFSET and a cursor from one ordering cannot be replayed on another.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from domain.errors import ErrorCode, InvalidInput
from domain.text_input import is_clean

T = TypeVar("T")
R = TypeVar("R")  # a row as storage returns it
N = TypeVar("N")  # the node a page shows
KeyValue = str | int | float | None
SortKey = tuple[KeyValue, ...]

DEFAULT_PAGE_SIZE = 20
# A cursor holds at most a title-sized string and a few numbers.
MAX_CURSOR_LENGTH = 2_048
MAX_KEY_STRING_LENGTH = 1_000
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class PageRequest:
    first: int
    after: SortKey | None = None


@dataclass(frozen=True, slots=True)
class Edge(Generic[T]):
    cursor: str
    node: T


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    edges: Sequence[Edge[T]]
    has_next_page: bool
    has_previous_page: bool

    @overload
    @staticmethod
    def from_rows(
        rows: Sequence[N], *, first: int, after: object, cursor_of: Callable[[N], str]
    ) -> Page[N]: ...

    @overload
    @staticmethod
    def from_rows(
        rows: Sequence[R],
        *,
        first: int,
        after: object,
        cursor_of: Callable[[R], str],
        node_of: Callable[[R], N],
    ) -> Page[N]: ...

    @staticmethod
    def from_rows(
        rows: Sequence[Any],
        *,
        first: int,
        after: object,
        cursor_of: Callable[[Any], str],
        node_of: Callable[[Any], Any] | None = None,
    ) -> Page[Any]:
        """The page of a keyset query that asked for `first + 1` rows.

        The extra row is not shown: it only says a next page exists. `after` is the
        request's cursor (any form): a page after one has a page before it."""
        shown = rows[:first]
        edges = (
            [Edge(cursor_of(row), row) for row in shown]
            if node_of is None
            else [Edge(cursor_of(row), node_of(row)) for row in shown]
        )
        return Page(edges, has_next_page=len(rows) > first, has_previous_page=after is not None)

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0].cursor if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None


def encode_cursor(ordering: str, key: SortKey) -> str:
    if key and _PLAIN_ORDERING.fullmatch(ordering) and all(type(v) is int for v in key):
        # Most cursors (ids, prices, times): the very text json.dumps writes, without
        # its encoder machinery (a listing writes twenty per request).
        text = f'["{ordering}",{",".join(map(str, key))}]'
    else:
        text = json.dumps([ordering, *key], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


# An ordering json.dumps writes as it is, between quotes (every ordering of ours).
_PLAIN_ORDERING = re.compile(r"[A-Za-z0-9:_-]+")


def decode_cursor(ordering: str, cursor: str, arity: int) -> SortKey:
    """The sort key inside `cursor`; InvalidInput if it is not one of ours for `ordering`.

    What it decodes to goes into SQL, so each value must be one PostgreSQL takes: clean
    text, a bigint, a finite float (json.loads accepts NaN and 10**400)."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid_cursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid_cursor() from None
    if not isinstance(parts, list) or len(parts) != arity + 1 or parts[0] != ordering:
        raise invalid_cursor()
    key = tuple(parts[1:])
    if not all(_storable(v) for v in key):
        raise invalid_cursor()
    if not isinstance(key[-1], int) or isinstance(key[-1], bool):
        raise invalid_cursor()
    return key


def _storable(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return BIGINT_MIN <= value <= BIGINT_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and is_clean(value, MAX_KEY_STRING_LENGTH)


def page_request(
    first: int | None, after: str | None, *, ordering: str, arity: int, max_size: int
) -> PageRequest:
    if first is None:
        first = DEFAULT_PAGE_SIZE
    if first < 0 or first > max_size:
        raise InvalidInput(
            f"first must be between 0 and {max_size}",
            code=ErrorCode.INVALID_PAGE_SIZE,
            field="first",
        )
    key = decode_cursor(ordering, after, arity) if after is not None else None
    return PageRequest(first=first, after=key)


def invalid_cursor() -> InvalidInput:
    """The one INVALID_CURSOR error: an `after` that is not a cursor this list wrote."""
    return InvalidInput(
        "after is not a valid cursor for this list", code=ErrorCode.INVALID_CURSOR, field="after"
    )
