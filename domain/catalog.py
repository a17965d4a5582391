"""The catalog: categories, products, variants, stock and reviews, as plain records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from domain.money import Money


class ProductStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class ProductSortKey(StrEnum):
    ID = "ID"
    TITLE = "TITLE"
    PRICE = "PRICE"
    CREATED_AT = "CREATED_AT"
    RATING = "RATING"


@dataclass(frozen=True, slots=True)
class Category:
    id: int
    parent_id: int | None
    slug: str
    name: str
    description: str
    # Materialised path of ids ("/1/7/"): a subtree is one LIKE prefix match.
    path: str
    position: int


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class RatingSummary:
    product_id: int
    average: float
    count: int

    @classmethod
    def empty(cls, product_id: int) -> RatingSummary:
        return cls(product_id=product_id, average=0.0, count=0)


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    slug: str
    title: str
    description: str
    brand: str
    category_id: int | None
    status: ProductStatus
    attributes: tuple[Attribute, ...]
    # Denormalised from the variants so PRICE sorts and price ranges need no join.
    price_min: int
    price_max: int
    currency_code: str
    created_at: datetime
    updated_at: datetime
    rating: RatingSummary

    @property
    def price_range(self) -> tuple[Money, Money]:
        return Money(self.price_min, self.currency_code), Money(self.price_max, self.currency_code)

    @property
    def is_visible(self) -> bool:
        return self.status is ProductStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class ProductImage:
    id: int
    product_id: int
    url: str
    alt: str
    position: int


@dataclass(frozen=True, slots=True)
class SelectedOption:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Variant:
    id: int
    product_id: int
    sku: str
    title: str
    options: tuple[SelectedOption, ...]
    price: int
    compare_at_price: int | None
    currency_code: str
    position: int

    @property
    def price_money(self) -> Money:
        return Money(self.price, self.currency_code)

    @property
    def compare_at_money(self) -> Money | None:
        if self.compare_at_price is None:
            return None
        return Money(self.compare_at_price, self.currency_code)


@dataclass(frozen=True, slots=True)
class InventoryLevel:
    variant_id: int
    available: int


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    product_id: int
    customer_id: int
    rating: int
    title: str
    body: str
    author_name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttributeFilter:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProductFilter:
    category_slug: str | None = None
    brands: tuple[str, ...] | None = None
    price_min: int | None = None
    price_max: int | None = None
    in_stock: bool | None = None
    attributes: tuple[AttributeFilter, ...] = field(default_factory=tuple)


def available_for_sale(levels: list[InventoryLevel | None]) -> bool:
    return any(level is not None and level.available > 0 for level in levels)
