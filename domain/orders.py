"""Orders: what was bought at what price, and the payment state machine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from domain.addresses import MailingAddress
from domain.discounts import DiscountAllocation
from domain.pagination import Page, PageRequest
from domain.payments import PaymentAction, PaymentEvent

NUMBER_OFFSET = 1000


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    # The gateway waits for the customer (3-D Secure); stock stays reserved meanwhile.
    PAYMENT_ACTION_REQUIRED = "PAYMENT_ACTION_REQUIRED"
    PAID = "PAID"
    FULFILLED = "FULFILLED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


# An order in one of these holds its cart: no second order can be placed from that cart.
# A failed payment, a cancellation or an expiry frees it for another attempt.
CART_HOLDING_STATUSES: tuple[OrderStatus, ...] = (
    OrderStatus.PENDING_PAYMENT,
    OrderStatus.PAYMENT_ACTION_REQUIRED,
    OrderStatus.PAID,
    OrderStatus.FULFILLED,
    OrderStatus.REFUNDED,
)

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset(
        {
            OrderStatus.PAYMENT_ACTION_REQUIRED,
            OrderStatus.PAID,
            OrderStatus.PAYMENT_FAILED,
            OrderStatus.CANCELLED,
        }
    ),
    OrderStatus.PAYMENT_ACTION_REQUIRED: frozenset(
        {OrderStatus.PAID, OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED}
    ),
    OrderStatus.PAID: frozenset(
        {OrderStatus.FULFILLED, OrderStatus.CANCELLED, OrderStatus.REFUNDED}
    ),
    OrderStatus.FULFILLED: frozenset({OrderStatus.REFUNDED}),  # refunds that cover it all
}


# Not settled yet: the gateway may still capture the payment (or be waiting to).
UNSETTLED_STATUSES: tuple[OrderStatus, ...] = (
    OrderStatus.PENDING_PAYMENT,
    OrderStatus.PAYMENT_ACTION_REQUIRED,
)


def can_move(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


@dataclass(frozen=True, slots=True)
class OrderLine:
    variant_id: int
    product_id: int
    sku: str
    title: str
    unit_price: int
    quantity: int
    id: int = 0  # the stored line's id; 0 until the order is placed

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    public_id: str
    customer_id: int | None
    cart_id: str
    status: OrderStatus
    currency_code: str
    subtotal: int
    shipping: int
    tax: int
    total: int
    email: str
    shipping_address: MailingAddress
    payment_method: str
    payment_id: str | None
    card_brand: str | None
    card_last4: str | None
    decline_code: str | None
    lines: tuple[OrderLine, ...]
    created_at: datetime
    updated_at: datetime
    cancel_reason: str | None = None
    shipping_method_title: str | None = None  # null on orders placed before shipping zones
    shipping_method_handle: str | None = None
    # The raw status token, only on the order checkout just answered with (see
    # domain.order_status): it is stored hashed, so no read from the store carries it.
    status_token: str | None = None
    # subtotal - discount_total + shipping + tax = total; gift cards paid gift_card_total.
    discount_total: int = 0
    gift_card_total: int = 0
    dispute: Dispute | None = None  # the buyer disputed the payment at their bank
    # Only for the order's buyer, and only while PAYMENT_ACTION_REQUIRED: no read from
    # the store carries it (OrderStore.payment_action reads it on purpose).
    payment_action: PaymentAction | None = None
    refunded_total: int = 0  # what refunds took or hold (domain.refunds), PENDING included

    @property
    def number(self) -> str:
        return f"#{NUMBER_OFFSET + self.id}"

    @property
    def charge_amount(self) -> int:
        """What the card gateway charges: the total less what gift cards paid."""
        return self.total - self.gift_card_total


@dataclass(frozen=True, slots=True)
class Dispute:
    reason: str
    amount: int
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderDiscountAllocation:
    """What a discount took off an order line (`variant_id` names the line: an order has
    one line per variant), or off shipping (`variant_id` None). `order_line_id` is the
    stored line's id (0 until placed; None for shipping)."""

    variant_id: int | None
    discount_id: int | None
    title: str
    code: str | None
    amount: int
    order_line_id: int | None = 0

    def as_allocation(self) -> DiscountAllocation:
        return DiscountAllocation(self.discount_id or 0, self.title, self.code, self.amount)


