"""Domain events as consumers see them, and the handlers that keep derived state current.

An event is an outbox row relayed to a Redis stream: its id is the outbox id (the same
on every redelivery), its topic names what happened, its payload says to what. Delivery
is at least once, so every handler is idempotent in itself (reindexing, deleting a cache
key and claiming a notification all give the same result twice); the consumer runner
also remembers the ids it handled and skips repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from domain.ports import CacheInvalidator
from domain.search import SearchIndexWriter


class Topic:
    """Every topic written to the outbox (persistence/orders/order_store.py, catalog writes)."""

    ORDER_PLACED = "OrderPlaced"  # {order: public id, total, currency}
    ORDER_PAID = "OrderPaid"  # {order: public id, payment}
    ORDER_CANCELLED = "OrderCancelled"  # {order, refund}
    PAYMENT_FAILED = "PaymentFailed"  # {order, decline_code}
    STOCK_CHANGED = "StockChanged"  # {variant: id, available: n}
    PRODUCT_CREATED = "ProductCreated"  # {product: id, slug}
    PRODUCT_UPDATED = "ProductUpdated"
    PRODUCT_ARCHIVED = "ProductArchived"
    VARIANT_CREATED = "VariantCreated"  # {variant: id, product: id}
    VARIANT_UPDATED = "VariantUpdated"
    REVIEW_CREATED = "ReviewCreated"  # {product: id, review: id}: the rating moved


PRODUCT_TOPICS = (Topic.PRODUCT_CREATED, Topic.PRODUCT_UPDATED, Topic.PRODUCT_ARCHIVED)
VARIANT_TOPICS = (Topic.VARIANT_CREATED, Topic.VARIANT_UPDATED)
ORDER_TOPICS = (
    Topic.ORDER_PLACED,
    Topic.ORDER_PAID,
    Topic.ORDER_CANCELLED,
    Topic.PAYMENT_FAILED,
)
ALL_TOPICS = (
    *ORDER_TOPICS,
    Topic.STOCK_CHANGED,
    *PRODUCT_TOPICS,
    *VARIANT_TOPICS,
    Topic.REVIEW_CREATED,
)


class MalformedEvent(Exception):
    """A payload without the fields its topic promises: retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Event:
    id: int  # the outbox id: stable across redeliveries, so the key for dedupe
    topic: str
    payload: dict[str, Any]
    created_at: str = ""  # ISO 8601, as the outbox row had it

    def integer(self, name: str) -> int:
        value = self.payload.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedEvent(f"{self.topic} #{self.id}: {name!r} must be an integer")
        return value

    def text(self, name: str) -> str:
        value = self.payload.get(name)
        if not isinstance(value, str) or not value:
            raise MalformedEvent(f"{self.topic} #{self.id}: {name!r} must be a non-empty string")
        return value


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
            if event.topic == Topic.STOCK_CHANGED:
                # Stock moves availability facets; the event names only the variant.
                stock_variants.add(event.integer("variant"))
            else:
                product_ids.add(event.integer("product"))
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
            product_ids.add(event.integer("product"))
            if event.topic in PRODUCT_TOPICS:
                slugs.add(event.text("slug"))
                if event.payload.get("previous_slug"):  # a renamed product's old address
                    slugs.add(event.text("previous_slug"))
            else:
                # A product's cached record embeds its variants: both go.
                variant_ids.add(event.integer("variant"))
        if product_ids:
            await self.cache.invalidate_products(sorted(product_ids), sorted(slugs))
        if variant_ids:
            await self.cache.invalidate_variants(sorted(variant_ids))
