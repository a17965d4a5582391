"""The webhook delivery log: staff read every partner's, a partner (X-Api-Key) its own."""

from __future__ import annotations

import strawberry

from domain.webhook_delivery import DeliveryStatus
from domain.webhook_log import DeliveryFilter, deliveries_page_request
from schema.context import Info
from schema.global_id import decode_int_gid
from schema.webhooks import WebhookDeliveryConnection


@strawberry.type
class WebhookQuery:
    @strawberry.field(
        description="Deliveries of partner webhooks, newest first; `first` at most 100. "
        "Staff see every partner's; a partner sending its X-Api-Key sees its own only; "
        "anyone else gets UNAUTHENTICATED or FORBIDDEN."
    )
    async def webhook_deliveries(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        webhook_id: strawberry.ID | None = None,
        status: DeliveryStatus | None = None,
    ) -> WebhookDeliveryConnection:
        context = info.context
        request = deliveries_page_request(first, after, context.settings.max_page_size)
        where = DeliveryFilter(
            webhook_id=None
            if webhook_id is None
            else decode_int_gid(webhook_id, "Webhook", field="webhookId"),
            status=status,
        )
        partner = context.partner
        viewer = None
        if partner is None:
            viewer = await context.viewer()
        context.mark_private()  # a delivery log is never cached publicly
        page = await context.webhook_log.page(
            viewer, None if partner is None else partner.id, where, request
        )
        return WebhookDeliveryConnection.of(page)