@dataclass(frozen=True, slots=True)
class GiftCardDebit:
    """What a gift card pays of an order; `credited_back` once the order gave it back."""

    gift_card_id: int
    last_characters: str
    amount: int
    credited_back: bool = False


@dataclass(frozen=True, slots=True)
class Unredeemable:
    """Placing wrote nothing: these discounts could not be counted (used up, or no longer
    in force) or these gift cards no longer hold what they were to pay."""

    discount_ids: frozenset[int] = frozenset()
    gift_card_ids: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class NewOrder:
    public_id: str
    customer_id: int | None
    cart_id: str
    currency_code: str
    subtotal: int
    shipping: int
    tax: int
    total: int
    email: str
    shipping_address: MailingAddress
    payment_method: str
    lines: tuple[OrderLine, ...]
    status_token_hash: str  # SHA-256 of the order's status token
    shipping_method_title: str | None = None
    shipping_method_handle: str | None = None
    discount_total: int = 0
    gift_card_total: int = 0
    # Counted in the order transaction: each discount applied (one use each), the
    # once-per-customer ones also per buyer key (domain.discount_desk.buyer_keys).
    discount_allocations: tuple[OrderDiscountAllocation, ...] = ()
    discount_ids: frozenset[int] = frozenset()
    redemptions: tuple[tuple[int, str], ...] = ()  # (discount id, buyer key)
    gift_card_debits: tuple[GiftCardDebit, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The order entered `status` at `at` (one per transition, oldest first)."""

    status: OrderStatus
    at: datetime


@dataclass(frozen=True, slots=True)
class Tracking:
    company: str | None = None
    number: str | None = None
    url: str | None = None  # http(s) only


@dataclass(frozen=True, slots=True)
class FulfillmentLine:
    order_line_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Fulfillment:
    """A shipment of some units of some lines of one order."""

    id: int
    order_id: int
    tracking: Tracking
    lines: tuple[FulfillmentLine, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Overfulfilled:
    """A fulfilment asked for more units than remain: order line id -> units left."""

    remaining: dict[int, int]


@dataclass(frozen=True, slots=True)
class CartTaken:
    """The cart is already held by this order (another checkout of it got there first)."""

    order: Order


@dataclass(frozen=True, slots=True)
class Payment:
    payment_id: str | None
    card_brand: str | None = None
    card_last4: str | None = None


class OrderStore(Protocol):
    """Every method is one transaction; state changes write their outbox events in it."""

    async def place(
        self, claim_id: int, order: NewOrder, expires_at: datetime
    ) -> Order | list[int] | CartTaken | Unredeemable:
        """Claim the cart by inserting the order first, then reserve stock (conditional
        decrements, rows in variant order), insert its lines, count the discounts (one
        conditional increment; once-per-customer uses against a unique index), debit the
        gift cards (conditional decrements, in card order), write OrderPlaced and
        StockChanged, link the idempotency claim. Having changed nothing, returns instead
        the variant ids short of stock when any is, `Unredeemable` when a discount or a
        gift card cannot be redeemed, or `CartTaken` with the order that already holds the
        cart (a concurrent checkout of the same cart waits for the first to commit or roll
        back, and never touches stock). Whatever takes the order out of its holding states
        (a failed payment, a cancellation, an expiry) gives back, in that transaction,
        the stock, the discount uses and the gift card amounts, each once."""
        ...

    async def holding_cart(self, cart_id: str) -> Order | None:
        """The order that holds this cart (see CART_HOLDING_STATUSES), if any."""
        ...

    async def mark_paid(self, order: Order, payment: Payment) -> Order | None:
        """PENDING_PAYMENT or PAYMENT_ACTION_REQUIRED -> PAID; the order as it now is, or
        None if it was not unsettled."""
        ...

    async def mark_failed(
        self, order: Order, decline_code: str, payment_id: str | None
    ) -> Order | None:
        """PENDING_PAYMENT or PAYMENT_ACTION_REQUIRED -> PAYMENT_FAILED, giving back what
        the order held (stock, discount uses, gift card amounts)."""
        ...

    async def cancel(
        self, order_id: int, refund_id: str | None, reason: str | None = None
    ) -> Order | None:
        """-> CANCELLED (from PENDING_PAYMENT, PAYMENT_ACTION_REQUIRED, or PAID with no
        fulfilment), releasing stock
        and recording `reason`."""
        ...

    async def fulfil(
        self, order_id: int, wanted: dict[int, int] | None, tracking: Tracking
    ) -> Order | Overfulfilled | None:
        """Record a fulfilment of a PAID order: `wanted` units per order line id, or every
        unit not yet fulfilled when None; FULFILLED once no unit remains. Holds the order
        row while it counts, so concurrent fulfilments never exceed a line's quantity.
        Having written nothing, returns `Overfulfilled` when a line has fewer units left
        than asked, None when the order is not PAID."""
        ...

    async def has_fulfillments(self, order_id: int) -> bool: ...

    async def by_status_token_hash(self, token_hash: str) -> Order | None: ...

    async def set_payment_id(self, order_id: int, payment_id: str) -> None: ...

    async def by_id(self, order_id: int) -> Order | None: ...

    async def by_public_id(self, public_id: str) -> Order | None: ...

    async def of_customer(self, customer_id: int, page: PageRequest) -> Page[Order]: ...

    async def expired_unpaid(self, now: datetime, limit: int) -> Sequence[int]: ...

    async def by_payment_id(self, payment_id: str) -> Order | None: ...

    async def record_dispute(self, event: PaymentEvent, order_id: int | None) -> tuple[bool, str]:
        """Record a verified dispute event once and, given an order, flag it disputed
        (once: a second dispute event leaves the first's reason) with OrderDisputed, in
        one transaction. Returns (first time seen, the outcome recorded)."""

    async def require_action(
        self, order: Order, payment_id: str, action: PaymentAction
    ) -> Order | None:
        """PENDING_PAYMENT -> PAYMENT_ACTION_REQUIRED, recording the payment id and the
        action (its client secret encrypted) and writing PaymentActionRequired; the order
        as it now is (with its action), or None if it was not pending."""
        ...

    async def payment_action(self, order_id: int) -> PaymentAction | None:
        """The action the order's buyer must complete, while PAYMENT_ACTION_REQUIRED."""
        ...

    async def claim_unsettled(
        self, placed_before: datetime, checked_before: datetime, now: datetime, limit: int
    ) -> Sequence[int]:
        """Up to `limit` orders still unsettled (PENDING_PAYMENT, PAYMENT_ACTION_REQUIRED)
        placed before `placed_before` and not asked about since `checked_before`, marked
        as asked about at `now`. Concurrent callers get disjoint batches (rows another
        caller is claiming are skipped), and an order whose payment stays undecided is
        asked about again only once `checked_before` passes `now`."""
        ...

    async def settle_event(
        self, event: PaymentEvent, order_id: int | None, outcome: str
    ) -> tuple[bool, str]:
        """Record a gateway event once with its outcome and, given an order, apply it in
        the same transaction: PENDING_PAYMENT or PAYMENT_ACTION_REQUIRED -> PAID or
        PAYMENT_FAILED, only while the
        order's payment id is unset or the event's. An order that did not move makes the
        outcome "ignored: order is <STATUS>". Returns (first time seen, the outcome
        recorded), the first delivery's outcome for a repeat."""
        ...


async def with_payment_action(orders: OrderStore, order: Order) -> Order:
    """The order with the action its buyer must complete, while it waits for one. Only
    for answers to the buyer: the client secret completes this payment."""
    if order.status is not OrderStatus.PAYMENT_ACTION_REQUIRED or order.payment_action:
        return order
    return replace(order, payment_action=await orders.payment_action(order.id))
