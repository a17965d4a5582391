"""The consumer that purges cached responses when the catalog changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from domain.events import (
    PRODUCT_TOPICS,
    VARIANT_TOPICS,
    Event,
    MalformedEvent,
    ProductChange,
    ProductsOfVariants,
    ProductUpdated,
    ReviewCreated,
    StockChanged,
    Topic,
    VariantChange,
)
from domain.ports import CacheInvalidator
from domain.response_cache import ResponsePurger, purge_tags


@dataclass
class ResponsePurging:
    """Purges the answers an event made stale, by tag, in every process.

    The cached records an answer is built from go first (the cache-invalidator group
    drops them too, but in its own time): an answer recomputed after the purge must not
    be rebuilt from a stale record. With a read replica, `settle` waits until it has
    the change. Listing prices do not depend on discounts, so DiscountChanged purges
    nothing; categories change through no event (their answers live out the TTL)."""

    records: CacheInvalidator
    responses: ResponsePurger
    variants: ProductsOfVariants
    settle: Callable[[], Awaitable[None]] | None = None
    name: str = "response-cache-purger"
    topics: tuple[str, ...] = (
        *PRODUCT_TOPICS,
        *VARIANT_TOPICS,
        Topic.STOCK_CHANGED,
        Topic.REVIEW_CREATED,  # the rating summary moved
    )

    async def handle(self, events: Sequence[Event]) -> None:
        products: set[int] = set()
        variants: set[int] = set()
        slugs: set[str] = set()
        stock: set[int] = set()
        changed_records: set[int] = set()
        collection = False
        for event in events:
            change = event.parsed()
            if isinstance(change, ProductChange):
                collection = True  # a list may gain, lose or reorder it
                products.add(change.product)
                changed_records.add(change.product)
                slugs.add(change.slug)
                if isinstance(change, ProductUpdated) and change.previous_slug is not None:
                    slugs.add(change.previous_slug)
            elif isinstance(change, VariantChange):
                products.add(change.product)
                changed_records.add(change.product)
                variants.add(change.variant)
            elif isinstance(change, StockChanged):
                stock.add(change.variant)
            elif isinstance(change, ReviewCreated):
                products.add(change.product)
            else:
                raise MalformedEvent(f"{self.name} does not read {event.topic} #{event.id}")
        if stock:
            variants.update(stock)
            owners = await self.variants.products_of_variants(sorted(stock))
            products.update(owners.values())
        if changed_records:
            await self.records.invalidate_products(sorted(changed_records), sorted(slugs))
        record_variants = variants - stock
        if record_variants:
            await self.records.invalidate_variants(sorted(record_variants))
        if self.settle is not None:
            await self.settle()
        if products or variants:
            await self.responses.purge(purge_tags(products, variants, collection=collection))
