"""Catalog types: products, variants, categories, reviews and their connections.

Field resolvers here only reach loaders in the context; root fields and anything
that takes business decisions live in `resolvers/`. `build_products` (a page of product
records made into Product objects, each relation batch-loaded once for all) lives with
the types because their own fields need it (`related`, `Category.products`) and schema/
may not import resolvers/; the inputs and their conversion are in `schema/catalog_inputs.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import strawberry

from dataloaders.catalog import settled
from domain import catalog
from domain.listing import (
    related_count,
    reviews_page_request,
)
from domain.pagination import Page
from domain.response_cache import PRODUCTS_TAG
from schema.catalog_inputs import ProductFilter, ProductSortKeys, list_query
from schema.common import Money, Node, PageInfo, SharedBuilds, shared
from schema.context import Info
from schema.degradation import DegradedReason, degrade, response_paths
from schema.global_id import encode_gid
from schema.selection import selected_names


@strawberry.type(description="A named property of a product, such as screen size or material.")
class ProductAttribute:
    name: str
    value: str


@strawberry.type(description="A variant option and its chosen value, such as Size: M.")
class SelectedOption:
    name: str
    value: str


@strawberry.type(description="The lowest and highest variant prices of a product.")
class ProductPriceRange:
    min_variant_price: Money
    max_variant_price: Money


@strawberry.type(description="Average rating (0 when unrated) and number of reviews.")
class RatingSummary:
    average: float
    count: int


@strawberry.type(description="A product image, in display order.")
class ProductImage:
    url: str
    alt: str
    position: int


@strawberry.type(description="A customer's review of a product.")
class Review(Node):
    rating: int = strawberry.field(description="1 to 5.")
    title: str
    body: str
    author_name: str
    created_at: datetime

    @classmethod
    def of(cls, record: catalog.Review) -> Review:
        return cls(
            id=strawberry.ID(encode_gid("Review", record.id)),
            rating=record.rating,
            title=record.title,
            body=record.body,
            author_name=record.author_name,
            created_at=record.created_at,
        )


@strawberry.type
class ReviewEdge:
    cursor: str
    node: Review


@strawberry.type(description="Reviews, newest first.")
class ReviewConnection:
    edges: list[ReviewEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[catalog.Review]) -> ReviewConnection:
        return cls(
            edges=[ReviewEdge(cursor=e.cursor, node=Review.of(e.node)) for e in page.edges],
            page_info=PageInfo.of(page),
        )

    @classmethod
    def empty(cls) -> ReviewConnection:
        return cls.of(Page(edges=[], has_next_page=False, has_previous_page=False))


@strawberry.type(description="A purchasable version of a product: one size, one colour.")
class ProductVariant(Node):
    sku: str
    title: str
    selected_options: list[SelectedOption]
    price: Money
    compare_at_price: Money | None = strawberry.field(
        description="The price before a sale, if on sale."
    )
    available_for_sale: bool = strawberry.field(
        description="Whether at least one unit is in stock."
    )
    quantity_available: int = strawberry.field(description="Units in stock now.")
    record: strawberry.Private[catalog.Variant]

    @classmethod
    def of(cls, record: catalog.Variant, stock: catalog.InventoryLevel | None) -> ProductVariant:
        """The variant at this stock level. The same record (a cached record decodes to
        the same object while its bytes are unchanged) at the same level gives the same
        shared object, so a hot variant is built, and its selections completed, once per
        worker rather than once per request."""
        available = 0 if stock is None else stock.available
        inputs = (record, available)
        known = _SHARED_VARIANTS.get(inputs)
        if known is not None:
            return known
        compare_at = record.compare_at_money
        return _SHARED_VARIANTS.put(
            inputs,
            cls(
                id=strawberry.ID(encode_gid("ProductVariant", record.id)),
                sku=record.sku,
                title=record.title,
                selected_options=[
                    shared(SelectedOption(name=o.name, value=o.value)) for o in record.options
                ],
                price=Money.of(record.price_money),
                compare_at_price=None if compare_at is None else Money.of(compare_at),
                available_for_sale=available > 0,
                quantity_available=available,
                record=record,
            ),
        )

    @classmethod
    async def load_many(cls, info: Info, variants: list[catalog.Variant]) -> list[ProductVariant]:
        """Variants with their live stock: one batched stock read, then plain fields.

        Stock is read even when not selected: a storefront nearly always shows it,
        and plain fields cost a fraction of an async resolver per variant.
        """
        levels = await info.context.loaders.inventory_by_variant_id.load_many(
            [v.id for v in variants]
        )
        tags = info.context.state.response_tags
        if tags is not None:
            tags.note_variants((v.id for v in variants), (v.product_id for v in variants))
        return [cls.of(v, level) for v, level in zip(variants, levels, strict=True)]

    @strawberry.field
    async def product(self, info: Info) -> Product | None:
        record = await info.context.loaders.product_by_id.load(self.record.product_id)
        if record is None or not await info.context.can_see(record):
            return None
        return (await build_products(info, [record], selected_names(info)))[0]


# Variants, products and categories built lately (see SharedBuilds): a listing holds
# ~80 variants and 20 products, the bench's 200 product screens ~800 and ~1,800.
SHARED_VARIANTS_MAX = 8_192
SHARED_PRODUCTS_MAX = 4_096
SHARED_CATEGORIES_MAX = 1_024
_SHARED_VARIANTS: SharedBuilds[ProductVariant] = SharedBuilds(SHARED_VARIANTS_MAX)
_SHARED_PRODUCTS: SharedBuilds[Product] = SharedBuilds(SHARED_PRODUCTS_MAX)
_SHARED_CATEGORIES: SharedBuilds[Category] = SharedBuilds(SHARED_CATEGORIES_MAX)


# strawberry.enum registers the domain's enum in place and returns it, so the schema's
# ProductStatus is the domain class itself, and annotations with it are real types.
strawberry.enum(
    catalog.ProductStatus,
    description="Only ACTIVE products are shown to shoppers; ARCHIVED ones are retired.",
)
ProductStatus = catalog.ProductStatus


@strawberry.type(description="A product in the catalog.")
class Product(Node):
    slug: str
    title: str
    description: str
    brand: str
    attributes: list[ProductAttribute]
    price_range: ProductPriceRange
    rating_summary: RatingSummary
    created_at: datetime
    category: Category | None
    images: list[ProductImage] = strawberry.field(description="Images in display order.")
    variants: list[ProductVariant] = strawberry.field(description="All variants, in display order.")
    available_for_sale: bool = strawberry.field(description="Whether any variant is in stock.")
    status: ProductStatus = strawberry.field(
        description="ACTIVE for shoppers; staff also see their DRAFT and ARCHIVED products."
    )
    record: strawberry.Private[catalog.Product]

    @classmethod
    def of(
        cls,
        record: catalog.Product,
        *,
        category: Category | None,
        images: list[catalog.ProductImage],
        variants: list[ProductVariant],
    ) -> Product:
        """The product with these relations; the same record with the same category,
        images and variants gives the same shared object (see SharedBuilds)."""
        inputs = (record, category, images, variants)
        known = _SHARED_PRODUCTS.get(inputs)
        if known is not None:
            return known
        low, high = record.price_range
        return _SHARED_PRODUCTS.put(
            inputs,
            cls(
                id=strawberry.ID(encode_gid("Product", record.id)),
                slug=record.slug,
                title=record.title,
                description=record.description,
                brand=record.brand,
                attributes=[
                    shared(ProductAttribute(name=a.name, value=a.value)) for a in record.attributes
                ],
                price_range=shared(
                    ProductPriceRange(
                        min_variant_price=Money.of(low), max_variant_price=Money.of(high)
                    )
                ),
                rating_summary=shared(
                    RatingSummary(average=record.rating.average, count=record.rating.count)
                ),
                created_at=record.created_at,
                category=category,
                images=[
                    shared(ProductImage(url=i.url, alt=i.alt, position=i.position)) for i in images
                ],
                variants=variants,
                available_for_sale=any(v.available_for_sale for v in variants),
                status=record.status,
                record=record,
            ),
        )

    @strawberry.field(description="Reviews, newest first.")
    async def reviews(
        self, info: Info, first: int | None = 10, after: str | None = None
    ) -> ReviewConnection:
        request = reviews_page_request(first, after, info.context.settings.max_page_size)
        try:
            page = await info.context.loaders.reviews_by_product_id.load((self.record.id, request))
        except Exception as error:
            degrade(info, error, DegradedReason.REVIEWS_UNAVAILABLE)
            return ReviewConnection.empty()
        return ReviewConnection.of(page)

    @strawberry.field(description="Best-rated other products of the same category.")
    async def related(self, info: Info, first: int | None = 8) -> list[Product]:
        count = related_count(first, info.context.settings.max_page_size)
        loader = info.context.loaders.related_by_product_id
        try:
            products = await loader.load((self.record.id, count))
            return await build_products(info, products, selected_names(info), at=in_list)
        except Exception as error:
            degrade(info, error, DegradedReason.RELATED_UNAVAILABLE)
            return []


# Where the k-th built product sits below the current field, as `response_paths` steps.
ProductPlacement = Callable[[int], Sequence[str | int]]


def at_field(k: int) -> Sequence[str | int]:
    return ()  # the field's value is the product itself: product(slug:), node(id:)


def in_list(k: int) -> Sequence[str | int]:
    return (k,)  # the field is a list of products: related


def in_connection(k: int) -> Sequence[str | int]:
    return ("edges", k, "node")


async def build_products(
    info: Info,
    records: Sequence[catalog.Product],
    selection: frozenset[str],
    at: ProductPlacement = at_field,
) -> list[Product]:
    """Products with the relations `selection` asks for, each batch-loaded once for all.

    Variants and stock are the product: their failure fails it. Images and category are
    optional: a failed batch leaves them empty on every product, degraded at the paths
    `at` names (computed only then).
    """
    loaders = info.context.loaders
    ids = [r.id for r in records]
    category_ids = [r.category_id for r in records if r.category_id is not None]
    tags = info.context.state.response_tags
    if tags is not None:
        tags.note_products(ids, category_ids)
    want_variants = "variants" in selection or "availableForSale" in selection
    # Each load_many queues its keys as it is called, so the three batches already go
    # out together; they are then awaited in turn (no task per relation, which a cart of
    # ten lines would otherwise pay thirty times).
    variant_lists, image_lists, categories = await settled(
        loaders.variants_by_product_id.load_many(ids) if want_variants else None,
        loaders.images_by_product_id.load_many(ids) if "images" in selection else None,
        loaders.category_by_id.load_many(category_ids) if "category" in selection else None,
    )
    if isinstance(variant_lists, BaseException):
        raise variant_lists
    variants_by_product: dict[int, list[ProductVariant]] = {}
    if variant_lists:
        flat = [v for variants in variant_lists for v in variants]
        built = iter(await ProductVariant.load_many(info, flat))
        variants_by_product = {
            pid: [next(built) for _ in vs] for pid, vs in zip(ids, variant_lists, strict=True)
        }
    # Recorded once the products are sure to be returned, so no entry names a lost path.
    if isinstance(image_lists, BaseException):
        everyone = range(len(records))
        reason = DegradedReason.IMAGES_UNAVAILABLE
        _degrade_relation(info, image_lists, reason, at, everyone, "images")
        image_lists = None
    if isinstance(categories, BaseException):
        with_category = [k for k, r in enumerate(records) if r.category_id is not None]
        reason = DegradedReason.CATEGORY_UNAVAILABLE
        _degrade_relation(info, categories, reason, at, with_category, "category")
        categories = None
    images_by_product = dict(zip(ids, image_lists or [[] for _ in ids], strict=True))
    category_by_id = {c.id: Category.of(c) for c in categories or [] if c is not None}
    return [
        Product.of(
            record,
            category=None if record.category_id is None else category_by_id.get(record.category_id),
            images=images_by_product[record.id],
            variants=variants_by_product.get(record.id, []),
        )
        for record in records
    ]


def _degrade_relation(
    info: Info,
    error: BaseException,
    reason: DegradedReason,
    at: ProductPlacement,
    positions: Sequence[int],
    relation: str,
) -> None:
    if not isinstance(error, Exception):  # cancellation and the like are not degradations
        raise error
    paths = (p for k in positions for p in response_paths(info, [*at(k), relation]))
    degrade(info, error, reason, paths)


@strawberry.type
class ProductEdge:
    cursor: str
    node: Product


@strawberry.type(description="A page of products.")
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo

    @classmethod
    async def build(cls, info: Info, page: Page[catalog.Product]) -> ProductConnection:
        tags = info.context.state.response_tags
        if tags is not None:
            tags.note_collection(PRODUCTS_TAG)  # a new or re-sorted product changes it
        nodes = await build_products(
            info, [e.node for e in page.edges], selected_names(info, "edges", "node"), in_connection
        )
        return cls(
            edges=[
                ProductEdge(cursor=e.cursor, node=n) for e, n in zip(page.edges, nodes, strict=True)
            ],
            page_info=PageInfo.of(page),
        )


@strawberry.type(description="A node of the category tree.")
class Category(Node):
    slug: str
    name: str
    description: str
    record: strawberry.Private[catalog.Category]

    @classmethod
    def of(cls, record: catalog.Category) -> Category:
        known = _SHARED_CATEGORIES.get((record,))
        if known is not None:
            return known
        return _SHARED_CATEGORIES.put(
            (record,),
            cls(
                id=strawberry.ID(encode_gid("Category", record.id)),
                slug=record.slug,
                name=record.name,
                description=record.description,
                record=record,
            ),
        )

    @strawberry.field
    async def parent(self, info: Info) -> Category | None:
        if self.record.parent_id is None:
            return None
        try:
            record = await info.context.loaders.category_by_id.load(self.record.parent_id)
        except Exception as error:
            degrade(info, error, DegradedReason.CATEGORY_UNAVAILABLE)
            return None
        return None if record is None else Category.of(record)

    @strawberry.field
    async def children(self, info: Info) -> list[Category]:
        children = await info.context.loaders.children_by_category_id.load(self.record.id)
        return [Category.of(c) for c in children]

    @strawberry.field(description="Active products of this category and its descendants.")
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
        page = await info.context.loaders.products_by_category_slug.load((self.record.slug, query))
        return await ProductConnection.build(info, page)


@strawberry.type
class CategoryEdge:
    cursor: str
    node: Category


@strawberry.type(description="A page of categories.")
class CategoryConnection:
    edges: list[CategoryEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[catalog.Category]) -> CategoryConnection:
        return cls(
            edges=[CategoryEdge(cursor=e.cursor, node=Category.of(e.node)) for e in page.edges],
            page_info=PageInfo.of(page),
        )
