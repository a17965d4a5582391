"""Staff catalog writes: each one transaction with its outbox events.

Uniqueness is left to the database: INSERT ... ON CONFLICT DO NOTHING for new slugs
and skus, the unique violation itself for changed ones, so two staff members racing
for one slug get one product and one SLUG_TAKEN, never a 500. Variant writes lock
their product row first, so concurrent price changes recompute price_min/price_max
one after the other, each seeing the last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.catalog import InventoryLevel, Product, ProductStatus, Variant
from domain.catalog_admin import (
    Conflict,
    ConflictError,
    ProductSaved,
    StockOutcome,
    VariantSaved,
)
from domain.catalog_rules import ProductFields, VariantFields
from domain.events import (
    ProductArchived,
    ProductCreated,
    ProductUpdated,
    VariantCreated,
    VariantUpdated,
)
from persistence.catalog.records import product_from_row, variant_from_row
from persistence.catalog.statements import product_columns, products_with_rating
from persistence.db import Database
from persistence.events.outbox import emit, emit_stock
from persistence.tables import categories, inventory_levels, product_variants, products


class _StockRefused(Exception):
    def __init__(self, outcome: StockOutcome) -> None:
        self.outcome = outcome


class SqlCatalogEditor:
    """Implements domain.catalog_admin.CatalogEditor."""

    def __init__(self, db: Database, currency_code: str) -> None:
        self._db = db
        self._currency = currency_code
        self._insert: Any = postgresql.insert if db.is_postgres else sqlite.insert

    # -- products ------------------------------------------------------------------------

    async def create_product(self, fields: ProductFields) -> ProductSaved:
        async with self._db.writer.begin() as connection:
            await _require_category(connection, fields.category_id)
            row = (
                (
                    await connection.execute(
                        self._insert(products)
                        .values(**_product_values(fields), currency_code=self._currency)
                        .on_conflict_do_nothing(index_elements=[products.c.slug])
                        .returning(*products.c)
                    )
                )
                .mappings()
                .one_or_none()
            )
            if row is None:
                raise ConflictError(Conflict.SLUG_TAKEN)
            await emit(connection, ProductCreated(product=row["id"], slug=row["slug"]))
        product = product_from_row({**row, "rating_average": 0.0, "rating_count": 0})
        return ProductSaved(product, (product.slug,))

    async def update_product(
        self, product_id: int, revise: Callable[[Product], ProductFields]
    ) -> ProductSaved:
        try:
            async with self._db.writer.begin() as connection:
                current = await _locked_product(connection, product_id)
                fields = revise(current)  # may refuse: leaving the block rolls back
                if fields.category_id != current.category_id:
                    await _require_category(connection, fields.category_id)
                product = await _write_product(
                    connection, product_id, _product_values(fields), current
                )
                # A renamed product's consumers drop what is cached under the old slug too.
                renamed_from = current.slug if product.slug != current.slug else None
                await emit(
                    connection,
                    ProductUpdated(
                        product=product_id, slug=product.slug, previous_slug=renamed_from
                    ),
                )
        except IntegrityError as error:
            if _violates(error, "uq_products_slug", "products.slug"):
                raise ConflictError(Conflict.SLUG_TAKEN) from None
            raise
        return ProductSaved(product, tuple(dict.fromkeys((current.slug, product.slug))))

    async def archive_product(self, product_id: int) -> ProductSaved:
        async with self._db.writer.begin() as connection:
            current = await _locked_product(connection, product_id)
            values = {"status": ProductStatus.ARCHIVED.value}
            product = await _write_product(connection, product_id, values, current)
            await emit(connection, ProductArchived(product=product_id, slug=product.slug))
        return ProductSaved(product, (product.slug,))

    # -- variants ------------------------------------------------------------------------

    async def create_variant(
        self, product_id: int, fields: VariantFields, stock: int
    ) -> VariantSaved:
        async with self._db.writer.begin() as connection:
            slug, currency = await _lock_product(connection, product_id)
            next_position = (
                select(func.coalesce(func.max(product_variants.c.position) + 1, 0))
                .where(product_variants.c.product_id == product_id)
                .scalar_subquery()
            )
            row = (
                (
                    await connection.execute(
                        self._insert(product_variants)
                        .values(
                            product_id=product_id,
                            currency_code=currency,
                            position=next_position,
                            **_variant_values(fields),
                        )
                        .on_conflict_do_nothing(index_elements=[product_variants.c.sku])
                        .returning(*product_variants.c)
                    )
                )
                .mappings()
                .one_or_none()
            )
            if row is None:
                raise ConflictError(Conflict.SKU_TAKEN)
            variant = variant_from_row(row)
            await connection.execute(
                insert(inventory_levels).values(variant_id=variant.id, available=stock)
            )
            await _reprice(connection, product_id)
            await emit(connection, VariantCreated(variant=variant.id, product=product_id))
            await emit_stock(connection, {variant.id: stock})
        return VariantSaved(variant, slug)

    async def update_variant(
        self, variant_id: int, revise: Callable[[Variant], VariantFields]
    ) -> VariantSaved:
        try:
            async with self._db.writer.begin() as connection:
                product_id = (
                    await connection.execute(
                        select(product_variants.c.product_id).where(
                            product_variants.c.id == variant_id
                        )
                    )
                ).scalar_one_or_none()
                if product_id is None:
                    raise ConflictError(Conflict.VARIANT_MISSING)
                # Product first, then variant: the order every variant write locks in.
                slug, _ = await _lock_product(connection, product_id)
                current_row = (
                    (
                        await connection.execute(
                            select(product_variants)
                            .where(product_variants.c.id == variant_id)
                            .with_for_update()
                        )
                    )
                    .mappings()
                    .one()
                )
                current = variant_from_row(current_row)
                fields = revise(current)
                row = (
                    (
                        await connection.execute(
                            update(product_variants)
                            .where(product_variants.c.id == variant_id)
                            .values(**_variant_values(fields), updated_at=func.now())
                            .returning(*product_variants.c)
                        )
                    )
                    .mappings()
                    .one()
                )
                if fields.price != current.price:
                    await _reprice(connection, product_id)
                await emit(connection, VariantUpdated(variant=variant_id, product=product_id))
        except IntegrityError as error:
            if _violates(error, "uq_product_variants_sku", "product_variants.sku"):
                raise ConflictError(Conflict.SKU_TAKEN) from None
            raise
        return VariantSaved(variant_from_row(row), slug)

    # -- stock ---------------------------------------------------------------------------

    async def adjust_stock(
        self, variant_id: int, delta: int | None, set_to: int | None, maximum: int
    ) -> StockOutcome:
        try:
            async with self._db.writer.begin() as connection:
                if set_to is not None:
                    available = await self._set_stock(connection, variant_id, set_to)
                else:
                    assert delta is not None
                    available = await self._add_stock(connection, variant_id, delta, maximum)
                await emit_stock(connection, {variant_id: available})
        except _StockRefused as refused:
            return refused.outcome
        return StockOutcome(InventoryLevel(variant_id, available), available)

    async def _set_stock(self, connection: AsyncConnection, variant_id: int, units: int) -> int:
        if not await _variant_exists(connection, variant_id):
            raise _StockRefused(StockOutcome(None, None))
        upsert = self._insert(inventory_levels).values(variant_id=variant_id, available=units)
        upsert = upsert.on_conflict_do_update(
            index_elements=[inventory_levels.c.variant_id],
            set_={"available": units, "updated_at": func.now()},
        ).returning(inventory_levels.c.available)
        return int((await connection.execute(upsert)).scalar_one())

    async def _add_stock(
        self, connection: AsyncConnection, variant_id: int, delta: int, maximum: int
    ) -> int:
        # One conditional UPDATE: concurrent adjustments queue on the row lock and each
        # re-checks the bound against the committed count, so none can go below zero.
        after = inventory_levels.c.available + delta
        conditional = (
            update(inventory_levels)
            .where(inventory_levels.c.variant_id == variant_id, after >= 0, after <= maximum)
            .values(available=after, updated_at=func.now())
            .returning(inventory_levels.c.available)
        )
        available = (await connection.execute(conditional)).scalar_one_or_none()
        if available is not None:
            return int(available)
        if not await _variant_exists(connection, variant_id):
            raise _StockRefused(StockOutcome(None, None))
        # A variant without a stock row holds zero units; give it its row, then retry.
        await connection.execute(
            self._insert(inventory_levels)
            .values(variant_id=variant_id, available=0)
            .on_conflict_do_nothing(index_elements=[inventory_levels.c.variant_id])
        )
        available = (await connection.execute(conditional)).scalar_one_or_none()
        if available is not None:
            return int(available)
        current = (
            await connection.execute(
                select(inventory_levels.c.available).where(
                    inventory_levels.c.variant_id == variant_id
                )
            )
        ).scalar_one()
        raise _StockRefused(StockOutcome(None, int(current)))


def _product_values(fields: ProductFields) -> dict[str, Any]:
    return {
        "title": fields.title,
        "slug": fields.slug,
        "description": fields.description,
        "brand": fields.brand,
        "category_id": fields.category_id,
        "attributes": [{"name": a.name, "value": a.value} for a in fields.attributes],
        "status": fields.status.value,
    }


def _variant_values(fields: VariantFields) -> dict[str, Any]:
    return {
        "sku": fields.sku,
        "title": fields.title,
        "options": [{"name": o.name, "value": o.value} for o in fields.options],
        "price": fields.price,
        "compare_at_price": fields.compare_at_price,
    }


async def _locked_product(connection: AsyncConnection, product_id: int) -> Product:
    row = (
        (
            await connection.execute(
                select(*product_columns)
                .select_from(products_with_rating)
                .where(products.c.id == product_id)
                .with_for_update(of=products)
            )
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise ConflictError(Conflict.PRODUCT_MISSING)
    return product_from_row(row)


async def _lock_product(connection: AsyncConnection, product_id: int) -> tuple[str, str]:
    """(slug, currency) of the product, its row locked for this transaction."""
    row = (
        await connection.execute(
            select(products.c.slug, products.c.currency_code)
            .where(products.c.id == product_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise ConflictError(Conflict.PRODUCT_MISSING)
    return str(row.slug), str(row.currency_code)


async def _write_product(
    connection: AsyncConnection, product_id: int, values: dict[str, Any], current: Product
) -> Product:
    row = (
        (
            await connection.execute(
                update(products)
                .where(products.c.id == product_id)
                .values(**values, updated_at=func.now())
                .returning(*products.c)
            )
        )
        .mappings()
        .one()
    )
    rating = current.rating
    return product_from_row({**row, "rating_average": rating.average, "rating_count": rating.count})


async def _require_category(connection: AsyncConnection, category_id: int | None) -> None:
    if category_id is None:
        return
    # KEY SHARE: the category cannot be deleted before this transaction commits.
    found = (
        await connection.execute(
            select(categories.c.id)
            .where(categories.c.id == category_id)
            .with_for_update(read=True, key_share=True)
        )
    ).scalar_one_or_none()
    if found is None:
        raise ConflictError(Conflict.CATEGORY_MISSING)


async def _variant_exists(connection: AsyncConnection, variant_id: int) -> bool:
    found = (
        await connection.execute(
            select(product_variants.c.id)
            .where(product_variants.c.id == variant_id)
            .with_for_update(read=True, key_share=True)
        )
    ).scalar_one_or_none()
    return found is not None


async def _reprice(connection: AsyncConnection, product_id: int) -> None:
    """price_min/price_max from the product's variants, recomputed under its row lock."""
    prices = select(product_variants.c.price).where(product_variants.c.product_id == product_id)
    prices_sq = prices.subquery()
    await connection.execute(
        update(products)
        .where(products.c.id == product_id)
        .values(
            price_min=select(func.coalesce(func.min(prices_sq.c.price), 0)).scalar_subquery(),
            price_max=select(func.coalesce(func.max(prices_sq.c.price), 0)).scalar_subquery(),
            updated_at=func.now(),
        )
    )


def _violates(error: IntegrityError, constraint: str, sqlite_column: str) -> bool:
    """Whether `error` is this unique constraint (PostgreSQL names it; SQLite names the
    column)."""
    text = str(error.orig)
    return constraint in text or f"UNIQUE constraint failed: {sqlite_column}" in text
