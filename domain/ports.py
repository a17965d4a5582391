"""What the domain needs from the outside, as protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.catalog import Category, Product
from domain.listing import ProductListQuery
from domain.pagination import Page, PageRequest


class CatalogReader(Protocol):
    async def list_products(self, query: ProductListQuery) -> Page[Product]: ...

    async def list_products_by_category(
        self, slugs: Sequence[str], query: ProductListQuery
    ) -> dict[str, Page[Product]]: ...

    async def list_categories(self, page: PageRequest, roots_only: bool) -> Page[Category]: ...


class CacheInvalidator(Protocol):
    """Later writes call this so cached catalog records never outlive a change."""

    async def invalidate_products(
        self, product_ids: list[int], slugs: Sequence[str] = ()
    ) -> None: ...

    async def invalidate_variants(self, variant_ids: list[int]) -> None: ...

    async def invalidate_categories(self, category_ids: list[int]) -> None: ...
