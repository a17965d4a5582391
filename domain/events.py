"""Domain events as consumers see them, and the handlers that keep derived state current.

An event is an outbox row relayed to a Redis stream: its id is the outbox id (the same
on every redelivery), its topic names what happened, its payload says to what. Delivery
is at least once, so every handler is idempotent in itself (reindexing, deleting a cache
key and claiming a notification all give the same result twice); the consumer runner
also remembers the ids it handled and skips repeats.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol, Self, TypeVar

from domain.ports import CacheInvalidator
from domain.search import SearchIndexWriter


class Topic(StrEnum):
    """Every topic written to the outbox; the value is the string on the wire."""

    ORDER_PLACED = "OrderPlaced"
    ORDER_PAID = "OrderPaid"
    ORDER_CANCELLED = "OrderCancelled"
    PAYMENT_FAILED = "PaymentFailed"
    PAYMENT_ACTION_REQUIRED = "PaymentActionRequired"
    FULFILLMENT_CREATED = "FulfillmentCreated"
    STOCK_CHANGED = "StockChanged"
    PRODUCT_CREATED = "ProductCreated"
    PRODUCT_UPDATED = "ProductUpdated"
    PRODUCT_ARCHIVED = "ProductArchived"
    VARIANT_CREATED = "VariantCreated"
    VARIANT_UPDATED = "VariantUpdated"
    REVIEW_CREATED = "ReviewCreated"
    PASSWORD_RESET_REQUESTED = "PasswordResetRequested"
    EMAIL_VERIFICATION_REQUESTED = "EmailVerificationRequested"
    SHIPPING_ZONE_CHANGED = "ShippingZoneChanged"
    SHIPPING_METHOD_CHANGED = "ShippingMethodChanged"
    GIFT_CARD_CREATED = "GiftCardCreated"
    GIFT_CARD_DISABLED = "GiftCardDisabled"
    DISCOUNT_CHANGED = "DiscountChanged"
    ORDER_DISPUTED = "OrderDisputed"
    ORDER_REFUNDED = "OrderRefunded"
    RETURN_STATUS_CHANGED = "ReturnStatusChanged"


PRODUCT_TOPICS = (Topic.PRODUCT_CREATED, Topic.PRODUCT_UPDATED, Topic.PRODUCT_ARCHIVED)
VARIANT_TOPICS = (Topic.VARIANT_CREATED, Topic.VARIANT_UPDATED)
ORDER_TOPICS = (
    Topic.ORDER_PLACED,
    Topic.ORDER_PAID,
    Topic.ORDER_CANCELLED,
    Topic.PAYMENT_FAILED,
    Topic.FULFILLMENT_CREATED,
    Topic.PAYMENT_ACTION_REQUIRED,
    Topic.ORDER_REFUNDED,
    Topic.RETURN_STATUS_CHANGED,
)
ALL_TOPICS = tuple(Topic)


class MalformedEvent(Exception):
    """A payload without the fields its topic promises: retrying cannot help."""


P = TypeVar("P", bound="EventPayload")


class EventPayload:
    """What one event says, typed; its class decides the topic.

    The wire format is the dataclass's fields as a JSON object, in declaration order,
    with the fields named in `omitted_when_none` left out rather than written as null
    (consumers read `previous_slug` only where a product was renamed). Those names are
    a contract with consumers and with rows already in the outbox: rename none."""

    __slots__ = ()
    topic: ClassVar[Topic]
    omitted_when_none: ClassVar[frozenset[str]] = frozenset()

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        for name, _ in _WIRE_FIELDS[type(self)]:
            value = getattr(self, name)
            if value is None and name in self.omitted_when_none:
                continue
            wire[name] = value
        return wire

    @classmethod
    def from_wire(cls, event_id: int, wire: dict[str, Any]) -> Self:
        """The payload back from its JSON object; MalformedEvent if it breaks a promise.

        Fields the class does not know are ignored, so an older consumer survives a
        newer writer's additions."""
        values: dict[str, Any] = {}
        for name, kind in _WIRE_FIELDS[cls]:
            value = wire.get(name)
            if name not in wire and name not in cls.omitted_when_none:
                raise MalformedEvent(f"{cls.topic} #{event_id}: {name!r} is missing")
            if not _fits(value, kind):
                raise MalformedEvent(f"{cls.topic} #{event_id}: {name!r} must be {kind}")
            values[name] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class OrderPlaced(EventPayload):
    topic: ClassVar[Topic] = Topic.ORDER_PLACED
    order: str  # the order's public id
    total: int  # minor units
    currency: str


