"""Sort keys inside cursors: written from rows, checked and converted when read back.

Every keyset list sorted by time then id (reviews, orders, newest products) shares
these; a value a cursor carries that we never wrote is INVALID_CURSOR."""

from __future__ import annotations

from datetime import datetime

from domain.pagination import encode_cursor, invalid_cursor
from persistence.db import aware


def time_key(value: datetime) -> str:
    return aware(value).isoformat()


def time_id_cursor(ordering: str, moment: datetime, row_id: int) -> str:
    """The cursor of a row in a list sorted by time, then id."""
    return encode_cursor(ordering, (time_key(moment), row_id))


def parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("time key must be a string")
    return aware(datetime.fromisoformat(value))


def cursor_time(value: object) -> datetime:
    """A time key read from a cursor."""
    try:
        return parse_time(value)
    except ValueError:
        raise invalid_cursor() from None


def cursor_id(value: object) -> int:
    """An id key read from a cursor."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_cursor()
    return value
