"""Outgoing webhooks for partners: the events a partner may hear and the JSON each one
carries (defined here, once), how a request is signed, and when a failed delivery is
tried again (where a webhook may point: domain/webhook_urls.py).

What a partner is entitled to: order *facts* (public order id, status, totals, the
public ids of refunds and fulfilments) and public catalog facts (product slugs). Never
a name, an email, an address, a customer id, a status token, a gift card code or a
gateway's payment id: the payloads below are built field by field from the internal
event, so a field added to an internal event reaches no partner until it is added here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.events import (
    Event,
    EventPayload,
    FulfillmentCreated,
    OrderCancelled,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    ProductArchived,
    ProductCreated,
    ProductUpdated,
    Topic,
)
from domain.money import Money

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "X-Signature"
EVENT_ID_HEADER = "X-Webhook-Event-Id"
EVENT_TYPE_HEADER = "X-Webhook-Event-Type"
# A receiver should refuse a signature older than this (replays); the docs say so.
SIGNATURE_TOLERANCE_SECONDS = 300

Shape = Callable[[Any, str], dict[str, Any] | None]


def _money(minor: int, currency: str) -> dict[str, str]:
    return {"amount": Money(minor, currency).to_decimal_string(), "currencyCode": currency}


@dataclass(frozen=True, slots=True)
class PartnerEvent:
    """One event a webhook may subscribe to: its name on the wire, the internal topic
    it comes from, and how its `data` is made (None: this occurrence is not one, e.g.
    a fulfilment that leaves units to ship is no OrderFulfilled)."""

    name: str
    topic: Topic
    shape: Shape
    description: str


def _order_placed(p: OrderPlaced, currency: str) -> dict[str, Any]:
    return {"order": p.order, "total": _money(p.total, p.currency)}


def _order_paid(p: OrderPaid, currency: str) -> dict[str, Any]:
    return {"order": p.order}  # not the gateway's payment id


def _order_cancelled(p: OrderCancelled, currency: str) -> dict[str, Any]:
    return {"order": p.order, "refunded": p.refund is not None}


def _fulfillment_created(p: FulfillmentCreated, currency: str) -> dict[str, Any]:
    return {"order": p.order, "fulfillment": p.fulfillment, "orderStatus": p.status}


def _order_fulfilled(p: FulfillmentCreated, currency: str) -> dict[str, Any] | None:
    return {"order": p.order} if p.status == "FULFILLED" else None


def _order_refunded(p: OrderRefunded, currency: str) -> dict[str, Any]:
    return {
        "order": p.order,
        "refund": p.refund,
        "amount": _money(p.amount, currency),
        "orderStatus": p.status,
    }


def _product(p: ProductCreated | ProductArchived, currency: str) -> dict[str, Any]:
    return {"slug": p.slug}


def _product_updated(p: ProductUpdated, currency: str) -> dict[str, Any]:
    data: dict[str, Any] = {"slug": p.slug}
    if p.previous_slug is not None:
        data["previousSlug"] = p.previous_slug
    return data


PARTNER_EVENTS: Mapping[str, PartnerEvent] = {
    e.name: e
    for e in (
        PartnerEvent("OrderPlaced", Topic.ORDER_PLACED, _order_placed, "an order was placed"),
        PartnerEvent("OrderPaid", Topic.ORDER_PAID, _order_paid, "an order's payment settled"),
        PartnerEvent(
            "OrderCancelled", Topic.ORDER_CANCELLED, _order_cancelled, "an order was cancelled"
        ),
        PartnerEvent(
            "FulfillmentCreated",
            Topic.FULFILLMENT_CREATED,
            _fulfillment_created,
            "some units of an order were shipped",
        ),
        PartnerEvent(
            "OrderFulfilled",
            Topic.FULFILLMENT_CREATED,
            _order_fulfilled,
            "the last units of an order were shipped",
        ),
        PartnerEvent(
            "OrderRefunded", Topic.ORDER_REFUNDED, _order_refunded, "a refund of an order settled"
        ),
        PartnerEvent("ProductCreated", Topic.PRODUCT_CREATED, _product, "a product was created"),
        PartnerEvent(
            "ProductUpdated", Topic.PRODUCT_UPDATED, _product_updated, "a product was changed"
        ),
        PartnerEvent("ProductArchived", Topic.PRODUCT_ARCHIVED, _product, "a product was archived"),
    )
}
SOURCE_TOPICS: tuple[str, ...] = tuple(
    dict.fromkeys(e.topic.value for e in PARTNER_EVENTS.values())
)


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """One partner event made from one internal event: the same body for every webhook
    and every attempt (only the signature's timestamp changes)."""

    event_id: str  # what a receiver dedupes on: stable across retries and redeliveries
    event_type: str
    body: str  # the JSON document, exactly as sent


def event_id_of(outbox_id: int, event_type: str) -> str:
    # One internal event can make two partner events (FulfillmentCreated, OrderFulfilled).
    return f"evt_{outbox_id}.{event_type}"


def outgoing_events(event: Event, currency: str) -> list[OutgoingEvent]:
    """The partner events an internal event makes (none for a topic partners never see).
    MalformedEvent when the internal payload breaks its promise."""
    kinds = [e for e in PARTNER_EVENTS.values() if e.topic.value == event.topic]
    if not kinds:
        return []
    payload: EventPayload = event.parsed()
    made: list[OutgoingEvent] = []
    for kind in kinds:
        data = kind.shape(payload, currency)
        if data is None:
            continue
        event_id = event_id_of(event.id, kind.name)
        envelope = {
            "id": event_id,
            "type": kind.name,
            "createdAt": event.created_at or None,
            "data": data,
        }
        made.append(OutgoingEvent(event_id, kind.name, json.dumps(envelope, separators=(",", ":"))))
    return made


# -- signing ---------------------------------------------------------------------------


def new_signing_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as Stripe signs."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    now: float,
    tolerance_seconds: float = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does (docs/webhooks.md): any v1 matching, timestamp recent."""
    parts = [item.partition("=") for item in header.split(",")]
    stamps = [value for key, _, value in parts if key == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body).rpartition("v1=")[2]
    return any(key == "v1" and hmac.compare_digest(value, expected) for key, _, value in parts)


# -- retries ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with equal jitter: the n-th retry waits between half and all
    of min(first * 2^(n-1), max); a delivery is given up `give_up_after_seconds` after
    it was made (24 h)."""

    first_delay_seconds: float = 30.0
    max_delay_seconds: float = 3600.0
    give_up_after_seconds: float = 24 * 3600.0

    def delay(self, failed_attempts: int, jitter: float) -> float:
        """The wait after `failed_attempts` failures; `jitter` uniform in [0, 1)."""
        doublings = min(max(failed_attempts - 1, 0), 40)
        ceiling: float = min(self.max_delay_seconds, self.first_delay_seconds * 2.0**doublings)
        return ceiling / 2 + ceiling / 2 * jitter


MAX_EVENT_NAMES = 20


def check_events(names: Sequence[str]) -> tuple[list[str], str | None]:
    """The distinct event names, in the given order, or why they are refused."""
    if len(names) > MAX_EVENT_NAMES:
        return [], f"events: at most {MAX_EVENT_NAMES} names"
    wanted = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not wanted:
        return [], f"events: name one or more of {', '.join(PARTNER_EVENTS)}"
    unknown = [n for n in wanted if n not in PARTNER_EVENTS]
    if unknown:
        shown = ", ".join(repr(n[:60]) for n in unknown[:5])
        return [], f"events: unknown {shown}; partners may receive {', '.join(PARTNER_EVENTS)}"
    return wanted, None


MAX_WEBHOOKS_PER_PARTNER = 20


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    partner_id: int
    partner_name: str
    url: str
    events: tuple[str, ...]
    created_at: datetime
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None


class TooManyWebhooks(Exception):
    """The partner has MAX_WEBHOOKS_PER_PARTNER enabled webhooks already."""


class PartnerMissing(Exception):
    """No partner (not revoked) has this name."""
