"""In-memory catalog-side ports: a cache invalidator that records its calls, the
variant -> product map, a product lookup, and a review writer (one review per customer
and product, newest first)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from domain.catalog import Product, ProductStatus, RatingSummary, Review, Variant
from domain.pagination import Edge, Page, PageRequest, encode_cursor
from domain.reviews import NewReview

if TYPE_CHECKING:
    from domain.events import ProductsOfVariants
    from domain.ports import CacheInvalidator
    from domain.reviews import ProductLookup, ReviewWriter

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def a_product(
    product_id: int,
    title: str,
    price: int,
    currency: str = "USD",
    status: ProductStatus = ProductStatus.ACTIVE,
) -> Product:
    return Product(
        id=product_id,
        slug=f"product-{product_id}",
        title=title,
        description="",
        brand="Acme",
        category_id=None,
        status=status,
        attributes=(),
        price_min=price,
        price_max=price,
        currency_code=currency,
        created_at=T0,
        updated_at=T0,
        rating=RatingSummary.empty(product_id),
    )


def a_variant(variant_id: int, product_id: int, price: int, currency: str = "USD") -> Variant:
    return Variant(
        id=variant_id,
        product_id=product_id,
        sku=f"SKU-{variant_id}",
        title="Default",
        options=(),
        price=price,
        compare_at_price=None,
        currency_code=currency,
        position=0,
    )


class FakeCacheInvalidator:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int], list[str]]] = []  # (kind, ids, slugs)

    async def invalidate_products(self, product_ids: list[int], slugs: Sequence[str] = ()) -> None:
        self.calls.append(("products", product_ids, list(slugs)))

    async def invalidate_variants(self, variant_ids: list[int]) -> None:
        self.calls.append(("variants", variant_ids, []))

    async def invalidate_categories(self, category_ids: list[int]) -> None:
        self.calls.append(("categories", category_ids, []))


class FakeProductsOfVariants:
    def __init__(self, product_of: Mapping[int, int]) -> None:
        self.product_of = dict(product_of)  # variant id -> product id

    async def products_of_variants(self, variant_ids: Sequence[int]) -> dict[int, int]:
        return {v: self.product_of[v] for v in variant_ids if v in self.product_of}


class FakeProductLookup:
    def __init__(self, products: Iterable[Product] = ()) -> None:
        self.products = {product.id: product for product in products}

    async def product(self, product_id: int) -> Product | None:
        return self.products.get(product_id)


class FakeReviewWriter:
    def __init__(self) -> None:
        self.reviews: list[Review] = []

    async def add(self, review: NewReview) -> Review | None:
        if any(
            (r.product_id, r.customer_id) == (review.product_id, review.customer_id)
            for r in self.reviews
        ):
            return None
        stored = Review(
            len(self.reviews) + 1,
            review.product_id,
            review.customer_id,
            review.rating,
            review.title,
            review.body,
            f"Customer {review.customer_id}",
            T0,
        )
        self.reviews.append(stored)
        return stored

    async def by_customer(self, customer_id: int, page: PageRequest) -> Page[Review]:
        mine = sorted(
            (r for r in self.reviews if r.customer_id == customer_id), key=lambda r: -r.id
        )
        if page.after is not None:
            last = page.after[-1]
            mine = [r for r in mine if isinstance(last, int) and r.id < last]
        edges = [Edge(encode_cursor("reviews", (r.id,)), r) for r in mine[: page.first]]
        return Page(edges, len(mine) > page.first, page.after is not None)


if TYPE_CHECKING:
    _cache: CacheInvalidator = FakeCacheInvalidator()
    _owners: ProductsOfVariants = FakeProductsOfVariants({})
    _lookup: ProductLookup = FakeProductLookup()
    _writer: ReviewWriter = FakeReviewWriter()
