"""Refunds in SQL: reserve (PENDING) in one transaction, settle or release in another.

Each transaction takes the order row first (a write: PostgreSQL's row lock, SQLite's
database lock), so refunds of one order count in turn and two of them can never together
exceed what it paid; then stock rows, then gift card rows, each in id order, like
checkout and cancel.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.events import OrderRefunded
from domain.orders import OrderStatus
from domain.payments import PaymentEvent
from domain.refunds import (
    REFUNDABLE_STATUSES,
    ExceedsPayment,
    KeyReused,
    NothingToRefund,
    NotRefundable,
    Paid,
    Refund,
    RefundDraft,
    RefundLine,
    RefundStatus,
    Replayed,
    Reservation,
    UnitsExceeded,
    refund_value,
    split_to_gift_cards,
)
from persistence.db import Database, aware
from persistence.events.outbox import emit, emit_stock
from persistence.orders.order_store import first_delivery, move_status
from persistence.tables import (
    gift_cards,
    inventory_levels,
    order_discount_allocations,
    order_gift_card_payments,
    order_lines,
    order_refund_gift_cards,
    order_refund_lines,
    order_refunds,
    orders,
    webhook_events,
)

_HELD = [RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value]  # count against the order


class SqlRefundStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def reserve(self, order_id: int, draft: RefundDraft) -> Reservation:
        async with self._db.writer.begin() as connection:
            row = (
                (
                    await connection.execute(
                        update(orders)
                        .where(orders.c.id == order_id)
                        .values(updated_at=func.now())
                        .returning(orders)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return NotRefundable(OrderStatus.CANCELLED)
            earlier = (
                await connection.execute(
                    select(order_refunds.c.id, order_refunds.c.fingerprint).where(
                        order_refunds.c.order_id == order_id,
                        order_refunds.c.idempotency_key == draft.key_digest,
                    )
                )
            ).first()
            if earlier is not None:
                if earlier.fingerprint != draft.fingerprint:
                    return KeyReused()
                return Replayed((await _refunds(connection, [earlier.id]))[0])
            status = OrderStatus(row["status"])
            if status not in REFUNDABLE_STATUSES:
                return NotRefundable(status)
            lines = (
                await connection.execute(
                    select(order_lines.c.id, order_lines.c.unit_price, order_lines.c.quantity)
                    .where(order_lines.c.order_id == order_id)
                    .order_by(order_lines.c.id)
                )
            ).all()
            bought = {int(r.id): int(r.quantity) for r in lines}
            before = await _units_refunded(connection, order_id)
            shipping_before = await _shipping_refunded(connection, order_id)
            left = {i: bought.get(i, 0) - before.get(i, 0) for i in draft.units}
            short = {i: n for i, n in left.items() if draft.units[i] > n}
            if short or (draft.shipping and shipping_before):
                return UnitsExceeded(short, shipping=draft.shipping and shipping_before)
            amount = draft.amount
            if amount is None:
                allocations = (
                    await connection.execute(
                        select(
                            order_discount_allocations.c.order_line_id,
                            order_discount_allocations.c.amount,
                        ).where(order_discount_allocations.c.order_id == order_id)
                    )
                ).all()
                paid = Paid.of(
                    [(int(r.id), int(r.unit_price), int(r.quantity)) for r in lines],
                    int(row["shipping"]),
                    int(row["tax"]),
                    [(None if i is None else int(i), int(v)) for i, v in allocations],
                )
                amount = refund_value(paid, before, shipping_before, draft.units, draft.shipping)
            if amount <= 0:
                return NothingToRefund()
            room = int(row["total"]) - int(row["refunded_total"])
            if amount > room:
                return ExceedsPayment(room)
            parts = split_to_gift_cards(amount, await _gift_cards_left(connection, order_id))
            gift_part = sum(parts.values())
            refund_id = (
                await connection.execute(
                    insert(order_refunds)
                    .values(
                        public_id=draft.public_id,
                        order_id=order_id,
                        idempotency_key=draft.key_digest,
                        fingerprint=draft.fingerprint,
                        status=RefundStatus.PENDING.value,
                        amount=amount,
                        gift_card_amount=gift_part,
                        card_amount=amount - gift_part,
                        shipping=draft.shipping,
                        reason=draft.reason,
                        restock=draft.restock,
                    )
                    .returning(order_refunds.c.id)
                )
            ).scalar_one()
            if draft.units:
                await connection.execute(
                    insert(order_refund_lines),
                    [
                        {"refund_id": refund_id, "order_line_id": i, "quantity": k}
                        for i, k in sorted(draft.units.items())
                    ],
                )
            if parts:
                await connection.execute(
                    insert(order_refund_gift_cards),
                    [
                        {"refund_id": refund_id, "gift_card_id": card, "amount": value}
                        for card, value in sorted(parts.items())
                    ],
                )
            # The conditional guard, on the row this transaction holds.
            reserved = (
                await connection.execute(
                    update(orders)
                    .where(
                        orders.c.id == order_id,
                        orders.c.refunded_total + amount <= orders.c.total,
                    )
                    .values(refunded_total=orders.c.refunded_total + amount)
                    .returning(orders.c.id)
                )
            ).first()
            if reserved is None:  # cannot happen while the row is held; never write past it
                raise RuntimeError(f"order {order_id} refunded beyond its total")
            return (await _refunds(connection, [refund_id]))[0]

    async def record_gateway_refund(
        self, event: PaymentEvent, order_id: int | None
    ) -> tuple[bool, str]:
        """A verified `charge.refunded`: the gateway has refunded `event.amount` of the
        order's card payment in all. What our refunds (PENDING or SUCCEEDED) do not cover
        was refunded outside this API (the gateway's dashboard): record it as a SUCCEEDED
        card refund "at the gateway" (no restock, no gift card), with OrderRefunded and the
        order REFUNDED once refunds cover its total. Once per event, with the webhook log,
        holding the order row like every refund."""
        outcome = "settled: refund recorded"
        async with self._db.writer.begin() as connection:
            earlier = await first_delivery(connection, event, outcome)
            if earlier is not None:
                return False, earlier
            outcome = await self._gateway_refund(connection, event, order_id)
            await connection.execute(
                update(webhook_events)
                .where(webhook_events.c.event_id == event.event_id)
                .values(outcome=outcome)
            )
        return True, outcome

    async def _gateway_refund(
        self, connection: AsyncConnection, event: PaymentEvent, order_id: int | None
    ) -> str:
        row = None
        if order_id is not None:
            row = (
                await connection.execute(
                    update(orders)
                    .where(orders.c.id == order_id)
                    .values(updated_at=func.now())
                    .returning(
                        orders.c.public_id, orders.c.total, orders.c.refunded_total, orders.c.status
                    )
                )
            ).first()
        if row is None or order_id is None:
            return "ignored: unknown payment"
        ours = (
            await connection.execute(
                select(func.coalesce(func.sum(order_refunds.c.card_amount), 0)).where(
                    order_refunds.c.order_id == order_id, order_refunds.c.status.in_(_HELD)
                )
            )
        ).scalar_one()
        amount = min((event.amount or 0) - int(ours), int(row.total) - int(row.refunded_total))
        if amount <= 0:
            return "ignored: refunds already recorded"
        digest = hashlib.sha256(f"webhook:{event.event_id}".encode()).hexdigest()
        refund_id = (
            await connection.execute(
                insert(order_refunds)
                .values(
                    public_id=secrets.token_urlsafe(16),
                    order_id=order_id,
                    idempotency_key=digest,
                    fingerprint=digest,
                    status=RefundStatus.SUCCEEDED.value,
                    amount=amount,
                    gift_card_amount=0,
                    card_amount=amount,
                    shipping=False,
                    reason="refunded at the gateway",
                    restock=False,
                    settled_at=func.now(),
                )
                .returning(order_refunds.c.id, order_refunds.c.public_id)
            )
        ).one()
        await connection.execute(
            update(orders)
            .where(orders.c.id == order_id)
            .values(refunded_total=orders.c.refunded_total + amount)
        )
        status = str(row.status)
        if int(row.refunded_total) + amount >= int(row.total) and await move_status(
            connection, order_id, REFUNDABLE_STATUSES, OrderStatus.REFUNDED
        ):
            status = OrderStatus.REFUNDED.value
        await emit(
            connection,
            OrderRefunded(
                order=str(row.public_id),
                refund=str(refund_id.public_id),
                amount=amount,
                status=status,
            ),
        )
        return "settled: refund recorded"

    async def settle(self, refund_id: int, gateway_refund_id: str | None) -> Refund | None:
        async with self._db.writer.begin() as connection:
            order_id = await _lock_order_of(connection, refund_id)
            if order_id is None:
                return None
            settled = (
                await connection.execute(
                    update(order_refunds)
                    .where(
                        order_refunds.c.id == refund_id,
                        order_refunds.c.status == RefundStatus.PENDING.value,
                    )
                    .values(
                        status=RefundStatus.SUCCEEDED.value,
                        gateway_refund_id=gateway_refund_id,
                        settled_at=func.now(),
                    )
                    .returning(order_refunds.c.public_id, order_refunds.c.amount)
                )
            ).first()
            if settled is None:  # settled or released by another request meanwhile
                return (await _refunds(connection, [refund_id]))[0]
            refund = (await _refunds(connection, [refund_id]))[0]
            if refund.restock and refund.lines:
                await restock(connection, refund.lines)
            await _credit_gift_cards(connection, order_id, refund_id)
            total, public_id = (
                await connection.execute(
                    select(orders.c.total, orders.c.public_id).where(orders.c.id == order_id)
                )
            ).one()
            refunded = (
                await connection.execute(
                    select(func.coalesce(func.sum(order_refunds.c.amount), 0)).where(
                        order_refunds.c.order_id == order_id,
                        order_refunds.c.status == RefundStatus.SUCCEEDED.value,
                    )
                )
            ).scalar_one()
            status = (
                await connection.execute(select(orders.c.status).where(orders.c.id == order_id))
            ).scalar_one()
            if int(refunded) >= int(total) and await move_status(
                connection, order_id, REFUNDABLE_STATUSES, OrderStatus.REFUNDED
            ):
                status = OrderStatus.REFUNDED.value
            await emit(
                connection,
                OrderRefunded(
                    order=str(public_id),
                    refund=str(settled.public_id),
                    amount=int(settled.amount),
                    status=str(status),
                ),
            )
            return refund

    async def release(self, refund_id: int) -> Refund | None:
        async with self._db.writer.begin() as connection:
            order_id = await _lock_order_of(connection, refund_id)
            if order_id is None:
                return None
            released = (
                await connection.execute(
                    update(order_refunds)
                    .where(
                        order_refunds.c.id == refund_id,
                        order_refunds.c.status == RefundStatus.PENDING.value,
                    )
                    .values(status=RefundStatus.FAILED.value, settled_at=func.now())
                    .returning(order_refunds.c.amount)
                )
            ).scalar()
            if released is not None:
                await connection.execute(
                    update(orders)
                    .where(orders.c.id == order_id)
                    .values(refunded_total=orders.c.refunded_total - released)
                )
            return (await _refunds(connection, [refund_id]))[0]

    async def mark_unknown(self, refund_id: int) -> None:
        async with self._db.writer.begin() as connection:
            await connection.execute(
                update(order_refunds)
                .where(
                    order_refunds.c.id == refund_id,
                    order_refunds.c.status == RefundStatus.PENDING.value,
                )
                .values(outcome_unknown=True)
            )

    async def of_orders(self, order_ids: Sequence[int]) -> dict[int, list[Refund]]:
        async with self._db.writer.connect() as connection:
            ids = (
                (
                    await connection.execute(
                        select(order_refunds.c.id)
                        .where(order_refunds.c.order_id.in_(list(order_ids)))
                        .order_by(order_refunds.c.id)
                    )
                )
                .scalars()
                .all()
            )
            found: dict[int, list[Refund]] = {}
            for refund in await _refunds(connection, [int(i) for i in ids]):
                found.setdefault(refund.order_id, []).append(refund)
        return found


async def _lock_order_of(connection: AsyncConnection, refund_id: int) -> int | None:
    order_id = (
        await connection.execute(
            select(order_refunds.c.order_id).where(order_refunds.c.id == refund_id)
        )
    ).scalar()
    if order_id is None:
        return None
    await connection.execute(
        update(orders).where(orders.c.id == order_id).values(updated_at=func.now())
    )
    return int(order_id)


async def _refunds(connection: AsyncConnection, refund_ids: list[int]) -> list[Refund]:
    """The refunds with their lines, in the order of `refund_ids` (two statements)."""
    if not refund_ids:
        return []
    rows = (
        (await connection.execute(select(order_refunds).where(order_refunds.c.id.in_(refund_ids))))
        .mappings()
        .all()
    )
    lines: dict[int, list[RefundLine]] = {}
    for line in (
        await connection.execute(
            select(order_refund_lines)
            .where(order_refund_lines.c.refund_id.in_(refund_ids))
            .order_by(order_refund_lines.c.id)
        )
    ).mappings():
        lines.setdefault(line["refund_id"], []).append(
            RefundLine(int(line["order_line_id"]), int(line["quantity"]))
        )
    by_id = {row["id"]: _refund(row, lines.get(row["id"], [])) for row in rows}
    return [by_id[i] for i in refund_ids]


def _refund(row: Any, lines: list[RefundLine]) -> Refund:
    return Refund(
        id=int(row["id"]),
        public_id=row["public_id"],
        order_id=int(row["order_id"]),
        status=RefundStatus(row["status"]),
        amount=int(row["amount"]),
        gift_card_amount=int(row["gift_card_amount"]),
        card_amount=int(row["card_amount"]),
        lines=tuple(lines),
        shipping=bool(row["shipping"]),
        reason=row["reason"],
        restock=bool(row["restock"]),
        gateway_refund_id=row["gateway_refund_id"],
        created_at=aware(row["created_at"]),
        outcome_unknown=bool(row["outcome_unknown"]),
    )


async def _units_refunded(connection: AsyncConnection, order_id: int) -> dict[int, int]:
    rows = await connection.execute(
        select(order_refund_lines.c.order_line_id, func.sum(order_refund_lines.c.quantity))
        .join(order_refunds, order_refunds.c.id == order_refund_lines.c.refund_id)
        .where(order_refunds.c.order_id == order_id, order_refunds.c.status.in_(_HELD))
        .group_by(order_refund_lines.c.order_line_id)
    )
    return {int(line_id): int(units) for line_id, units in rows.all()}


async def _shipping_refunded(connection: AsyncConnection, order_id: int) -> bool:
    found = await connection.execute(
        select(order_refunds.c.id)
        .where(
            order_refunds.c.order_id == order_id,
            order_refunds.c.status.in_(_HELD),
            order_refunds.c.shipping,
        )
        .limit(1)
    )
    return found.first() is not None


async def _gift_cards_left(connection: AsyncConnection, order_id: int) -> list[tuple[int, int]]:
    """(gift card id, what it paid less what refunds gave or hold for it), in the order
    the cards were applied."""
    paid = (
        await connection.execute(
            select(order_gift_card_payments.c.gift_card_id, order_gift_card_payments.c.amount)
            .where(
                order_gift_card_payments.c.order_id == order_id,
                order_gift_card_payments.c.credited_back_at.is_(None),
            )
            .order_by(order_gift_card_payments.c.id)
        )
    ).all()
    back = {
        int(card): int(amount)
        for card, amount in await connection.execute(
            select(
                order_refund_gift_cards.c.gift_card_id,
                func.sum(order_refund_gift_cards.c.amount),
            )
            .join(order_refunds, order_refunds.c.id == order_refund_gift_cards.c.refund_id)
            .where(order_refunds.c.order_id == order_id, order_refunds.c.status.in_(_HELD))
            .group_by(order_refund_gift_cards.c.gift_card_id)
        )
    }
    return [(int(card), int(amount) - back.get(int(card), 0)) for card, amount in paid]


async def restock(connection: AsyncConnection, lines: Sequence[RefundLine]) -> None:
    """Put these units back in stock (rows in variant order) and write StockChanged."""
    units = {line.order_line_id: line.quantity for line in lines}
    variants = (
        await connection.execute(
            select(order_lines.c.id, order_lines.c.variant_id).where(
                order_lines.c.id.in_(list(units))
            )
        )
    ).all()
    per_variant: dict[int, int] = {}
    for line_id, variant_id in variants:
        per_variant[int(variant_id)] = per_variant.get(int(variant_id), 0) + units[int(line_id)]
    stock: dict[int, int] = {}
    for variant_id, quantity in sorted(per_variant.items()):
        stock[variant_id] = (
            await connection.execute(
                update(inventory_levels)
                .where(inventory_levels.c.variant_id == variant_id)
                .values(available=inventory_levels.c.available + quantity, updated_at=func.now())
                .returning(inventory_levels.c.available)
            )
        ).scalar_one()
    await emit_stock(connection, stock)


async def _credit_gift_cards(connection: AsyncConnection, order_id: int, refund_id: int) -> None:
    """Put this refund's gift card parts back on the cards (conditional: never above a
    card's initial balance), and mark a card's payment credited back once refunds gave
    back all it paid."""
    parts = (
        await connection.execute(
            select(order_refund_gift_cards.c.gift_card_id, order_refund_gift_cards.c.amount)
            .where(order_refund_gift_cards.c.refund_id == refund_id)
            .order_by(order_refund_gift_cards.c.gift_card_id)
        )
    ).all()
    for card_id, amount in parts:
        await connection.execute(
            update(gift_cards)
            .where(
                gift_cards.c.id == card_id,
                gift_cards.c.balance + amount <= gift_cards.c.initial_balance,
            )
            .values(balance=gift_cards.c.balance + amount)
        )
    if not parts:
        return
    back = (
        select(func.coalesce(func.sum(order_refund_gift_cards.c.amount), 0))
        .join(order_refunds, order_refunds.c.id == order_refund_gift_cards.c.refund_id)
        .where(
            order_refunds.c.order_id == order_id,
            order_refunds.c.status == RefundStatus.SUCCEEDED.value,
            order_refund_gift_cards.c.gift_card_id == order_gift_card_payments.c.gift_card_id,
        )
        .scalar_subquery()
    )
    await connection.execute(
        update(order_gift_card_payments)
        .where(
            order_gift_card_payments.c.order_id == order_id,
            order_gift_card_payments.c.credited_back_at.is_(None),
            order_gift_card_payments.c.amount <= back,
        )
        .values(credited_back_at=func.now())
    )
