"""orderRefund (staff), returns (the shopper asks, staff decide), the shopper's cancel."""

from __future__ import annotations

import strawberry

from domain.errors import Rejected, UserErrorCode
from domain.fulfillments import LineRequest
from domain.orders import Order as DomainOrder
from domain.refunds import Refund, RefundRequest
from domain.returns import ReturnOutcome
from domain.shopper_desk import ShopperOrderRef
from resolvers.checkout import line_request_of, order_id_of
from schema.context import Info
from schema.errors import UserError
from schema.global_id import str_gid_or_none
from schema.orders import FulfillmentLineInput, Order, OrderPayload, line_gid_of, money_of
from schema.refund_types import OrderRefund, OrderReturn
from schema.refunds import (
    OrderCancelRequestInput,
    OrderRefundInput,
    OrderRefundLineInput,
    OrderRefundPayload,
    OrderReturnApproveInput,
    OrderReturnDeclineInput,
    OrderReturnPayload,
    OrderReturnReceiveInput,
    OrderReturnRequestInput,
)
from schema.refusals import refusals_as


@strawberry.type
class RefundMutation:
    @strawberry.mutation(
        description="Staff: refund some units, the shipping or an amount of a paid order: "
        "gift cards first, then the card; never more than was paid. REFUNDED once refunds "
        "cover the total."
    )
    @refusals_as(OrderRefundPayload)
    async def order_refund(self, info: Info, input: OrderRefundInput) -> OrderRefundPayload:
        staff = await info.context.require_viewer()
        outcome = await info.context.refunds.refund(
            order_id_of(input.order_id),
            staff,
            RefundRequest(
                idempotency_key=input.idempotency_key,
                lines=_lines(input.lines or []),
                shipping=input.shipping,
                amount=input.amount,
                reason=input.reason,
                restock=input.restock,
            ),
        )
        order = outcome.order
        return OrderRefundPayload(
            order=None if order is None or outcome.errors else Order.of(order),
            refund=None
            if outcome.refund is None or order is None
            else _refund(outcome.refund, order),
            user_errors=[UserError.of(e) for e in outcome.errors],
        )

    @strawberry.mutation(
        description="The order's customer (or a status-token holder): ask to return fulfilled "
        "units, within the return window."
    )
    @refusals_as(OrderReturnPayload)
    async def order_return_request(
        self, info: Info, input: OrderReturnRequestInput
    ) -> OrderReturnPayload:
        context = info.context
        context.mark_private()
        outcome = await context.returns.request(
            _shopper_ref(input.order_id, input.status_token),
            await context.viewer(),
            context.client_address,
            _lines(input.lines),
            input.reason,
        )
        return _return_payload(outcome)

    @strawberry.mutation(description="Staff: approve a REQUESTED return.")
    @refusals_as(OrderReturnPayload)
    async def order_return_approve(
        self, info: Info, input: OrderReturnApproveInput
    ) -> OrderReturnPayload:
        staff = await info.context.require_viewer()
        outcome = await info.context.returns.approve(_return_id(input.return_id), staff)
        return _return_payload(outcome)

    @strawberry.mutation(description="Staff: decline a REQUESTED return.")
    @refusals_as(OrderReturnPayload)
    async def order_return_decline(
        self, info: Info, input: OrderReturnDeclineInput
    ) -> OrderReturnPayload:
        staff = await info.context.require_viewer()
        outcome = await info.context.returns.decline(
            _return_id(input.return_id), staff, input.reason
        )
        return _return_payload(outcome)

    @strawberry.mutation(
        description="Staff: an APPROVED return arrived: RECEIVED, refunding its units (as "
        "orderRefund) and restocking them when asked."
    )
    @refusals_as(OrderReturnPayload)
    async def order_return_receive(
        self, info: Info, input: OrderReturnReceiveInput
    ) -> OrderReturnPayload:
        staff = await info.context.require_viewer()
        outcome = await info.context.returns.receive(
            _return_id(input.return_id), staff, refund=input.refund, restock=input.restock
        )
        return _return_payload(outcome)

    @strawberry.mutation(
        description="The order's customer (or a status-token holder): cancel before anything "
        "ships; stock back and a paid card payment refunded in full. ORDER_ALREADY_FULFILLED "
        "afterwards."
    )
    @refusals_as(OrderPayload)
    async def order_cancel_request(
        self, info: Info, input: OrderCancelRequestInput
    ) -> OrderPayload:
        context = info.context
        context.mark_private()
        order = await context.shoppers.cancel(
            _shopper_ref(input.order_id, input.status_token),
            await context.viewer(),
            context.client_address,
        )
        return OrderPayload(order=Order.of(order), user_errors=[])


def _lines(lines: list[OrderRefundLineInput]) -> tuple[LineRequest, ...]:
    return tuple(
        line_request_of(FulfillmentLineInput(line_id=x.line_id, quantity=x.quantity)) for x in lines
    )


def _refund(refund: Refund, order: DomainOrder) -> OrderRefund:
    return OrderRefund.of(refund, money_of(order), line_gid_of(order))


def _return_payload(outcome: ReturnOutcome) -> OrderReturnPayload:
    order = outcome.order
    return OrderReturnPayload(
        order=None if order is None or outcome.errors else Order.of(order),
        order_return=None
        if outcome.order_return is None or order is None
        else OrderReturn.of(outcome.order_return, line_gid_of(order)),
        refund=None if outcome.refund is None or order is None else _refund(outcome.refund, order),
        user_errors=[UserError.of(e) for e in outcome.errors],
    )


def _shopper_ref(order_id: strawberry.ID | None, token: str | None) -> ShopperOrderRef:
    if order_id is None:
        return ShopperOrderRef(status_token=token)
    public_id = str_gid_or_none(order_id, "Order")
    # A malformed id names no order: the same answer as someone else's.
    return ShopperOrderRef(public_id=public_id or "", status_token=token)


def _return_id(value: strawberry.ID) -> str:
    public_id = str_gid_or_none(value, "OrderReturn")
    if public_id is None:
        raise Rejected.one(UserErrorCode.RETURN_NOT_FOUND, "no such return", "returnId")
    return public_id
