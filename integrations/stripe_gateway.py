"""Stripe as the payment gateway: one PaymentIntent, created and confirmed in one call.

Implements `domain.payments.PaymentGateway` with the stripe SDK's `StripeClient` and its
async methods over `stripe.HTTPXClient` (httpx + anyio); no global `stripe.api_key`.

Idempotency: `charge` and `refund` send the caller's key as the `Idempotency-Key` header.
Stripe stores the first answer to a key for 24 hours and replays it, so a retry — by the
SDK or by the caller — never charges twice. The SDK builds the request headers once and
resends that same header on each of its automatic retries (`_APIRequestor` →
`HTTPClient._request_with_retries_internal_async`); they happen only when
`max_network_retries > 0`, on connection errors and timeouts, HTTP 409 and 5xx.

Timing: `timeout_seconds` bounds each HTTP attempt (connect, write, read, pool). A call
takes at most `(max_network_retries + 1) * timeout_seconds` plus the SDK's backoff
between attempts (0.5 s before the first retry, then about 1 s, 2 s, ...). The default
of no SDK retries keeps a charge within `timeout_seconds`; a timeout is `ChargeUnknown`.

Reading back (`payment_status`, `find_payment`, `cancel_payment`, for the reconciler and
checkoutPaymentConfirm) never raises for Stripe's or the network's failures either: the
state is UNKNOWN and the order waits for a later look.

Failures that are neither a payment outcome nor the network's doing propagate: a wrong
API key (`stripe.AuthenticationError`) or a restricted key (`stripe.PermissionError`).
Stripe charged nothing in either case.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import stripe
from stripe.params import PaymentIntentCreateParams, RefundCreateParams

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

logger = logging.getLogger(__name__)

DECLINED = "Your card was declined."
UNUSABLE_METHOD = "This payment method can't be used. Please choose another one."
NOT_ATTEMPTED = "This payment could not be attempted. Please choose another payment method."


class StripeGateway:
    """The payment gateway on Stripe's PaymentIntents API.

    Make it in the app's lifespan and close it there (`await gateway.aclose()`, or use it
    as an async context manager): it owns an httpx connection pool. `api_base` points
    the SDK at a local fake; None is Stripe's real API.
    """

    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        *,
        timeout_seconds: float = 10,
        max_network_retries: int = 0,
    ) -> None:
        self._timeout_seconds = timeout_seconds
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]  # unannotated in stripe

    async def __aenter__(self) -> StripeGateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Create and confirm a PaymentIntent. Never raises for a decline, a Stripe error
        or a network failure: each maps to a `ChargeResult`."""
        params: PaymentIntentCreateParams = {
            "amount": request.amount,
            "currency": request.currency_code.lower(),
            "payment_method": request.payment_method,
            "confirm": True,
            # Server-side confirmation: no payment method that would need a redirect.
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "metadata": {"order_id": request.order_id},
            "expand": ["latest_charge"],
        }
        if request.description:
            params["description"] = request.description
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params, {"idempotency_key": request.idempotency_key}
            )
        except stripe.CardError as err:
            return _declined(err)
        except stripe.IdempotencyError as err:
            # The key was used before with other parameters: that earlier request may
            # have charged, so the outcome is unknown until its webhook arrives.
            logger.error("Stripe idempotency conflict for order %s: %s", request.order_id, err)
            return ChargeUnknown("idempotency key reused with different parameters")
        except stripe.InvalidRequestError as err:
            return _invalid(err, request)
        except (stripe.AuthenticationError, stripe.PermissionError):
            raise
        except stripe.APIConnectionError as err:
            return ChargeUnknown(self._connection_failure(err))
        except stripe.StripeError as err:  # 5xx, 409 or 429 after any retries
            logger.warning("Stripe error charging order %s: %r", request.order_id, err)
            return ChargeUnknown(f"Stripe answered HTTP {err.http_status}")
        return _outcome(intent.to_dict())

    async def refund(
        self, payment_id: str, amount: int, currency_code: str, idempotency_key: str
    ) -> RefundResult:
        """Refund `amount` of a PaymentIntent (Stripe refunds in the charge's currency;
        `currency_code` is only logged). Failures are logged, never raised, except a
        bad or restricted API key."""
        params: RefundCreateParams = {"payment_intent": payment_id, "amount": amount}
        try:
            refund = await self._client.v1.refunds.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        except (stripe.AuthenticationError, stripe.PermissionError):
            raise
        except stripe.StripeError as err:
            # No answer, or one that says nothing about the refund (409, 429, 5xx): it
            # may have happened; the same key asks again safely.
            unknown = isinstance(err, stripe.APIConnectionError) or (
                err.http_status is not None
                and (err.http_status >= 500 or err.http_status in (409, 429))
            )
            logger.warning(
                "Stripe refund of %s %s on %s %s: %r",
                amount,
                currency_code,
                payment_id,
                "has no known outcome" if unknown else "failed",
                err,
            )
            return RefundResult(refund_id=None, succeeded=False, pending=unknown)
        return RefundResult(
            refund_id=refund.id, succeeded=refund.status in ("succeeded", "pending")
        )

    async def payment_status(self, payment_id: str) -> PaymentState:
        """The PaymentIntent now (its charge expanded for the card); UNKNOWN on a Stripe
        or network error."""
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(
                payment_id, {"expand": ["latest_charge"]}
            )
        except (stripe.AuthenticationError, stripe.PermissionError):
            raise
        except stripe.StripeError as err:
            return self._unknown(err, payment_id)
        return payment_state(intent.to_dict())

    async def find_payment(self, order_id: str) -> PaymentState | None:
        """The PaymentIntent whose metadata names the order, by Stripe's search API (it
        lags writes by up to about a minute: ask only past that). One that succeeded wins
        over others; None when there is none."""
        # Public order ids are base64url: nothing in them can end the quoted value.
        query = f"metadata['order_id']:'{order_id}'"
        try:
            found = await self._client.v1.payment_intents.search_async(
                {"query": query, "limit": 10, "expand": ["data.latest_charge"]}
            )
        except (stripe.AuthenticationError, stripe.PermissionError):
            raise
        except stripe.StripeError as err:
            return self._unknown(err, None)
        states = [payment_state(intent.to_dict()) for intent in found.data]
        if not states:
            return None
        states.sort(key=lambda state: state.status is not PaymentStatus.SUCCEEDED)
        return states[0]

    async def cancel_payment(self, payment_id: str) -> PaymentState:
        """Cancel an intent that captured nothing; one Stripe will not cancel (it
        succeeded meanwhile) is read again and reported as it is."""
        try:
            intent = await self._client.v1.payment_intents.cancel_async(payment_id)
        except (stripe.AuthenticationError, stripe.PermissionError):
            raise
        except stripe.InvalidRequestError:
            return await self.payment_status(payment_id)
        except stripe.StripeError as err:
            return self._unknown(err, payment_id)
        return payment_state(intent.to_dict())

    def _unknown(self, err: stripe.StripeError, payment_id: str | None) -> PaymentState:
        if isinstance(err, stripe.APIConnectionError):
            reason = self._connection_failure(err)
        else:
            reason = f"Stripe answered HTTP {err.http_status}"
        logger.warning("could not read payment %s from Stripe: %s", payment_id, reason)
        return PaymentState(PaymentStatus.UNKNOWN, payment_id, reason=reason)

    def _connection_failure(self, err: stripe.APIConnectionError) -> str:
        if isinstance(err.__cause__, httpx.TimeoutException):
            return f"no answer from Stripe within {self._timeout_seconds:g} s"
        return "could not reach Stripe"


