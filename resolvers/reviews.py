"""Customers write reviews."""

from __future__ import annotations

import strawberry

from domain.errors import Rejected, UserErrorCode
from schema.catalog import Review
from schema.context import Info
from schema.global_id import int_gid_or_none
from schema.refusals import refusals_as
from schema.reviews import ReviewCreateInput, ReviewCreatePayload


@strawberry.type
class ReviewMutation:
    @strawberry.mutation(description="Review a product, once per product; needs an access token.")
    @refusals_as(ReviewCreatePayload)
    async def review_create(self, info: Info, input: ReviewCreateInput) -> ReviewCreatePayload:
        viewer = await info.context.require_viewer()
        product_id = _product_id(input.product_id)
        review = await info.context.reviews.write(
            viewer.id, product_id, input.rating, input.title, input.body
        )
        return ReviewCreatePayload(review=Review.of(review), user_errors=[])


def _product_id(value: str) -> int:
    product_id = int_gid_or_none(value, "Product")
    if product_id is None:
        raise Rejected.one(UserErrorCode.PRODUCT_NOT_FOUND, "no such product", "productId")
    return product_id
