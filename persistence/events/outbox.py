"""Writing domain events into the outbox, inside the caller's transaction.

Every state change that others care about (an order placed or paid, stock moved, a
product edited) writes its events here in the same transaction as the change, so an
event exists exactly when its change committed. The relay moves them to Redis Streams.
A payload dataclass from domain/events.py is the only thing `emit` takes: its class
names the topic and `to_wire` writes the JSON object consumers read. Written inside a
traced request, an event keeps that request's trace context (see trace_context.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.events import EventPayload, StockChanged
from persistence.events.trace_context import current_trace_context
from persistence.tables import outbox


async def emit(connection: AsyncConnection, event: EventPayload) -> None:
    await connection.execute(
        insert(outbox).values(
            topic=event.topic.value,
            payload=event.to_wire(),
            trace_context=current_trace_context(),
        )
    )


async def emit_all(connection: AsyncConnection, events: Sequence[EventPayload]) -> None:
    """Several events in one statement (nothing at all for none)."""
    if events:
        trace_context = current_trace_context()
        await connection.execute(
            insert(outbox),
            [
                {
                    "topic": event.topic.value,
                    "payload": event.to_wire(),
                    "trace_context": trace_context,
                }
                for event in events
            ],
        )


async def emit_stock(connection: AsyncConnection, stock: Mapping[int, int]) -> None:
    """`StockChanged` per variant: its id and the units now available."""
    await emit_all(
        connection,
        [StockChanged(variant=variant_id, available=n) for variant_id, n in stock.items()],
    )
