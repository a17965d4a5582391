"""A span per loader batch (one `IN`/`ANY` query or one MGET each), when tracing is on.

The request's loaders are wrapped as they are made; with tracing off they are never
touched, so no request pays for a wrapper.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiodataloader import DataLoader
from opentelemetry.trace import Tracer


def trace_loaders(groups: Iterable[object], tracer: Tracer) -> None:
    """Give every DataLoader held by these groups (a dataclass of loaders, or a loader)
    a span around each of its batches: the loader's name and how many keys it took."""
    for group in groups:
        names = getattr(group, "__dataclass_fields__", None)
        loaders = [group] if names is None else [getattr(group, name) for name in names]
        for loader in loaders:
            if isinstance(loader, DataLoader):
                loader.batch_load_fn = _traced(  # type: ignore[assignment]
                    type(loader).__name__, loader.batch_load_fn, tracer
                )


def _traced(
    name: str, batch: Callable[[list[Any]], Awaitable[list[Any]]], tracer: Tracer
) -> Callable[[list[Any]], Awaitable[list[Any]]]:
    span_name = f"loader {name}"

    async def traced_batch(keys: list[Any]) -> list[Any]:
        with tracer.start_as_current_span(
            span_name, attributes={"loader.name": name, "loader.keys": len(keys)}
        ):
            return await batch(keys)

    return traced_batch
