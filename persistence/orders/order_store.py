"""Orders in SQL: every state change one transaction with its events.

Stock is reserved with conditional decrements (`available = available - q WHERE
available >= q`), one row at a time in variant-id order, so concurrent checkouts lock rows
in the same order (no deadlocks) and the CHECK (available >= 0) is never even tested.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, exists, func, insert, literal, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.addresses import MailingAddress
from domain.events import (
    FulfillmentCreated,
    OrderCancelled,
    OrderDisputed,
    OrderPaid,
    OrderPlaced,
    PaymentActionRequired,
    PaymentFailed,
)
from domain.listing import ORDERS_ORDERING
from domain.orders import (
    CART_HOLDING_STATUSES,
    UNSETTLED_STATUSES,
    CartTaken,
    Dispute,
    NewOrder,
    Order,
    OrderLine,
    OrderStatus,
    Overfulfilled,
    Payment,
    Tracking,
    Unredeemable,
)
from domain.pagination import Page, PageRequest
from domain.payments import PaymentAction, PaymentEvent
from persistence.cursor_keys import cursor_id, cursor_time, time_id_cursor
from persistence.db import Database, aware
from persistence.events.outbox import emit, emit_stock
from persistence.pii import PiiCipher
from persistence.tables import (
    ORDER_HOLDS_CART,
    discount_redemptions,
    discounts,
    fulfillment_lines,
    fulfillments,
    gift_cards,
    idempotency_keys,
    inventory_levels,
    order_discount_allocations,
    order_gift_card_payments,
    order_lines,
    order_status_changes,
    orders,
    webhook_events,
)

PENDING = OrderStatus.PENDING_PAYMENT.value
_PLACE_ATTEMPTS = 3
_ORDER_FIELDS = {f.name for f in dataclasses.fields(Order)}
_NEW_ORDER_FIELDS = [f.name for f in dataclasses.fields(NewOrder) if f.name in _ORDER_FIELDS]
_LINE_FIELDS = [f.name for f in dataclasses.fields(OrderLine) if f.name != "id"]


class _CartHeld(Exception):
    """Another order holds the cart: roll back having written nothing."""


class _ShortOfStock(Exception):
    def __init__(self, variant_ids: list[int]) -> None:
        self.variant_ids = variant_ids


class _Unredeemable(Exception):
    def __init__(self, refused: Unredeemable) -> None:
        self.refused = refused


class SqlOrderStore:
    def __init__(self, db: Database, cipher: PiiCipher) -> None:
        self._db = db
        self._cipher = cipher
        self._insert: Any = postgresql.insert if db.is_postgres else sqlite.insert

    # -- writes ------------------------------------------------------------------------

    async def place(
        self, claim_id: int, order: NewOrder, expires_at: datetime
    ) -> Order | list[int] | CartTaken | Unredeemable:
        wanted: dict[int, int] = {}
        for line in order.lines:
            wanted[line.variant_id] = wanted.get(line.variant_id, 0) + line.quantity
        # A holder seen by the conflict may fail its payment (freeing the cart) before we
        # read it back; then the cart is free again and the next attempt can take it.
        for _ in range(_PLACE_ATTEMPTS):
            try:
                return await self._place_once(claim_id, order, expires_at, wanted)
            except _ShortOfStock as short:
                return short.variant_ids
            except _Unredeemable as unredeemable:
                return unredeemable.refused
            except _CartHeld:
                holder = await self.holding_cart(order.cart_id)
                if holder is not None:
                    return CartTaken(holder)
        raise RuntimeError(f"cart {order.cart_id!r} kept changing hands while placing")

    async def _place_once(
        self, claim_id: int, order: NewOrder, expires_at: datetime, wanted: dict[int, int]
    ) -> Order:
        async with self._db.writer.begin() as connection:
            # The order row first: it claims the cart. A concurrent checkout of the same
            # cart blocks on the unique index until this transaction ends, then conflicts.
            created = (
                await connection.execute(
                    self._insert(orders)
                    .values(
                        public_id=order.public_id,
                        customer_id=order.customer_id,
                        cart_id=order.cart_id,
                        status=PENDING,
                        currency_code=order.currency_code,
                        subtotal=order.subtotal,
                        shipping=order.shipping,
                        tax=order.tax,
                        total=order.total,
                        email_encrypted=self._cipher.encrypt(order.email),
                        shipping_address_encrypted=self._cipher.encrypt(
                            orjson.dumps(order.shipping_address).decode()
                        ),
                        payment_method=order.payment_method,
                        reservation_expires_at=expires_at,
                        status_token_hash=order.status_token_hash,
                        shipping_method_title=order.shipping_method_title,
                        shipping_method_handle=order.shipping_method_handle,
                        discount_total=order.discount_total,
                        gift_card_total=order.gift_card_total,
                    )
                    .on_conflict_do_nothing(
                        index_elements=[orders.c.cart_id], index_where=ORDER_HOLDS_CART
                    )
                    .returning(orders.c.id, orders.c.created_at, orders.c.updated_at)
                )
            ).first()
            if created is None:
                raise _CartHeld()  # nothing written; the transaction rolls back
            order_id = created.id
            stock = await self._reserve(connection, wanted)
            line_ids = (
                (
                    await connection.execute(
                        insert(order_lines).returning(
                            order_lines.c.id, sort_by_parameter_order=True
                        ),
                        [
                            {"order_id": order_id, **{f: getattr(line, f) for f in _LINE_FIELDS}}
                            for line in order.lines
                        ],
                    )
                )
                .scalars()
                .all()
            )
            await connection.execute(
                insert(order_status_changes).values(
                    order_id=order_id, status=PENDING, at=created.created_at
                )
            )
            await connection.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.id == claim_id)
                .values(order_id=order_id)
            )
            await emit(
                connection,
                OrderPlaced(order=order.public_id, total=order.total, currency=order.currency_code),
            )
            await emit_stock(connection, stock)
            # Last: a popular code's row stays locked only until the commit that follows.
            line_of = dict(zip((line.variant_id for line in order.lines), line_ids, strict=True))
            await _redeem(connection, self._insert, order_id, order, line_of, created.created_at)
        # Built from what was written: no need to read it back.
        return Order(
            id=order_id,
            status=OrderStatus.PENDING_PAYMENT,
            payment_id=None,
            card_brand=None,
            card_last4=None,
            decline_code=None,
            created_at=aware(created.created_at),
            updated_at=aware(created.updated_at),
            **{f: getattr(order, f) for f in _NEW_ORDER_FIELDS if f != "lines"},
            lines=tuple(
                dataclasses.replace(line, id=line_id)
                for line, line_id in zip(order.lines, line_ids, strict=True)
            ),
        )

    async def mark_paid(self, order: Order, payment: Payment) -> Order | None:
        async with self._db.writer.begin() as connection:
            updated_at = await _pay(connection, order.id, payment)
        if updated_at is None:
            return None
        return dataclasses.replace(
            order,
            status=OrderStatus.PAID,
            payment_id=payment.payment_id,
            card_brand=payment.card_brand,
            card_last4=payment.card_last4,
            updated_at=updated_at,
        )

    async def mark_failed(
        self, order: Order, decline_code: str, payment_id: str | None
    ) -> Order | None:
        async with self._db.writer.begin() as connection:
            updated_at = await _fail(connection, order.id, decline_code, payment_id)
        if updated_at is None:
            return None
        return dataclasses.replace(
            order,
            status=OrderStatus.PAYMENT_FAILED,
            decline_code=decline_code,
            payment_id=payment_id if payment_id is not None else order.payment_id,
            updated_at=updated_at,
        )

    async def cancel(
        self, order_id: int, refund_id: str | None, reason: str | None = None
    ) -> Order | None:
        # Nothing shipped: a fulfilment's units have left, so their stock is not ours. And
        # nothing refunded (on the row itself, so a refund committed meanwhile counts):
        # cancelling gives everything back, which a partial refund already began.
        unshipped = ~exists().where(fulfillments.c.order_id == orders.c.id) & (
            orders.c.refunded_total == 0
        )
        async with self._db.writer.begin() as connection:
            moved = await move_status(
                connection,
                order_id,
                (
                    OrderStatus.PENDING_PAYMENT,
                    OrderStatus.PAYMENT_ACTION_REQUIRED,
                    OrderStatus.PAID,
                ),
                OrderStatus.CANCELLED,
                unshipped,
                refund_id=refund_id,
                cancel_reason=reason,
            )
            if moved is None:
                return None
            await emit(connection, OrderCancelled(order=moved[0], refund=refund_id))
            await _release(connection, order_id)
        return await self.by_id(order_id)

    async def fulfil(
        self, order_id: int, wanted: dict[int, int] | None, tracking: Tracking
    ) -> Order | Overfulfilled | None:
        async with self._db.writer.begin() as connection:
            # A write first: it locks the order row (PostgreSQL) or the database (SQLite)
            # before anything is counted, so concurrent fulfilments count in turn.
            public_id = (
                await connection.execute(
                    update(orders)
                    .where(orders.c.id == order_id, orders.c.status == OrderStatus.PAID.value)
                    .values(updated_at=func.now())
                    .returning(orders.c.public_id)
                )
            ).scalar()
            if public_id is None:
                return None
            left = await _units_left(connection, order_id)
            if wanted is None:
                wanted = {line_id: units for line_id, units in left.items() if units > 0}
            short = {
                line_id: left.get(line_id, 0)
                for line_id, units in wanted.items()
                if units > left.get(line_id, 0)
            }
            if short or not wanted:
                return Overfulfilled(short)  # nothing written
            fulfillment_id = (
                await connection.execute(
                    insert(fulfillments)
                    .values(
                        order_id=order_id,
                        tracking_company=tracking.company,
                        tracking_number=tracking.number,
                        tracking_url=tracking.url,
                    )
                    .returning(fulfillments.c.id)
                )
            ).scalar_one()
            await connection.execute(
                insert(fulfillment_lines),
                [
                    {"fulfillment_id": fulfillment_id, "order_line_id": line_id, "quantity": units}
                    for line_id, units in sorted(wanted.items())
                ],
            )
            status = OrderStatus.PAID
            if all(units == wanted.get(line_id, 0) for line_id, units in left.items()):
                await move_status(connection, order_id, (OrderStatus.PAID,), OrderStatus.FULFILLED)
                status = OrderStatus.FULFILLED
            await emit(
                connection,
                FulfillmentCreated(
                    order=str(public_id), fulfillment=int(fulfillment_id), status=status.value
                ),
            )
        return await self.by_id(order_id)

    async def has_fulfillments(self, order_id: int) -> bool:
        async with self._db.writer.connect() as connection:
            found = await connection.execute(
                select(fulfillments.c.id).where(fulfillments.c.order_id == order_id).limit(1)
            )
            return found.first() is not None

    async def set_payment_id(self, order_id: int, payment_id: str) -> None:
        async with self._db.writer.begin() as connection:
            await connection.execute(
                update(orders).where(orders.c.id == order_id).values(payment_id=payment_id)
            )

    async def settle_event(
        self, event: PaymentEvent, order_id: int | None, outcome: str
    ) -> tuple[bool, str]:
        async with self._db.writer.begin() as connection:
            # First: a concurrent delivery of the same event waits here for this one.
            earlier = await first_delivery(connection, event, outcome)
            if earlier is not None:
                return False, earlier
            if order_id is None:
                return True, outcome
            # The payment id may have been recorded since the caller looked: checked again
            # in the transition itself.
            same_intent = or_(
                orders.c.payment_id.is_(None), orders.c.payment_id == (event.payment_id or "")
            )
            if event.kind == "payment_succeeded":
                payment = Payment(event.payment_id, event.card_brand, event.card_last4)
                moved = await _pay(connection, order_id, payment, same_intent)
            else:
                decline_code = event.decline_code or "payment_failed"
                moved = await _fail(
                    connection, order_id, decline_code, event.payment_id, same_intent
                )
            if moved is None:
                status = (
                    await connection.execute(select(orders.c.status).where(orders.c.id == order_id))
                ).scalar()
                outcome = f"ignored: order is {status}"
                await connection.execute(
                    update(webhook_events)
                    .where(webhook_events.c.event_id == event.event_id)
                    .values(outcome=outcome)
                )
        return True, outcome

    async def record_dispute(self, event: PaymentEvent, order_id: int | None) -> tuple[bool, str]:
        outcome = "settled: disputed" if order_id is not None else "ignored: unknown payment"
        async with self._db.writer.begin() as connection:
            earlier = await first_delivery(connection, event, outcome)
            if earlier is not None:
                return False, earlier
            if order_id is None:
                return True, outcome
            flagged = (
                await connection.execute(
                    update(orders)
                    .where(orders.c.id == order_id, orders.c.disputed_at.is_(None))
                    .values(
                        disputed_at=func.now(),
                        dispute_reason=event.dispute_reason or "unknown",
                        dispute_amount=event.amount,
                        updated_at=func.now(),
                    )
                    .returning(orders.c.public_id)
                )
            ).scalar()
            if flagged is None:
                outcome = "ignored: already disputed"
                await connection.execute(
                    update(webhook_events)
                    .where(webhook_events.c.event_id == event.event_id)
                    .values(outcome=outcome)
                )
                return True, outcome
            await emit(
                connection,
                OrderDisputed(
                    order=str(flagged),
                    reason=event.dispute_reason or "unknown",
                    amount=event.amount or 0,
                ),
            )
        return True, outcome

    # -- reads -------------------------------------------------------------------------

    async def by_id(self, order_id: int) -> Order | None:
        found = await self._load(orders.c.id == order_id)
        return found[0] if found else None

    async def by_public_id(self, public_id: str) -> Order | None:
        found = await self._load(orders.c.public_id == public_id)
        return found[0] if found else None

    async def by_payment_id(self, payment_id: str) -> Order | None:
        found = await self._load(orders.c.payment_id == payment_id, limit=1)
        return found[0] if found else None

    async def by_status_token_hash(self, token_hash: str) -> Order | None:
        found = await self._load(orders.c.status_token_hash == token_hash)
        return found[0] if found else None

    async def holding_cart(self, cart_id: str) -> Order | None:
        found = await self._load(
            (orders.c.cart_id == cart_id)
            & orders.c.status.in_([s.value for s in CART_HOLDING_STATUSES])
        )
        return found[0] if found else None

    async def of_customer(self, customer_id: int, page: PageRequest) -> Page[Order]:
        condition = orders.c.customer_id == customer_id
        if page.after is not None:
            created_at, order_id = page.after
            condition = condition & (
                tuple_(orders.c.created_at, orders.c.id)
                < tuple_(
                    literal(cursor_time(created_at), orders.c.created_at.type),
                    literal(cursor_id(order_id)),
                )
            )
        found = await self._load(condition, limit=page.first + 1)
        return Page.from_rows(
            found,
            first=page.first,
            after=page.after,
            cursor_of=lambda o: time_id_cursor(ORDERS_ORDERING, o.created_at, o.id),
        )

    async def expired_unpaid(self, now: datetime, limit: int) -> Sequence[int]:
        async with self._db.writer.connect() as connection:
            rows = await connection.execute(
                select(orders.c.id)
                .where(
                    orders.c.status.in_([s.value for s in UNSETTLED_STATUSES]),
                    orders.c.reservation_expires_at < now,
                )
                .order_by(orders.c.id)
                .limit(limit)
            )
            return [row[0] for row in rows]

    async def require_action(
        self, order: Order, payment_id: str, action: PaymentAction
    ) -> Order | None:
        async with self._db.writer.begin() as connection:
            moved = await move_status(
                connection,
                order.id,
                (OrderStatus.PENDING_PAYMENT,),
                OrderStatus.PAYMENT_ACTION_REQUIRED,
                payment_id=payment_id,
                payment_action_secret_encrypted=self._cipher.encrypt(action.client_secret),
                payment_action_type=action.kind,
            )
            if moved is None:
                return None
            await emit(connection, PaymentActionRequired(order=moved[0], payment=payment_id))
        return dataclasses.replace(
            order,
            status=OrderStatus.PAYMENT_ACTION_REQUIRED,
            payment_id=payment_id,
            payment_action=action,
            updated_at=moved[1],
        )

    async def payment_action(self, order_id: int) -> PaymentAction | None:
        async with self._db.writer.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        orders.c.payment_action_secret_encrypted, orders.c.payment_action_type
                    ).where(
                        orders.c.id == order_id,
                        orders.c.status == OrderStatus.PAYMENT_ACTION_REQUIRED.value,
                    )
                )
            ).first()
        if row is None or row[0] is None:
            return None
        return PaymentAction(self._cipher.decrypt(row[0]), str(row[1] or ""))

    async def claim_unsettled(
        self, placed_before: datetime, checked_before: datetime, now: datetime, limit: int
    ) -> Sequence[int]:
        due = (
            select(orders.c.id)
            .where(
                orders.c.status.in_([s.value for s in UNSETTLED_STATUSES]),
                orders.c.created_at < placed_before,
                or_(
                    orders.c.payment_checked_at.is_(None),
                    orders.c.payment_checked_at < checked_before,
                ),
            )
            .order_by(orders.c.id)
            .limit(limit)
        )
        if self._db.is_postgres:
            # Rows another reconciler is claiming right now are skipped, not waited for.
            due = due.with_for_update(skip_locked=True)
        async with self._db.writer.begin() as connection:
            claimed = await connection.execute(
                update(orders)
                .where(orders.c.id.in_(due.scalar_subquery()))
                .values(payment_checked_at=now)
                .returning(orders.c.id)
            )
            return sorted(int(row[0]) for row in claimed)

    async def _load(self, condition: Any, limit: int | None = None) -> list[Order]:
        # The primary, not a replica: a customer reads their order right after paying.
        statement = (
            select(orders).where(condition).order_by(orders.c.created_at.desc(), orders.c.id.desc())
        )
        if limit is not None:
            statement = statement.limit(limit)
        async with self._db.writer.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
            if not rows:
                return []
            ids = [row["id"] for row in rows]
            line_rows = (
                (
                    await connection.execute(
                        select(order_lines)
                        .where(order_lines.c.order_id.in_(ids))
                        .order_by(order_lines.c.order_id, order_lines.c.id)
                    )
                )
                .mappings()
                .all()
            )
        lines: dict[int, list[OrderLine]] = {order_id: [] for order_id in ids}
        for line in line_rows:
            lines[line["order_id"]].append(
                OrderLine(
                    line["variant_id"],
                    line["product_id"],
                    line["sku"],
                    line["title"],
                    line["unit_price"],
                    line["quantity"],
                    line["id"],
                )
            )
        return [self._order(row, lines[row["id"]]) for row in rows]

    def _order(self, row: RowMapping, lines: list[OrderLine]) -> Order:
        address = orjson.loads(self._cipher.decrypt(row["shipping_address_encrypted"]))
        return Order(
            id=row["id"],
            public_id=row["public_id"],
            customer_id=row["customer_id"],
            cart_id=row["cart_id"],
            status=OrderStatus(row["status"]),
            currency_code=row["currency_code"],
            subtotal=row["subtotal"],
            shipping=row["shipping"],
            tax=row["tax"],
            total=row["total"],
            email=self._cipher.decrypt(row["email_encrypted"]),
            shipping_address=MailingAddress(**address),
            payment_method=row["payment_method"],
            payment_id=row["payment_id"],
            card_brand=row["card_brand"],
            card_last4=row["card_last4"],
            decline_code=row["decline_code"],
            lines=tuple(lines),
            created_at=aware(row["created_at"]),
            updated_at=aware(row["updated_at"]),
            cancel_reason=row["cancel_reason"],
            shipping_method_title=row["shipping_method_title"],
            shipping_method_handle=row["shipping_method_handle"],
            discount_total=row["discount_total"],
            gift_card_total=row["gift_card_total"],
            dispute=None
            if row["disputed_at"] is None
            else Dispute(row["dispute_reason"], row["dispute_amount"], aware(row["disputed_at"])),
            refunded_total=row["refunded_total"],
        )

    async def _reserve(self, connection: AsyncConnection, wanted: dict[int, int]) -> dict[int, int]:
        stock: dict[int, int] = {}
        short: list[int] = []
        for variant_id, quantity in sorted(wanted.items()):
            left = (
                await connection.execute(
                    update(inventory_levels)
                    .where(
                        inventory_levels.c.variant_id == variant_id,
                        inventory_levels.c.available >= quantity,
                    )
                    .values(
                        available=inventory_levels.c.available - quantity, updated_at=func.now()
                    )
                    .returning(inventory_levels.c.available)
                )
            ).scalar()
            if left is None:
                short.append(variant_id)
            else:
                stock[variant_id] = left
        if short:
            raise _ShortOfStock(short)  # rolls the whole transaction back
        return stock


async def first_delivery(
    connection: AsyncConnection, event: PaymentEvent, outcome: str
) -> str | None:
    """Log a gateway event as processed with `outcome`, in the caller's transaction: None
    the first time, else the first delivery's outcome (a concurrent delivery waits on the
    primary key for the first to commit)."""
    dialect_insert: Any = (
        postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    )
    first = (
        await connection.execute(
            dialect_insert(webhook_events)
            .values(event_id=event.event_id, outcome=outcome)
            .on_conflict_do_nothing(index_elements=[webhook_events.c.event_id])
            .returning(webhook_events.c.event_id)
        )
    ).first()
    if first is not None:
        return None
    earlier = (
        await connection.execute(
            select(webhook_events.c.outcome).where(webhook_events.c.event_id == event.event_id)
        )
    ).scalar()
    return str(earlier or "duplicate")


async def _redeem(
    connection: AsyncConnection,
    dialect_insert: Any,
    order_id: int,
    order: NewOrder,
    line_of: dict[int, int],
    now: datetime,
) -> None:
    """Count the discounts and debit the gift cards of a new order, after its stock
    (every transaction takes stock rows, then discount rows, then gift card rows, each in
    id order: no deadlocks). Raises _Unredeemable, rolling everything back, when a count
    or a debit does not hold."""
    if order.discount_ids:
        ids = sorted(order.discount_ids)
        counted = (
            await connection.execute(
                update(discounts)
                .where(
                    discounts.c.id.in_(ids),
                    discounts.c.active,
                    or_(
                        discounts.c.usage_limit.is_(None),
                        discounts.c.times_used < discounts.c.usage_limit,
                    ),
                    or_(discounts.c.starts_at.is_(None), discounts.c.starts_at <= now),
                    or_(discounts.c.ends_at.is_(None), discounts.c.ends_at > now),
                )
                .values(times_used=discounts.c.times_used + 1)
                .returning(discounts.c.id)
            )
        ).scalars()
        missing = order.discount_ids - set(counted)
        if missing:
            raise _Unredeemable(Unredeemable(discount_ids=frozenset(missing)))
    if order.redemptions:
        # The unique (discount, buyer) index: a concurrent checkout by the same buyer
        # waits here for this one and then finds the use taken.
        taken = (
            await connection.execute(
                dialect_insert(discount_redemptions)
                .values(
                    [
                        {"discount_id": d, "order_id": order_id, "buyer_key": key}
                        for d, key in order.redemptions
                    ]
                )
                .on_conflict_do_nothing(
                    index_elements=[
                        discount_redemptions.c.discount_id,
                        discount_redemptions.c.buyer_key,
                    ]
                )
                .returning(discount_redemptions.c.discount_id, discount_redemptions.c.buyer_key)
            )
        ).all()
        used = set(order.redemptions) - {(row[0], row[1]) for row in taken}
        if used:
            raise _Unredeemable(Unredeemable(discount_ids=frozenset(d for d, _ in used)))
    if order.discount_allocations:
        await connection.execute(
            insert(order_discount_allocations),
            [
                {
                    "order_id": order_id,
                    "order_line_id": None if a.variant_id is None else line_of[a.variant_id],
                    "discount_id": a.discount_id,
                    "title": a.title,
                    "code": a.code,
                    "amount": a.amount,
                }
                for a in order.discount_allocations
            ],
        )
    short: set[int] = set()
    for debit in sorted(order.gift_card_debits, key=lambda d: d.gift_card_id):
        left = (
            await connection.execute(
                update(gift_cards)
                .where(
                    gift_cards.c.id == debit.gift_card_id,
                    gift_cards.c.enabled,
                    gift_cards.c.currency_code == order.currency_code,
                    gift_cards.c.balance >= debit.amount,
                    or_(gift_cards.c.expires_at.is_(None), gift_cards.c.expires_at > now),
                )
                .values(balance=gift_cards.c.balance - debit.amount)
                .returning(gift_cards.c.balance)
            )
        ).scalar()
        if left is None:
            short.add(debit.gift_card_id)
    if short:
        raise _Unredeemable(Unredeemable(gift_card_ids=frozenset(short)))
    if order.gift_card_debits:
        await connection.execute(
            insert(order_gift_card_payments),
            [
                {
                    "order_id": order_id,
                    "gift_card_id": d.gift_card_id,
                    "last_characters": d.last_characters,
                    "amount": d.amount,
                }
                for d in order.gift_card_debits
            ],
        )


async def move_status(
    connection: AsyncConnection,
    order_id: int,
    sources: Sequence[OrderStatus],
    target: OrderStatus,
    condition: Any = None,
    **values: Any,
) -> tuple[str, datetime] | None:
    """The conditional transition: (public id, new updated_at) if it moved, else None.
    A move is recorded in the order's status history in the same transaction."""
    where = [orders.c.id == order_id, orders.c.status.in_([s.value for s in sources])]
    if condition is not None:
        where.append(condition)
    if target is not OrderStatus.PAYMENT_ACTION_REQUIRED:
        # The customer's step is over: its client secret has no business staying.
        values.setdefault("payment_action_secret_encrypted", None)
    moved = (
        await connection.execute(
            update(orders)
            .where(*where)
            .values(status=target.value, updated_at=func.now(), **values)
            .returning(orders.c.public_id, orders.c.updated_at)
        )
    ).first()
    if moved is None:
        return None
    await connection.execute(
        insert(order_status_changes).values(
            order_id=order_id, status=target.value, at=moved.updated_at
        )
    )
    return str(moved.public_id), aware(moved.updated_at)


