"""Which reads must see this request's own writes.

Reads that may lag (catalog pages, search, reviews) can be served by a read replica;
a use case that writes and then answers from what it wrote (a mutation and its payload,
checkout pricing) asks for current reads for its whole extent with `current_reads()`.
The persistence layer honours it; without a replica every read is current anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[bool] = ContextVar("current_reads", default=False)


def current_reads_wanted() -> bool:
    return _current.get()


@contextmanager
def current_reads() -> Iterator[None]:
    """Every read inside (and in the tasks it starts) goes to the primary."""
    token = _current.set(True)
    try:
        yield
    finally:
        _current.reset(token)
