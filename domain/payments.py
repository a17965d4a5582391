"""Payments as the domain sees them: a gateway that charges and refunds, idempotently.

No card data ever reaches the server: clients send gateway payment-method ids
(`pm_...`). Every charge carries an idempotency key derived from the order, so a retry,
a crash-and-resume or a double click can never charge twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
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


@dataclass(frozen=True, slots=True)
class PaymentAction:
    """What the customer's client must do to finish the payment (3-D Secure): Stripe.js
    `handleNextAction(clientSecret)`. `kind` is the gateway's next action, upper-cased
    (`USE_STRIPE_SDK`, `REDIRECT_TO_URL`). The client secret lets its holder complete
    this one payment: it is stored encrypted and shown to the order's buyer only."""

    client_secret: str
    kind: str


@dataclass(frozen=True, slots=True)
class ChargeRequiresAction:
    """The gateway accepted the card but needs the customer to authenticate first:
    nothing is captured until they do (or the payment is cancelled)."""

    payment_id: str
    action: PaymentAction


ChargeResult = (
    ChargeSucceeded | ChargeDeclined | ChargeInvalid | ChargeUnknown | ChargeRequiresAction
)


class PaymentStatus(StrEnum):
    """A payment's state as the gateway holds it now."""

    SUCCEEDED = "SUCCEEDED"  # captured
    FAILED = "FAILED"  # declined or the customer's action failed: nothing captured
    CANCELED = "CANCELED"  # cancelled before anything was captured
    ACTION_REQUIRED = "ACTION_REQUIRED"  # waiting for the customer
    PROCESSING = "PROCESSING"  # the gateway has not decided yet
    UNKNOWN = "UNKNOWN"  # the gateway could not be asked (timeout, error)


@dataclass(frozen=True, slots=True)
class PaymentState:
    status: PaymentStatus
    payment_id: str | None = None
    amount: int | None = None  # minor units
    currency: str | None = None  # as the gateway writes it ("usd")
    decline_code: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    reason: str = ""  # why UNKNOWN

    @property
    def captured_nothing(self) -> bool:
        return self.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED)


UNREACHABLE = PaymentState(PaymentStatus.UNKNOWN, reason="the gateway could not be asked")


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

    async def payment_status(self, payment_id: str) -> PaymentState:
        """The payment as the gateway holds it now; UNKNOWN when it cannot be asked."""
        ...

    async def find_payment(self, order_id: str) -> PaymentState | None:
        """The payment the gateway holds for this order (by the order id sent as metadata
        with the charge), for an order that never recorded one; None when the gateway
        has none, UNKNOWN when it cannot be asked."""
        ...

    async def cancel_payment(self, payment_id: str) -> PaymentState:
        """Cancel a payment nothing was captured for (one waiting for the customer), so it
        can never be captured later; the state it ends in (SUCCEEDED if it was captured
        meanwhile, UNKNOWN when the gateway cannot be asked)."""
        ...


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A verified gateway webhook, reduced to what settles an order."""

    event_id: str
    # "payment_succeeded" | "payment_failed" | "dispute_created" | "charge_refunded" |
    # "other"
    kind: str
    order_id: str | None
    payment_id: str | None
    decline_code: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    # The PaymentIntent's (a dispute's; for charge_refunded what was refunded of the
    # charge in all), in minor units.
    amount: int | None = None
    currency: str | None = None  # as the gateway writes it ("usd")
    dispute_reason: str | None = None


def state_as_event(state: PaymentState, source: str) -> PaymentEvent:
    """A payment state read from the gateway, as the event that would have said it (for
    the same checks as a webhook's)."""
    kind = {
        PaymentStatus.SUCCEEDED: "payment_succeeded",
        PaymentStatus.FAILED: "payment_failed",
        PaymentStatus.CANCELED: "payment_failed",
    }.get(state.status, "other")
    return PaymentEvent(
        event_id=source,
        kind=kind,
        order_id=None,
        payment_id=state.payment_id,
        decline_code=state.decline_code,
        card_brand=state.card_brand,
        card_last4=state.card_last4,
        amount=state.amount,
        currency=state.currency,
    )


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


def charge_event_mismatch(event: PaymentEvent, charged: int, currency_code: str) -> str | None:
    """Why a signed dispute (or refunded charge) must not touch this order, found by its
    PaymentIntent, or None: it is of at most what was charged, in the order's currency."""
    if event.amount is None or not 0 < event.amount <= charged:
        return "amount mismatch"
    if (event.currency or "").lower() != currency_code.lower():
        return "currency mismatch"
    return None
