"""Keyset pagination: page requests, pages and opaque cursors.

A cursor is the sort key of the last row seen plus the sort it belongs to, so a
page never uses OFFSET and a cursor from one ordering cannot be replayed on another.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.errors import ErrorCode, InvalidInput
from domain.text_input import is_clean

T = TypeVar("T")
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

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0].cursor if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else None


def encode_cursor(ordering: str, key: SortKey) -> str:
    raw = json.dumps([ordering, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(ordering: str, cursor: str, arity: int) -> SortKey:
    """The sort key inside `cursor`; InvalidInput if it is not one of ours for `ordering`.

    What it decodes to goes into SQL, so each value must be one PostgreSQL takes: clean
    text, a bigint, a finite float (json.loads accepts NaN and 10**400)."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise _bad_cursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise _bad_cursor() from None
    if not isinstance(parts, list) or len(parts) != arity + 1 or parts[0] != ordering:
        raise _bad_cursor()
    key = tuple(parts[1:])
    if not all(_storable(v) for v in key):
        raise _bad_cursor()
    if not isinstance(key[-1], int) or isinstance(key[-1], bool):
        raise _bad_cursor()
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


def _bad_cursor() -> InvalidInput:
    return InvalidInput(
        "after is not a valid cursor for this list", code=ErrorCode.INVALID_CURSOR, field="after"
    )
