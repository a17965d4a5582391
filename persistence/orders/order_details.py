"""What an order screen shows besides the order: its fulfilments, status history,
discount allocations, gift card payments, refunds and returns.

Read for many orders at once (one statement per kind, whatever the page size), by the
per-request loaders in dataloaders/orders.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from domain.orders import (
    Fulfillment,
    FulfillmentLine,
    GiftCardDebit,
    OrderDiscountAllocation,
    OrderStatus,
    StatusChange,
    Tracking,
)
from domain.refunds import Refund
from domain.returns import OrderReturn
from persistence.db import Database, aware
from persistence.orders.refund_store import SqlRefundStore
from persistence.orders.return_store import SqlReturnStore
from persistence.tables import (
    fulfillment_lines,
    fulfillments,
    order_discount_allocations,
    order_gift_card_payments,
    order_lines,
    order_status_changes,
)


class SqlOrderDetails:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._refunds = SqlRefundStore(db)
        self._returns = SqlReturnStore(db)

    async def refunds(self, order_ids: Sequence[int]) -> dict[int, list[Refund]]:
        return await self._refunds.of_orders(order_ids)

    async def returns(self, order_ids: Sequence[int]) -> dict[int, list[OrderReturn]]:
        return await self._returns.of_orders(order_ids)

    async def fulfillments(self, order_ids: Sequence[int]) -> dict[int, list[Fulfillment]]:
        statement = (
            select(
                fulfillments,
                fulfillment_lines.c.order_line_id,
                fulfillment_lines.c.quantity,
            )
            .join(fulfillment_lines, fulfillment_lines.c.fulfillment_id == fulfillments.c.id)
            .where(fulfillments.c.order_id.in_(list(order_ids)))
            .order_by(fulfillments.c.order_id, fulfillments.c.id, fulfillment_lines.c.id)
        )
        # The primary, like the orders themselves: staff read a fulfilment back at once.
        async with self._db.writer.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        lines: dict[int, list[FulfillmentLine]] = {}
        heads: dict[int, Fulfillment] = {}
        for row in rows:
            lines.setdefault(row["id"], []).append(
                FulfillmentLine(row["order_line_id"], row["quantity"])
            )
            if row["id"] not in heads:
                heads[row["id"]] = Fulfillment(
                    id=row["id"],
                    order_id=row["order_id"],
                    tracking=Tracking(
                        row["tracking_company"], row["tracking_number"], row["tracking_url"]
                    ),
                    lines=(),
                    created_at=aware(row["created_at"]),
                )
        found: dict[int, list[Fulfillment]] = {}
        for fulfillment_id, head in heads.items():
            found.setdefault(head.order_id, []).append(
                Fulfillment(
                    id=head.id,
                    order_id=head.order_id,
                    tracking=head.tracking,
                    lines=tuple(lines[fulfillment_id]),
                    created_at=head.created_at,
                )
            )
        return found

    async def status_history(self, order_ids: Sequence[int]) -> dict[int, list[StatusChange]]:
        statement = (
            select(order_status_changes)
            .where(order_status_changes.c.order_id.in_(list(order_ids)))
            .order_by(order_status_changes.c.order_id, order_status_changes.c.id)
        )
        async with self._db.writer.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        found: dict[int, list[StatusChange]] = {}
        for row in rows:
            found.setdefault(row["order_id"], []).append(
                StatusChange(OrderStatus(row["status"]), aware(row["at"]))
            )
        return found

    async def discount_allocations(
        self, order_ids: Sequence[int]
    ) -> dict[int, list[OrderDiscountAllocation]]:
        a = order_discount_allocations
        statement = (
            select(a, order_lines.c.variant_id)
            .outerjoin(order_lines, order_lines.c.id == a.c.order_line_id)
            .where(a.c.order_id.in_(list(order_ids)))
            .order_by(a.c.order_id, a.c.id)
        )
        found: dict[int, list[OrderDiscountAllocation]] = {}
        async with self._db.writer.connect() as connection:
            for row in (await connection.execute(statement)).mappings():
                found.setdefault(row["order_id"], []).append(
                    OrderDiscountAllocation(
                        variant_id=row["variant_id"],
                        discount_id=row["discount_id"],
                        title=row["title"],
                        code=row["code"],
                        amount=row["amount"],
                        order_line_id=row["order_line_id"],
                    )
                )
        return found

    async def gift_card_payments(self, order_ids: Sequence[int]) -> dict[int, list[GiftCardDebit]]:
        p = order_gift_card_payments
        statement = (
            select(p).where(p.c.order_id.in_(list(order_ids))).order_by(p.c.order_id, p.c.id)
        )
        found: dict[int, list[GiftCardDebit]] = {}
        async with self._db.writer.connect() as connection:
            for row in (await connection.execute(statement)).mappings():
                found.setdefault(row["order_id"], []).append(
                    GiftCardDebit(
                        gift_card_id=row["gift_card_id"],
                        last_characters=row["last_characters"],
                        amount=row["amount"],
                        credited_back=row["credited_back_at"] is not None,
                    )
                )
        return found
