"""The embedded test gateway: Stripe's test payment methods, in memory, idempotent.

    pm_card_visa, pm_card_mastercard, pm_card_amex    succeed
    pm_card_chargeDeclined                            decline: generic_decline
    pm_card_chargeDeclinedInsufficientFunds           decline: insufficient_funds
    pm_card_timeout                                   no answer in time: outcome unknown
    anything else                                     not a usable payment method

Like Stripe, a repeated idempotency key returns the first answer and charges nothing new.
Refunds may be partial and add up; one beyond what is left of the charge is refused.
"""

from __future__ import annotations

import asyncio
import itertools

from domain.payments import (
    ChargeDeclined,
    ChargeInvalid,
    ChargeRequest,
    ChargeResult,
    ChargeSucceeded,
    ChargeUnknown,
    RefundResult,
)

_CARDS = {
    "pm_card_visa": ("visa", "4242"),
    "pm_card_mastercard": ("mastercard", "4444"),
    "pm_card_amex": ("amex", "8431"),
}
_DECLINES = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
}
TIMEOUT_METHOD = "pm_card_timeout"


class SandboxGateway:
    def __init__(self, *, timeout_seconds: float = 0.05) -> None:
        self._timeout = timeout_seconds
        self._answers: dict[str, ChargeResult] = {}
        self._refunds: dict[str, RefundResult] = {}
        self._ids = itertools.count(1)
        self.charges: list[ChargeRequest] = []  # every charge that reached "the bank"
        self._charged: dict[str, int] = {}  # payment id -> amount charged
        self._refunded: dict[str, int] = {}  # payment id -> amount refunded so far

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        if request.idempotency_key in self._answers:
            return self._answers[request.idempotency_key]
        method = request.payment_method
        result: ChargeResult
        if method == TIMEOUT_METHOD:
            await asyncio.sleep(self._timeout)
            return ChargeUnknown("the gateway did not answer in time")
        if method in _CARDS:
            brand, last4 = _CARDS[method]
            self.charges.append(request)
            result = ChargeSucceeded(f"pi_sandbox_{next(self._ids)}", brand, last4)
            self._charged[result.payment_id] = request.amount
        elif method in _DECLINES:
            result = ChargeDeclined(
                _DECLINES[method], "Your card was declined.", f"pi_sandbox_{next(self._ids)}"
            )
        else:
            result = ChargeInvalid(f"no such payment method: {method}")
        self._answers[request.idempotency_key] = result
        return result

    async def refund(
        self, payment_id: str, amount: int, currency_code: str, idempotency_key: str
    ) -> RefundResult:
        if idempotency_key in self._refunds:
            return self._refunds[idempotency_key]
        left = self._charged.get(payment_id, 0) - self._refunded.get(payment_id, 0)
        if amount < 1 or amount > left:
            result = RefundResult(None, False)  # like Stripe's amount_too_large
        else:
            self._refunded[payment_id] = self._refunded.get(payment_id, 0) + amount
            result = RefundResult(f"re_sandbox_{next(self._ids)}", True)
        self._refunds[idempotency_key] = result
        return result

    def refunded(self, payment_id: str) -> int:
        """What has been refunded of this payment so far."""
        return self._refunded.get(payment_id, 0)
