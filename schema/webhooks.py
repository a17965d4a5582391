"""The webhook delivery log as staff and partners read it."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import webhook_delivery
from domain.pagination import Page
from domain.webhook_delivery import DeliveryStatus
from schema.common import PageInfo
from schema.global_id import encode_gid

strawberry.enum(
    DeliveryStatus,
    name="WebhookDeliveryStatus",
    description="PENDING: waiting for its (next) attempt; SUCCEEDED: the receiver answered "
    "2xx; FAILED: given up after the retry window (an operator can redeliver it).",
)


@strawberry.type(description="One event sent (or being sent) to one partner webhook.")
class WebhookDelivery:
    id: strawberry.ID
    webhook_id: strawberry.ID = strawberry.field(description="The Webhook's global id.")
    event_id: str = strawberry.field(
        description="The X-Webhook-Event-Id header: the same on every attempt and redelivery."
    )
    event_type: str = strawberry.field(description='E.g. "OrderPaid" (docs/webhooks.md).')
    status: DeliveryStatus
    attempts: int = strawberry.field(description="Attempts made so far.")
    last_response_status: int | None = strawberry.field(
        description="The HTTP status of the last attempt; null when none came back."
    )
    last_error: str | None = strawberry.field(
        description="Why the last attempt failed (timeout, refused address, HTTP 500, ...)."
    )
    last_latency_ms: int | None = strawberry.field(
        description="How long the last attempt took, in milliseconds."
    )
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = strawberry.field(
        description="When it is tried next; null once it succeeded or failed for good."
    )
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, delivery: webhook_delivery.WebhookDelivery) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(encode_gid("WebhookDelivery", delivery.id)),
            webhook_id=webhook_gid(delivery.webhook_id),
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            status=delivery.status,
            attempts=delivery.attempts,
            last_response_status=delivery.last_response_status,
            last_error=delivery.last_error,
            last_latency_ms=delivery.last_latency_ms,
            last_attempt_at=delivery.last_attempt_at,
            next_attempt_at=delivery.next_attempt_at,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )


def webhook_gid(webhook_id: int) -> strawberry.ID:
    return strawberry.ID(encode_gid("Webhook", webhook_id))


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[webhook_delivery.WebhookDelivery]) -> WebhookDeliveryConnection:
        return cls(
            edges=[
                WebhookDeliveryEdge(cursor=e.cursor, node=WebhookDelivery.of(e.node))
                for e in page.edges
            ],
            page_info=PageInfo.of(page),
        )
