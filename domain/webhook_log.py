"""Who may read the webhook delivery log: staff read every delivery, a partner (by its
API key) only those of its own webhooks; anyone else is refused before anything is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.catalog_admin import ensure_staff
from domain.customers import Customer
from domain.errors import UnauthenticatedError
from domain.pagination import Page, PageRequest, page_request
from domain.webhook_delivery import DeliveryStatus, WebhookDelivery

DELIVERIES_ORDERING = "webhook-deliveries"


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    partner_id: int | None = None  # None: every partner's (staff only)
    webhook_id: int | None = None
    status: DeliveryStatus | None = None


class DeliveryLog(Protocol):
    async def page(self, where: DeliveryFilter, request: PageRequest) -> Page[WebhookDelivery]:
        """Newest first (by id, descending)."""
        ...


def deliveries_page_request(first: int | None, after: str | None, max_size: int) -> PageRequest:
    return page_request(first, after, ordering=DELIVERIES_ORDERING, arity=1, max_size=max_size)


class WebhookLog:
    def __init__(self, log: DeliveryLog) -> None:
        self._log = log

    async def page(
        self,
        viewer: Customer | None,
        partner_id: int | None,
        where: DeliveryFilter,
        request: PageRequest,
    ) -> Page[WebhookDelivery]:
        """A partner's own deliveries, whatever filter it sends; staff's choice; else refused."""
        if partner_id is not None:
            where = DeliveryFilter(partner_id, where.webhook_id, where.status)
        elif viewer is None:
            raise UnauthenticatedError(
                "send a staff Authorization: Bearer <token> or a partner's X-Api-Key"
            )
        else:
            ensure_staff(viewer)
        return await self._log.page(where, request)