@dataclass(frozen=True, slots=True)
class OrderPaid(EventPayload):
    topic: ClassVar[Topic] = Topic.ORDER_PAID
    order: str
    payment: str | None  # the gateway's payment id


@dataclass(frozen=True, slots=True)
class OrderCancelled(EventPayload):
    topic: ClassVar[Topic] = Topic.ORDER_CANCELLED
    order: str
    refund: str | None  # the gateway's refund id, null when nothing was charged


@dataclass(frozen=True, slots=True)
class PaymentFailed(EventPayload):
    topic: ClassVar[Topic] = Topic.PAYMENT_FAILED
    order: str
    decline_code: str


@dataclass(frozen=True, slots=True)
class PaymentActionRequired(EventPayload):
    topic: ClassVar[Topic] = Topic.PAYMENT_ACTION_REQUIRED
    order: str
    payment: str  # the gateway's payment id, waiting for the customer


@dataclass(frozen=True, slots=True)
class FulfillmentCreated(EventPayload):
    topic: ClassVar[Topic] = Topic.FULFILLMENT_CREATED
    order: str
    fulfillment: int
    status: str  # the order's status after it: PAID while units remain, else FULFILLED


@dataclass(frozen=True, slots=True)
class StockChanged(EventPayload):
    topic: ClassVar[Topic] = Topic.STOCK_CHANGED
    variant: int
    available: int  # units now available


@dataclass(frozen=True, slots=True)
class ProductCreated(EventPayload):
    topic: ClassVar[Topic] = Topic.PRODUCT_CREATED
    product: int
    slug: str


@dataclass(frozen=True, slots=True)
class ProductUpdated(EventPayload):
    topic: ClassVar[Topic] = Topic.PRODUCT_UPDATED
    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"previous_slug"})
    product: int
    slug: str
    previous_slug: str | None = None  # a renamed product's old address, to drop from caches


@dataclass(frozen=True, slots=True)
class ProductArchived(EventPayload):
    topic: ClassVar[Topic] = Topic.PRODUCT_ARCHIVED
    product: int
    slug: str


@dataclass(frozen=True, slots=True)
class VariantCreated(EventPayload):
    topic: ClassVar[Topic] = Topic.VARIANT_CREATED
    variant: int
    product: int


@dataclass(frozen=True, slots=True)
class VariantUpdated(EventPayload):
    topic: ClassVar[Topic] = Topic.VARIANT_UPDATED
    variant: int
    product: int


@dataclass(frozen=True, slots=True)
class ReviewCreated(EventPayload):
    topic: ClassVar[Topic] = Topic.REVIEW_CREATED  # the product's rating moved
    product: int
    review: int


@dataclass(frozen=True, slots=True)
class PasswordResetRequested(EventPayload):
    """Someone asked to reset the password of an address, which may have no account.

    `sealed` is ciphertext (PII_ENCRYPTION_KEYS) of the address, the raw token and its
    expiry: outbox rows, streams and dead letters never hold either in clear."""

    topic: ClassVar[Topic] = Topic.PASSWORD_RESET_REQUESTED
    sealed: str


@dataclass(frozen=True, slots=True)
class EmailVerificationRequested(EventPayload):
    """A verification token was issued for `customer`; `sealed` holds the address it
    goes to and the raw token, encrypted like PasswordResetRequested's."""

    topic: ClassVar[Topic] = Topic.EMAIL_VERIFICATION_REQUESTED
    customer: int
    sealed: str


