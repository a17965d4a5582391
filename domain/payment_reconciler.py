"""Settling orders whose payment outcome never reached us, by asking the gateway.

A lost webhook, a crash between the charge and our write, or a customer who finished
3-D Secure and closed the tab leaves an order PENDING_PAYMENT or
PAYMENT_ACTION_REQUIRED. The reconciler asks the gateway about each such order past a
grace period and settles it the way the webhook would have: PAID, PAYMENT_FAILED (giving
back what the order held), or left alone while the gateway has not decided.

An order that recorded no payment id (the process died after the gateway call and before
storing its answer) is looked up by its order id, which every charge carries as
metadata. It is never charged again from here: a background job re-sending a charge
would create one whenever the first request never reached the gateway, and a card that
needs the customer's action would only get a new action nobody can complete.

Expiry (`expire`) asks first too: stock goes back only once the gateway says nothing was
captured, and a payment still waiting for the customer is cancelled at the gateway
first, so it can never be captured for a cancelled order.

Every transition is the store's conditional UPDATE: two reconcilers, a webhook and a
checkoutPaymentConfirm may race on one order and exactly one of them moves it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.carts import CartStore
from domain.fulfillments import EXPIRED_REASON
from domain.orders import UNSETTLED_STATUSES, Order, OrderStore, Payment
from domain.payments import (
    UNREACHABLE,
    PaymentGateway,
    PaymentState,
    PaymentStatus,
    payment_event_mismatch,
    state_as_event,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcilePolicy:
    grace_seconds: float = 300.0  # an order younger than this may still hear its webhook
    recheck_seconds: float = 60.0  # an undecided order is asked about at most this often
    batch_size: int = 100
    gateway_timeout_seconds: float = 6.0


class PaymentReconciler:
    def __init__(
        self,
        orders: OrderStore,
        gateway: PaymentGateway,
        carts: CartStore,
        policy: ReconcilePolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._orders = orders
        self._gateway = gateway
        self._carts = carts
        self._policy = policy or ReconcilePolicy()
        self._clock = clock

    async def reconcile(self) -> int:
        """One bounded batch of unsettled orders past the grace period; how many settled.
        Concurrent runs split the orders between them."""
        now = self._clock()
        policy = self._policy
        claimed = await self._orders.claim_unsettled(
            now - timedelta(seconds=policy.grace_seconds),
            now - timedelta(seconds=policy.recheck_seconds),
            now,
            policy.batch_size,
        )
        settled = 0
        for order_id in claimed:
            order = await self._orders.by_id(order_id)
            if order is None or order.status not in UNSETTLED_STATUSES:
                continue
            current = await self.settle(order)
            if current.status not in UNSETTLED_STATUSES:
                settled += 1
        return settled

    async def settle(self, order: Order) -> Order:
        """Ask the gateway about an unsettled order and apply what it says; the order as
        it now is (unchanged while the gateway has not decided)."""
        if order.status not in UNSETTLED_STATUSES:
            return order
        state = await self._ask(order)
        if state is None:
            return order
        return await self._apply(order, state)

    async def expire(self, limit: int = 500) -> int:
        """Cancel orders past their reservation whose payment captured nothing, giving
        back what they held; an order the gateway says was paid becomes PAID instead, and
        one it cannot answer for stays as it is until a later run."""
        expired = 0
        for order_id in await self._orders.expired_unpaid(self._clock(), limit):
            order = await self._orders.by_id(order_id)
            if order is None or order.status not in UNSETTLED_STATUSES:
                continue
            state = await self._ask(order)
            if state is not None and state.status is PaymentStatus.ACTION_REQUIRED:
                assert state.payment_id is not None
                state = await self._bounded(self._gateway.cancel_payment(state.payment_id))
            if state is not None and state.status is not PaymentStatus.CANCELED:
                if state.status in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED):
                    await self._apply(order, state)
                else:
                    log.warning(
                        "order %s expired but its payment is %s: kept until the gateway decides",
                        order.public_id,
                        state.status.value,
                    )
                continue
            if await self._orders.cancel(order.id, None, EXPIRED_REASON) is not None:
                expired += 1
        return expired

    async def _ask(self, order: Order) -> PaymentState | None:
        """The gateway's payment for the order; None when there is none (nothing to
        charge, or the gateway holds no payment for it)."""
        if order.charge_amount == 0:
            return None  # the gift cards paid it all: the gateway never saw it
        if order.payment_id:
            return await self._bounded(self._gateway.payment_status(order.payment_id))
        return await self._bounded(self._gateway.find_payment(order.public_id))

    async def _bounded(self, call: Awaitable[PaymentState | None]) -> PaymentState | None:
        """A gateway question within its own deadline; UNKNOWN past it or on an error
        (the order is asked about again on a later run)."""
        try:
            async with asyncio.timeout(self._policy.gateway_timeout_seconds):
                return await call
        except TimeoutError:
            log.warning(
                "no answer from the gateway within %g s", self._policy.gateway_timeout_seconds
            )
        except Exception:
            log.exception("asking the gateway about a payment failed")
        return UNREACHABLE

    async def _apply(self, order: Order, state: PaymentState) -> Order:
        if state.status not in (
            PaymentStatus.SUCCEEDED,
            PaymentStatus.FAILED,
            PaymentStatus.CANCELED,
        ):
            return order
        reason = payment_event_mismatch(
            state_as_event(state, "reconciler"),
            order.payment_id,
            order.charge_amount,
            order.currency_code,
        )
        if reason is not None:
            log.warning("gateway payment for order %s ignored: %s", order.public_id, reason)
            return order
        if state.status is PaymentStatus.SUCCEEDED:
            payment = Payment(state.payment_id, state.card_brand, state.card_last4)
            paid = await self._orders.mark_paid(order, payment)
            if paid is not None:
                await self._forget_cart(paid)
                return paid
        else:
            failed = await self._orders.mark_failed(
                order, state.decline_code or "payment_failed", state.payment_id
            )
            if failed is not None:
                return failed
        current = await self._orders.by_id(order.id)  # someone else settled it first
        return current or order

    async def _forget_cart(self, order: Order) -> None:
        try:  # best effort: the paid order holds the cart anyway
            await self._carts.delete(order.cart_id)
        except Exception:
            log.warning("could not delete the cart of paid order %s", order.public_id)
