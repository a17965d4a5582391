"""checkoutComplete, orders, and the staff's order mutations."""

from __future__ import annotations

import dataclasses

import strawberry

from domain.addresses import MailingAddress
from domain.checkout import CheckoutInput
from domain.errors import Rejected, UserErrorCode
from domain.fulfillments import FulfillmentRequest, LineRequest
from domain.orders import Tracking
from schema.context import Info
from schema.errors import UserError
from schema.global_id import int_key, str_gid_or_none
from schema.orders import (
    CheckoutCompleteInput,
    CheckoutPaymentConfirmInput,
    FulfillmentLineInput,
    Order,
    OrderCancelInput,
    OrderFulfillInput,
    OrderPayload,
)
from schema.refusals import refusals_as


@strawberry.type
class OrderQuery:
    @strawberry.field(description="An order, for its customer or staff; null for anyone else.")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        public_id = str_gid_or_none(id, "Order")
        if public_id is None:
            return None
        order = await info.context.orders.get(public_id, await info.context.viewer())
        return None if order is None else Order.of(order)

    @strawberry.field(
        description="The one order this status token opens, for anyone holding it (no "
        "account needed); null for any other string. Failed look-ups are throttled per "
        "client (THROTTLED)."
    )
    async def order_by_status_token(self, info: Info, token: str) -> Order | None:
        context = info.context
        context.mark_private()
        order = await context.order_status.find(token, context.client_address)
        return None if order is None else Order.of(order)


@strawberry.type
class CheckoutMutation:
    @strawberry.mutation(description="Place the order for a cart and charge it, exactly once.")
    async def checkout_complete(self, info: Info, input: CheckoutCompleteInput) -> OrderPayload:
        context = info.context
        cart_id = str_gid_or_none(input.cart_id, "Cart")
        if cart_id is None:
            error = Rejected.one(UserErrorCode.CART_NOT_FOUND, "no such cart", "cartId")
            context.state.record_checkout(UserErrorCode.CART_NOT_FOUND.value)
            return OrderPayload(order=None, user_errors=UserError.all(error))
        address = input.shipping_address
        outcome = await context.checkout.complete(
            CheckoutInput(
                cart_id=cart_id,
                idempotency_key=input.idempotency_key,
                payment_method=input.payment_method,
                email=input.email,
                shipping_address=None
                if address is None
                else MailingAddress(**dataclasses.asdict(address)),
            ),
            await context.viewer_id(),
        )
        # For the checkout funnel: the first userError's code, else the order's status.
        if outcome.errors:
            context.state.record_checkout(outcome.errors[0].code.value)
        elif outcome.order is not None:
            context.state.record_checkout(outcome.order.status.value)
        return OrderPayload(
            order=None if outcome.order is None else Order.of(outcome.order),
            user_errors=[UserError.of(e) for e in outcome.errors],
        )

    @strawberry.mutation(
        description="Settle the buyer's order now from the gateway's state (back from 3-D "
        "Secure before the webhook): PAID, PAYMENT_FAILED (PAYMENT_DECLINED) or unchanged "
        "(PAYMENT_PENDING, or still PAYMENT_ACTION_REQUIRED with its action)."
    )
    @refusals_as(OrderPayload)
    async def checkout_payment_confirm(
        self, info: Info, input: CheckoutPaymentConfirmInput
    ) -> OrderPayload:
        context = info.context
        context.mark_private()
        public_id = None
        if input.order_id is not None:
            public_id = str_gid_or_none(input.order_id, "Order")
            if public_id is None:
                raise Rejected.one(UserErrorCode.ORDER_NOT_FOUND, "no such order", "orderId")
        order, errors = await context.orders.confirm_payment(
            public_id, input.status_token, await context.viewer_id(), context.client_address
        )
        return OrderPayload(
            order=None if order is None else Order.of(order),
            user_errors=[UserError.of(e) for e in errors],
        )

    @strawberry.mutation(
        description="Staff: record a shipment of a paid order: the lines given, or every unit "
        "not yet fulfilled. The order becomes FULFILLED with its last unit."
    )
    @refusals_as(OrderPayload)
    async def order_fulfill(self, info: Info, input: OrderFulfillInput) -> OrderPayload:
        staff = await info.context.require_viewer()
        tracking = input.tracking
        request = FulfillmentRequest(
            lines=None if input.lines is None else tuple(line_request_of(x) for x in input.lines),
            tracking=Tracking()
            if tracking is None
            else Tracking(tracking.company, tracking.number, tracking.url),
        )
        order = await info.context.orders.fulfil(order_id_of(input.order_id), staff, request)
        return OrderPayload(order=Order.of(order), user_errors=[])

    @strawberry.mutation(
        description="Staff: cancel an order, releasing its stock; refunds a paid one."
    )
    @refusals_as(OrderPayload)
    async def order_cancel(self, info: Info, input: OrderCancelInput) -> OrderPayload:
        staff = await info.context.require_viewer()
        order = await info.context.orders.cancel(order_id_of(input.order_id), staff, input.reason)
        return OrderPayload(order=Order.of(order), user_errors=[])


def order_id_of(value: strawberry.ID) -> str:
    public_id = str_gid_or_none(value, "Order")
    if public_id is None:
        raise Rejected.one(UserErrorCode.ORDER_NOT_FOUND, "no such order", "orderId")
    return public_id


def line_request_of(line: FulfillmentLineInput) -> LineRequest:
    """An OrderLine id is `<order public id>.<position>`; anything else names no line."""
    key = str_gid_or_none(line.line_id, "OrderLine")
    public_id, _, position = (key or "").rpartition(".")
    number = int_key(position)
    if not public_id or number is None:
        return LineRequest(None, 0, line.quantity)
    return LineRequest(public_id, number, line.quantity)
