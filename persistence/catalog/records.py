"""Catalog records in and out of storage: database rows and cached bytes.

Explicit, field by field: a record never hides a lazy attribute, and the cache
holds exactly what a row holds.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from sqlalchemy.engine import RowMapping

from domain.catalog import (
    Attribute,
    Category,
    Product,
    ProductImage,
    ProductStatus,
    RatingSummary,
    Review,
    SelectedOption,
    Variant,
)
from persistence.db import aware
from persistence.pii import PiiCipher

# A row by column name: SQLAlchemy's, a cached record's dict, or an asyncpg Record (Any:
# asyncpg ships no types) from persistence/driver_reads.py.
Mapping = RowMapping | dict[str, Any] | Any


def product_from_row(row: Mapping) -> Product:
    """The product of `row`, canonical: an equal record read before (from the database
    or the cache) is that same object, so what is built from it can be shared."""
    return _canonical_product(
        Product(
            id=row["id"],
            slug=row["slug"],
            title=row["title"],
            description=row["description"],
            brand=row["brand"],
            category_id=row["category_id"],
            status=ProductStatus(row["status"]),
            attributes=tuple(Attribute(a["name"], a["value"]) for a in row["attributes"]),
            price_min=row["price_min"],
            price_max=row["price_max"],
            currency_code=row["currency_code"],
            created_at=aware(row["created_at"]),
            updated_at=aware(row["updated_at"]),
            rating=RatingSummary(row["id"], float(row["rating_average"]), int(row["rating_count"])),
        )
    )


@functools.lru_cache(maxsize=4_096)
def _canonical_product(product: Product) -> Product:
    return product  # the first of the equal records seen lately


def product_to_row(product: Product) -> dict[str, Any]:
    """The row `product_from_row` reads: what the cache stores for a product."""
    return {
        "id": product.id,
        "slug": product.slug,
        "title": product.title,
        "description": product.description,
        "brand": product.brand,
        "category_id": product.category_id,
        "status": product.status.value,
        "attributes": [{"name": a.name, "value": a.value} for a in product.attributes],
        "price_min": product.price_min,
        "price_max": product.price_max,
        "currency_code": product.currency_code,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
        "rating_average": product.rating.average,
        "rating_count": product.rating.count,
    }


def variant_from_row(row: Mapping) -> Variant:
    return Variant(
        id=row["id"],
        product_id=row["product_id"],
        sku=row["sku"],
        title=row["title"],
        options=tuple(SelectedOption(o["name"], o["value"]) for o in row["options"]),
        price=row["price"],
        compare_at_price=row["compare_at_price"],
        currency_code=row["currency_code"],
        position=row["position"],
    )


def category_from_row(row: Mapping) -> Category:
    return Category(
        id=row["id"],
        parent_id=row["parent_id"],
        slug=row["slug"],
        name=row["name"],
        description=row["description"],
        path=row["path"],
        position=row["position"],
    )


def image_from_row(row: Mapping) -> ProductImage:
    return ProductImage(row["id"], row["product_id"], row["url"], row["alt"], row["position"])


def review_from_row(row: Mapping, names: PiiCipher) -> Review:
    # The author's name rests encrypted with the customer; review pages show the same
    # names again and again, so their decryptions are remembered (see PiiCipher).
    return Review(
        id=row["id"],
        product_id=row["product_id"],
        customer_id=row["customer_id"],
        rating=row["rating"],
        title=row["title"],
        body=row["body"],
        author_name=names.decrypt_cached(row["author_name_encrypted"]),
        created_at=aware(row["created_at"]),
    )


# -- cached bytes: the same shapes as the rows, so one reader serves both --------------


def encode_record(value: Any) -> bytes:
    """Variants, images, categories and id lists: their dataclass fields are their columns."""
    return orjson.dumps(value)


def encode_product(product: Product) -> bytes:
    return orjson.dumps(product_to_row(product))


# The same bytes decode to the same frozen records, so a worker keeps the last few
# thousand decodings: a hot product's cached bytes are decoded once, not per request
# (a listing decodes ~120 records). Keyed by the bytes themselves, so a changed record
# (new bytes) can never meet an old decoding; lists are copied out, records are frozen.
_decoded = functools.lru_cache(maxsize=4_096)  # per kind; about 30 MB in all when full


@_decoded
def decode_product(raw: bytes) -> Product:
    return product_from_row(orjson.loads(raw))


@_decoded
def decode_variant(raw: bytes) -> Variant:
    return variant_from_row(orjson.loads(raw))


@_decoded
def _variant_tuple(raw: bytes) -> tuple[Variant, ...]:
    return tuple(variant_from_row(d) for d in orjson.loads(raw))


def decode_variant_list(raw: bytes) -> list[Variant]:
    return list(_variant_tuple(raw))


@_decoded
def _image_tuple(raw: bytes) -> tuple[ProductImage, ...]:
    return tuple(image_from_row(d) for d in orjson.loads(raw))


def decode_image_list(raw: bytes) -> list[ProductImage]:
    return list(_image_tuple(raw))


@_decoded
def decode_category(raw: bytes) -> Category:
    return category_from_row(orjson.loads(raw))


def decode_int_list(raw: bytes) -> list[int]:
    return [int(i) for i in orjson.loads(raw)]
