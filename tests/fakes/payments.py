"""An in-memory `PaymentGateway` with Stripe's idempotency: a request with a key it has
answered gets the same answer and takes no more money.

Outcomes follow the sandbox's test tokens (`pm_card_visa` pays, `pm_card_chargeDeclined`
is declined, other `pm_card_*` are unknown methods) unless a test queues its own in
`next_outcomes`. `hang` makes calls wait until it is set (a gateway that ignores its
timeout); `crash_after_charge` takes the money and then raises, as a process killed
between the gateway's answer and our write would leave it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from domain.payments import (
    ChargeDeclined,
    ChargeInvalid,
    ChargeRequest,
    ChargeResult,
    ChargeSucceeded,
    ChargeUnknown,
    PaymentState,
    PaymentStatus,
    RefundResult,
)

if TYPE_CHECKING:
    from domain.payments import PaymentGateway


class GatewayCrash(Exception):
    """Raised by the fake after it charged, when told to: the caller never sees the answer."""


class FakePaymentGateway:
    def __init__(self) -> None:
        self.requests: list[ChargeRequest] = []  # every call, repeats included
        self.answers: dict[str, ChargeResult] = {}  # by idempotency key
        self.next_outcomes: list[ChargeResult] = []
        self.refunds: list[tuple[str, int, str]] = []
        self.hang: asyncio.Event | None = None
        self.crash_after_charge = False
        self.calls_started = asyncio.Event()

    @property
    def charged(self) -> list[ChargeRequest]:
        """The requests that took money: one per idempotency key at most."""
        return [
            request
            for request in self._first_per_key()
            if isinstance(self.answers.get(request.idempotency_key), ChargeSucceeded)
        ]

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        self.requests.append(request)
        self.calls_started.set()
        if self.hang is not None:
            await self.hang.wait()
        answer = self.answers.get(request.idempotency_key)
        if answer is None:
            answer = self.next_outcomes.pop(0) if self.next_outcomes else _by_token(request)
            if not isinstance(answer, ChargeUnknown):  # an unknown outcome took nothing
                self.answers[request.idempotency_key] = answer
        if self.crash_after_charge:
            raise GatewayCrash(f"died after charging {request.idempotency_key}")
        return answer

    async def refund(
        self, payment_id: str, amount: int, currency_code: str, idempotency_key: str
    ) -> RefundResult:
        self.refunds.append((payment_id, amount, currency_code))
        return RefundResult(f"re_{len(self.refunds)}", True)

    async def payment_status(self, payment_id: str) -> PaymentState:
        for answer in self.answers.values():
            if isinstance(answer, ChargeSucceeded) and answer.payment_id == payment_id:
                return PaymentState(PaymentStatus.SUCCEEDED, payment_id)
            if isinstance(answer, ChargeDeclined) and answer.payment_id == payment_id:
                return PaymentState(
                    PaymentStatus.FAILED, payment_id, decline_code=answer.decline_code
                )
        return PaymentState(PaymentStatus.UNKNOWN, payment_id, reason="no such payment")

    async def find_payment(self, order_id: str) -> PaymentState | None:
        return None

    async def cancel_payment(self, payment_id: str) -> PaymentState:
        return PaymentState(PaymentStatus.CANCELED, payment_id)

    def _first_per_key(self) -> list[ChargeRequest]:
        seen: dict[str, ChargeRequest] = {}
        for request in self.requests:
            seen.setdefault(request.idempotency_key, request)
        return list(seen.values())


def _by_token(request: ChargeRequest) -> ChargeResult:
    payment_id = f"pi_{request.order_id}"
    if request.payment_method == "pm_card_visa":
        return ChargeSucceeded(payment_id, "visa", "4242")
    if request.payment_method == "pm_card_chargeDeclined":
        return ChargeDeclined("card_declined", "Your card was declined.", payment_id)
    return ChargeInvalid(f"no such payment method: {request.payment_method}")


if TYPE_CHECKING:
    _conforms: PaymentGateway = FakePaymentGateway()
