"""Writing domain events into the outbox, inside the caller's transaction.

Every state change that others care about (an order placed or paid, stock moved, a
product edited) writes its events here in the same transaction as the change, so an
event exists exactly when its change committed. The relay moves them to Redis Streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from persistence.tables import outbox


async def emit(connection: AsyncConnection, topic: str, payload: dict[str, Any]) -> None:
    await connection.execute(insert(outbox).values(topic=topic, payload=payload))


async def emit_many(
    connection: AsyncConnection, topic: str, payloads: list[dict[str, Any]]
) -> None:
    if payloads:
        await connection.execute(
            insert(outbox), [{"topic": topic, "payload": payload} for payload in payloads]
        )


async def emit_stock(connection: AsyncConnection, stock: Mapping[int, int]) -> None:
    """`StockChanged` per variant: its id and the units now available."""
    await emit_many(
        connection,
        "StockChanged",
        [
            {"variant": variant_id, "available": available}
            for variant_id, available in stock.items()
        ],
    )
