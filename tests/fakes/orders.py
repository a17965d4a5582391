"""An in-memory `OrderStore` holding orders and stock, with the SQL store's rules: the
order claims its cart (one holding order per cart), stock is reserved all or nothing,
transitions follow `domain.orders.TRANSITIONS`, a failed or cancelled order gives its
stock back, a gateway event is applied once.

Given the `FakeIdempotencyStore`, `place` links the order to the claim as the placing
transaction does. `fail_next_place_after_commit` places the order and then raises, as a
connection lost while the commit's answer was on its way would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from domain.orders import (
    CART_HOLDING_STATUSES,
    UNSETTLED_STATUSES,
    CartTaken,
    Dispute,
    NewOrder,
    Order,
    OrderStatus,
    Overfulfilled,
    Payment,
    Tracking,
    can_move,
)
from domain.pagination import Edge, Page, PageRequest, encode_cursor
from domain.payments import PaymentAction, PaymentEvent
from tests.fakes.idempotency import FakeIdempotencyStore

if TYPE_CHECKING:
    from domain.orders import OrderStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class FakeOrderStore:
    def __init__(
        self, stock: dict[int, int] | None = None, keys: FakeIdempotencyStore | None = None
    ) -> None:
        self.stock: dict[int, int] = dict(stock or {})
        self.orders: dict[int, Order] = {}
        self.actions: dict[int, PaymentAction] = {}
        self.checked: dict[int, datetime] = {}
        self.expires: dict[int, datetime] = {}
        self.webhook_outcomes: dict[str, str] = {}
        self.token_hashes: dict[int, str] = {}
        self.fulfilled: dict[int, dict[int, int]] = {}  # order id -> line id -> units
        self.fail_next_place_after_commit = False
        self._keys = keys

    async def place(
        self, claim_id: int, order: NewOrder, expires_at: datetime
    ) -> Order | list[int] | CartTaken:
        holder = await self.holding_cart(order.cart_id)
        if holder is not None:
            return CartTaken(holder)
        wanted: dict[int, int] = {}
        for line in order.lines:
            wanted[line.variant_id] = wanted.get(line.variant_id, 0) + line.quantity
        short = sorted(v for v, q in wanted.items() if self.stock.get(v, 0) < q)
        if short:
            return short
        for variant_id, quantity in wanted.items():
            self.stock[variant_id] -= quantity
        order_id = len(self.orders) + 1
        placed = Order(
            id=order_id,
            public_id=order.public_id,
            customer_id=order.customer_id,
            cart_id=order.cart_id,
            status=OrderStatus.PENDING_PAYMENT,
            currency_code=order.currency_code,
            subtotal=order.subtotal,
            shipping=order.shipping,
            tax=order.tax,
            total=order.total,
            email=order.email,
            shipping_address=order.shipping_address,
            payment_method=order.payment_method,
            payment_id=None,
            card_brand=None,
            card_last4=None,
            decline_code=None,
            lines=tuple(
                replace(line, id=order_id * 1000 + n) for n, line in enumerate(order.lines)
            ),
            created_at=T0,
            updated_at=T0,
            shipping_method_title=order.shipping_method_title,
            shipping_method_handle=order.shipping_method_handle,
        )
        self.orders[order_id] = placed
        self.expires[order_id] = expires_at
        self.token_hashes[order_id] = order.status_token_hash
        if self._keys is not None:
            self._keys.link(claim_id, order_id)
        if self.fail_next_place_after_commit:
            self.fail_next_place_after_commit = False
            raise ConnectionResetError("connection lost after COMMIT")
        return placed

    async def holding_cart(self, cart_id: str) -> Order | None:
        return next(
            (
                o
                for o in self.orders.values()
                if o.cart_id == cart_id and o.status in CART_HOLDING_STATUSES
            ),
            None,
        )

    async def mark_paid(self, order: Order, payment: Payment) -> Order | None:
        return self._move(
            order.id,
            OrderStatus.PAID,
            payment_id=payment.payment_id,
            card_brand=payment.card_brand,
            card_last4=payment.card_last4,
        )

    async def mark_failed(
        self, order: Order, decline_code: str, payment_id: str | None
    ) -> Order | None:
        current = self.orders.get(order.id)
        return self._move(
            order.id,
            OrderStatus.PAYMENT_FAILED,
            decline_code=decline_code,
            payment_id=payment_id or (current.payment_id if current else None),
        )

    async def cancel(
        self, order_id: int, refund_id: str | None, reason: str | None = None
    ) -> Order | None:
        if self.fulfilled.get(order_id):
            return None
        return self._move(order_id, OrderStatus.CANCELLED, cancel_reason=reason)

    async def fulfil(
        self, order_id: int, wanted: dict[int, int] | None, tracking: Tracking
    ) -> Order | Overfulfilled | None:
        current = self.orders.get(order_id)
        if current is None or current.status is not OrderStatus.PAID:
            return None
        done = self.fulfilled.setdefault(order_id, {})
        left = {line.id: line.quantity - done.get(line.id, 0) for line in current.lines}
        wanted = wanted or {k: v for k, v in left.items() if v > 0}
        short = {k: left.get(k, 0) for k, v in wanted.items() if v > left.get(k, 0)}
        if short:
            return Overfulfilled(short)
        for line_id, units in wanted.items():
            done[line_id] = done.get(line_id, 0) + units
        if all(done.get(line.id, 0) == line.quantity for line in current.lines):
            return self._move(order_id, OrderStatus.FULFILLED)
        return current

    async def has_fulfillments(self, order_id: int) -> bool:
        return bool(self.fulfilled.get(order_id))

    async def by_status_token_hash(self, token_hash: str) -> Order | None:
        found = [i for i, h in self.token_hashes.items() if h == token_hash]
        return self.orders[found[0]] if found else None

    async def require_action(
        self, order: Order, payment_id: str, action: PaymentAction
    ) -> Order | None:
        moved = self._move(order.id, OrderStatus.PAYMENT_ACTION_REQUIRED, payment_id=payment_id)
        if moved is None:
            return None
        self.actions[order.id] = action
        return replace(moved, payment_action=action)

    async def payment_action(self, order_id: int) -> PaymentAction | None:
        current = self.orders.get(order_id)
        if current is None or current.status is not OrderStatus.PAYMENT_ACTION_REQUIRED:
            return None
        return self.actions.get(order_id)

    async def claim_unsettled(
        self, placed_before: datetime, checked_before: datetime, now: datetime, limit: int
    ) -> Sequence[int]:
        due = sorted(
            i
            for i, o in self.orders.items()
            if o.status in UNSETTLED_STATUSES
            and o.created_at < placed_before
            and self.checked.get(i, checked_before) <= checked_before
        )[:limit]
        for i in due:
            self.checked[i] = now
        return due

    async def set_payment_id(self, order_id: int, payment_id: str) -> None:
        self.orders[order_id] = replace(self.orders[order_id], payment_id=payment_id)

    async def by_id(self, order_id: int) -> Order | None:
        return self.orders.get(order_id)

    async def by_public_id(self, public_id: str) -> Order | None:
        return next((o for o in self.orders.values() if o.public_id == public_id), None)

    async def of_customer(self, customer_id: int, page: PageRequest) -> Page[Order]:
        # Newest first, keyed by id, as the SQL store pages them.
        mine = sorted(
            (o for o in self.orders.values() if o.customer_id == customer_id),
            key=lambda o: -o.id,
        )
        if page.after is not None:
            last = page.after[-1]
            assert isinstance(last, int)
            mine = [o for o in mine if o.id < last]
        edges = [Edge(encode_cursor("orders", (o.id,)), o) for o in mine[: page.first]]
        return Page(edges, len(mine) > page.first, page.after is not None)

    async def expired_unpaid(self, now: datetime, limit: int) -> Sequence[int]:
        return sorted(
            i
            for i, o in self.orders.items()
            if o.status in UNSETTLED_STATUSES and self.expires[i] <= now
        )[:limit]

    async def settle_event(
        self, event: PaymentEvent, order_id: int | None, outcome: str
    ) -> tuple[bool, str]:
        if event.event_id in self.webhook_outcomes:
            return False, self.webhook_outcomes[event.event_id]
        if order_id is not None:
            current = self.orders[order_id]
            same_intent = current.payment_id in (None, event.payment_id)
            moved: Order | None = None
            if same_intent and event.kind == "payment_succeeded":
                moved = await self.mark_paid(
                    current, Payment(event.payment_id, event.card_brand, event.card_last4)
                )
            elif same_intent:
                moved = await self.mark_failed(
                    current, event.decline_code or "payment_failed", event.payment_id
                )
            if moved is None:
                outcome = f"ignored: order is {self.orders[order_id].status}"
        self.webhook_outcomes[event.event_id] = outcome
        return True, outcome

    async def by_payment_id(self, payment_id: str) -> Order | None:
        return next((o for o in self.orders.values() if o.payment_id == payment_id), None)

    async def record_dispute(self, event: PaymentEvent, order_id: int | None) -> tuple[bool, str]:
        if event.event_id in self.webhook_outcomes:
            return False, self.webhook_outcomes[event.event_id]
        outcome = "ignored: unknown payment" if order_id is None else "settled: disputed"
        if order_id is not None:
            current = self.orders[order_id]
            if current.dispute is None:
                dispute = Dispute(event.dispute_reason or "unknown", event.amount or 0, T0)
                self.orders[order_id] = replace(current, dispute=dispute)
            else:
                outcome = "ignored: already disputed"
        self.webhook_outcomes[event.event_id] = outcome
        return True, outcome

    def _move(self, order_id: int, target: OrderStatus, **changes: str | None) -> Order | None:
        current = self.orders.get(order_id)
        if current is None or not can_move(current.status, target):
            return None
        if target in (OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED):
            for line in current.lines:  # the reservation goes back on the shelf
                self.stock[line.variant_id] = self.stock.get(line.variant_id, 0) + line.quantity
        moved = replace(current, status=target, **changes)  # type: ignore[arg-type]
        self.orders[order_id] = moved
        return moved


if TYPE_CHECKING:
    _conforms: OrderStore = FakeOrderStore()
