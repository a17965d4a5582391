"""An in-memory `CatalogEditor` with the SQL editor's rules: unique slugs and skus,
known categories, price ranges recomputed from the variants, stock bounded by 0 and the
maximum, and a `revise` that raises leaving everything as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from domain.catalog import InventoryLevel, Product, ProductStatus, RatingSummary, Variant
from domain.catalog_admin import (
    Conflict,
    ConflictError,
    ProductSaved,
    StockOutcome,
    VariantSaved,
)
from domain.catalog_rules import ProductFields, VariantFields
from tests.fakes.catalog import T0

if TYPE_CHECKING:
    from domain.catalog_admin import CatalogEditor


class FakeCatalogEditor:
    def __init__(self, currency_code: str = "USD", category_ids: Iterable[int] = ()) -> None:
        self.currency_code = currency_code
        self.category_ids = set(category_ids)
        self.products: dict[int, Product] = {}
        self.variants: dict[int, Variant] = {}
        self.stock: dict[int, int] = {}

    async def create_product(self, fields: ProductFields) -> ProductSaved:
        self._require_category(fields.category_id)
        self._require_free_slug(fields.slug, None)
        product_id = max(self.products, default=0) + 1
        product = Product(
            id=product_id,
            slug=fields.slug,
            title=fields.title,
            description=fields.description,
            brand=fields.brand,
            category_id=fields.category_id,
            status=fields.status,
            attributes=fields.attributes,
            price_min=0,
            price_max=0,
            currency_code=self.currency_code,
            created_at=T0,
            updated_at=T0,
            rating=RatingSummary.empty(product_id),
        )
        self.products[product_id] = product
        return ProductSaved(product, (product.slug,))

    async def update_product(
        self, product_id: int, revise: Callable[[Product], ProductFields]
    ) -> ProductSaved:
        current = self._product(product_id)
        fields = revise(current)  # may raise: nothing written yet
        if fields.category_id != current.category_id:
            self._require_category(fields.category_id)
        self._require_free_slug(fields.slug, product_id)
        product = replace(
            current,
            title=fields.title,
            slug=fields.slug,
            description=fields.description,
            brand=fields.brand,
            category_id=fields.category_id,
            attributes=fields.attributes,
            status=fields.status,
        )
        self.products[product_id] = product
        return ProductSaved(product, tuple(dict.fromkeys((current.slug, product.slug))))

    async def archive_product(self, product_id: int) -> ProductSaved:
        product = replace(self._product(product_id), status=ProductStatus.ARCHIVED)
        self.products[product_id] = product
        return ProductSaved(product, (product.slug,))

    async def create_variant(
        self, product_id: int, fields: VariantFields, stock: int
    ) -> VariantSaved:
        product = self._product(product_id)
        if any(v.sku == fields.sku for v in self.variants.values()):
            raise ConflictError(Conflict.SKU_TAKEN)
        variant_id = max(self.variants, default=0) + 1
        position = sum(1 for v in self.variants.values() if v.product_id == product_id)
        variant = Variant(
            id=variant_id,
            product_id=product_id,
            sku=fields.sku,
            title=fields.title,
            options=fields.options,
            price=fields.price,
            compare_at_price=fields.compare_at_price,
            currency_code=product.currency_code,
            position=position,
        )
        self.variants[variant_id] = variant
        self.stock[variant_id] = stock
        self._reprice(product_id)
        return VariantSaved(variant, product.slug)

    async def update_variant(
        self, variant_id: int, revise: Callable[[Variant], VariantFields]
    ) -> VariantSaved:
        current = self.variants.get(variant_id)
        if current is None:
            raise ConflictError(Conflict.VARIANT_MISSING)
        fields = revise(current)
        if any(v.sku == fields.sku and v.id != variant_id for v in self.variants.values()):
            raise ConflictError(Conflict.SKU_TAKEN)
        variant = replace(
            current,
            sku=fields.sku,
            title=fields.title,
            options=fields.options,
            price=fields.price,
            compare_at_price=fields.compare_at_price,
        )
        self.variants[variant_id] = variant
        self._reprice(variant.product_id)
        return VariantSaved(variant, self.products[variant.product_id].slug)

    async def adjust_stock(
        self, variant_id: int, delta: int | None, set_to: int | None, maximum: int
    ) -> StockOutcome:
        if variant_id not in self.variants:
            return StockOutcome(None, None)
        current = self.stock.get(variant_id, 0)
        after = set_to if set_to is not None else current + (delta or 0)
        if set_to is None and not 0 <= after <= maximum:
            return StockOutcome(None, current)
        self.stock[variant_id] = after
        return StockOutcome(InventoryLevel(variant_id, after), after)

    def _product(self, product_id: int) -> Product:
        product = self.products.get(product_id)
        if product is None:
            raise ConflictError(Conflict.PRODUCT_MISSING)
        return product

    def _require_category(self, category_id: int | None) -> None:
        if category_id is not None and category_id not in self.category_ids:
            raise ConflictError(Conflict.CATEGORY_MISSING)

    def _require_free_slug(self, slug: str, owner_id: int | None) -> None:
        if any(p.slug == slug and p.id != owner_id for p in self.products.values()):
            raise ConflictError(Conflict.SLUG_TAKEN)

    def _reprice(self, product_id: int) -> None:
        prices = [v.price for v in self.variants.values() if v.product_id == product_id]
        self.products[product_id] = replace(
            self.products[product_id],
            price_min=min(prices, default=0),
            price_max=max(prices, default=0),
        )


if TYPE_CHECKING:
    _conforms: CatalogEditor = FakeCatalogEditor()