async def _pay(
    connection: AsyncConnection, order_id: int, payment: Payment, condition: Any = None
) -> datetime | None:
    """PENDING_PAYMENT or PAYMENT_ACTION_REQUIRED -> PAID with the gateway's reference,
    and OrderPaid."""
    moved = await move_status(
        connection,
        order_id,
        UNSETTLED_STATUSES,
        OrderStatus.PAID,
        condition,
        payment_id=payment.payment_id,
        card_brand=payment.card_brand,
        card_last4=payment.card_last4,
    )
    if moved is None:
        return None
    await emit(connection, OrderPaid(order=moved[0], payment=payment.payment_id))
    return moved[1]


async def _fail(
    connection: AsyncConnection,
    order_id: int,
    decline_code: str,
    payment_id: str | None,
    condition: Any = None,
) -> datetime | None:
    """PENDING_PAYMENT or PAYMENT_ACTION_REQUIRED -> PAYMENT_FAILED, PaymentFailed, and
    what the order held back."""
    values: dict[str, Any] = {"decline_code": decline_code}
    if payment_id is not None:
        values["payment_id"] = payment_id
    moved = await move_status(
        connection,
        order_id,
        UNSETTLED_STATUSES,
        OrderStatus.PAYMENT_FAILED,
        condition,
        **values,
    )
    if moved is None:
        return None
    await emit(connection, PaymentFailed(order=moved[0], decline_code=decline_code))
    await _release(connection, order_id)
    return moved[1]


