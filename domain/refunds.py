"""Refunds: some units of some lines, the shipping, or an explicit amount of a paid order.

What a refund of units is worth (`refund_value`): each line paid its price less its
discount allocations, shipping its price less a free-shipping allocation, and the tax was
charged on their sum. Refunding k of a line's n units gives back floor(paid * k / n) of
it, and the tax share is floor(tax * refunded / taxable), both computed on everything
refunded so far minus what was refunded before: so refunding an order piece by piece
gives back exactly its total, never a minor unit more.

Gift cards are refunded first (what each paid, less what earlier refunds gave it back),
the card gateway gets the rest. Never more than was paid: the store reserves the amount
on the order's refunded total in the transaction that records the refund (PENDING),
the gateway is called after that commit with a key derived from the staff's
idempotency key, and the refund is then settled (SUCCEEDED, gift cards credited, stock
back when asked, REFUNDED once everything is) or, refused by the gateway, released
(FAILED). A gateway that does not answer leaves it PENDING: a retry with the same key
asks the gateway again with the same key, which never refunds twice.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from domain.customers import Customer
from domain.errors import (
    ForbiddenError,
    InvalidInput,
    Rejected,
    UserError,
    UserErrorCode,
)
from domain.fulfillments import LineRequest, checked_reason
from domain.fulfillments import line_units as named_line_units
from domain.money import parse_amount
from domain.orders import Order, OrderStatus
from domain.payments import PaymentGateway

KEY_MIN, KEY_MAX = 8, 255
# A PENDING refund this young, whose gateway call has not come back, is still being asked
# by its first request; older, that request died, and a replay asks the gateway again.
IN_FLIGHT = timedelta(seconds=30)
MAX_REFUND_LINES = 250
REFUNDABLE_STATUSES = (OrderStatus.PAID, OrderStatus.FULFILLED)


class RefundStatus(StrEnum):
    PENDING = "PENDING"  # reserved on the order; the gateway has not confirmed it yet
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # the gateway refused: nothing was refunded, the reservation is gone


@dataclass(frozen=True, slots=True)
class RefundLine:
    order_line_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Refund:
    id: int
    public_id: str
    order_id: int
    status: RefundStatus
    amount: int  # gift_card_amount + card_amount
    gift_card_amount: int
    card_amount: int
    lines: tuple[RefundLine, ...]
    shipping: bool
    reason: str | None
    restock: bool
    gateway_refund_id: str | None
    created_at: datetime
    outcome_unknown: bool = False  # the gateway was asked and did not answer

    @property
    def succeeded(self) -> bool:
        return self.status is RefundStatus.SUCCEEDED

    @property
    def restocked(self) -> bool:
        return self.restock and self.status is RefundStatus.SUCCEEDED


@dataclass(frozen=True, slots=True)
class RefundRequest:
    idempotency_key: str
    lines: tuple[LineRequest, ...] = ()
    shipping: bool = False
    amount: str | None = None  # a decimal string; computed from lines and shipping if None
    reason: str | None = None
    restock: bool = False


@dataclass(frozen=True, slots=True)
class RefundDraft:
    """A checked request, in the order's terms: what the store reserves."""

    public_id: str  # the refund's, random
    key_digest: str  # SHA-256 of the staff's idempotency key (scope: the order)
    fingerprint: str  # SHA-256 of the request: a key reused for another one is refused
    units: Mapping[int, int]  # order line id -> units
    shipping: bool
    amount: int | None  # None: refund_value of units and shipping
    reason: str | None
    restock: bool


