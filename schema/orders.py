"""Orders as their customer (or staff) sees them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum

import strawberry

from domain import orders
from domain.money import Money as DomainMoney
from domain.pagination import Page
from schema.carts import MailingAddress, MailingAddressInput
from schema.common import Money, Node, PageInfo
from schema.context import Info
from schema.discount_allocations import DiscountAllocation
from schema.errors import UserError
from schema.global_id import encode_gid
from schema.refund_types import OrderRefund, OrderReturn


@strawberry.enum
class OrderStatus(Enum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAYMENT_ACTION_REQUIRED = "PAYMENT_ACTION_REQUIRED"
    PAID = "PAID"
    FULFILLED = "FULFILLED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


@strawberry.enum(description="How much of the order has been fulfilled.")
class OrderFulfillmentStatus(Enum):
    UNFULFILLED = "UNFULFILLED"
    PARTIALLY_FULFILLED = "PARTIALLY_FULFILLED"
    FULFILLED = "FULFILLED"


@strawberry.type(description="What was bought, at the price paid: a snapshot.")
class OrderLine:
    id: strawberry.ID = strawberry.field(
        description="Names the line within its order (for orderFulfill); opaque."
    )
    sku: str
    title: str
    quantity: int
    unit_price: Money
    total: Money = strawberry.field(description="unitPrice x quantity, before discounts.")
    variant_id: strawberry.ID
    record: strawberry.Private[orders.Order]
    line_id: strawberry.Private[int]

    @strawberry.field(
        description="What discounts took off this line: its line discount, then its share "
        "of the order discount."
    )
    async def discount_allocations(self, info: Info) -> list[DiscountAllocation]:
        found = await _allocations(info, self.record)
        return DiscountAllocation.each(
            (a.as_allocation() for a in found if a.order_line_id == self.line_id),
            money_of(self.record),
        )

    @classmethod
    def of(cls, order: orders.Order, position: int) -> OrderLine:
        line = order.lines[position - 1]
        return cls(
            record=order,
            line_id=line.id,
            id=strawberry.ID(order_line_gid(order.public_id, position)),
            sku=line.sku,
            title=line.title,
            quantity=line.quantity,
            unit_price=Money.of(DomainMoney(line.unit_price, order.currency_code)),
            total=Money.of(DomainMoney(line.total, order.currency_code)),
            variant_id=strawberry.ID(encode_gid("ProductVariant", line.variant_id)),
        )


def order_line_gid(order_public_id: str, position: int) -> str:
    """The order's public id and the line's 1-based position: no counter shows through."""
    return encode_gid("OrderLine", f"{order_public_id}.{position}")


@strawberry.type(description="Some units of one order line, in a fulfilment.")
class FulfillmentLineItem:
    line_item: OrderLine
    quantity: int


@strawberry.type(description="A shipment of some units of some lines of the order.")
class Fulfillment:
    tracking_company: str | None
    tracking_number: str | None
    tracking_url: str | None = strawberry.field(description="An http(s) URL, when given.")
    created_at: datetime
    fulfillment_line_items: list[FulfillmentLineItem]

    @classmethod
    def of(cls, fulfillment: orders.Fulfillment, order: orders.Order) -> Fulfillment:
        positions = {line.id: number for number, line in enumerate(order.lines, start=1)}
        return cls(
            tracking_company=fulfillment.tracking.company,
            tracking_number=fulfillment.tracking.number,
            tracking_url=fulfillment.tracking.url,
            created_at=fulfillment.created_at,
            fulfillment_line_items=[
                FulfillmentLineItem(
                    line_item=OrderLine.of(order, positions[line.order_line_id]),
                    quantity=line.quantity,
                )
                for line in fulfillment.lines
            ],
        )


@strawberry.type(description="The order entered this status at this time.")
class OrderStatusChange:
    status: OrderStatus
    at: datetime


@strawberry.type(description="Card brand and last four digits, as the gateway reported them.")
class OrderPayment:
    card_brand: str | None
    card_last4: str | None
    decline_code: str | None


@strawberry.type(
    description="What the buyer's client must do to finish paying (3-D Secure): pass "
    "clientSecret to Stripe.js handleNextAction, then call checkoutPaymentConfirm (or wait "
    "for the order to become PAID)."
)
class OrderPaymentAction:
    client_secret: str = strawberry.field(
        description="Completes this one payment: keep it to the buyer's client."
    )
    type: str = strawberry.field(
        description="The gateway's next action, e.g. USE_STRIPE_SDK or REDIRECT_TO_URL."
    )


@strawberry.type(description="The shipping method charged, as it was when the order was placed.")
class OrderShippingMethod:
    title: str
    handle: str


@strawberry.type(
    description="subtotalAmount - discountsAmount + shippingAmount + taxAmount = totalAmount; "
    "totalAmount - giftCardsAmount = checkoutChargeAmount."
)
class OrderCost:
    subtotal_amount: Money = strawberry.field(description="The lines before discounts.")
    discounts_amount: Money = strawberry.field(
        description="Every discount, free shipping included (see Order.discountAllocations)."
    )
    shipping_amount: Money = strawberry.field(
        description="The shipping method's price, before a free-shipping discount."
    )
    tax_amount: Money
    total_amount: Money
    gift_cards_amount: Money = strawberry.field(description="What gift cards paid.")
    checkout_charge_amount: Money = strawberry.field(
        description="What the card gateway was asked to charge: totalAmount less giftCardsAmount."
    )


@strawberry.type(
    description="The buyer disputed the payment at their bank (a chargeback); staff answer "
    "it at the payment gateway."
)
class OrderDispute:
    reason: str = strawberry.field(description='The gateway\'s reason, e.g. "fraudulent".')
    amount: Money
    created_at: datetime


@strawberry.type(description="What a gift card paid of an order.")
class OrderGiftCardPayment:
    last_characters: str
    amount: Money
    credited_back: bool = strawberry.field(
        description="True once the amount went back on the card (a declined payment or a "
        "cancellation)."
    )


@strawberry.type(
    description="An order. Its id is random: orders can be neither guessed nor counted."
)
class Order(Node):
    number: str = strawberry.field(description='Human-friendly, e.g. "#1042".')
    status: OrderStatus
    email: str
    shipping_address: MailingAddress
    lines: list[OrderLine]
    cost: OrderCost
    payment: OrderPayment
    created_at: datetime
    updated_at: datetime
    cancel_reason: str | None = strawberry.field(
        description="Why it was cancelled (staff's reason, or an expired payment); null "
        "unless CANCELLED."
    )
    status_token: str | None = strawberry.field(
        description="Opens this order in orderByStatusToken, without an account. Only in "
        "checkoutComplete's answer (and its replay); null everywhere else."
    )
    shipping_method: OrderShippingMethod | None = strawberry.field(
        description="Null on orders placed before shipping methods existed."
    )
    dispute: OrderDispute | None = strawberry.field(
        description="Set once the gateway reports a dispute of the payment; null otherwise."
    )
    payment_action: OrderPaymentAction | None = strawberry.field(
        description="While PAYMENT_ACTION_REQUIRED, for the order's buyer only (its "
        "customer in order(id), checkoutComplete, checkoutPaymentConfirm, "
        "orderByStatusToken); null for staff, in lists, and once settled."
    )
    record: strawberry.Private[orders.Order]

    @strawberry.field(description="Shipments so far, oldest first.")
    async def fulfillments(self, info: Info) -> list[Fulfillment]:
        found = await info.context.order_loaders.fulfillments_by_order_id.load(self.record.id)
        return [Fulfillment.of(f, self.record) for f in found]

    @strawberry.field(description="UNFULFILLED, PARTIALLY_FULFILLED or FULFILLED.")
    async def fulfillment_status(self, info: Info) -> OrderFulfillmentStatus:
        if self.record.status is orders.OrderStatus.FULFILLED:
            return OrderFulfillmentStatus.FULFILLED  # also orders fulfilled before 0011
        found = await info.context.order_loaders.fulfillments_by_order_id.load(self.record.id)
        shipped = sum(line.quantity for f in found for line in f.lines)
        if shipped == 0:
            return OrderFulfillmentStatus.UNFULFILLED
        ordered = sum(line.quantity for line in self.record.lines)
        if shipped < ordered:
            return OrderFulfillmentStatus.PARTIALLY_FULFILLED
        return OrderFulfillmentStatus.FULFILLED

    @strawberry.field(
        description="What each discount took off in all (lines, order, shipping), as it was "
        "when the order was placed; they add up to cost.discountsAmount."
    )
    async def discount_allocations(self, info: Info) -> list[DiscountAllocation]:
        found = await _allocations(info, self.record)
        return DiscountAllocation.per_discount(
            (a.as_allocation() for a in found), money_of(self.record)
        )

    @strawberry.field(description="The discount codes the order used (automatic ones have none).")
    async def discount_codes(self, info: Info) -> list[str]:
        found = await _allocations(info, self.record)
        return list(dict.fromkeys(a.code for a in found if a.code is not None))

    @strawberry.field(description="The gift cards that paid part of it, in the order applied.")
    async def gift_card_payments(self, info: Info) -> list[OrderGiftCardPayment]:
        found = await info.context.order_loaders.gift_card_payments_by_order_id.load(self.record.id)
        money = money_of(self.record)
        return [
            OrderGiftCardPayment(
                last_characters=p.last_characters,
                amount=money(p.amount),
                credited_back=p.credited_back,
            )
            for p in found
        ]

    @strawberry.field(
        description="Refunds, oldest first, PENDING and FAILED ones included (see status)."
    )
    async def refunds(self, info: Info) -> list[OrderRefund]:
        found = await info.context.order_loaders.refunds_by_order_id.load(self.record.id)
        money, line_gid = money_of(self.record), line_gid_of(self.record)
        return [OrderRefund.of(r, money, line_gid) for r in found]

    @strawberry.field(description="What SUCCEEDED refunds gave back, gift cards and card together.")
    async def total_refunded(self, info: Info) -> Money:
        found = await info.context.order_loaders.refunds_by_order_id.load(self.record.id)
        return money_of(self.record)(sum(r.amount for r in found if r.succeeded))

    @strawberry.field(description="Returns the shopper asked for, oldest first.")
    async def returns(self, info: Info) -> list[OrderReturn]:
        found = await info.context.order_loaders.returns_by_order_id.load(self.record.id)
        line_gid = line_gid_of(self.record)
        return [OrderReturn.of(r, line_gid) for r in found]

    @strawberry.field(description="Every status the order entered, oldest first.")
    async def status_history(self, info: Info) -> list[OrderStatusChange]:
        found = await info.context.order_loaders.status_history_by_order_id.load(self.record.id)
        return [OrderStatusChange(status=OrderStatus(c.status.value), at=c.at) for c in found]

    @classmethod
    def of(cls, order: orders.Order) -> Order:
        def money(amount: int) -> Money:
            return Money.of(DomainMoney(amount, order.currency_code))

        return cls(
            id=strawberry.ID(encode_gid("Order", order.public_id)),
            number=order.number,
            status=OrderStatus(order.status.value),
            email=order.email,
            shipping_address=MailingAddress.of(order.shipping_address),
            lines=[OrderLine.of(order, position) for position in range(1, len(order.lines) + 1)],
            cost=OrderCost(
                subtotal_amount=money(order.subtotal),
                discounts_amount=money(order.discount_total),
                shipping_amount=money(order.shipping),
                tax_amount=money(order.tax),
                total_amount=money(order.total),
                gift_cards_amount=money(order.gift_card_total),
                checkout_charge_amount=money(order.charge_amount),
            ),
            payment=OrderPayment(
                card_brand=order.card_brand,
                card_last4=order.card_last4,
                decline_code=order.decline_code,
            ),
            created_at=order.created_at,
            updated_at=order.updated_at,
            cancel_reason=order.cancel_reason,
            status_token=order.status_token,
            payment_action=None
            if order.payment_action is None
            or order.status is not orders.OrderStatus.PAYMENT_ACTION_REQUIRED
            else OrderPaymentAction(
                client_secret=order.payment_action.client_secret,
                type=order.payment_action.kind,
            ),
            shipping_method=None
            if order.shipping_method_title is None or order.shipping_method_handle is None
            else OrderShippingMethod(
                title=order.shipping_method_title, handle=order.shipping_method_handle
            ),
            dispute=None
            if order.dispute is None
            else OrderDispute(
                reason=order.dispute.reason,
                amount=money(order.dispute.amount),
                created_at=order.dispute.at,
            ),
            record=order,
        )


async def _allocations(info: Info, order: orders.Order) -> list[orders.OrderDiscountAllocation]:
    return await info.context.order_loaders.discount_allocations_by_order_id.load(order.id)


def money_of(order: orders.Order) -> Callable[[int], Money]:
    def money(amount: int) -> Money:
        return Money.of(DomainMoney(amount, order.currency_code))

    return money


def line_gid_of(order: orders.Order) -> Callable[[int], str]:
    positions = {line.id: n for n, line in enumerate(order.lines, start=1)}

    def line_gid(order_line_id: int) -> str:
        return order_line_gid(order.public_id, positions[order_line_id])

    return line_gid


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[orders.Order]) -> OrderConnection:
        return cls(
            edges=[OrderEdge(cursor=e.cursor, node=Order.of(e.node)) for e in page.edges],
            page_info=PageInfo.of(page),
        )


@strawberry.type
class OrderPayload:
    order: Order | None
    user_errors: list[UserError]


@strawberry.input
class CheckoutCompleteInput:
    cart_id: strawberry.ID
    idempotency_key: str = strawberry.field(
        description="8-255 characters, unique per checkout attempt: a retry with the same key "
        "returns the same order and never charges twice."
    )
    payment_method: str | None = strawberry.field(
        default=None,
        description="A gateway payment method id (pm_...); card data never reaches us. "
        "Needed unless the cart's gift cards pay the whole total (MISSING_PAYMENT_METHOD).",
    )
    email: str | None = strawberry.field(default=None, description="Needed if the cart has none.")
    shipping_address: MailingAddressInput | None = strawberry.field(
        default=None, description="Needed if the cart has none."
    )


@strawberry.input(description="The order to settle: orderId (its customer) or statusToken.")
class CheckoutPaymentConfirmInput:
    order_id: strawberry.ID | None = strawberry.field(
        default=None, description="An order of the signed-in customer."
    )
    status_token: str | None = strawberry.field(
        default=None, description="The order's status token (guests)."
    )


@strawberry.input
class FulfillmentLineInput:
    line_id: strawberry.ID = strawberry.field(description="An OrderLine id of this order.")
    quantity: int = strawberry.field(description="At least 1, at most the units left.")


@strawberry.input
class FulfillmentTrackingInput:
    company: str | None = strawberry.field(default=None, description="At most 255 characters.")
    number: str | None = strawberry.field(default=None, description="At most 255 characters.")
    url: str | None = strawberry.field(
        default=None, description="An http(s) URL, at most 2048 characters."
    )


@strawberry.input
class OrderFulfillInput:
    order_id: strawberry.ID
    lines: list[FulfillmentLineInput] | None = strawberry.field(
        default=None, description="What ships now; every unit not yet fulfilled when omitted."
    )
    tracking: FulfillmentTrackingInput | None = None


@strawberry.input
class OrderCancelInput:
    order_id: strawberry.ID
    reason: str | None = strawberry.field(default=None, description="At most 500 characters.")
