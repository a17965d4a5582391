"""Inputs and payloads of refunds, returns and the shopper's cancel."""

from __future__ import annotations

import strawberry

from schema.errors import UserError
from schema.orders import Order
from schema.refund_types import OrderRefund, OrderReturn


@strawberry.input
class OrderRefundLineInput:
    line_id: strawberry.ID = strawberry.field(description="An OrderLine id of this order.")
    quantity: int = strawberry.field(
        description="At least 1, at most the units bought less those refunded."
    )


@strawberry.input
class OrderRefundInput:
    order_id: strawberry.ID
    idempotency_key: str = strawberry.field(
        description="8-255 characters: the same key and request answer the same refund and "
        "never refund twice; the same key with another request is IDEMPOTENCY_KEY_REUSED."
    )
    lines: list[OrderRefundLineInput] | None = strawberry.field(
        default=None,
        description="Units to refund: each at its paid price (after its discounts) with its "
        "share of the tax.",
    )
    shipping: bool = strawberry.field(
        default=False, description="Refund the shipping paid (after a free-shipping discount)."
    )
    amount: str | None = strawberry.field(
        default=None,
        description='A decimal amount, e.g. "5.00": refunded instead of what the lines and '
        "shipping are worth.",
    )
    reason: str | None = strawberry.field(default=None, description="At most 500 characters.")
    restock: bool = strawberry.field(
        default=False, description="Put the refunded units back in stock (needs lines)."
    )


@strawberry.type
class OrderRefundPayload:
    order: Order | None
    refund: OrderRefund | None = strawberry.field(
        description="The refund made (or replayed); PENDING with REFUND_PENDING, FAILED with "
        "REFUND_FAILED."
    )
    user_errors: list[UserError]


@strawberry.input
class OrderReturnRequestInput:
    order_id: strawberry.ID | None = strawberry.field(
        default=None, description="The signed-in customer's order; or give statusToken."
    )
    status_token: str | None = strawberry.field(
        default=None, description="The order's status token, for a guest."
    )
    lines: list[OrderRefundLineInput] = strawberry.field(
        description="Fulfilled units to send back, within the return window."
    )
    reason: str | None = strawberry.field(default=None, description="At most 500 characters.")


@strawberry.input
class OrderReturnApproveInput:
    return_id: strawberry.ID


@strawberry.input
class OrderReturnDeclineInput:
    return_id: strawberry.ID
    reason: str | None = strawberry.field(default=None, description="At most 500 characters.")


@strawberry.input
class OrderReturnReceiveInput:
    return_id: strawberry.ID
    refund: bool = strawberry.field(
        default=False, description="Refund the returned units (as orderRefund would)."
    )
    restock: bool = strawberry.field(
        default=False, description="Put the returned units back in stock."
    )


@strawberry.type
class OrderReturnPayload:
    order: Order | None
    order_return: OrderReturn | None
    refund: OrderRefund | None = strawberry.field(description="orderReturnReceive's refund.")
    user_errors: list[UserError]


@strawberry.input
class OrderCancelRequestInput:
    order_id: strawberry.ID | None = strawberry.field(
        default=None, description="The signed-in customer's order; or give statusToken."
    )
    status_token: str | None = strawberry.field(
        default=None, description="The order's status token, for a guest."
    )
