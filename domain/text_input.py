"""What any client string must be before it reaches a database, a cache or a log.

PostgreSQL text cannot hold NUL (asyncpg raises before sending it), a lone surrogate
cannot be encoded as UTF-8 at all, and the other C0 controls have no business in a
slug, a name or an address: they are refused everywhere at once. Tab, newline and
carriage return are ordinary text (a review body has lines). U+2028/U+2029 and other
format characters are valid Unicode text that every layer stores faithfully, so they
pass; the domain's own rules decide where they make sense.

The length backstop bounds memory and work for any string; each field keeps its own
tighter limit (titles 200, review bodies 5,000, ...).
"""

from __future__ import annotations

import re

DEFAULT_MAX_STRING_LENGTH = 10_000
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def string_problem(value: str, max_length: int = DEFAULT_MAX_STRING_LENGTH) -> str | None:
    """Why `value` may not be used as client input, or None when it may."""
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    if _FORBIDDEN.search(value) is not None:
        return "contains control characters or unpaired surrogates"
    return None


def is_clean(value: str, max_length: int = DEFAULT_MAX_STRING_LENGTH) -> bool:
    return string_problem(value, max_length) is None
