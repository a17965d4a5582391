"""Sort keys inside cursors: written from rows, checked and converted when read back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.errors import ErrorCode, InvalidInput
from persistence.db import aware


def time_key(value: datetime) -> str:
    return aware(value).isoformat()


def parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("time key must be a string")
    return aware(datetime.fromisoformat(value))


def review_time_key(value: Any) -> datetime:
    try:
        return parse_time(value)
    except ValueError:
        raise bad_cursor() from None


def review_id_key(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_cursor()
    return value


def bad_cursor() -> InvalidInput:
    return InvalidInput(
        "after is not a valid cursor for this list", code=ErrorCode.INVALID_CURSOR, field="after"
    )
