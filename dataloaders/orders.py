"""Per-request batching loaders for order screens: one statement per kind per batch,
so `me.orders(first: N)` costs the same for any N. Created fresh per request."""

from __future__ import annotations

from dataclasses import dataclass

from dataloaders.catalog import MappingLoader
from domain.orders import Fulfillment, StatusChange
from persistence.orders.order_details import SqlOrderDetails


class FulfillmentsByOrderIdLoader(MappingLoader[int, list[Fulfillment]]):
    def __init__(self, details: SqlOrderDetails) -> None:
        super().__init__(details.fulfillments, list)


class StatusHistoryByOrderIdLoader(MappingLoader[int, list[StatusChange]]):
    def __init__(self, details: SqlOrderDetails) -> None:
        super().__init__(details.status_history, list)


@dataclass(frozen=True, slots=True)
class OrderLoaders:
    fulfillments_by_order_id: FulfillmentsByOrderIdLoader
    status_history_by_order_id: StatusHistoryByOrderIdLoader

    @classmethod
    def create(cls, details: SqlOrderDetails) -> OrderLoaders:
        return cls(FulfillmentsByOrderIdLoader(details), StatusHistoryByOrderIdLoader(details))
