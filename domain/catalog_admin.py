"""Staff edit the catalog: products, variants and stock.

Each use case checks its input (domain/catalog_rules.py), asks the editor port for one
transaction that writes the rows and their outbox events, and then drops the cached
records it changed, so the staff member's next read already shows the change (the
event consumers invalidate again and re-index search).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Protocol, TypeVar

from domain.catalog import (
    Attribute,
    InventoryLevel,
    Product,
    ProductStatus,
    SelectedOption,
    Variant,
)
from domain.catalog_rules import (
    STOCK_MAX,
    ProductFields,
    VariantFields,
    check_product,
    check_quantity,
    check_variant,
    parse_price,
    slug_from_title,
)
from domain.customers import Customer
from domain.errors import ForbiddenError, Rejected, UserErrorCode
from domain.ports import CacheInvalidator

T = TypeVar("T")


class Keep(Enum):
    """An update leaves this field alone (for fields where null means "clear it")."""

    KEEP = "keep"


KEEP = Keep.KEEP


class Conflict(StrEnum):
    """What storage found that the input could not know: a race or a stale id."""

    SLUG_TAKEN = "slug taken"
    SKU_TAKEN = "sku taken"
    PRODUCT_MISSING = "product missing"
    VARIANT_MISSING = "variant missing"
    CATEGORY_MISSING = "category missing"


class ConflictError(Exception):
    """Raised by the editor; the transaction rolled back, nothing was written."""

    def __init__(self, conflict: Conflict) -> None:
        super().__init__(conflict.value)
        self.conflict = conflict


@dataclass(frozen=True, slots=True)
class ProductDraft:
    title: str
    slug: str | None = None
    description: str = ""
    brand: str = ""
    category_id: int | None = None
    attributes: tuple[Attribute, ...] = ()
    status: ProductStatus = ProductStatus.DRAFT


@dataclass(frozen=True, slots=True)
class ProductChanges:
    """None (or KEEP) leaves a field as it is."""

    title: str | None = None
    slug: str | None = None
    description: str | None = None
    brand: str | None = None
    category_id: int | Keep | None = KEEP
    attributes: tuple[Attribute, ...] | None = None
    status: ProductStatus | None = None


@dataclass(frozen=True, slots=True)
class VariantDraft:
    product_id: int
    sku: str
    title: str
    price: str  # a decimal string, as clients send money
    compare_at_price: str | None = None
    options: tuple[SelectedOption, ...] = ()
    stock: int = 0


@dataclass(frozen=True, slots=True)
class VariantChanges:
    sku: str | None = None
    title: str | None = None
    price: str | None = None
    compare_at_price: str | Keep | None = KEEP
    options: tuple[SelectedOption, ...] | None = None


@dataclass(frozen=True, slots=True)
class ProductSaved:
    product: Product
    stale_slugs: tuple[str, ...]  # every slug a cache may hold the product under


@dataclass(frozen=True, slots=True)
class VariantSaved:
    variant: Variant
    product_slug: str


@dataclass(frozen=True, slots=True)
class StockOutcome:
    """`level` when the change applied; else `available` is what there was (None: no
    such variant)."""

    level: InventoryLevel | None
    available: int | None


class CatalogEditor(Protocol):
    """Each method is one transaction with its outbox events; a `revise` callback runs on
    the locked current row and may raise Rejected, and then nothing is written."""

    async def create_product(self, fields: ProductFields) -> ProductSaved: ...

    async def update_product(
        self, product_id: int, revise: Callable[[Product], ProductFields]
    ) -> ProductSaved: ...

    async def archive_product(self, product_id: int) -> ProductSaved: ...

    async def create_variant(
        self, product_id: int, fields: VariantFields, stock: int
    ) -> VariantSaved: ...

    async def update_variant(
        self, variant_id: int, revise: Callable[[Variant], VariantFields]
    ) -> VariantSaved: ...

    async def adjust_stock(
        self, variant_id: int, delta: int | None, set_to: int | None, maximum: int
    ) -> StockOutcome: ...


def ensure_staff(viewer: Customer) -> Customer:
    """Catalog writes are for staff; anyone else is refused before anything is read."""
    if not viewer.is_staff:
        raise ForbiddenError()
    return viewer


class CatalogAdmin:
    def __init__(self, editor: CatalogEditor, cache: CacheInvalidator, currency_code: str):
        self._editor = editor
        self._cache = cache
        self._currency = currency_code

    async def create_product(self, staff: Customer, draft: ProductDraft) -> Product:
        ensure_staff(staff)
        title = draft.title.strip()
        slug = slug_from_title(title) if draft.slug is None else draft.slug.strip()
        if title and not slug:
            message = "no slug can be made from this title; give one"
            raise Rejected.one(UserErrorCode.INVALID, message, "slug")
        fields = check_product(
            ProductFields(
                title=title,
                slug=slug,
                description=draft.description.strip(),
                brand=draft.brand.strip(),
                category_id=draft.category_id,
                attributes=_clean_attributes(draft.attributes),
                status=draft.status,
            )
        )
        saved = await self._write(self._editor.create_product(fields))
        await self._cache.invalidate_products([saved.product.id], saved.stale_slugs)
        return saved.product

    async def update_product(
        self, staff: Customer, product_id: int, changes: ProductChanges
    ) -> Product:
        ensure_staff(staff)

        def revise(current: Product) -> ProductFields:
            return check_product(
                ProductFields(
                    title=_or(changes.title, current.title),
                    # A new title keeps the old slug: links to the product keep working.
                    slug=_or(changes.slug, current.slug),
                    description=_or(changes.description, current.description),
                    brand=_or(changes.brand, current.brand),
                    category_id=current.category_id
                    if isinstance(changes.category_id, Keep)
                    else changes.category_id,
                    attributes=current.attributes
                    if changes.attributes is None
                    else _clean_attributes(changes.attributes),
                    status=changes.status or current.status,
                )
            )

        saved = await self._write(self._editor.update_product(product_id, revise))
        await self._cache.invalidate_products([saved.product.id], saved.stale_slugs)
        return saved.product

    async def archive_product(self, staff: Customer, product_id: int) -> Product:
        ensure_staff(staff)
        saved = await self._write(self._editor.archive_product(product_id))
        await self._cache.invalidate_products([saved.product.id], saved.stale_slugs)
        return saved.product

    async def create_variant(self, staff: Customer, draft: VariantDraft) -> Variant:
        ensure_staff(staff)
        price = parse_price(draft.price, self._currency, "price")
        compare_at = (
            None
            if draft.compare_at_price is None
            else parse_price(draft.compare_at_price, self._currency, "compareAtPrice")
        )
        check_quantity(draft.stock, "stock")
        fields = check_variant(
            VariantFields(
                sku=draft.sku.strip(),
                title=draft.title.strip(),
                options=_clean_options(draft.options),
                price=price,
                compare_at_price=compare_at,
            )
        )
        saved = await self._write(
            self._editor.create_variant(draft.product_id, fields, draft.stock)
        )
        await self._variant_changed(saved)
        return saved.variant

    async def update_variant(
        self, staff: Customer, variant_id: int, changes: VariantChanges
    ) -> Variant:
        ensure_staff(staff)
        price = None
        if changes.price is not None:
            price = parse_price(changes.price, self._currency, "price")
        compare_at: int | Keep | None = KEEP
        if not isinstance(changes.compare_at_price, Keep):
            raw = changes.compare_at_price
            compare_at = None if raw is None else parse_price(raw, self._currency, "compareAtPrice")

        def revise(current: Variant) -> VariantFields:
            # Checked against the locked row: a concurrent price change cannot slip a
            # compare-at price under the price.
            return check_variant(
                VariantFields(
                    sku=current.sku if changes.sku is None else changes.sku.strip(),
                    title=_or(changes.title, current.title),
                    options=current.options
                    if changes.options is None
                    else _clean_options(changes.options),
                    price=current.price if price is None else price,
                    compare_at_price=current.compare_at_price
                    if isinstance(compare_at, Keep)
                    else compare_at,
                )
            )

        saved = await self._write(self._editor.update_variant(variant_id, revise))
        await self._variant_changed(saved)
        return saved.variant

    async def adjust_inventory(
        self, staff: Customer, variant_id: int, delta: int | None, set_to: int | None
    ) -> InventoryLevel:
        """Add `delta` (negative to remove) or set the count to `set_to`: exactly one."""
        ensure_staff(staff)
        if (delta is None) == (set_to is None):
            message = "give exactly one of delta and setQuantity"
            raise Rejected.one(UserErrorCode.INVALID, message, "delta")
        if delta is not None:
            check_quantity(delta, "delta", allow_negative=True)
        if set_to is not None:
            check_quantity(set_to, "setQuantity")
        outcome = await self._editor.adjust_stock(variant_id, delta, set_to, STOCK_MAX)
        if outcome.level is not None:
            return outcome.level  # stock is never cached: nothing to invalidate
        if outcome.available is None:
            raise _rejection(Conflict.VARIANT_MISSING)
        if delta is not None and outcome.available + delta < 0:
            raise Rejected.one(
                UserErrorCode.INSUFFICIENT_STOCK,
                f"only {outcome.available} available; stock cannot go below zero",
                "delta",
            )
        raise Rejected.one(UserErrorCode.INVALID_QUANTITY, "stock would be too large", "delta")

    async def _variant_changed(self, saved: VariantSaved) -> None:
        # The product carries its price range and its variant list is cached with it.
        product_id = saved.variant.product_id
        await self._cache.invalidate_products([product_id], [saved.product_slug])
        await self._cache.invalidate_variants([saved.variant.id])

    @staticmethod
    async def _write(write: Awaitable[T]) -> T:
        try:
            return await write
        except ConflictError as error:
            raise _rejection(error.conflict) from None


def _rejection(conflict: Conflict) -> Rejected:
    code, message, field = _CONFLICTS[conflict]
    return Rejected.one(code, message, field)


_CONFLICTS: dict[Conflict, tuple[UserErrorCode, str, str]] = {
    Conflict.SLUG_TAKEN: (UserErrorCode.SLUG_TAKEN, "another product has this slug", "slug"),
    Conflict.SKU_TAKEN: (UserErrorCode.SKU_TAKEN, "another variant has this sku", "sku"),
    Conflict.PRODUCT_MISSING: (UserErrorCode.PRODUCT_NOT_FOUND, "no such product", "productId"),
    Conflict.VARIANT_MISSING: (UserErrorCode.VARIANT_NOT_FOUND, "no such variant", "variantId"),
    Conflict.CATEGORY_MISSING: (
        UserErrorCode.CATEGORY_NOT_FOUND,
        "no such category",
        "categoryId",
    ),
}


def _or(value: str | None, current: str) -> str:
    return current if value is None else value.strip()


def _clean_attributes(attributes: tuple[Attribute, ...]) -> tuple[Attribute, ...]:
    return tuple(Attribute(a.name.strip(), a.value.strip()) for a in attributes)


def _clean_options(options: tuple[SelectedOption, ...]) -> tuple[SelectedOption, ...]:
    return tuple(SelectedOption(o.name.strip(), o.value.strip()) for o in options)