@dataclass(frozen=True, slots=True)
class ShippingZoneChanged(EventPayload):
    """A zone was created, renamed or given other countries."""

    topic: ClassVar[Topic] = Topic.SHIPPING_ZONE_CHANGED
    zone: int


@dataclass(frozen=True, slots=True)
class ShippingMethodChanged(EventPayload):
    """A method of `zone` was created, changed or (`change` "deleted") deleted."""

    topic: ClassVar[Topic] = Topic.SHIPPING_METHOD_CHANGED
    method: int
    zone: int
    change: str  # "created", "updated" or "deleted"


@dataclass(frozen=True, slots=True)
class GiftCardCreated(EventPayload):
    """Staff issued `gift_card` worth `initial_balance` minor units (never the code)."""

    topic: ClassVar[Topic] = Topic.GIFT_CARD_CREATED
    gift_card: int
    initial_balance: int
    currency_code: str


@dataclass(frozen=True, slots=True)
class GiftCardDisabled(EventPayload):
    """Staff disabled `gift_card`; `balance` is what was left on it."""

    topic: ClassVar[Topic] = Topic.GIFT_CARD_DISABLED
    gift_card: int
    balance: int


@dataclass(frozen=True, slots=True)
class DiscountChanged(EventPayload):
    """Staff created, updated or (`change` "deactivated") deactivated `discount`."""

    topic: ClassVar[Topic] = Topic.DISCOUNT_CHANGED
    discount: int
    change: str  # "created", "updated" or "deactivated"


@dataclass(frozen=True, slots=True)
class OrderDisputed(EventPayload):
    """The buyer disputed `order`'s payment at their bank: `amount` minor units, the
    gateway's `reason` (e.g. "fraudulent"). Staff answer it at the gateway."""

    topic: ClassVar[Topic] = Topic.ORDER_DISPUTED
    order: str
    reason: str
    amount: int


@dataclass(frozen=True, slots=True)
class OrderRefunded(EventPayload):
    """A refund of `order` settled: `amount` minor units (gift cards and card together);
    `status` is the order's after it (REFUNDED once refunds cover the total)."""

    topic: ClassVar[Topic] = Topic.ORDER_REFUNDED
    order: str
    refund: str  # the refund's public id
    amount: int
    status: str


@dataclass(frozen=True, slots=True)
class ReturnStatusChanged(EventPayload):
    """A return of `order` entered `status` (REQUESTED, APPROVED, DECLINED, RECEIVED)."""

    topic: ClassVar[Topic] = Topic.RETURN_STATUS_CHANGED
    order: str
    return_id: str  # the return's public id
    status: str


ProductChange = ProductCreated | ProductUpdated | ProductArchived
VariantChange = VariantCreated | VariantUpdated

PAYLOADS: dict[Topic, type[EventPayload]] = {
    payload.topic: payload
    for payload in (
        OrderPlaced,
        OrderPaid,
        OrderCancelled,
        PaymentFailed,
        FulfillmentCreated,
        StockChanged,
        ProductCreated,
        ProductUpdated,
        ProductArchived,
        VariantCreated,
        VariantUpdated,
        ReviewCreated,
        PasswordResetRequested,
        EmailVerificationRequested,
        ShippingZoneChanged,
        ShippingMethodChanged,
        GiftCardCreated,
        GiftCardDisabled,
        DiscountChanged,
        OrderDisputed,
        PaymentActionRequired,
        OrderRefunded,
        ReturnStatusChanged,
    )
}


def _wire_fields(payload: type[EventPayload]) -> tuple[tuple[str, object], ...]:
    hints = typing.get_type_hints(payload)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(payload))  # type: ignore[arg-type]


# (name, type) per field of each payload class, resolved once at import (the annotations
# are strings under `from __future__ import annotations`).
_WIRE_FIELDS = {payload: _wire_fields(payload) for payload in PAYLOADS.values()}


