"""What a staff member may write into the catalog: the checks behind each userError.

Pure functions over plain values: each returns the fields to write, or raises
`Rejected` with every problem found at once, so a form can mark them all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from domain.catalog import Attribute, ProductStatus, SelectedOption
from domain.errors import InvalidInput, Rejected, UserError, UserErrorCode
from domain.money import parse_amount

PRODUCT_TITLE_MAX = 200
SLUG_MAX = 120
DESCRIPTION_MAX = 20_000
BRAND_MAX = 120
ATTRIBUTES_MAX = 50
NAME_MAX = 100
VALUE_MAX = 500
SKU_MAX = 64
VARIANT_TITLE_MAX = 200
OPTIONS_MAX = 5
# 10 million in a two-decimal currency: above it a price is a typo, not a product.
PRICE_MAX = 1_000_000_000
# Fits inventory_levels.available (INTEGER) with room for any single adjustment.
STOCK_MAX = 1_000_000_000

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_WHITESPACE = re.compile(r"\s")


@dataclass(frozen=True, slots=True)
class ProductFields:
    """Every column of a product a staff member sets, checked."""

    title: str
    slug: str
    description: str
    brand: str
    category_id: int | None
    attributes: tuple[Attribute, ...]
    status: ProductStatus


@dataclass(frozen=True, slots=True)
class VariantFields:
    """Every column of a variant a staff member sets, checked; prices in minor units."""

    sku: str
    title: str
    options: tuple[SelectedOption, ...]
    price: int
    compare_at_price: int | None


def slug_from_title(title: str) -> str:
    """ "Crème Brûlée Pot, 2 pcs" -> "creme-brulee-pot-2-pcs": ASCII, at most SLUG_MAX."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_title.lower()).strip("-")
    return slug[:SLUG_MAX].rstrip("-")


def check_product(fields: ProductFields) -> ProductFields:
    errors = [
        *_text(fields.title, "title", PRODUCT_TITLE_MAX, required=True),
        *_slug(fields.slug),
        *_text(fields.description, "description", DESCRIPTION_MAX),
        *_text(fields.brand, "brand", BRAND_MAX),
        *_pairs([(a.name, a.value) for a in fields.attributes], "attributes", ATTRIBUTES_MAX),
    ]
    if errors:
        raise Rejected(errors)
    return fields


def check_variant(fields: VariantFields) -> VariantFields:
    errors = [
        *_text(fields.title, "title", VARIANT_TITLE_MAX, required=True),
        *_pairs([(o.name, o.value) for o in fields.options], "options", OPTIONS_MAX),
    ]
    if not fields.sku:
        errors.append(UserError(UserErrorCode.BLANK, "sku is required", ("sku",)))
    elif len(fields.sku) > SKU_MAX:
        message = f"sku has at most {SKU_MAX} characters"
        errors.append(UserError(UserErrorCode.TOO_LONG, message, ("sku",)))
    elif _WHITESPACE.search(fields.sku):
        errors.append(UserError(UserErrorCode.INVALID, "sku has no spaces", ("sku",)))
    if fields.compare_at_price is not None and fields.compare_at_price <= fields.price:
        # A "was" price at or below the price would advertise a sale that is not one.
        message = "compareAtPrice must be more than the price"
        errors.append(UserError(UserErrorCode.INVALID_PRICE, message, ("compareAtPrice",)))
    if errors:
        raise Rejected(errors)
    return fields


def parse_price(text: str, currency_code: str, field: str) -> int:
    """A decimal string ("19.99") as minor units; more than zero and at most PRICE_MAX."""
    try:
        minor = parse_amount(text, currency_code, field=field)
    except InvalidInput as error:
        raise Rejected.one(UserErrorCode.INVALID_PRICE, error.message, field) from None
    if minor <= 0:
        raise Rejected.one(UserErrorCode.INVALID_PRICE, f"{field} must be more than zero", field)
    if minor > PRICE_MAX:
        raise Rejected.one(UserErrorCode.INVALID_PRICE, f"{field} is too large", field)
    return minor


def check_quantity(value: int, field: str, *, allow_negative: bool = False) -> None:
    low = -STOCK_MAX if allow_negative else 0
    if not low <= value <= STOCK_MAX:
        bounds = f"{low} to {STOCK_MAX}"
        raise Rejected.one(UserErrorCode.INVALID_QUANTITY, f"{field} must be {bounds}", field)


def _text(value: str, field: str, maximum: int, *, required: bool = False) -> list[UserError]:
    if required and not value:
        return [UserError(UserErrorCode.BLANK, f"{field} is required", (field,))]
    if len(value) > maximum:
        message = f"{field} has at most {maximum} characters"
        return [UserError(UserErrorCode.TOO_LONG, message, (field,))]
    return []


def _slug(slug: str) -> list[UserError]:
    if len(slug) > SLUG_MAX:
        message = f"slug has at most {SLUG_MAX} characters"
        return [UserError(UserErrorCode.TOO_LONG, message, ("slug",))]
    if not SLUG.match(slug):
        message = "slug is lowercase letters and digits in words joined by single hyphens"
        return [UserError(UserErrorCode.INVALID, message, ("slug",))]
    return []


def _pairs(pairs: Sequence[tuple[str, str]], field: str, maximum: int) -> list[UserError]:
    """Attributes and options: named, each name once, values of sane length."""
    if len(pairs) > maximum:
        return [UserError(UserErrorCode.INVALID, f"at most {maximum} {field}", (field,))]
    errors = []
    names = [name.casefold() for name, _ in pairs]
    if len(set(names)) != len(names):
        errors.append(UserError(UserErrorCode.INVALID, f"{field} names must differ", (field,)))
    for index, (name, value) in enumerate(pairs):
        if not name or len(name) > NAME_MAX:
            message = f"each of {field} needs a name of 1 to {NAME_MAX} characters"
            errors.append(UserError(UserErrorCode.INVALID, message, (field, str(index), "name")))
        if len(value) > VALUE_MAX:
            message = f"values have at most {VALUE_MAX} characters"
            errors.append(UserError(UserErrorCode.TOO_LONG, message, (field, str(index), "value")))
    return errors
