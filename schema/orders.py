"""Orders as their customer (or staff) sees them."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from domain import orders
from domain.money import Money as DomainMoney
from domain.pagination import Page
from schema.carts import MailingAddress, MailingAddressInput
from schema.common import Money, Node, PageInfo
from schema.errors import UserError
from schema.global_id import encode_gid


@strawberry.enum
class OrderStatus(Enum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    FULFILLED = "FULFILLED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


@strawberry.type(description="What was bought, at the price paid: a snapshot.")
class OrderLine:
    sku: str
    title: str
    quantity: int
    unit_price: Money
    total: Money
    variant_id: strawberry.ID


@strawberry.type(description="Card brand and last four digits, as the gateway reported them.")
class OrderPayment:
    card_brand: str | None
    card_last4: str | None
    decline_code: str | None


@strawberry.type
class OrderCost:
    subtotal_amount: Money
    shipping_amount: Money
    tax_amount: Money
    total_amount: Money


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
            lines=[
                OrderLine(
                    sku=line.sku,
                    title=line.title,
                    quantity=line.quantity,
                    unit_price=money(line.unit_price),
                    total=money(line.total),
                    variant_id=strawberry.ID(encode_gid("ProductVariant", line.variant_id)),
                )
                for line in order.lines
            ],
            cost=OrderCost(
                subtotal_amount=money(order.subtotal),
                shipping_amount=money(order.shipping),
                tax_amount=money(order.tax),
                total_amount=money(order.total),
            ),
            payment=OrderPayment(
                card_brand=order.card_brand,
                card_last4=order.card_last4,
                decline_code=order.decline_code,
            ),
            created_at=order.created_at,
            updated_at=order.updated_at,
        )


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
    payment_method: str = strawberry.field(
        description="A gateway payment method id (pm_...); card data never reaches us."
    )
    email: str | None = strawberry.field(default=None, description="Needed if the cart has none.")
    shipping_address: MailingAddressInput | None = strawberry.field(
        default=None, description="Needed if the cart has none."
    )


@strawberry.input
class OrderIdInput:
    order_id: strawberry.ID
