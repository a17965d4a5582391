"""Returns: the shopper sends back fulfilled units; staff approve or decline, then receive
them, refunding (through domain.refunds) and restocking in the same step.

    REQUESTED -> APPROVED -> RECEIVED      (a refund, when asked, on receipt)
    REQUESTED -> DECLINED

Only units fulfilled within RETURN_WINDOW_DAYS of their fulfilment can be asked for,
never more than were fulfilled less those already returned or asked for (declined
returns give theirs back). The store counts that in the transaction that records the
request, holding the order row, so concurrent requests never exceed it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from domain.customers import Customer
from domain.errors import ForbiddenError, Rejected, UserError, UserErrorCode
from domain.fulfillments import LineRequest, checked_reason
from domain.orders import Order, OrderStatus
from domain.refunds import Refund, RefundDesk, RefundLine, RefundRequest, line_units
from domain.shopper_desk import ShopperDesk, ShopperOrderRef

RETURNABLE_STATUSES = (OrderStatus.PAID, OrderStatus.FULFILLED)


class ReturnStatus(StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    RECEIVED = "RECEIVED"


RETURN_TRANSITIONS: dict[ReturnStatus, frozenset[ReturnStatus]] = {
    ReturnStatus.REQUESTED: frozenset({ReturnStatus.APPROVED, ReturnStatus.DECLINED}),
    ReturnStatus.APPROVED: frozenset({ReturnStatus.RECEIVED}),
}


@dataclass(frozen=True, slots=True)
class OrderReturn:
    id: int
    public_id: str
    order_id: int
    status: ReturnStatus
    lines: tuple[RefundLine, ...]  # order line id and units
    reason: str | None
    decline_reason: str | None
    refund_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReturnsExceeded:
    """Order line id -> units that can still be returned, for the lines asked beyond it."""

    left: dict[int, int]


@dataclass(frozen=True, slots=True)
class NotReturnable:
    status: OrderStatus


class ReturnStore(Protocol):
    async def request(
        self,
        order_id: int,
        public_id: str,
        units: dict[int, int],
        reason: str | None,
        fulfilled_since: datetime,
    ) -> OrderReturn | ReturnsExceeded | NotReturnable:
        """Holding the order row: count per line the units fulfilled since
        `fulfilled_since` (and in all) less those in returns not DECLINED; record a
        REQUESTED return and its event, or, having written nothing, say why not."""
        ...

    async def by_public_id(self, public_id: str) -> OrderReturn | None: ...

    async def move(
        self,
        return_id: int,
        source: ReturnStatus,
        target: ReturnStatus,
        *,
        decline_reason: str | None = None,
        refund_id: int | None = None,
        restock: bool = False,
    ) -> OrderReturn | None:
        """source -> target with its event (and the units back in stock when `restock`);
        None, having written nothing, when the return is not in `source`."""
        ...

    async def of_orders(self, order_ids: Sequence[int]) -> dict[int, list[OrderReturn]]: ...


class Orders(Protocol):
    async def by_id(self, order_id: int) -> Order | None: ...


@dataclass(frozen=True, slots=True)
class ReturnOutcome:
    order: Order | None
    order_return: OrderReturn | None
    refund: Refund | None = None
    errors: list[UserError] = field(default_factory=list)


class ReturnDesk:
    def __init__(
        self,
        orders: Orders,
        returns: ReturnStore,
        refunds: RefundDesk,
        shoppers: ShopperDesk,
        window_days: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._orders = orders
        self._returns = returns
        self._refunds = refunds
        self._shoppers = shoppers
        self._window = timedelta(days=window_days)
        self._clock = clock

    async def request(
        self,
        ref: ShopperOrderRef,
        viewer: Customer | None,
        client: str,
        lines: tuple[LineRequest, ...],
        reason: str | None,
    ) -> ReturnOutcome:
        """The shopper asks to send back some fulfilled units."""
        order = await self._shoppers.find(ref, viewer, client)
        units = _units(order, lines)
        reason = checked_reason(reason)
        since = self._clock() - self._window
        public_id = secrets.token_urlsafe(16)
        recorded = await self._returns.request(order.id, public_id, units, reason, since)
        if isinstance(recorded, NotReturnable):
            raise Rejected.one(
                UserErrorCode.INVALID_TRANSITION,
                f"an order that is {recorded.status.value} takes no returns",
                "orderId",
            )
        if isinstance(recorded, ReturnsExceeded):
            positions = {line.id: n for n, line in enumerate(order.lines, start=1)}
            raise Rejected(
                [
                    UserError(
                        UserErrorCode.RETURN_QUANTITY_EXCEEDED,
                        f"line {positions[line_id]} has {left} units that can be returned",
                        ("lines",),
                    )
                    for line_id, left in sorted(recorded.left.items())
                ]
            )
        return ReturnOutcome(order, recorded)

    async def approve(self, return_public_id: str, staff: Customer) -> ReturnOutcome:
        found = await self._staff_return(return_public_id, staff)
        return await self._move(found, ReturnStatus.APPROVED)

    async def decline(
        self, return_public_id: str, staff: Customer, reason: str | None
    ) -> ReturnOutcome:
        found = await self._staff_return(return_public_id, staff)
        return await self._move(found, ReturnStatus.DECLINED, decline_reason=checked_reason(reason))

    async def receive(
        self, return_public_id: str, staff: Customer, *, refund: bool, restock: bool
    ) -> ReturnOutcome:
        """APPROVED -> RECEIVED; with `refund`, the returned units are refunded through
        orderRefund's path first (its idempotency key is the return's, so a retry never
        refunds twice) and restocked with it when `restock`."""
        found = await self._staff_return(return_public_id, staff)
        if found.status is not ReturnStatus.APPROVED:
            raise _illegal(found, ReturnStatus.RECEIVED)
        refunded: Refund | None = None
        if refund:
            order = await self._orders.by_id(found.order_id)
            if order is None:  # the return's order is gone: nothing to refund
                raise Rejected.one(UserErrorCode.RETURN_NOT_FOUND, "no such return", "returnId")
            outcome = await self._refunds.refund_units(
                order,
                RefundRequest(
                    idempotency_key=f"return-{found.public_id}",
                    reason="return" if found.reason is None else f"return: {found.reason}"[:500],
                    restock=restock,
                ),
                {line.order_line_id: line.quantity for line in found.lines},
            )
            if outcome.errors:
                return ReturnOutcome(order, found, outcome.refund, outcome.errors)
            refunded = outcome.refund
        moved = await self._returns.move(
            found.id,
            ReturnStatus.APPROVED,
            ReturnStatus.RECEIVED,
            refund_id=None if refunded is None else refunded.id,
            restock=restock and refunded is None,
        )
        if moved is None:
            current = await self._returns.by_public_id(found.public_id)
            raise _illegal(current or found, ReturnStatus.RECEIVED)
        return ReturnOutcome(await self._orders.by_id(found.order_id), moved, refunded)

    async def _move(
        self, found: OrderReturn, target: ReturnStatus, decline_reason: str | None = None
    ) -> ReturnOutcome:
        if target not in RETURN_TRANSITIONS.get(found.status, frozenset()):
            raise _illegal(found, target)
        moved = await self._returns.move(
            found.id, found.status, target, decline_reason=decline_reason
        )
        if moved is None:
            current = await self._returns.by_public_id(found.public_id)
            raise _illegal(current or found, target)
        return ReturnOutcome(await self._orders.by_id(found.order_id), moved)

    async def _staff_return(self, return_public_id: str, staff: Customer) -> OrderReturn:
        if not staff.is_staff:
            raise ForbiddenError()
        found = await self._returns.by_public_id(return_public_id)
        if found is None:
            raise Rejected.one(UserErrorCode.RETURN_NOT_FOUND, "no such return", "returnId")
        return found


def _units(order: Order, lines: tuple[LineRequest, ...]) -> dict[int, int]:
    if not lines:
        raise Rejected.one(UserErrorCode.INVALID, "name at least one line", "lines")
    return line_units(order, lines)


def _illegal(found: OrderReturn, target: ReturnStatus) -> Rejected:
    return Rejected.one(
        UserErrorCode.INVALID_TRANSITION,
        f"a return that is {found.status.value} cannot become {target.value}",
        "returnId",
    )
