"""Staff edit the catalog: products, variants, stock. A guest gets UNAUTHENTICATED, a
customer FORBIDDEN, both before anything is read or written."""

from __future__ import annotations

import strawberry

from domain import catalog
from domain.catalog_admin import (
    KEEP,
    CatalogAdmin,
    Keep,
    ProductChanges,
    ProductDraft,
    VariantChanges,
    VariantDraft,
    ensure_staff,
)
from domain.customers import Customer
from domain.errors import Rejected, UserErrorCode
from schema.catalog import Product, ProductVariant, build_products
from schema.catalog_admin import (
    InventoryAdjustInput,
    InventoryAdjustPayload,
    ProductArchiveInput,
    ProductArchivePayload,
    ProductAttributeInput,
    ProductCreateInput,
    ProductCreatePayload,
    ProductUpdateInput,
    ProductUpdatePayload,
    SelectedOptionInput,
    VariantCreateInput,
    VariantCreatePayload,
    VariantUpdateInput,
    VariantUpdatePayload,
)
from schema.context import Info
from schema.global_id import int_gid_or_none
from schema.refusals import refusals_as
from schema.selection import selected_names


@strawberry.type
class CatalogAdminMutation:
    @strawberry.mutation(description="Staff: create a product; it has no variants yet.")
    @refusals_as(ProductCreatePayload)
    async def product_create(self, info: Info, input: ProductCreateInput) -> ProductCreatePayload:
        staff, admin = await _staff(info)
        draft = ProductDraft(
            title=input.title,
            slug=input.slug,
            description=input.description,
            brand=input.brand,
            category_id=_category_id(input.category_id),
            attributes=_attributes(input.attributes),
            status=input.status,
        )
        product = await admin.create_product(staff, draft)
        return ProductCreatePayload(product=await _product(info, product), user_errors=[])

    @strawberry.mutation(description="Staff: change a product's fields.")
    @refusals_as(ProductUpdatePayload)
    async def product_update(self, info: Info, input: ProductUpdateInput) -> ProductUpdatePayload:
        staff, admin = await _staff(info)
        changes = ProductChanges(
            title=input.title,
            slug=input.slug,
            description=input.description,
            brand=input.brand,
            category_id=KEEP
            if input.category_id is strawberry.UNSET
            else _category_id(input.category_id),
            attributes=None if input.attributes is None else _attributes(input.attributes),
            status=input.status,
        )
        product = await admin.update_product(staff, _product_id(input.id), changes)
        return ProductUpdatePayload(product=await _product(info, product), user_errors=[])

    @strawberry.mutation(description="Staff: retire a product; shoppers no longer see it.")
    @refusals_as(ProductArchivePayload)
    async def product_archive(
        self, info: Info, input: ProductArchiveInput
    ) -> ProductArchivePayload:
        staff, admin = await _staff(info)
        product = await admin.archive_product(staff, _product_id(input.id))
        return ProductArchivePayload(product=await _product(info, product), user_errors=[])

    @strawberry.mutation(description="Staff: add a variant, with its opening stock, to a product.")
    @refusals_as(VariantCreatePayload)
    async def variant_create(self, info: Info, input: VariantCreateInput) -> VariantCreatePayload:
        staff, admin = await _staff(info)
        draft = VariantDraft(
            product_id=_product_id(input.product_id, "productId"),
            sku=input.sku,
            title=input.title,
            price=input.price,
            compare_at_price=input.compare_at_price,
            options=_options(input.options),
            stock=input.stock,
        )
        variant = await admin.create_variant(staff, draft)
        return VariantCreatePayload(variant=await _variant(info, variant), user_errors=[])

    @strawberry.mutation(description="Staff: change a variant's sku, title, options or prices.")
    @refusals_as(VariantUpdatePayload)
    async def variant_update(self, info: Info, input: VariantUpdateInput) -> VariantUpdatePayload:
        staff, admin = await _staff(info)
        compare_at: str | Keep | None = (
            KEEP if input.compare_at_price is strawberry.UNSET else input.compare_at_price
        )
        changes = VariantChanges(
            sku=input.sku,
            title=input.title,
            price=input.price,
            compare_at_price=compare_at,
            options=None if input.options is None else _options(input.options),
        )
        variant = await admin.update_variant(staff, _variant_id(input.id), changes)
        return VariantUpdatePayload(variant=await _variant(info, variant), user_errors=[])

    @strawberry.mutation(
        description="Staff: add or remove units of a variant's stock, or set the count."
    )
    @refusals_as(InventoryAdjustPayload)
    async def inventory_adjust(
        self, info: Info, input: InventoryAdjustInput
    ) -> InventoryAdjustPayload:
        staff, admin = await _staff(info)
        variant_id = _variant_id(input.variant_id, "variantId")
        level = await admin.adjust_inventory(staff, variant_id, input.delta, input.set_quantity)
        variant = await info.context.loaders.variant_by_id.load(variant_id)
        return InventoryAdjustPayload(
            variant=None if variant is None else ProductVariant.of(variant, level), user_errors=[]
        )


async def _staff(info: Info) -> tuple[Customer, CatalogAdmin]:
    # require_viewer marks the answer private: staff data is never cached publicly.
    return ensure_staff(await info.context.require_viewer()), info.context.catalog_admin


async def _product(info: Info, record: catalog.Product) -> Product:
    info.context.loaders.product_by_id.prime(record.id, record)
    return (await build_products(info, [record], selected_names(info, "product")))[0]


async def _variant(info: Info, record: catalog.Variant) -> ProductVariant:
    return (await ProductVariant.load_many(info, [record]))[0]


def _product_id(value: strawberry.ID, field: str = "id") -> int:
    return _id(value, "Product", UserErrorCode.PRODUCT_NOT_FOUND, "no such product", field)


def _variant_id(value: strawberry.ID, field: str = "id") -> int:
    return _id(value, "ProductVariant", UserErrorCode.VARIANT_NOT_FOUND, "no such variant", field)


def _category_id(value: strawberry.ID | None) -> int | None:
    if value is None:
        return None
    message = "no such category"
    return _id(value, "Category", UserErrorCode.CATEGORY_NOT_FOUND, message, "categoryId")


def _id(value: str, type_name: str, code: UserErrorCode, message: str, field: str) -> int:
    # A wrong id is a business failure (a userError), like an id of a deleted object.
    key = int_gid_or_none(value, type_name)
    if key is None:
        raise Rejected.one(code, message, field)
    return key


def _attributes(values: list[ProductAttributeInput]) -> tuple[catalog.Attribute, ...]:
    return tuple(catalog.Attribute(a.name, a.value) for a in values)


def _options(values: list[SelectedOptionInput]) -> tuple[catalog.SelectedOption, ...]:
    return tuple(catalog.SelectedOption(o.name, o.value) for o in values)
