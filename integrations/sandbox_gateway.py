"""The embedded test gateway: Stripe's test payment methods, in memory, idempotent.

    pm_card_visa, pm_card_mastercard, pm_card_amex    succeed
    pm_card_chargeDeclined                            decline: generic_decline
    pm_card_chargeDeclinedInsufficientFunds           decline: insufficient_funds
    pm_card_timeout                                   no answer in time: outcome unknown
    anything else                                     not a usable payment method

Like Stripe, a repeated idempotency key returns the first answer and charges nothing new.
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
        if idempotency_key not in self._refunds:
            self._refunds[idempotency_key] = RefundResult(f"re_sandbox_{next(self._ids)}", True)
        return self._refunds[idempotency_key]
