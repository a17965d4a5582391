"""Returns in SQL: a request counts what can still be returned while holding the order
row, so concurrent requests for the same units never together exceed what shipped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.events import ReturnStatusChanged
from domain.orders import OrderStatus
from domain.refunds import RefundLine
from domain.returns import (
    RETURNABLE_STATUSES,
    NotReturnable,
    OrderReturn,
    ReturnsExceeded,
    ReturnStatus,
)
from persistence.db import Database, aware
from persistence.events.outbox import emit
from persistence.orders.refund_store import restock as restock_lines
from persistence.tables import (
    fulfillment_lines,
    fulfillments,
    order_return_lines,
    order_returns,
    orders,
)


class SqlReturnStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def request(
        self,
        order_id: int,
        public_id: str,
        units: dict[int, int],
        reason: str | None,
        fulfilled_since: datetime,
    ) -> OrderReturn | ReturnsExceeded | NotReturnable:
        async with self._db.writer.begin() as connection:
            locked = (
                await connection.execute(
                    update(orders)
                    .where(orders.c.id == order_id)
                    .values(updated_at=func.now())
                    .returning(orders.c.public_id, orders.c.status)
                )
            ).first()
            if locked is None:
                return NotReturnable(OrderStatus.CANCELLED)
            status = OrderStatus(locked.status)
            if status not in RETURNABLE_STATUSES:
                return NotReturnable(status)
            shipped = await _fulfilled(connection, order_id)
            recent = await _fulfilled(connection, order_id, fulfilled_since)
            asked = await _asked(connection, order_id)
            left = {
                line_id: max(
                    min(recent.get(line_id, 0), shipped.get(line_id, 0) - asked.get(line_id, 0)), 0
                )
                for line_id in units
            }
            short = {line_id: n for line_id, n in left.items() if units[line_id] > n}
            if short:
                return ReturnsExceeded(short)
            return_id = (
                await connection.execute(
                    insert(order_returns)
                    .values(
                        public_id=public_id,
                        order_id=order_id,
                        status=ReturnStatus.REQUESTED.value,
                        reason=reason,
                    )
                    .returning(order_returns.c.id)
                )
            ).scalar_one()
            await connection.execute(
                insert(order_return_lines),
                [
                    {"return_id": return_id, "order_line_id": line_id, "quantity": k}
                    for line_id, k in sorted(units.items())
                ],
            )
            await emit(
                connection,
                ReturnStatusChanged(
                    order=str(locked.public_id),
                    return_id=public_id,
                    status=ReturnStatus.REQUESTED.value,
                ),
            )
            return (await _returns(connection, order_returns.c.id == return_id))[0]

    async def by_public_id(self, public_id: str) -> OrderReturn | None:
        async with self._db.writer.connect() as connection:
            found = await _returns(connection, order_returns.c.public_id == public_id)
        return found[0] if found else None

    async def move(
        self,
        return_id: int,
        source: ReturnStatus,
        target: ReturnStatus,
        *,
        decline_reason: str | None = None,
        refund_id: int | None = None,
        restock: bool = False,
    ) -> OrderReturn | None:
        values: dict[str, Any] = {"status": target.value, "updated_at": func.now()}
        if decline_reason is not None:
            values["decline_reason"] = decline_reason
        if refund_id is not None:
            values["refund_id"] = refund_id
        async with self._db.writer.begin() as connection:
            moved = (
                await connection.execute(
                    update(order_returns)
                    .where(order_returns.c.id == return_id, order_returns.c.status == source.value)
                    .values(**values)
                    .returning(order_returns.c.public_id, order_returns.c.order_id)
                )
            ).first()
            if moved is None:
                return None
            found = (await _returns(connection, order_returns.c.id == return_id))[0]
            if restock:
                await restock_lines(connection, found.lines)
            public_order_id = (
                await connection.execute(
                    select(orders.c.public_id).where(orders.c.id == moved.order_id)
                )
            ).scalar_one()
            await emit(
                connection,
                ReturnStatusChanged(
                    order=str(public_order_id), return_id=str(moved.public_id), status=target.value
                ),
            )
        return found

    async def of_orders(self, order_ids: Sequence[int]) -> dict[int, list[OrderReturn]]:
        async with self._db.writer.connect() as connection:
            found = await _returns(connection, order_returns.c.order_id.in_(list(order_ids)))
        by_order: dict[int, list[OrderReturn]] = {}
        for found_return in found:
            by_order.setdefault(found_return.order_id, []).append(found_return)
        return by_order


async def _fulfilled(
    connection: AsyncConnection, order_id: int, since: datetime | None = None
) -> dict[int, int]:
    statement = (
        select(fulfillment_lines.c.order_line_id, func.sum(fulfillment_lines.c.quantity))
        .join(fulfillments, fulfillments.c.id == fulfillment_lines.c.fulfillment_id)
        .where(fulfillments.c.order_id == order_id)
        .group_by(fulfillment_lines.c.order_line_id)
    )
    if since is not None:
        statement = statement.where(fulfillments.c.created_at >= since)
    return {int(line_id): int(units) for line_id, units in (await connection.execute(statement))}


async def _asked(connection: AsyncConnection, order_id: int) -> dict[int, int]:
    """Units per order line in this order's returns that were not declined."""
    rows = await connection.execute(
        select(order_return_lines.c.order_line_id, func.sum(order_return_lines.c.quantity))
        .join(order_returns, order_returns.c.id == order_return_lines.c.return_id)
        .where(
            order_returns.c.order_id == order_id,
            order_returns.c.status != ReturnStatus.DECLINED.value,
        )
        .group_by(order_return_lines.c.order_line_id)
    )
    return {int(line_id): int(units) for line_id, units in rows}


async def _returns(connection: AsyncConnection, condition: Any) -> list[OrderReturn]:
    rows = (
        (
            await connection.execute(
                select(order_returns).where(condition).order_by(order_returns.c.id)
            )
        )
        .mappings()
        .all()
    )
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    lines: dict[int, list[RefundLine]] = {}
    for line in (
        await connection.execute(
            select(order_return_lines)
            .where(order_return_lines.c.return_id.in_(ids))
            .order_by(order_return_lines.c.id)
        )
    ).mappings():
        lines.setdefault(line["return_id"], []).append(
            RefundLine(int(line["order_line_id"]), int(line["quantity"]))
        )
    return [
        OrderReturn(
            id=int(row["id"]),
            public_id=row["public_id"],
            order_id=int(row["order_id"]),
            status=ReturnStatus(row["status"]),
            lines=tuple(lines.get(row["id"], [])),
            reason=row["reason"],
            decline_reason=row["decline_reason"],
            refund_id=row["refund_id"],
            created_at=aware(row["created_at"]),
        )
        for row in rows
    ]
