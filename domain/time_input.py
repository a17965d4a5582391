"""What a client's moment in time must be before it is compared or stored.

A timestamp is stored in UTC: one without an offset is ambiguous, and one at the edge of
the calendar (year 1 at +14:00, year 9999 at -14:00) has no UTC equivalent, so converting
it raises OverflowError deep in the database driver. Both are refused here, as input.
"""

from __future__ import annotations

from datetime import UTC, datetime


def moment_problem(moment: datetime) -> str | None:
    """Why `moment` cannot be stored as a UTC timestamp, or None when it can."""
    if moment.utcoffset() is None:
        return "needs a UTC offset (e.g. 2026-12-01T00:00:00Z)"
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return "is out of range"
    return None
