"""Per-request batching loaders for order screens: one statement per kind per batch,
so `me.orders(first: N)` costs the same for any N. Created fresh per request."""

from __future__ import annotations

from dataclasses import dataclass

from dataloaders.catalog import MappingLoader
from domain.orders import Fulfillment, GiftCardDebit, OrderDiscountAllocation, StatusChange
from domain.refunds import Refund
from domain.returns import OrderReturn
from persistence.orders.order_details import SqlOrderDetails


class FulfillmentsByOrderIdLoader(MappingLoader[int, list[Fulfillment]]):
    def __init__(self, details: SqlOrderDetails) -> None:
        super().__init__(details.fulfillments, list)


class StatusHistoryByOrderIdLoader(MappingLoader[int, list[StatusChange]]):
    def __init__(self, details: SqlOrderDetails) -> None:
        super().__init__(details.status_history, list)


class DiscountAllocationsByOrderIdLoader(MappingLoader[int, list[OrderDiscountAllocation]]):
    def __init__(self, details: SqlOrderDetails) -> None:
        super().__init__(details.discount_allocations, list)


class GiftCardPaymentsByOrderIdLoader(MappingLoader[int, list[GiftCardDebit]]):
    def __init__(self, details: SqlOrderDetails) -> None:
        super().__init__(details.gift_card_payments, list)


class RefundsByOrderIdLoader(MappingLoader[int, list[Refund]]):
    def __init__(self, details: SqlOrderDetails) -> None:
        super().__init__(details.refunds, list)


class ReturnsByOrderIdLoader(MappingLoader[int, list[OrderReturn]]):
    def __init__(self, details: SqlOrderDetails) -> None:
        super().__init__(details.returns, list)


@dataclass(frozen=True, slots=True)
class OrderLoaders:
    fulfillments_by_order_id: FulfillmentsByOrderIdLoader
    status_history_by_order_id: StatusHistoryByOrderIdLoader
    discount_allocations_by_order_id: DiscountAllocationsByOrderIdLoader
    gift_card_payments_by_order_id: GiftCardPaymentsByOrderIdLoader
    refunds_by_order_id: RefundsByOrderIdLoader
    returns_by_order_id: ReturnsByOrderIdLoader

    def clear(self) -> None:
        for loader in (getattr(self, name) for name in self.__dataclass_fields__):
            loader.clear_all()

    @classmethod
    def create(cls, details: SqlOrderDetails) -> OrderLoaders:
        return cls(
            FulfillmentsByOrderIdLoader(details),
            StatusHistoryByOrderIdLoader(details),
            DiscountAllocationsByOrderIdLoader(details),
            GiftCardPaymentsByOrderIdLoader(details),
            RefundsByOrderIdLoader(details),
            ReturnsByOrderIdLoader(details),
        )
