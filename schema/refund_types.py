"""Refunds and returns as an order shows them (Order.refunds, Order.returns)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum

import strawberry

from domain import refunds, returns
from schema.common import Money
from schema.global_id import encode_gid


@strawberry.enum(description="PENDING while the gateway is asked, then SUCCEEDED or FAILED.")
class OrderRefundStatus(Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@strawberry.enum(description="REQUESTED -> APPROVED -> RECEIVED, or REQUESTED -> DECLINED.")
class OrderReturnStatus(Enum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    RECEIVED = "RECEIVED"


@strawberry.type(description="Some units of one order line, in a refund or a return.")
class OrderRefundLine:
    line_id: strawberry.ID = strawberry.field(description="The OrderLine's id.")
    quantity: int


@strawberry.type(description="A refund of some units, the shipping or an amount of an order.")
class OrderRefund:
    id: strawberry.ID
    status: OrderRefundStatus
    amount: Money = strawberry.field(description="giftCardAmount + cardAmount.")
    gift_card_amount: Money = strawberry.field(description="What went back on gift cards.")
    card_amount: Money = strawberry.field(description="What the card gateway refunds.")
    lines: list[OrderRefundLine]
    shipping: bool = strawberry.field(description="Whether it refunds the shipping.")
    reason: str | None
    created_at: datetime
    restocked: bool = strawberry.field(description="Its units went back in stock.")

    @classmethod
    def of(
        cls,
        refund: refunds.Refund,
        money: Callable[[int], Money],
        line_gid: Callable[[int], str],
    ) -> OrderRefund:
        return cls(
            id=strawberry.ID(encode_gid("OrderRefund", refund.public_id)),
            status=OrderRefundStatus(refund.status.value),
            amount=money(refund.amount),
            gift_card_amount=money(refund.gift_card_amount),
            card_amount=money(refund.card_amount),
            lines=[
                OrderRefundLine(
                    line_id=strawberry.ID(line_gid(x.order_line_id)), quantity=x.quantity
                )
                for x in refund.lines
            ],
            shipping=refund.shipping,
            reason=refund.reason,
            created_at=refund.created_at,
            restocked=refund.restocked,
        )


@strawberry.type(description="A shopper's return of fulfilled units.")
class OrderReturn:
    id: strawberry.ID
    status: OrderReturnStatus
    lines: list[OrderRefundLine]
    reason: str | None
    decline_reason: str | None = strawberry.field(description="Staff's, when DECLINED.")
    created_at: datetime

    @classmethod
    def of(cls, found: returns.OrderReturn, line_gid: Callable[[int], str]) -> OrderReturn:
        return cls(
            id=strawberry.ID(encode_gid("OrderReturn", found.public_id)),
            status=OrderReturnStatus(found.status.value),
            lines=[
                OrderRefundLine(
                    line_id=strawberry.ID(line_gid(x.order_line_id)), quantity=x.quantity
                )
                for x in found.lines
            ],
            reason=found.reason,
            decline_reason=found.decline_reason,
            created_at=found.created_at,
        )