@dataclass(frozen=True, slots=True)
class Paid:
    """What an order paid, per part, as refund_value needs it."""

    line_net: Mapping[int, int]  # order line id -> its units' price less its discounts
    line_quantity: Mapping[int, int]
    shipping_net: int
    tax: int

    @classmethod
    def of(
        cls,
        lines: Sequence[tuple[int, int, int]],
        shipping: int,
        tax: int,
        allocations: Sequence[tuple[int | None, int]],
    ) -> Paid:
        """`lines`: (order line id, unit price, quantity); `allocations`: (order line id,
        or None for shipping; amount) per discount allocation."""
        taken: dict[int | None, int] = {}
        for line_id, amount in allocations:
            taken[line_id] = taken.get(line_id, 0) + amount
        return cls(
            line_net={i: price * k - taken.get(i, 0) for i, price, k in lines},
            line_quantity={i: k for i, _, k in lines},
            shipping_net=max(shipping - taken.get(None, 0), 0),
            tax=tax,
        )

    def value(self, units: Mapping[int, int], shipping: bool) -> int:
        """What these units (and the shipping) paid, with their share of the tax."""
        net = sum(self.line_net[i] * k // self.line_quantity[i] for i, k in units.items() if k)
        if shipping:
            net += self.shipping_net
        taxable = sum(self.line_net.values()) + self.shipping_net
        return net + (self.tax * net // taxable if taxable > 0 else 0)


def refund_value(
    paid: Paid,
    before: Mapping[int, int],
    shipping_before: bool,
    units: Mapping[int, int],
    shipping: bool,
) -> int:
    """What refunding `units` (and the shipping) gives back, after earlier refunds of
    `before` units (and the shipping, if `shipping_before`)."""
    after = dict(before)
    for line_id, k in units.items():
        after[line_id] = after.get(line_id, 0) + k
    return paid.value(after, shipping_before or shipping) - paid.value(before, shipping_before)


def split_to_gift_cards(amount: int, left_per_card: Sequence[tuple[int, int]]) -> dict[int, int]:
    """Gift cards first, in the order given: card id -> what goes back on it."""
    parts: dict[int, int] = {}
    for card_id, left in left_per_card:
        take = min(amount, left)
        if take > 0:
            parts[card_id] = take
            amount -= take
    return parts


@dataclass(frozen=True, slots=True)
class Replayed:
    """The key was used for this request before: its refund, as it is now."""

    refund: Refund


@dataclass(frozen=True, slots=True)
class KeyReused:
    """The key was used before for another request on this order."""


@dataclass(frozen=True, slots=True)
class NotRefundable:
    status: OrderStatus


@dataclass(frozen=True, slots=True)
class UnitsExceeded:
    """Order line id -> units left to refund, for the lines asked beyond it."""

    left: dict[int, int]
    shipping: bool = False  # the shipping was asked and is refunded already


@dataclass(frozen=True, slots=True)
class ExceedsPayment:
    left: int  # what can still be refunded


@dataclass(frozen=True, slots=True)
class NothingToRefund:
    """The units and shipping asked for paid nothing."""


Reservation = (
    Refund | Replayed | KeyReused | NotRefundable | UnitsExceeded | ExceedsPayment | NothingToRefund
)


class RefundStore(Protocol):
    async def reserve(self, order_id: int, draft: RefundDraft) -> Reservation:
        """One transaction, holding the order row: the refund this key already made
        (Replayed, or KeyReused for another request), or a new PENDING refund whose
        amount is added to the order's refunded total, split gift cards first; having
        written nothing, the reason it cannot be (the order is not PAID or FULFILLED, more
        units than bought less earlier refunds, more than was paid less earlier ones)."""
        ...

    async def settle(self, refund_id: int, gateway_refund_id: str | None) -> Refund | None:
        """PENDING -> SUCCEEDED: gift cards credited (conditional, never above their
        initial balance), stock back when the refund restocks, the order REFUNDED once
        refunds cover its total, OrderRefunded; the refund as it is now."""
        ...

    async def release(self, refund_id: int) -> Refund | None:
        """PENDING -> FAILED, taking its amount off the order's refunded total."""
        ...

    async def mark_unknown(self, refund_id: int) -> None:
        """The gateway did not answer: a replay of the key may ask it again at once."""
        ...

    async def of_orders(self, order_ids: Sequence[int]) -> dict[int, list[Refund]]: ...


class Orders(Protocol):
    async def by_public_id(self, public_id: str) -> Order | None: ...

    async def by_id(self, order_id: int) -> Order | None: ...


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    order: Order | None
    refund: Refund | None
    errors: list[UserError] = field(default_factory=list)


class RefundDesk:
    def __init__(
        self,
        orders: Orders,
        refunds: RefundStore,
        gateway: PaymentGateway,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._orders = orders
        self._refunds = refunds
        self._gateway = gateway
        self._clock = clock

    async def refund(
        self, public_id: str, staff: Customer, request: RefundRequest
    ) -> RefundOutcome:
        """Staff: refund some units, the shipping or an amount of a paid order, once per
        idempotency key."""
        if not staff.is_staff:
            raise ForbiddenError()
        order = await self._orders.by_public_id(public_id)
        if order is None:
            raise Rejected.one(UserErrorCode.ORDER_NOT_FOUND, "no such order", "orderId")
        return await self.refund_units(order, request, line_units(order, request.lines))

    async def refund_units(
        self, order: Order, request: RefundRequest, units: dict[int, int]
    ) -> RefundOutcome:
        """The refund path once the lines are known (orderRefund, and a received return)."""
        draft = _draft(order, request, units)
        reserved = await self._refunds.reserve(order.id, draft)
        refund = _reserved_or_raise(order, reserved, request)
        if isinstance(reserved, Replayed) and refund.status is RefundStatus.PENDING:
            in_flight = self._clock() - refund.created_at < IN_FLIGHT
            if in_flight and not refund.outcome_unknown:
                # The first request is still asking the gateway: no second call.
                return RefundOutcome(order, refund, [_pending()])
        if refund.status is RefundStatus.SUCCEEDED:
            return RefundOutcome(await self._orders.by_id(order.id), refund)
        if refund.status is RefundStatus.FAILED:
            return RefundOutcome(order, refund, [_failed()])
        settled = await self._through_gateway(order, refund, draft.key_digest)
        if settled.status is RefundStatus.PENDING:
            return RefundOutcome(order, settled, [_pending()])
        if settled.status is RefundStatus.FAILED:
            return RefundOutcome(order, settled, [_failed()])
        return RefundOutcome(await self._orders.by_id(order.id), settled)

    async def _through_gateway(self, order: Order, refund: Refund, key_digest: str) -> Refund:
        gateway_refund_id = None
        if refund.card_amount > 0:
            if order.payment_id is None:
                return await self._refunds.release(refund.id) or refund
            answer = await self._gateway.refund(
                order.payment_id,
                refund.card_amount,
                order.currency_code,
                f"order-{order.public_id}-refund-{key_digest[:40]}",
            )
            if answer.pending:
                await self._refunds.mark_unknown(refund.id)
                return refund  # stays reserved; the same key asks again
            if not answer.succeeded:
                return await self._refunds.release(refund.id) or refund
            gateway_refund_id = answer.refund_id
        return await self._refunds.settle(refund.id, gateway_refund_id) or refund


def line_units(order: Order, lines: Sequence[LineRequest]) -> dict[int, int]:
    """Units per order line id of the lines named (see domain.fulfillments.line_units)."""
    return named_line_units(order, lines, MAX_REFUND_LINES)


def _draft(order: Order, request: RefundRequest, units: dict[int, int]) -> RefundDraft:
    key = request.idempotency_key
    if not KEY_MIN <= len(key) <= KEY_MAX:
        raise Rejected.one(
            UserErrorCode.INVALID,
            f"idempotencyKey must have {KEY_MIN} to {KEY_MAX} characters",
            "idempotencyKey",
        )
    reason = checked_reason(request.reason)
    amount = None
    if request.amount is not None:
        try:
            amount = parse_amount(request.amount, order.currency_code, field="amount")
        except InvalidInput as err:
            raise Rejected.one(UserErrorCode.INVALID, err.message, "amount") from None
        if amount < 1:
            raise Rejected.one(UserErrorCode.INVALID, "amount must be more than 0", "amount")
    if not units and not request.shipping and amount is None:
        raise Rejected.one(
            UserErrorCode.INVALID, "name lines, the shipping or an amount to refund", "lines"
        )
    if request.restock and not units:
        raise Rejected.one(UserErrorCode.INVALID, "restocking needs lines", "restock")
    fingerprint = "|".join(
        [
            ",".join(f"{line_id}:{k}" for line_id, k in sorted(units.items())),
            str(request.shipping),
            str(amount),
            reason or "",
            str(request.restock),
        ]
    )
    return RefundDraft(
        public_id=secrets.token_urlsafe(16),
        key_digest=hashlib.sha256(key.encode()).hexdigest(),
        fingerprint=hashlib.sha256(fingerprint.encode()).hexdigest(),
        units=units,
        shipping=request.shipping,
        amount=amount,
        reason=reason,
        restock=request.restock,
    )


def _reserved_or_raise(order: Order, reserved: Reservation, request: RefundRequest) -> Refund:
    if isinstance(reserved, Refund):
        return reserved
    if isinstance(reserved, Replayed):
        return reserved.refund
    if isinstance(reserved, KeyReused):
        raise Rejected.one(
            UserErrorCode.IDEMPOTENCY_KEY_REUSED,
            "this idempotency key was used for another refund of this order",
            "idempotencyKey",
        )
    if isinstance(reserved, NotRefundable):
        raise Rejected.one(
            UserErrorCode.INVALID_TRANSITION,
            f"an order that is {reserved.status.value} cannot be refunded",
            "orderId",
        )
    if isinstance(reserved, UnitsExceeded):
        positions = {line.id: n for n, line in enumerate(order.lines, start=1)}
        errors = [
            UserError(
                UserErrorCode.REFUND_QUANTITY_EXCEEDED,
                f"line {positions[line_id]} has {left} units left to refund",
                ("lines",),
            )
            for line_id, left in sorted(reserved.left.items())
        ]
        if reserved.shipping:
            errors.append(
                UserError(
                    UserErrorCode.REFUND_QUANTITY_EXCEEDED,
                    "the shipping is refunded already",
                    ("shipping",),
                )
            )
        raise Rejected(errors)
    if isinstance(reserved, ExceedsPayment):
        raise Rejected.one(
            UserErrorCode.REFUND_EXCEEDS_PAYMENT,
            f"at most {reserved.left} minor units are left to refund",
            "amount" if request.amount is not None else "lines",
        )
    raise Rejected.one(UserErrorCode.INVALID, "what was named paid nothing", "lines")


def _failed() -> UserError:
    return UserError(
        UserErrorCode.REFUND_FAILED, "the gateway refused the refund; nothing changed", ("orderId",)
    )


def _pending() -> UserError:
    return UserError(
        UserErrorCode.REFUND_PENDING,
        "the gateway did not answer; retry with the same idempotency key",
        ("idempotencyKey",),
    )