def _fits(value: object, kind: object) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str) and bool(value)
    if kind == (str | None):
        return value is None or (isinstance(value, str) and bool(value))
    raise TypeError(f"no wire check for {kind!r}")  # a new field type needs one here


@dataclass(frozen=True, slots=True)
class Event:
    id: int  # the outbox id: stable across redeliveries, so the key for dedupe
    topic: str
    payload: dict[str, Any]
    created_at: str = ""  # ISO 8601, as the outbox row had it

    def parsed(self) -> EventPayload:
        """The payload as its topic's dataclass; MalformedEvent if it is not one."""
        try:
            payload_class = PAYLOADS[Topic(self.topic)]
        except ValueError:
            raise MalformedEvent(f"#{self.id}: unknown topic {self.topic!r}") from None
        return payload_class.from_wire(self.id, self.payload)

    def parsed_as(self, kind: type[P]) -> P:
        """The payload of a handler's only topic; MalformedEvent for anything else."""
        payload = self.parsed()
        if not isinstance(payload, kind):
            raise MalformedEvent(f"{self.topic} #{self.id}: expected {kind.topic}")
        return payload


class EventHandler(Protocol):
    """One consumer group: its name, the topics it reads, and what it does with a batch.

    A batch that raises is retried one event at a time, so one bad event cannot hold
    back the others; `handle` must therefore be safe to call again with any subset."""

    name: str
    topics: tuple[str, ...]

    async def handle(self, events: Sequence[Event]) -> None: ...


class ProductsOfVariants(Protocol):
    async def products_of_variants(self, variant_ids: Sequence[int]) -> dict[int, int]:
        """variant id -> product id, for the variants that exist."""
        ...


@dataclass
class SearchIndexing:
    """Reindexes every product an event touched, once per batch whatever the count."""

    writer: SearchIndexWriter
    variants: ProductsOfVariants
    name: str = "search-indexer"
    topics: tuple[str, ...] = (
        *PRODUCT_TOPICS,
        *VARIANT_TOPICS,
        Topic.STOCK_CHANGED,
        Topic.REVIEW_CREATED,  # ratings sort and show in results
    )

    async def handle(self, events: Sequence[Event]) -> None:
        product_ids: set[int] = set()
        stock_variants: set[int] = set()
        for event in events:
            change = event.parsed()
            if isinstance(change, StockChanged):
                # Stock moves availability facets; the event names only the variant.
                stock_variants.add(change.variant)
            elif isinstance(change, ProductChange | VariantChange | ReviewCreated):
                product_ids.add(change.product)
            else:
                raise MalformedEvent(f"{self.name} does not read {event.topic} #{event.id}")
        if stock_variants:
            owners = await self.variants.products_of_variants(sorted(stock_variants))
            product_ids.update(owners.values())
        if product_ids:
            await self.writer.index_products(sorted(product_ids))


@dataclass
class CacheInvalidation:
    """Drops cached records a catalog change made stale (the TTL bounds it otherwise)."""

    cache: CacheInvalidator
    name: str = "cache-invalidator"
    topics: tuple[str, ...] = (*PRODUCT_TOPICS, *VARIANT_TOPICS)

    async def handle(self, events: Sequence[Event]) -> None:
        product_ids: set[int] = set()
        slugs: set[str] = set()
        variant_ids: set[int] = set()
        for event in events:
            change = event.parsed()
            if isinstance(change, ProductChange):
                product_ids.add(change.product)
                slugs.add(change.slug)
                if isinstance(change, ProductUpdated) and change.previous_slug is not None:
                    slugs.add(change.previous_slug)  # a renamed product's old address
            elif isinstance(change, VariantChange):
                # A product's cached record embeds its variants: both go.
                product_ids.add(change.product)
                variant_ids.add(change.variant)
            else:
                raise MalformedEvent(f"{self.name} does not read {event.topic} #{event.id}")
        if product_ids:
            await self.cache.invalidate_products(sorted(product_ids), sorted(slugs))
        if variant_ids:
            await self.cache.invalidate_variants(sorted(variant_ids))
