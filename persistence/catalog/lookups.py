"""Catalog records for the write side (carts, reviews), through the record cache."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.catalog import Category, Product, Variant
from persistence.catalog.records import (
    decode_category,
    decode_product,
    decode_variant,
    encode_product,
    encode_record,
)
from persistence.catalog.repository import CatalogRepository
from persistence.redis.record_cache import RecordCache


class CachedCatalogLookups:
    """Implements domain.carts.Merchandise and domain.reviews.ProductLookup. Misses are
    read from the primary: a cart is priced from records no older than the cache's
    invalidation, whatever the read replica's lag."""

    def __init__(self, repository: CatalogRepository, cache: RecordCache) -> None:
        self._repository = repository.current
        self._cache = cache

    async def variants(self, ids: Sequence[int]) -> Mapping[int, Variant]:
        return await self._cache.read_through(
            "variant", list(ids), self._repository.variants_by_ids, encode_record, decode_variant
        )

    async def products(self, ids: Sequence[int]) -> Mapping[int, Product]:
        return await self._cache.read_through(
            "product", list(ids), self._repository.products_by_ids, encode_product, decode_product
        )

    async def categories(self, ids: Sequence[int]) -> Mapping[int, Category]:
        return await self._cache.read_through(
            "category",
            list(ids),
            self._repository.categories_by_ids,
            encode_record,
            decode_category,
        )

    async def product(self, product_id: int) -> Product | None:
        return (await self.products([product_id])).get(product_id)


class DatabaseCatalogLookups:
    """Merchandise straight from the primary, for checkout: prices must be current."""

    def __init__(self, repository: CatalogRepository) -> None:
        self._repository = repository.current

    async def variants(self, ids: Sequence[int]) -> Mapping[int, Variant]:
        return await self._repository.variants_by_ids(list(ids))

    async def products(self, ids: Sequence[int]) -> Mapping[int, Product]:
        return await self._repository.products_by_ids(list(ids))

    async def categories(self, ids: Sequence[int]) -> Mapping[int, Category]:
        return await self._repository.categories_by_ids(list(ids))
