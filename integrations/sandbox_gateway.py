"""The embedded test gateway: Stripe's test payment methods, in memory, idempotent.

    pm_card_visa, pm_card_mastercard, pm_card_amex    succeed
    pm_card_chargeDeclined                            decline: generic_decline
    pm_card_chargeDeclinedInsufficientFunds           decline: insufficient_funds
    pm_card_authenticationRequired,
    pm_card_threeDSecure2Required                     need the customer's action (3-D
                                                      Secure): `complete_action` finishes it
    pm_card_timeout                                   no answer in time: outcome unknown
    anything else                                     not a usable payment method

Like Stripe, a repeated idempotency key returns the first answer and charges nothing new.
Every payment it made can be asked about (`payment_status`, or `find_payment` by the
order id sent with the charge) and, while it waits for the customer, cancelled.
Refunds may be partial and add up; one beyond what is left of the charge is refused.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets

from domain.payments import (
    ChargeDeclined,
    ChargeInvalid,
    ChargeRequest,
    ChargeRequiresAction,
    ChargeResult,
    ChargeSucceeded,
    ChargeUnknown,
    PaymentAction,
    PaymentState,
    PaymentStatus,
    RefundResult,
)

AUTHENTICATION_FAILED = "payment_intent_authentication_failure"  # Stripe's code

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
NEEDS_ACTION = {
    "pm_card_authenticationRequired": ("visa", "3184"),
    "pm_card_threeDSecure2Required": ("visa", "3220"),
}


class SandboxGateway:
    def __init__(self, *, timeout_seconds: float = 0.05) -> None:
        self._timeout = timeout_seconds
        self._answers: dict[str, ChargeResult] = {}
        self._refunds: dict[str, RefundResult] = {}
        self._ids = itertools.count(1)
        self.charges: list[ChargeRequest] = []  # every charge that reached "the bank"
        self.payments: dict[str, PaymentState] = {}  # by payment id
        self._orders: dict[str, str] = {}  # order id -> payment id
        self._waiting: dict[str, ChargeRequest] = {}  # waiting for the customer's action
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
            self._record(request, result.payment_id, PaymentStatus.SUCCEEDED, brand, last4)
        elif method in _DECLINES:
            result = ChargeDeclined(
                _DECLINES[method], "Your card was declined.", f"pi_sandbox_{next(self._ids)}"
            )
            self._record(request, result.payment_id or "", PaymentStatus.FAILED)
        elif method in NEEDS_ACTION:
            payment_id = f"pi_sandbox_{next(self._ids)}"
            secret = f"{payment_id}_secret_{secrets.token_urlsafe(12)}"
            result = ChargeRequiresAction(payment_id, PaymentAction(secret, "USE_STRIPE_SDK"))
            self._record(request, payment_id, PaymentStatus.ACTION_REQUIRED)
            self._waiting[payment_id] = request
        else:
            result = ChargeInvalid(f"no such payment method: {method}")
        self._answers[request.idempotency_key] = result
        return result

    def complete_action(self, payment_id: str, *, succeed: bool = True) -> PaymentState:
        """The customer finishes (or fails) the 3-D Secure step of a waiting payment."""
        request = self._waiting.pop(payment_id)
        if succeed:
            brand, last4 = NEEDS_ACTION[request.payment_method]
            self.charges.append(request)
            return self._record(request, payment_id, PaymentStatus.SUCCEEDED, brand, last4)
        return self._record(
            request, payment_id, PaymentStatus.FAILED, decline_code=AUTHENTICATION_FAILED
        )

    async def payment_status(self, payment_id: str) -> PaymentState:
        return self.payments.get(payment_id) or PaymentState(
            PaymentStatus.UNKNOWN, payment_id, reason="no such payment"
        )

    async def find_payment(self, order_id: str) -> PaymentState | None:
        payment_id = self._orders.get(order_id)
        return None if payment_id is None else self.payments[payment_id]

    async def cancel_payment(self, payment_id: str) -> PaymentState:
        request = self._waiting.pop(payment_id, None)
        if request is None:
            return await self.payment_status(payment_id)
        return self._record(request, payment_id, PaymentStatus.CANCELED)

    def _record(
        self,
        request: ChargeRequest,
        payment_id: str,
        status: PaymentStatus,
        brand: str | None = None,
        last4: str | None = None,
        decline_code: str | None = None,
    ) -> PaymentState:
        if status is PaymentStatus.FAILED and decline_code is None:
            decline_code = _DECLINES.get(request.payment_method)
        state = PaymentState(
            status,
            payment_id,
            amount=request.amount,
            currency=request.currency_code.lower(),
            decline_code=decline_code,
            card_brand=brand,
            card_last4=last4,
        )
        self.payments[payment_id] = state
        self._orders[request.order_id] = payment_id
        if status is PaymentStatus.SUCCEEDED:
            self._charged[payment_id] = request.amount  # what refunds may give back
        return state

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
