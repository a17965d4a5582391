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
    ChargeResult,
    ChargeSucceeded,
    ChargeUnknown,
    RefundResult,
)

logger = logging.getLogger(__name__)

DECLINED = "Your card was declined."
AUTHENTICATION_REQUIRED = (
    "Your card needs an authentication step this checkout doesn't support yet. "
    "Please use another card."
)
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
        # 3-D Secure: this checkout has no client step to complete it yet, so the
        # customer is asked for another card. The intent stays unconfirmed; Stripe
        # never captures it, and a retry with the same key replays this answer.
        return ChargeDeclined("authentication_required", AUTHENTICATION_REQUIRED, payment_id)
    if status == "requires_payment_method":
        error = intent.get("last_payment_error") or {}
        code = error.get("decline_code") or error.get("code") or "card_declined"
        return ChargeDeclined(code, DECLINED, payment_id)
    if status != "processing":
        logger.warning("Unexpected PaymentIntent status %s for %s", status, payment_id)
    return ChargeUnknown(f"payment is {status}", payment_id)


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
