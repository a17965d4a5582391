"""Writing a review through in-memory fakes of its ports: one per customer and product,
only for products on sale, and the cached product (its rating summary) is invalidated."""

from __future__ import annotations

import pytest

from domain.catalog import ProductStatus
from domain.errors import Rejected, UserErrorCode
from domain.reviews import Reviews
from tests.fakes.catalog import (
    FakeCacheInvalidator,
    FakeProductLookup,
    FakeReviewWriter,
    a_product,
)

MUG, DRAFT = 1, 2


@pytest.fixture
def parts() -> tuple[Reviews, FakeReviewWriter, FakeCacheInvalidator]:
    writer, cache = FakeReviewWriter(), FakeCacheInvalidator()
    products = FakeProductLookup(
        [a_product(MUG, "Mug", 1200), a_product(DRAFT, "Draft", 900, status=ProductStatus.DRAFT)]
    )
    return Reviews(writer, products, cache), writer, cache


async def test_a_review_is_stored_trimmed_and_the_cached_product_invalidated(
    parts: tuple[Reviews, FakeReviewWriter, FakeCacheInvalidator],
) -> None:
    reviews, writer, cache = parts

    review = await reviews.write(7, MUG, 5, "  Lovely  ", " Holds tea. ")

    assert (review.rating, review.title, review.body) == (5, "Lovely", "Holds tea.")
    assert cache.calls == [("products", [MUG], ["product-1"])]
    assert len(writer.reviews) == 1


async def test_a_second_review_of_the_same_product_is_refused(
    parts: tuple[Reviews, FakeReviewWriter, FakeCacheInvalidator],
) -> None:
    reviews, writer, cache = parts
    await reviews.write(7, MUG, 5, "Lovely", "")

    with pytest.raises(Rejected) as raised:
        await reviews.write(7, MUG, 1, "Changed my mind", "")

    assert [e.code for e in raised.value.errors] == [UserErrorCode.ALREADY_REVIEWED]
    assert [r.rating for r in writer.reviews] == [5] and len(cache.calls) == 1


@pytest.mark.parametrize("product_id", [DRAFT, 99])
async def test_a_product_not_on_sale_cannot_be_reviewed(
    parts: tuple[Reviews, FakeReviewWriter, FakeCacheInvalidator], product_id: int
) -> None:
    reviews, writer, cache = parts

    with pytest.raises(Rejected) as raised:
        await reviews.write(7, product_id, 4, "Nice", "")

    assert [e.code for e in raised.value.errors] == [UserErrorCode.PRODUCT_NOT_FOUND]
    assert writer.reviews == [] and cache.calls == []


async def test_bad_rating_and_blank_title_are_reported_together_and_nothing_is_read(
    parts: tuple[Reviews, FakeReviewWriter, FakeCacheInvalidator],
) -> None:
    reviews, writer, _cache = parts

    with pytest.raises(Rejected) as raised:
        await reviews.write(7, 99, 6, "   ", "")

    assert [(e.code, e.field) for e in raised.value.errors] == [
        (UserErrorCode.INVALID_RATING, ("rating",)),
        (UserErrorCode.BLANK, ("title",)),
    ]
    assert writer.reviews == []