def _outcome(intent: dict[str, Any]) -> ChargeResult:
    status, payment_id = intent["status"], intent["id"]
    if status == "succeeded":
        brand, last4 = _card(intent.get("latest_charge"))
        return ChargeSucceeded(payment_id=payment_id, card_brand=brand, card_last4=last4)
    if status == "requires_action":
        # 3-D Secure: the customer's client completes it with Stripe.js
        # (handleNextAction(client_secret)); nothing is captured until then, and a retry
        # with the same key replays this answer, the same intent and secret.
        next_action = intent.get("next_action") or {}
        kind = str(next_action.get("type") or "use_stripe_sdk").upper()
        return ChargeRequiresAction(payment_id, PaymentAction(intent["client_secret"], kind))
    if status == "requires_payment_method":
        error = intent.get("last_payment_error") or {}
        code = error.get("decline_code") or error.get("code") or "card_declined"
        return ChargeDeclined(code, DECLINED, payment_id)
    if status != "processing":
        logger.warning("Unexpected PaymentIntent status %s for %s", status, payment_id)
    return ChargeUnknown(f"payment is {status}", payment_id)


_STATES = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "requires_payment_method": PaymentStatus.FAILED,  # we always confirm: it was tried
    "canceled": PaymentStatus.CANCELED,
    "requires_action": PaymentStatus.ACTION_REQUIRED,
    "requires_confirmation": PaymentStatus.ACTION_REQUIRED,
    "processing": PaymentStatus.PROCESSING,
    "requires_capture": PaymentStatus.PROCESSING,
}


def payment_state(intent: dict[str, Any]) -> PaymentState:
    """A PaymentIntent as a PaymentState."""
    status = _STATES.get(str(intent.get("status")), PaymentStatus.PROCESSING)
    error = intent.get("last_payment_error") or {}
    brand, last4 = _card(intent.get("latest_charge"))
    return PaymentState(
        status,
        intent.get("id"),
        amount=intent.get("amount"),
        currency=intent.get("currency"),
        decline_code=(error.get("decline_code") or error.get("code") or "payment_failed")
        if status is PaymentStatus.FAILED
        else None,
        card_brand=brand,
        card_last4=last4,
    )


def _card(charge: object) -> tuple[str | None, str | None]:
    """Brand and last four of an expanded charge; (None, None) if it isn't expanded."""
    if not isinstance(charge, dict):
        return None, None
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    return card.get("brand"), card.get("last4")


def _declined(err: stripe.CardError) -> ChargeDeclined:
    error = err.error
    code = (error.decline_code if error else None) or err.code or "card_declined"
    # Stripe writes card-error messages for customers (and keeps fraud reasons generic).
    message = ((error.user_message or error.message) if error else None) or DECLINED
    intent = error.payment_intent if error else None
    return ChargeDeclined(
        decline_code=code, message=message, payment_id=intent.id if intent else None
    )


def _invalid(err: stripe.InvalidRequestError, request: ChargeRequest) -> ChargeInvalid:
    if (err.param or "").startswith("payment_method") or (err.code or "").startswith(
        "payment_method"
    ):
        return ChargeInvalid(UNUSABLE_METHOD)
    # Anything else invalid (amount too small, unsupported currency) is our request's
    # fault, not the customer's: worth a log line.
    logger.warning("Stripe rejected the charge for order %s: %r", request.order_id, err)
    return ChargeInvalid(NOT_ATTEMPTED)
