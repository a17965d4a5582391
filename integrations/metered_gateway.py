"""A PaymentGateway that times every call to the one it wraps, for the metrics.

app.py wraps the configured gateway in it when metrics are on. A call fails, for the
metrics, when it raised or when the gateway could not tell what happened (a charge of
unknown outcome, a refund left pending, a payment state UNKNOWN): each of these is
what an operator pages on. A decline is a gateway that works.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from domain.payments import (
    ChargeRequest,
    ChargeResult,
    ChargeUnknown,
    PaymentGateway,
    PaymentState,
    PaymentStatus,
    RefundResult,
)

# (call, seconds, failed)
Observe = Callable[[str, float, bool], None]


class MeteredGateway:
    def __init__(self, inner: PaymentGateway, observe: Observe) -> None:
        self._inner = inner
        self._observe = observe

    @property
    def inner(self) -> PaymentGateway:
        return self._inner

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        started = time.perf_counter()
        try:
            result = await self._inner.charge(request)
        except BaseException:
            self._observe("charge", time.perf_counter() - started, True)
            raise
        self._observe("charge", time.perf_counter() - started, isinstance(result, ChargeUnknown))
        return result

    async def refund(
        self, payment_id: str, amount: int, currency_code: str, idempotency_key: str
    ) -> RefundResult:
        started = time.perf_counter()
        try:
            result = await self._inner.refund(payment_id, amount, currency_code, idempotency_key)
        except BaseException:
            self._observe("refund", time.perf_counter() - started, True)
            raise
        self._observe("refund", time.perf_counter() - started, result.pending)
        return result

    async def payment_status(self, payment_id: str) -> PaymentState:
        return await self._state("payment_status", self._inner.payment_status(payment_id))

    async def find_payment(self, order_id: str) -> PaymentState | None:
        started = time.perf_counter()
        try:
            state = await self._inner.find_payment(order_id)
        except BaseException:
            self._observe("find_payment", time.perf_counter() - started, True)
            raise
        failed = state is not None and state.status is PaymentStatus.UNKNOWN
        self._observe("find_payment", time.perf_counter() - started, failed)
        return state

    async def cancel_payment(self, payment_id: str) -> PaymentState:
        return await self._state("cancel_payment", self._inner.cancel_payment(payment_id))

    async def _state(self, call: str, pending: Awaitable[PaymentState]) -> PaymentState:
        started = time.perf_counter()
        try:
            state = await pending
        except BaseException:
            self._observe(call, time.perf_counter() - started, True)
            raise
        self._observe(call, time.perf_counter() - started, state.status is PaymentStatus.UNKNOWN)
        return state

    async def aclose(self) -> None:
        closer = getattr(self._inner, "aclose", None)
        if closer is not None:
            await closer()
