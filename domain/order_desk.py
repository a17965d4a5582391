"""Orders after checkout: who may see them, staff actions, webhooks, expiry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from domain.carts import CartStore
from domain.checkout import order_payment_errors
from domain.customers import Customer
from domain.errors import ForbiddenError, Rejected, UserError, UserErrorCode
from domain.fulfillments import (
    FulfillmentRequest,
    checked_reason,
    checked_tracking,
    wanted_units,
)
from domain.order_status import OrderStatusLookup
from domain.orders import Order, OrderStatus, OrderStore, Overfulfilled, with_payment_action
from domain.pagination import Page, PageRequest
from domain.payment_reconciler import PaymentReconciler
from domain.payments import (
    PaymentEvent,
    PaymentGateway,
    charge_event_mismatch,
    payment_event_mismatch,
)

log = logging.getLogger(__name__)


class GatewayRefunds(Protocol):
    async def record_gateway_refund(
        self, event: PaymentEvent, order_id: int | None
    ) -> tuple[bool, str]:
        """Record, once per event, what the gateway refunded beyond our own refunds."""
        ...


SHOPPER_CANCEL_REASON = "cancelled by the customer"
_SETTLING = {
    "payment_succeeded": "settled: paid",
    "payment_failed": "settled: payment failed",
}


class OrderDesk:
    def __init__(
        self,
        orders: OrderStore,
        gateway: PaymentGateway,
        carts: CartStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        reconciler: PaymentReconciler | None = None,
        status_lookup: OrderStatusLookup | None = None,
        gateway_refunds: GatewayRefunds | None = None,
    ) -> None:
        self._gateway_refunds = gateway_refunds
        self._status_lookup = status_lookup
        self._orders = orders
        self._gateway = gateway
        self._carts = carts
        self._clock = clock
        self.reconciler = reconciler or PaymentReconciler(orders, gateway, carts, clock=clock)

    async def get(self, public_id: str, viewer: Customer | None) -> Order | None:
        """The order for its customer or staff; None for anyone else (no hint it exists)."""
        if viewer is None:
            return None
        order = await self._orders.by_public_id(public_id)
        if order is None or not (viewer.is_staff or order.customer_id == viewer.id):
            return None
        if order.customer_id == viewer.id:  # the buyer, not staff: the action is theirs
            return await with_payment_action(self._orders, order)
        return order

    async def of_customer(self, customer_id: int, page: PageRequest) -> Page[Order]:
        return await self._orders.of_customer(customer_id, page)

    async def fulfil(
        self, public_id: str, staff: Customer, request: FulfillmentRequest | None = None
    ) -> Order:
        """Record a shipment of some lines (all remaining units when none are named) of
        a paid order. The order stays PAID while units remain and becomes FULFILLED with
        the last of them: its status is the money's state, the fulfilments say what left."""
        request = request or FulfillmentRequest()
        order = await self._staff_order(public_id, staff)
        tracking = checked_tracking(request.tracking)
        wanted = wanted_units(order, request.lines)
        if order.status is not OrderStatus.PAID:
            raise _illegal(order, OrderStatus.FULFILLED)
        fulfilled = await self._orders.fulfil(order.id, wanted, tracking)
        if isinstance(fulfilled, Overfulfilled):
            raise Rejected(_overfulfilled(order, request, fulfilled))
        if fulfilled is None:
            current = await self._orders.by_id(order.id)
            raise _illegal(current or order, OrderStatus.FULFILLED)
        return fulfilled

    async def cancel(self, public_id: str, staff: Customer, reason: str | None = None) -> Order:
        """Cancel, releasing stock; a paid order is refunded through the gateway first.
        An order with a fulfilment cannot be cancelled: some of it has left."""
        order = await self._staff_order(public_id, staff)
        return await self._cancel(order, checked_reason(reason))

    async def cancel_for_shopper(self, order: Order) -> Order:
        """The staff's cancel for the order's own shopper (see domain.shopper_desk), who
        is told ORDER_ALREADY_FULFILLED once anything has shipped."""
        return await self._cancel(order, SHOPPER_CANCEL_REASON, shopper=True)

    async def _cancel(self, order: Order, reason: str | None, *, shopper: bool = False) -> Order:
        shipped = order.status is OrderStatus.FULFILLED or (
            order.status is OrderStatus.PAID and await self._orders.has_fulfillments(order.id)
        )
        if shopper and shipped:
            raise Rejected.one(
                UserErrorCode.ORDER_ALREADY_FULFILLED,
                "some of the order has shipped: ask for a return instead",
                "orderId",
            )
        if order.status not in (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID):
            raise _illegal(order, OrderStatus.CANCELLED)
        if shipped:
            raise Rejected.one(
                UserErrorCode.INVALID_TRANSITION,
                "an order with fulfilments cannot be cancelled",
                "orderId",
            )
        if order.refunded_total > 0:
            raise Rejected.one(
                UserErrorCode.INVALID_TRANSITION,
                "a partly refunded order cannot be cancelled: refund the rest instead",
                "orderId",
            )
        refund_id = None
        if order.status is OrderStatus.PAID and order.payment_id:
            refund = await self._gateway.refund(
                order.payment_id,
                order.charge_amount,
                order.currency_code,
                f"order-{order.public_id}-refund",
            )
            if not refund.succeeded:
                raise Rejected.one(
                    UserErrorCode.REFUND_FAILED,
                    "the gateway refused the refund; nothing changed",
                    "orderId",
                )
            refund_id = refund.refund_id
        cancelled = await self._orders.cancel(order.id, refund_id, reason)
        if cancelled is None:
            raise _illegal(order, OrderStatus.CANCELLED)
        return cancelled

    async def settle(self, event: PaymentEvent) -> tuple[bool, str]:
        """Apply a verified gateway event once; a replay changes nothing.

        Returns (first time seen, outcome): "settled: paid", "settled: payment failed", or
        "ignored: <why>" (not a payment event, unknown order, a PaymentIntent, amount or
        currency that is not the order's, an order no longer pending). An ignored event
        changes nothing and is still acknowledged, so the gateway stops resending it."""
        if event.kind == "dispute_created":
            return await self._dispute(event)
        if event.kind == "charge_refunded" and self._gateway_refunds is not None:
            return await self._refunded_at_gateway(event, self._gateway_refunds)
        if event.kind not in _SETTLING:
            return await self._orders.settle_event(event, None, "ignored: not a payment event")
        order = await self._orders.by_public_id(event.order_id) if event.order_id else None
        if order is None:
            log.warning("webhook %s names no known order", event.event_id)
            return await self._orders.settle_event(event, None, "ignored: unknown order")
        reason = payment_event_mismatch(
            event, order.payment_id, order.charge_amount, order.currency_code
        )
        if reason is not None:
            log.warning(
                "webhook %s for order %s ignored: %s", event.event_id, order.public_id, reason
            )
            return await self._orders.settle_event(event, None, f"ignored: {reason}")
        first, outcome = await self._orders.settle_event(event, order.id, _SETTLING[event.kind])
        if first and outcome == _SETTLING["payment_succeeded"]:
            try:  # best effort: the paid order holds the cart anyway
                await self._carts.delete(order.cart_id)
            except Exception:
                log.warning("could not delete the cart of paid order %s", order.public_id)
        return first, outcome

    async def _refunded_at_gateway(
        self, event: PaymentEvent, refunds: GatewayRefunds
    ) -> tuple[bool, str]:
        """Record what the gateway refunded beyond our own refunds (a dashboard refund),
        after checking it is of at most what was charged, in its currency."""
        order = await self._orders.by_payment_id(event.payment_id) if event.payment_id else None
        if order is not None:
            reason = charge_event_mismatch(event, order.charge_amount, order.currency_code)
            if reason is not None:
                log.warning(
                    "refund webhook %s for order %s ignored: %s",
                    event.event_id,
                    order.public_id,
                    reason,
                )
                return await self._orders.settle_event(event, None, f"ignored: {reason}")
        return await refunds.record_gateway_refund(event, None if order is None else order.id)

    async def _dispute(self, event: PaymentEvent) -> tuple[bool, str]:
        """Flag the order of the disputed PaymentIntent (after checking the dispute is of
        at most what it was charged, in its currency), once; OrderDisputed tells staff."""
        order = await self._orders.by_payment_id(event.payment_id) if event.payment_id else None
        if order is not None:
            reason = charge_event_mismatch(event, order.charge_amount, order.currency_code)
            if reason is not None:
                log.warning(
                    "dispute webhook %s for order %s ignored: %s",
                    event.event_id,
                    order.public_id,
                    reason,
                )
                return await self._orders.settle_event(event, None, f"ignored: {reason}")
        return await self._orders.record_dispute(event, None if order is None else order.id)

    async def expire_unpaid(self, limit: int = 500) -> int:
        """Cancel orders whose payment never settled in time, giving back what they held,
        once the gateway says nothing was captured (domain.payment_reconciler)."""
        return await self.reconciler.expire(limit)

    async def reconcile_payments(self) -> int:
        """Settle unsettled orders past the grace period by asking the gateway."""
        return await self.reconciler.reconcile()

    async def confirm_payment(
        self, public_id: str | None, token: str | None, viewer_id: int | None, client: str
    ) -> tuple[Order | None, list[UserError]]:
        """checkoutPaymentConfirm: the buyer (the order's customer, or whoever holds its
        status token) asks us to settle now from the gateway's state, for a client back
        from the customer's action before the webhook. The order as it then is, with its
        action while still waiting; PAYMENT_DECLINED or PAYMENT_PENDING as checkout
        would answer."""
        if (public_id is None) == (token is None):
            raise Rejected.one(
                UserErrorCode.INVALID, "give orderId or statusToken, not both", "orderId"
            )
        order: Order | None = None
        if public_id is not None:
            found = await self._orders.by_public_id(public_id)
            if found is not None and viewer_id is not None and found.customer_id == viewer_id:
                order = found
        elif self._status_lookup is not None and token is not None:
            order = await self._status_lookup.find(token, client)
        if order is None:
            field = "orderId" if public_id is not None else "statusToken"
            raise Rejected.one(UserErrorCode.ORDER_NOT_FOUND, "no such order", field)
        settled = await with_payment_action(self._orders, await self.reconciler.settle(order))
        return settled, order_payment_errors(settled)

    async def _staff_order(self, public_id: str, staff: Customer) -> Order:
        if not staff.is_staff:
            raise ForbiddenError()
        order = await self._orders.by_public_id(public_id)
        if order is None:
            raise Rejected.one(UserErrorCode.ORDER_NOT_FOUND, "no such order", "orderId")
        return order


def _overfulfilled(
    order: Order, request: FulfillmentRequest, refused: Overfulfilled
) -> list[UserError]:
    """One error per requested line (or per order line, when none were named) that
    asked for more units than remain."""
    positions = {line.id: number for number, line in enumerate(order.lines, start=1)}
    if request.lines is None:
        return [
            UserError(
                UserErrorCode.FULFILLMENT_QUANTITY_EXCEEDED,
                f"line {positions[line_id]} has {left} units left to fulfil",
                ("lines",),
            )
            for line_id, left in sorted(refused.remaining.items())
        ]
    return [
        UserError(
            UserErrorCode.FULFILLMENT_QUANTITY_EXCEEDED,
            f"line {line.position} has {refused.remaining[line_id]} units left to fulfil",
            ("lines", str(index), "quantity"),
        )
        for index, line in enumerate(request.lines)
        if (line_id := order.lines[line.position - 1].id) in refused.remaining
    ]


def _illegal(order: Order, target: OrderStatus) -> Rejected:
    return Rejected.one(
        UserErrorCode.INVALID_TRANSITION,
        f"an order that is {order.status.value} cannot become {target.value}",
        "orderId",
    )
