"""Catalog queries with a fixed shape, built once per dialect with bind parameters.

Building a select with subqueries costs more CPU than running it; a prebuilt
statement also compiles once and is prepared once per connection.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal,
    select,
    tuple_,
)

from domain.catalog import ProductStatus
from persistence.tables import (
    categories,
    customers,
    inventory_levels,
    product_images,
    product_rating_summaries,
    product_variants,
    products,
    reviews,
)

rating_average = func.coalesce(product_rating_summaries.c.rating_average, 0.0)
rating_count = func.coalesce(product_rating_summaries.c.rating_count, 0)
product_columns = (
    *products.c,
    rating_average.label("rating_average"),
    rating_count.label("rating_count"),
)
products_with_rating = products.outerjoin(
    product_rating_summaries, product_rating_summaries.c.product_id == products.c.id
)


class CatalogStatements:
    """Every fixed-shape query, built once per dialect with bind parameters.

    Building a select with subqueries costs more CPU than running it; a prebuilt
    statement also compiles once and is prepared once per connection.
    """

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        product_select = select(*product_columns).select_from(products_with_rating)
        self.products_by_ids = product_select.where(self.any_of(products.c.id))
        self.products_by_slugs = product_select.where(self.any_of(products.c.slug))
        self.variants_by_product_ids = (
            select(product_variants)
            .where(self.any_of(product_variants.c.product_id))
            .order_by(
                product_variants.c.product_id, product_variants.c.position, product_variants.c.id
            )
        )
        self.variants_by_ids = select(product_variants).where(self.any_of(product_variants.c.id))
        self.inventory_by_variant_ids = select(
            inventory_levels.c.variant_id, inventory_levels.c.available
        ).where(self.any_of(inventory_levels.c.variant_id))
        self.images_by_product_ids = (
            select(product_images)
            .where(self.any_of(product_images.c.product_id))
            .order_by(product_images.c.product_id, product_images.c.position)
        )
        wanted = categories.alias("wanted")
        is_ancestor = wanted.c.path.like(literal("%/") + cast(categories.c.id, String) + "/%")
        self.categories_with_ancestors = (
            select(categories)
            .distinct()
            .select_from(categories.join(wanted, is_ancestor))
            .where(self.any_of(wanted.c.id))
        )
        self.categories_by_slugs = select(categories).where(self.any_of(categories.c.slug))
        self.children_by_category_ids = (
            select(categories)
            .where(self.any_of(categories.c.parent_id))
            .order_by(categories.c.parent_id, categories.c.position, categories.c.id)
        )
        self.reviews_by_ids = review_select().where(self.any_of(reviews.c.id))
        self.newest_reviews = self._newest_reviews(after=False)
        self.newest_reviews_after = self._newest_reviews(after=True)
        self.related_products = self._related_products()

    def any_of(self, column: ColumnElement[Any], name: str = "keys") -> ColumnElement[bool]:
        if self.postgres:
            # One prepared statement whatever the batch size (IN (...) makes one per size).
            return column == any_(bindparam(name, type_=ARRAY(column.type)))
        return column.in_(bindparam(name, expanding=True))

    def _newest_reviews(self, *, after: bool) -> Select[Any]:
        rank = (
            func.row_number()
            .over(
                partition_by=reviews.c.product_id,
                order_by=(reviews.c.created_at.desc(), reviews.c.id.desc()),
            )
            .label("rank")
        )
        inner = review_select().add_columns(rank).where(self.any_of(reviews.c.product_id))
        if after:
            inner = inner.where(
                tuple_(reviews.c.created_at, reviews.c.id)
                < tuple_(
                    bindparam("after_time", type_=reviews.c.created_at.type),
                    bindparam("after_id", type_=reviews.c.id.type),
                )
            )
        ranked = inner.subquery()
        return (
            select(ranked)
            .where(ranked.c.rank <= bindparam("limit", type_=Integer()))
            .order_by(ranked.c.product_id, ranked.c.rank)
        )

    def _related_products(self) -> Select[Any]:
        source = products.alias("source")
        rank = (
            func.row_number()
            .over(
                partition_by=source.c.id,
                order_by=(rating_average.desc(), rating_count.desc(), products.c.id),
            )
            .label("rank")
        )
        ranked = (
            select(source.c.id.label("source_id"), *product_columns, rank)
            .select_from(
                source.join(
                    products,
                    and_(
                        products.c.category_id == source.c.category_id,
                        products.c.id != source.c.id,
                        products.c.status == ProductStatus.ACTIVE.value,
                    ),
                ).outerjoin(
                    product_rating_summaries,
                    product_rating_summaries.c.product_id == products.c.id,
                )
            )
            .where(self.any_of(source.c.id))
            .subquery()
        )
        return (
            select(ranked)
            .where(ranked.c.rank <= bindparam("limit", type_=Integer()))
            .order_by(ranked.c.source_id, ranked.c.rank)
        )


_built: dict[bool, CatalogStatements] = {}


def statements_for(postgres: bool) -> CatalogStatements:
    if postgres not in _built:
        _built[postgres] = CatalogStatements(postgres)
    return _built[postgres]


@functools.cache
def array_of(item_type: Any) -> ARRAY[Any]:
    # Built once per column type: making an ARRAY type registers schema events,
    # which cost about 1.5 ms per request when done per statement.
    return ARRAY(item_type)


def review_select() -> Select[Any]:
    return select(
        reviews.c.id,
        reviews.c.product_id,
        reviews.c.customer_id,
        reviews.c.rating,
        reviews.c.title,
        reviews.c.body,
        reviews.c.created_at,
        customers.c.display_name_encrypted.label("author_name_encrypted"),
    ).select_from(reviews.join(customers, customers.c.id == reviews.c.customer_id))


def subtree_ids(slug: str | ColumnElement[str]) -> Select[Any]:
    root_path = select(categories.c.path).where(categories.c.slug == slug).scalar_subquery()
    return select(categories.c.id).where(categories.c.path.startswith(root_path))
