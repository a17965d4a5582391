"""What a shopper may do to their own order: find it (as its signed-in customer, or with
its status token) and cancel it before anything ships.

Someone else's order, a guest without the token and an unknown id all get the same
answer, ORDER_NOT_FOUND: nothing says the order exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.customers import Customer
from domain.errors import Rejected, UserErrorCode
from domain.order_desk import OrderDesk
from domain.orders import Order


@dataclass(frozen=True, slots=True)
class ShopperOrderRef:
    """Exactly one of them: the order's id (its customer, signed in) or its status token."""

    public_id: str | None = None
    status_token: str | None = None


class OrdersByToken(Protocol):
    async def find(self, token: str, client: str) -> Order | None: ...


class OrdersById(Protocol):
    async def by_public_id(self, public_id: str) -> Order | None: ...


class ShopperDesk:
    def __init__(self, orders: OrdersById, tokens: OrdersByToken, desk: OrderDesk) -> None:
        self._orders = orders
        self._tokens = tokens
        self._desk = desk

    async def find(self, ref: ShopperOrderRef, viewer: Customer | None, client: str) -> Order:
        if (ref.public_id is None) == (ref.status_token is None):
            raise Rejected.one(
                UserErrorCode.INVALID, "give either orderId or statusToken", "orderId"
            )
        order: Order | None
        if ref.status_token is not None:
            order = await self._tokens.find(ref.status_token, client)
        else:
            order = None
            if viewer is not None and ref.public_id:
                order = await self._orders.by_public_id(ref.public_id)
            if order is not None and (viewer is None or order.customer_id != viewer.id):
                order = None
        if order is None:
            field = "statusToken" if ref.status_token is not None else "orderId"
            raise Rejected.one(UserErrorCode.ORDER_NOT_FOUND, "no such order", field)
        return order

    async def cancel(self, ref: ShopperOrderRef, viewer: Customer | None, client: str) -> Order:
        """Cancel before anything ships, through the staff's cancel path: stock, discount
        uses and gift card amounts back, a paid card payment refunded in full;
        ORDER_ALREADY_FULFILLED once a fulfilment exists."""
        order = await self.find(ref, viewer, client)
        return await self._desk.cancel_for_shopper(order)
