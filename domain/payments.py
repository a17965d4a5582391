"""Payments as the domain sees them: a gateway that charges and refunds, idempotently.

No card data ever reaches the server: clients send gateway payment-method ids
(`pm_...`). Every charge carries an idempotency key derived from the order, so a retry,
a crash-and-resume or a double click can never charge twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    order_id: str  # the order's public id; sent to the gateway as metadata
    amount: int  # minor units
    currency_code: str
    payment_method: str
    idempotency_key: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class ChargeSucceeded:
    payment_id: str
    card_brand: str | None = None
    card_last4: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeDeclined:
    decline_code: str
    message: str
    payment_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeInvalid:
    """The payment method is unusable (unknown id, wrong kind): nothing was attempted."""

    message: str


@dataclass(frozen=True, slots=True)
class ChargeUnknown:
    """Timeout or connection failure: the charge may or may not have happened. The order
    stays pending; the gateway's webhook (or a retry with the same key) settles it."""

    reason: str
    payment_id: str | None = None


ChargeResult = ChargeSucceeded | ChargeDeclined | ChargeInvalid | ChargeUnknown


@dataclass(frozen=True, slots=True)
class RefundResult:
    """`succeeded` False and `pending` False: the gateway refused and refunded nothing.
    `pending`: no answer (timeout, connection failure, 5xx); the refund may have happened,
    and a retry with the same idempotency key tells."""

    refund_id: str | None
    succeeded: bool
    pending: bool = False


class PaymentGateway(Protocol):
    async def charge(self, request: ChargeRequest) -> ChargeResult: ...

    async def refund(
        self, payment_id: str, amount: int, currency_code: str, idempotency_key: str
    ) -> RefundResult:
        """Refund `amount` minor units of a payment (partial and repeated refunds add up,
        never beyond what was charged); the same key answers the same refund."""
        ...


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A verified gateway webhook, reduced to what settles an order."""

    event_id: str
    kind: str  # "payment_succeeded" | "payment_failed" | "other"
    order_id: str | None
    payment_id: str | None
    decline_code: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    amount: int | None = None  # the PaymentIntent's, in minor units
    currency: str | None = None  # as the gateway writes it ("usd")


def payment_event_mismatch(
    event: PaymentEvent, payment_id: str | None, amount: int, currency_code: str
) -> str | None:
    """Why a signed event must not settle this order, or None if it may.

    A valid signature proves the gateway sent the event, not that it is about this
    order's charge: metadata can name any order. The PaymentIntent must be the one the
    order recorded (when it recorded one), and the amount and currency the order's."""
    if payment_id is not None and event.payment_id != payment_id:
        return "payment intent mismatch"
    if event.amount != amount:
        return "amount mismatch"
    if (event.currency or "").lower() != currency_code.lower():
        return "currency mismatch"
    return None