async def _units_left(connection: AsyncConnection, order_id: int) -> dict[int, int]:
    """Units of each line of the order not yet fulfilled, by order line id."""
    fulfilled = func.coalesce(func.sum(fulfillment_lines.c.quantity), 0)
    rows = await connection.execute(
        select(order_lines.c.id, order_lines.c.quantity - fulfilled)
        .select_from(
            order_lines.outerjoin(
                fulfillment_lines, fulfillment_lines.c.order_line_id == order_lines.c.id
            )
        )
        .where(order_lines.c.order_id == order_id)
        .group_by(order_lines.c.id, order_lines.c.quantity)
    )
    return {int(line_id): int(units) for line_id, units in rows.all()}


async def _release(connection: AsyncConnection, order_id: int) -> None:
    """Give back what the order held: its stock, its discount uses, its gift card
    amounts. Called only by the transition out of the holding states, which happens once
    per order, so each is given back once (the gift cards are also marked credited)."""
    await _release_stock(connection, order_id)
    await connection.execute(
        update(discounts)
        .where(
            discounts.c.id.in_(
                select(order_discount_allocations.c.discount_id)
                .where(order_discount_allocations.c.order_id == order_id)
                .scalar_subquery()
            )
        )
        .values(times_used=discounts.c.times_used - 1)
    )
    await connection.execute(
        delete(discount_redemptions).where(discount_redemptions.c.order_id == order_id)
    )
    credited = (
        await connection.execute(
            update(order_gift_card_payments)
            .where(
                order_gift_card_payments.c.order_id == order_id,
                order_gift_card_payments.c.credited_back_at.is_(None),
            )
            .values(credited_back_at=func.now())
            .returning(order_gift_card_payments.c.gift_card_id, order_gift_card_payments.c.amount)
        )
    ).all()
    for card_id, amount in sorted(credited):
        await connection.execute(
            update(gift_cards)
            .where(gift_cards.c.id == card_id)
            .values(balance=gift_cards.c.balance + amount)
        )


async def _release_stock(connection: AsyncConnection, order_id: int) -> None:
    rows = await connection.execute(
        select(order_lines.c.variant_id, func.sum(order_lines.c.quantity))
        .where(order_lines.c.order_id == order_id)
        .group_by(order_lines.c.variant_id)
        .order_by(order_lines.c.variant_id)
    )
    stock: dict[int, int] = {}
    for variant_id, quantity in rows.all():
        stock[variant_id] = (
            await connection.execute(
                update(inventory_levels)
                .where(inventory_levels.c.variant_id == variant_id)
                .values(available=inventory_levels.c.available + quantity, updated_at=func.now())
                .returning(inventory_levels.c.available)
            )
        ).scalar_one()
    await emit_stock(connection, stock)
