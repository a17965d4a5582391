"""Notifications from events: an order confirmation when an order is paid, and an alert
when a variant's stock falls to the low-stock threshold.

At most one of each per subject: a notification is first *claimed* as a row unique on
(kind, key) - the order's public id, or the variant - and only the claim's winner sends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from domain.events import Event, OrderPaid, StockChanged, Topic
from domain.money import Money
from domain.order_status import StatusTokens
from domain.orders import GiftCardDebit, Order, OrderDiscountAllocation, OrderStatus

# A late OrderPaid still confirms an order already fulfilled, not one cancelled since.
CONFIRMABLE = frozenset({OrderStatus.PAID, OrderStatus.FULFILLED})


class NotificationKind(StrEnum):
    ORDER_CONFIRMATION = "order_confirmation"
    LOW_STOCK = "low_stock"
    PASSWORD_RESET = "password_reset"
    EMAIL_VERIFICATION = "email_verification"
    WEBHOOK_DISABLED = "webhook_disabled"  # for staff: a partner's receiver kept failing


class NotificationStatus(StrEnum):
    PENDING = "pending"  # claimed, being sent (or the sender died: see OrderConfirmations)
    SENT = "sent"  # handed to the mail server
    RECORDED = "recorded"  # no mail server configured: the row is the notification


@dataclass(frozen=True, slots=True)
class Message:
    to: str | None  # None: for the shop's staff, who read the notifications table
    subject: str
    body: str


class NotificationStore(Protocol):
    async def claim(
        self, kind: NotificationKind, key: str, message: Message, status: NotificationStatus
    ) -> int | None:
        """Insert the notification unless (kind, key) exists: its id, or None if it did."""
        ...

    async def settle(self, notification_id: int, status: NotificationStatus) -> None: ...

    async def release(self, notification_id: int) -> None:
        """Forget a claim whose sending failed, so a retry can claim it again."""
        ...

    async def close(self, kind: NotificationKind, key: str) -> None:
        """Free (kind, key) for a next occurrence; the notification row itself stays."""
        ...


class Mailer(Protocol):
    async def send(self, message: Message) -> None:
        """Raises when the mail server did not accept the message."""
        ...


class OrdersByPublicId(Protocol):
    async def by_public_id(self, public_id: str) -> Order | None: ...


class PaidParts(Protocol):
    """What discounts took off orders and what gift cards paid of them."""

    async def discount_allocations(
        self, order_ids: Sequence[int]
    ) -> Mapping[int, Sequence[OrderDiscountAllocation]]: ...

    async def gift_card_payments(
        self, order_ids: Sequence[int]
    ) -> Mapping[int, Sequence[GiftCardDebit]]: ...


def status_link(token: str, storefront_url: str | None) -> str:
    """Where the shopper follows the order: the storefront's status page when one is
    configured (STOREFRONT_URL), else the token itself for `orderByStatusToken`."""
    if storefront_url:
        return f"{storefront_url.rstrip('/')}/orders/status?token={token}"
    return f"status token {token}"


def order_confirmation(
    order: Order,
    status_token: str,
    storefront_url: str | None,
    allocations: Sequence[OrderDiscountAllocation] = (),
    gift_cards: Sequence[GiftCardDebit] = (),
) -> Message:
    """The mail's totals add up as the order's: subtotal - each discount + shipping + tax =
    total; total - each gift card = what the card was charged."""

    def money(minor: int) -> str:
        return f"{Money(minor, order.currency_code).to_decimal_string()} {order.currency_code}"

    lines = [
        f"  {line.quantity} x {line.title} ({line.sku})  {money(line.total)}"
        for line in order.lines
    ]
    per_discount: dict[tuple[str, str | None], int] = {}
    for allocation in allocations:
        key = (allocation.title, allocation.code)
        per_discount[key] = per_discount.get(key, 0) + allocation.amount
    discounts = [
        f"  Discount  -{money(amount)}  {title}" + (f" ({code})" if code else "")
        for (title, code), amount in per_discount.items()
        if amount > 0
    ]
    cards = [f"  Gift card ...{c.last_characters}  -{money(c.amount)}" for c in gift_cards]
    charged = [f"  Charged   {money(order.charge_amount)}"] if cards else []
    body = "\n".join(
        [
            f"Thank you for your order {order.number}.",
            "",
            *lines,
            "",
            f"  Subtotal  {money(order.subtotal)}",
            *discounts,
            f"  Shipping  {money(order.shipping)}"
            + (f" ({order.shipping_method_title})" if order.shipping_method_title else ""),
            f"  Tax       {money(order.tax)}",
            f"  Total     {money(order.total)}",
            *cards,
            *charged,
            "",
            f"Order reference: {order.public_id}",
            f"Follow your order: {status_link(status_token, storefront_url)}",
        ]
    )
    return Message(to=order.email, subject=f"Order {order.number} confirmed", body=body)


@dataclass
class OrderConfirmations:
    """`OrderPaid` -> one confirmation per order: mailed, or recorded without a mailer.

    Claim, send, then mark sent. A send that fails releases the claim and raises, so
    the event is retried. The window that remains: the process dies after claiming and
    before marking - the row stays `pending` and no retry sends again (the mail may or
    may not have left). We choose at most once over at least once for customer mail; an
    operator can find such rows by their status."""

    orders: OrdersByPublicId
    store: NotificationStore
    mailer: Mailer | None
    status_tokens: StatusTokens
    storefront_url: str | None = None
    parts: PaidParts | None = None
    name: str = "notifications"
    topics: tuple[str, ...] = (Topic.ORDER_PAID,)

    async def handle(self, events: Sequence[Event]) -> None:
        for event in events:
            await self.confirm(event.parsed_as(OrderPaid).order)

    async def confirm(self, public_id: str) -> None:
        order = await self.orders.by_public_id(public_id)
        if order is None or order.status not in CONFIRMABLE:
            return  # no such order, or cancelled/refunded before this event was read
        token = self.status_tokens.token_for(order.public_id)
        allocations: Sequence[OrderDiscountAllocation] = ()
        cards: Sequence[GiftCardDebit] = ()
        if self.parts is not None:
            if order.discount_total:
                allocations = (await self.parts.discount_allocations([order.id])).get(order.id, ())
            if order.gift_card_total:
                cards = (await self.parts.gift_card_payments([order.id])).get(order.id, ())
        message = order_confirmation(order, token, self.storefront_url, allocations, cards)
        await deliver(
            self.store, self.mailer, NotificationKind.ORDER_CONFIRMATION, order.public_id, message
        )


async def deliver(
    store: NotificationStore,
    mailer: Mailer | None,
    kind: NotificationKind,
    key: str,
    message: Message,
) -> None:
    """At most one mail per (kind, key): claim, send, mark sent; recorded without a mailer.
    A failed send releases the claim and raises, so the event is retried."""
    if mailer is None:
        await store.claim(kind, key, message, NotificationStatus.RECORDED)
        return
    claimed = await store.claim(kind, key, message, NotificationStatus.PENDING)
    if claimed is None:
        return  # another delivery of this event (or of a twin) has it
    try:
        await mailer.send(message)
    except Exception:
        await store.release(claimed)
        raise
    await store.settle(claimed, NotificationStatus.SENT)


def low_stock_key(variant_id: int) -> str:
    return f"variant:{variant_id}"


@dataclass
class LowStockAlerts:
    """`StockChanged` at or below the threshold -> one `low_stock` row per crossing.

    The open alert of a variant holds the key `variant:<id>`, so further drops claim
    nothing; a level above the threshold closes it (the row stays, renamed), and the
    next fall raises a new one. Events are taken in outbox order within a batch; two
    workers could see one variant's events out of order and raise or close an alert a
    step late - acceptable for an alert that a person reads."""

    store: NotificationStore
    threshold: int
    name: str = "low-stock-alerts"
    topics: tuple[str, ...] = (Topic.STOCK_CHANGED,)

    async def handle(self, events: Sequence[Event]) -> None:
        for event in sorted(events, key=lambda e: e.id):
            change = event.parsed_as(StockChanged)
            variant_id, available = change.variant, change.available
            key = low_stock_key(variant_id)
            if available > self.threshold:
                await self.store.close(NotificationKind.LOW_STOCK, key)
                continue
            message = Message(
                to=None,
                subject=f"Low stock: variant {variant_id}",
                body=f"Variant {variant_id} has {available} left (threshold {self.threshold}).",
            )
            await self.store.claim(
                NotificationKind.LOW_STOCK, key, message, NotificationStatus.RECORDED
            )
