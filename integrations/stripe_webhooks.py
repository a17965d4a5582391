"""Stripe webhooks: verify the `Stripe-Signature`, reduce the event to a `PaymentEvent`.

The signature check is the SDK's (`stripe.WebhookSignature.verify_header`: HMAC-SHA256
of `"{t}.{body}"` with the endpoint's signing secret, compared in constant time, and `t`
no older than the tolerance). The body is then read as plain JSON rather than through
`stripe.Webhook.construct_event`, which would bind the event to the SDK's global,
module-level requestor; a PaymentEvent needs only a few fields.

Pass the raw request body, byte for byte: a re-serialised body no longer matches its
signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import stripe

from domain.payments import PaymentEvent

DEFAULT_TOLERANCE_SECONDS = 300  # Stripe's own default
KINDS = {
    "payment_intent.succeeded": "payment_succeeded",
    "payment_intent.payment_failed": "payment_failed",
    "charge.dispute.created": "dispute_created",
    "charge.refunded": "charge_refunded",
}


class InvalidWebhook(Exception):
    """Not a genuine, readable Stripe event (no or bad signature, stale timestamp,
    unparseable body): answer 400 and do nothing else."""


def parse_stripe_event(
    payload: bytes,
    signature_header: str | None,
    secret: str,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> PaymentEvent:
    """Verify a webhook and reduce it to a PaymentEvent; raises `InvalidWebhook`.

    `payment_intent.succeeded` and `.payment_failed` become "payment_succeeded" and
    "payment_failed"; every other type is "other". `order_id` and `payment_id` come
    from a PaymentIntent object only (None for events about other objects). Card brand
    and last four appear on failures (the failed payment method) and whenever the
    charge is expanded; Stripe does not expand it in `payment_intent.succeeded`, so
    take them from the charge response instead.
    """
    try:
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance_seconds)
    except stripe.SignatureVerificationError as err:
        raise InvalidWebhook(err.user_message) from err
    except UnicodeDecodeError as err:  # the SDK verifies the body as UTF-8 text
        raise InvalidWebhook("payload is not UTF-8") from err
    try:
        event = json.loads(payload)
        kind = KINDS.get(event["type"], "other")
        event_id, obj = event["id"], event["data"]["object"]
        if not (isinstance(event_id, str) and isinstance(obj, dict)):
            raise TypeError
    except (ValueError, LookupError, TypeError) as err:
        raise InvalidWebhook("payload is not a Stripe event") from err

    if kind == "dispute_created":
        return _dispute(event_id, obj)
    if kind == "charge_refunded":
        return _refunded(event_id, obj)
    is_intent = obj.get("object") == "payment_intent"
    error = _dict(obj.get("last_payment_error"))
    brand, last4 = _card(obj, error)
    return PaymentEvent(
        event_id=event_id,
        kind=kind,
        order_id=_dict(obj.get("metadata")).get("order_id") if is_intent else None,
        payment_id=obj.get("id") if is_intent else None,
        decline_code=(error.get("decline_code") or error.get("code"))
        if kind == "payment_failed"
        else None,
        card_brand=brand,
        card_last4=last4,
        amount=_int(obj.get("amount")) if is_intent else None,
        currency=_str(obj.get("currency")) if is_intent else None,
    )


def _dispute(event_id: str, dispute: dict[str, Any]) -> PaymentEvent:
    """A dispute names its PaymentIntent (not the order: Stripe copies no metadata to it)."""
    is_dispute = dispute.get("object") == "dispute"
    return PaymentEvent(
        event_id=event_id,
        kind="dispute_created" if is_dispute else "other",
        order_id=None,
        payment_id=_str(dispute.get("payment_intent")) if is_dispute else None,
        amount=_int(dispute.get("amount")) if is_dispute else None,
        currency=_str(dispute.get("currency")) if is_dispute else None,
        dispute_reason=(_str(dispute.get("reason")) or "unknown")[:64] if is_dispute else None,
    )


def _refunded(event_id: str, charge: dict[str, Any]) -> PaymentEvent:
    """A refunded charge names its PaymentIntent and what has been refunded of it in all
    (`amount_refunded`, cumulative: our own refunds included)."""
    is_charge = charge.get("object") == "charge"
    return PaymentEvent(
        event_id=event_id,
        kind="charge_refunded" if is_charge else "other",
        order_id=None,
        payment_id=_str(charge.get("payment_intent")) if is_charge else None,
        amount=_int(charge.get("amount_refunded")) if is_charge else None,
        currency=_str(charge.get("currency")) if is_charge else None,
    )


def sign_stripe_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A valid `Stripe-Signature` header value for `payload`, as Stripe would send it."""
    signed_at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{signed_at}.".encode() + payload, hashlib.sha256)
    return f"t={signed_at},v1={digest.hexdigest()}"


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    # bool is an int to Python, never an amount to Stripe.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _card(intent: dict[str, Any], error: dict[str, Any]) -> tuple[str | None, str | None]:
    charge = _dict(intent.get("latest_charge"))
    card = _dict(_dict(charge.get("payment_method_details")).get("card"))
    if not card:
        card = _dict(_dict(error.get("payment_method")).get("card"))
    return card.get("brand"), card.get("last4")
