"""Cached records come back exactly as they went in."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.catalog import (
    Attribute,
    Category,
    Product,
    ProductImage,
    ProductStatus,
    RatingSummary,
    SelectedOption,
    Variant,
)
from persistence.catalog.records import (
    decode_category,
    decode_image_list,
    decode_product,
    decode_variant_list,
    encode_product,
    encode_record,
)
from persistence.db import aware

WHEN = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def test_products_variants_images_and_categories_round_trip() -> None:
    product = Product(
        id=7,
        slug="tv",
        title="TV",
        description="Big",
        brand="Lumo",
        category_id=3,
        status=ProductStatus.ACTIVE,
        attributes=(Attribute("resolution", "4K"),),
        price_min=100,
        price_max=250,
        currency_code="USD",
        created_at=WHEN,
        updated_at=WHEN,
        rating=RatingSummary(7, 4.25, 12),
    )
    variants = [
        Variant(1, 7, "TV-55", "55 in", (SelectedOption("Size", "55"),), 100, 150, "USD", 0),
        Variant(2, 7, "TV-65", "65 in", (), 250, None, "USD", 1),
    ]
    images = [ProductImage(1, 7, "https://img/1.jpg", "front", 0)]
    category = Category(3, 1, "tvs", "TVs", "", "/1/3/", 0)

    assert decode_product(encode_product(product)) == product
    assert decode_variant_list(encode_record(variants)) == variants
    assert decode_image_list(encode_record(images)) == images
    assert decode_category(encode_record(category)) == category


def test_naive_database_times_are_utc() -> None:
    assert aware(datetime(2026, 5, 1, 12, 0)) == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert aware("2026-05-01T12:00:00+00:00") == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
