"""Customers review products: one review each, rating 1 to 5."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.catalog import Product, Review
from domain.errors import Rejected, UserError, UserErrorCode
from domain.pagination import Page, PageRequest
from domain.ports import CacheInvalidator

TITLE_MAX = 200
BODY_MAX = 5_000


@dataclass(frozen=True, slots=True)
class NewReview:
    product_id: int
    customer_id: int
    rating: int
    title: str
    body: str


class ReviewWriter(Protocol):
    async def add(self, review: NewReview) -> Review | None:
        """The stored review, with the product's rating summary updated in the same
        transaction; None when this customer already reviewed this product."""
        ...

    async def by_customer(self, customer_id: int, page: PageRequest) -> Page[Review]: ...


class ProductLookup(Protocol):
    async def product(self, product_id: int) -> Product | None: ...


def check_review(rating: int, title: str, body: str) -> list[UserError]:
    errors = []
    if not 1 <= rating <= 5:
        errors.append(UserError(UserErrorCode.INVALID_RATING, "rating is 1 to 5", ("rating",)))
    if not title.strip():
        errors.append(UserError(UserErrorCode.BLANK, "title is required", ("title",)))
    elif len(title) > TITLE_MAX:
        message = f"title has at most {TITLE_MAX} characters"
        errors.append(UserError(UserErrorCode.TOO_LONG, message, ("title",)))
    if len(body) > BODY_MAX:
        message = f"body has at most {BODY_MAX} characters"
        errors.append(UserError(UserErrorCode.TOO_LONG, message, ("body",)))
    return errors


class Reviews:
    def __init__(
        self, writer: ReviewWriter, products: ProductLookup, cache: CacheInvalidator
    ) -> None:
        self._writer = writer
        self._products = products
        self._cache = cache

    async def write(
        self, customer_id: int, product_id: int, rating: int, title: str, body: str
    ) -> Review:
        errors = check_review(rating, title, body)
        if errors:
            raise Rejected(errors)
        product = await self._products.product(product_id)
        if product is None or not product.is_visible:
            raise Rejected.one(UserErrorCode.PRODUCT_NOT_FOUND, "no such product", "productId")
        review = await self._writer.add(
            NewReview(product_id, customer_id, rating, title.strip(), body.strip())
        )
        if review is None:
            raise Rejected.one(
                UserErrorCode.ALREADY_REVIEWED, "you have reviewed this product", "productId"
            )
        # The cached product carries its rating summary.
        await self._cache.invalidate_products([product_id], [product.slug])
        return review

    async def of_customer(self, customer_id: int, page: PageRequest) -> Page[Review]:
        return await self._writer.by_customer(customer_id, page)
