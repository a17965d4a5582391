"""Root catalog fields: node lookup, products, categories."""

from __future__ import annotations

import asyncio

import strawberry

from domain.errors import ErrorCode, InvalidInput
from domain.listing import categories_page_request
from schema.addresses import ADDRESS_TYPE, CustomerAddress
from schema.catalog import (
    Category,
    CategoryConnection,
    Product,
    ProductConnection,
    ProductVariant,
    Review,
    at_field,
    build_products,
)
from schema.catalog_inputs import ProductFilter, ProductSortKeys, list_query
from schema.common import Node
from schema.context import Info
from schema.discounts import Discount
from schema.global_id import decode_gid, decode_int_gid, int_key
from schema.selection import selected_names

MAX_NODES = 100


async def _load_node(
    info: Info, global_id: str, field: str, position: int | None = None
) -> Node | None:
    """The object behind `global_id`; `position` is its index in a `nodes` answer."""
    type_name, key = decode_gid(global_id, field=field)
    record_id = int_key(key)
    if record_id is None:
        return None
    loaders = info.context.loaders
    if type_name == "Product":
        product = await loaders.product_by_id.load(record_id)
        if product is None or not await info.context.can_see(product):
            return None
        at = at_field if position is None else (lambda _: (position,))
        return (await build_products(info, [product], selected_names(info), at))[0]
    if type_name == "ProductVariant":
        variant = await loaders.variant_by_id.load(record_id)
        if variant is None:
            return None
        parent = await loaders.product_by_id.load(variant.product_id)
        if not await info.context.can_see(parent):
            return None
        return (await ProductVariant.load_many(info, [variant]))[0]
    if type_name == "Category":
        category = await loaders.category_by_id.load(record_id)
        return None if category is None else Category.of(category)
    if type_name == ADDRESS_TYPE:
        viewer = await info.context.viewer()  # only its owner sees an address
        if viewer is None:
            return None
        saved = await info.context.address_by_id.load((viewer.id, record_id))
        return None if saved is None else CustomerAddress.of_saved(saved)
    if type_name == "Review":
        review = await loaders.review_by_id.load(record_id)
        return None if review is None else Review.of(review)
    if type_name == "Discount":
        viewer = await info.context.viewer()  # staff only: anyone else finds nothing
        if viewer is None or not viewer.is_staff:
            return None
        discount = await info.context.discounts.by_id(record_id)
        currency = info.context.settings.currency_code
        return None if discount is None else Discount.of(discount, currency)
    return None


@strawberry.type
class CatalogQuery:
    @strawberry.field(description="Any object by its global id; null when it does not exist.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await _load_node(info, id, "id")

    @strawberry.field(
        description="Objects by global ids, in order; null for each that does not exist."
    )
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise InvalidInput(
                f"at most {MAX_NODES} ids", code=ErrorCode.BAD_USER_INPUT, field="ids"
            )
        # Gathered, not awaited in turn: the loaders batch all ids into one statement per type.
        return list(
            await asyncio.gather(
                *(_load_node(info, value, "ids", i) for i, value in enumerate(ids))
            )
        )

    @strawberry.field(description="A product by id or slug (exactly one); null when not found.")
    async def product(
        self, info: Info, id: strawberry.ID | None = None, slug: str | None = None
    ) -> Product | None:
        if (id is None) == (slug is None):
            raise InvalidInput("give exactly one of id and slug", field="id")
        loaders = info.context.loaders
        if id is not None:
            record = await loaders.product_by_id.load(decode_int_gid(id, "Product"))
        else:
            record = await loaders.product_by_slug.load(slug or "")
        if record is None or not await info.context.can_see(record):
            return None
        return (await build_products(info, [record], selected_names(info)))[0]

    @strawberry.field(description="Active products, keyset-paginated; `first` at most 100.")
    async def products(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: ProductFilter | None = None,
        sort_key: ProductSortKeys = ProductSortKeys.ID,
        reverse: bool = False,
    ) -> ProductConnection:
        query = list_query(info, first, after, filter, sort_key, reverse)
        return await ProductConnection.build(info, await info.context.catalog.list_products(query))

    @strawberry.field(description="Categories in id order; `rootsOnly` for the top of each tree.")
    async def categories(
        self, info: Info, first: int | None = 20, after: str | None = None, roots_only: bool = False
    ) -> CategoryConnection:
        request = categories_page_request(first, after, info.context.settings.max_page_size)
        return CategoryConnection.of(
            await info.context.catalog.list_categories(request, roots_only)
        )

    @strawberry.field(description="A category by slug; null when not found.")
    async def category(self, info: Info, slug: str) -> Category | None:
        record = await info.context.loaders.category_by_slug.load(slug)
        return None if record is None else Category.of(record)
