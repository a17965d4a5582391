"""Catalog reads: every method takes a batch of keys and runs exactly one statement."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
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
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import RowMapping

from domain.catalog import (
    Attribute,
    Category,
    InventoryLevel,
    Product,
    ProductFilter,
    ProductImage,
    ProductSortKey,
    ProductStatus,
    RatingSummary,
    Review,
    SelectedOption,
    Variant,
)
from domain.errors import ErrorCode, InvalidInput
from domain.listing import CATEGORIES_ORDERING, REVIEWS_ORDERING, product_ordering
from domain.pagination import Edge, Page, PageRequest, SortKey, encode_cursor
from persistence.db import Database
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

_rating_average = func.coalesce(product_rating_summaries.c.rating_average, 0.0)
_rating_count = func.coalesce(product_rating_summaries.c.rating_count, 0)
_product_columns = (
    *products.c,
    _rating_average.label("rating_average"),
    _rating_count.label("rating_count"),
)
_products_with_rating = products.outerjoin(
    product_rating_summaries, product_rating_summaries.c.product_id == products.c.id
)
_sort_columns: dict[ProductSortKey, ColumnElement[Any]] = {
    ProductSortKey.ID: products.c.id,
    ProductSortKey.TITLE: products.c.title,
    ProductSortKey.PRICE: products.c.price_min,
    ProductSortKey.CREATED_AT: products.c.created_at,
    ProductSortKey.RATING: _rating_average,
}


class _Statements:
    """Every fixed-shape query, built once per dialect with bind parameters.

    Building a select with subqueries costs more CPU than running it; a prebuilt
    statement also compiles once and is prepared once per connection.
    """

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        product_select = select(*_product_columns).select_from(_products_with_rating)
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
        self.reviews_by_ids = _review_select().where(self.any_of(reviews.c.id))
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
        inner = _review_select().add_columns(rank).where(self.any_of(reviews.c.product_id))
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
                order_by=(_rating_average.desc(), _rating_count.desc(), products.c.id),
            )
            .label("rank")
        )
        ranked = (
            select(source.c.id.label("source_id"), *_product_columns, rank)
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


_statements: dict[bool, _Statements] = {}


def _statements_for(postgres: bool) -> _Statements:
    if postgres not in _statements:
        _statements[postgres] = _Statements(postgres)
    return _statements[postgres]


class CatalogRepository:
    """Reads catalog records for loaders and listings (reader engine, no transaction)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pg = db.is_postgres
        self._sql = _statements_for(self._pg)

    async def _fetch(
        self, statement: Select[Any], parameters: dict[str, Any] | None = None
    ) -> Sequence[RowMapping]:
        async with self._db.reader.connect() as connection:
            result = await connection.execute(statement, parameters)
            return result.mappings().all()

    async def _fetch_keys(
        self, statement: Select[Any], keys: Sequence[Any], **parameters: Any
    ) -> Sequence[RowMapping]:
        return await self._fetch(statement, {"keys": list(keys), **parameters})

    def _one_of(self, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
        values = list(values)
        if self._pg:
            return column == any_(literal(values, _array_of(column.type)))
        return column.in_(values)

    # -- products ---------------------------------------------------------------

    async def products_by_ids(self, ids: Sequence[int]) -> dict[int, Product]:
        rows = await self._fetch_keys(self._sql.products_by_ids, ids)
        return {row["id"]: product_from_row(row) for row in rows}

    async def products_by_slugs(self, slugs: Sequence[str]) -> dict[str, Product]:
        rows = await self._fetch_keys(self._sql.products_by_slugs, slugs)
        return {row["slug"]: product_from_row(row) for row in rows}

    async def list_products(
        self,
        product_filter: ProductFilter,
        sort_key: ProductSortKey,
        reverse: bool,
        page: PageRequest,
    ) -> Page[Product]:
        sort_column = _sort_columns[sort_key]
        statement = (
            select(*_product_columns)
            .select_from(_products_with_rating)
            .where(
                products.c.status == ProductStatus.ACTIVE.value,
                *self._filter_conditions(product_filter),
            )
        )
        if page.after is not None:
            after_value = _key_to_sql(sort_key, page.after[0])
            key = tuple_(sort_column, products.c.id)
            bound = tuple_(literal(after_value, sort_column.type), literal(page.after[1]))
            statement = statement.where(key < bound if reverse else key > bound)
        order = (
            (sort_column.desc(), products.c.id.desc()) if reverse else (sort_column, products.c.id)
        )
        rows = await self._fetch(statement.order_by(*order).limit(page.first + 1))
        ordering = product_ordering(sort_key, reverse)
        edges = [
            Edge(
                cursor=encode_cursor(ordering, _product_key(sort_key, row)),
                node=product_from_row(row),
            )
            for row in rows[: page.first]
        ]
        return Page(
            edges=edges,
            has_next_page=len(rows) > page.first,
            has_previous_page=page.after is not None,
        )

    def _filter_conditions(self, f: ProductFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        for slug in (f.category_slug, f.scope_category_slug):
            if slug is not None:
                conditions.append(products.c.category_id.in_(_subtree_ids(slug)))
        if f.brands is not None:
            conditions.append(self._one_of(products.c.brand, f.brands))
        if f.price_min is not None or f.price_max is not None:
            price_conditions = [product_variants.c.product_id == products.c.id]
            if f.price_min is not None:
                price_conditions.append(product_variants.c.price >= f.price_min)
            if f.price_max is not None:
                price_conditions.append(product_variants.c.price <= f.price_max)
            conditions.append(exists().where(*price_conditions))
        if f.in_stock is not None:
            stocked = exists().where(
                product_variants.c.product_id == products.c.id,
                inventory_levels.c.variant_id == product_variants.c.id,
                inventory_levels.c.available > 0,
            )
            conditions.append(stocked if f.in_stock else ~stocked)
        for attribute in f.attributes:
            conditions.append(self._attribute_matches(attribute.name, attribute.values))
        return conditions

    def _attribute_matches(self, name: str, values: Sequence[str]) -> ColumnElement[bool]:
        if self._pg:
            # JSONB containment, one probe per accepted value.
            return or_(
                *(
                    products.c.attributes.op("@>")(literal([{"name": name, "value": v}], JSONB))
                    for v in values
                )
            )
        element = func.json_each(products.c.attributes).table_valued("value").alias("attribute")
        return exists(
            select(1)
            .select_from(element)
            .where(
                func.json_extract(element.c.value, "$.name") == name,
                func.json_extract(element.c.value, "$.value").in_(list(values)),
            )
        )

    async def related_products(
        self, product_ids: Sequence[int], first: int
    ) -> dict[int, list[Product]]:
        """Up to `first` best-rated active products sharing each product's category."""
        rows = await self._fetch_keys(self._sql.related_products, product_ids, limit=first)
        related: dict[int, list[Product]] = defaultdict(list)
        for row in rows:
            related[row["source_id"]].append(product_from_row(row))
        return related

    # -- variants, stock, images ------------------------------------------------

    async def variants_by_product_ids(self, product_ids: Sequence[int]) -> dict[int, list[Variant]]:
        rows = await self._fetch_keys(self._sql.variants_by_product_ids, product_ids)
        grouped: dict[int, list[Variant]] = {pid: [] for pid in product_ids}
        for row in rows:
            grouped[row["product_id"]].append(variant_from_row(row))
        return grouped

    async def variants_by_ids(self, ids: Sequence[int]) -> dict[int, Variant]:
        rows = await self._fetch_keys(self._sql.variants_by_ids, ids)
        return {row["id"]: variant_from_row(row) for row in rows}

    async def inventory_by_variant_ids(
        self, variant_ids: Sequence[int]
    ) -> dict[int, InventoryLevel]:
        rows = await self._fetch_keys(self._sql.inventory_by_variant_ids, variant_ids)
        return {
            row["variant_id"]: InventoryLevel(row["variant_id"], row["available"]) for row in rows
        }

    async def images_by_product_ids(
        self, product_ids: Sequence[int]
    ) -> dict[int, list[ProductImage]]:
        rows = await self._fetch_keys(self._sql.images_by_product_ids, product_ids)
        grouped: dict[int, list[ProductImage]] = defaultdict(list)
        for row in rows:
            grouped[row["product_id"]].append(
                ProductImage(row["id"], row["product_id"], row["url"], row["alt"], row["position"])
            )
        return grouped

    # -- categories -------------------------------------------------------------

    async def categories_by_ids(self, ids: Sequence[int]) -> dict[int, Category]:
        """The categories and all their ancestors: breadcrumbs and `parent` cost nothing more."""
        rows = await self._fetch_keys(self._sql.categories_with_ancestors, ids)
        return {row["id"]: category_from_row(row) for row in rows}

    async def categories_by_slugs(self, slugs: Sequence[str]) -> dict[str, Category]:
        rows = await self._fetch_keys(self._sql.categories_by_slugs, slugs)
        return {row["slug"]: category_from_row(row) for row in rows}

    async def children_by_category_ids(self, ids: Sequence[int]) -> dict[int, list[Category]]:
        rows = await self._fetch_keys(self._sql.children_by_category_ids, ids)
        grouped: dict[int, list[Category]] = defaultdict(list)
        for row in rows:
            grouped[row["parent_id"]].append(category_from_row(row))
        return grouped

    async def list_categories(self, page: PageRequest, roots_only: bool) -> Page[Category]:
        statement = select(categories)
        if roots_only:
            statement = statement.where(categories.c.parent_id.is_(None))
        if page.after is not None:
            statement = statement.where(categories.c.id > page.after[-1])
        rows = await self._fetch(statement.order_by(categories.c.id).limit(page.first + 1))
        edges = [
            Edge(
                cursor=encode_cursor(CATEGORIES_ORDERING, (row["id"], row["id"])),
                node=category_from_row(row),
            )
            for row in rows[: page.first]
        ]
        return Page(
            edges=edges,
            has_next_page=len(rows) > page.first,
            has_previous_page=page.after is not None,
        )

    # -- reviews ----------------------------------------------------------------

    async def reviews_by_ids(self, ids: Sequence[int]) -> dict[int, Review]:
        rows = await self._fetch_keys(self._sql.reviews_by_ids, ids)
        return {row["id"]: review_from_row(row) for row in rows}

    async def newest_reviews(
        self, product_ids: Sequence[int], page: PageRequest
    ) -> dict[int, Page[Review]]:
        """The newest `page.first` reviews of each product, all products in one statement."""
        if page.after is None:
            rows = await self._fetch_keys(
                self._sql.newest_reviews, product_ids, limit=page.first + 1
            )
        else:
            created_at, review_id = page.after
            rows = await self._fetch_keys(
                self._sql.newest_reviews_after,
                product_ids,
                limit=page.first + 1,
                after_time=_review_time_key(created_at),
                after_id=_review_id_key(review_id),
            )
        grouped: dict[int, list[Review]] = defaultdict(list)
        for row in rows:
            grouped[row["product_id"]].append(review_from_row(row))
        pages = {}
        for product_id in product_ids:
            found = grouped.get(product_id, [])
            edges = [
                Edge(
                    cursor=encode_cursor(REVIEWS_ORDERING, (_time_key(r.created_at), r.id)),
                    node=r,
                )
                for r in found[: page.first]
            ]
            pages[product_id] = Page(
                edges=edges,
                has_next_page=len(found) > page.first,
                has_previous_page=page.after is not None,
            )
        return pages


@functools.cache
def _array_of(item_type: Any) -> ARRAY[Any]:
    # Built once per column type: making an ARRAY type registers schema events,
    # which cost about 1.5 ms per request when done per statement.
    return ARRAY(item_type)


def _review_select() -> Select[Any]:
    return select(
        reviews.c.id,
        reviews.c.product_id,
        reviews.c.customer_id,
        reviews.c.rating,
        reviews.c.title,
        reviews.c.body,
        reviews.c.created_at,
        customers.c.display_name.label("author_name"),
    ).select_from(reviews.join(customers, customers.c.id == reviews.c.customer_id))


def _subtree_ids(slug: str) -> Select[Any]:
    root_path = select(categories.c.path).where(categories.c.slug == slug).scalar_subquery()
    return select(categories.c.id).where(categories.c.path.startswith(root_path))


# -- keys and rows ------------------------------------------------------------------


def _time_key(value: datetime) -> str:
    return _aware(value).isoformat()


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("time key must be a string")
    return _aware(datetime.fromisoformat(value))


def _review_time_key(value: Any) -> datetime:
    try:
        return _parse_time(value)
    except ValueError:
        raise _bad_cursor() from None


def _review_id_key(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad_cursor()
    return value


def _bad_cursor() -> InvalidInput:
    return InvalidInput(
        "after is not a valid cursor for this list", code=ErrorCode.INVALID_CURSOR, field="after"
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands datetimes back naive; everything we store is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _product_key(sort_key: ProductSortKey, row: RowMapping) -> SortKey:
    value: Any
    if sort_key is ProductSortKey.CREATED_AT:
        value = _time_key(row["created_at"])
    elif sort_key is ProductSortKey.RATING:
        value = float(row["rating_average"])
    elif sort_key is ProductSortKey.TITLE:
        value = row["title"]
    elif sort_key is ProductSortKey.PRICE:
        value = row["price_min"]
    else:
        value = row["id"]
    return (value, row["id"])


def _key_to_sql(sort_key: ProductSortKey, value: Any) -> Any:
    """A cursor's sort value, checked and converted; InvalidInput when it is not ours."""
    expected: dict[ProductSortKey, type | tuple[type, ...]] = {
        ProductSortKey.ID: int,
        ProductSortKey.TITLE: str,
        ProductSortKey.PRICE: int,
        ProductSortKey.CREATED_AT: str,
        ProductSortKey.RATING: (int, float),
    }
    if not isinstance(value, expected[sort_key]) or isinstance(value, bool):
        raise InvalidInput(
            "after is not a valid cursor for this list",
            code=ErrorCode.INVALID_CURSOR,
            field="after",
        )
    if sort_key is ProductSortKey.CREATED_AT:
        try:
            return _parse_time(value)
        except ValueError:
            raise InvalidInput(
                "after is not a valid cursor for this list",
                code=ErrorCode.INVALID_CURSOR,
                field="after",
            ) from None
    return float(value) if sort_key is ProductSortKey.RATING else value


def product_from_row(row: RowMapping) -> Product:
    return Product(
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
        created_at=_aware(row["created_at"]),
        updated_at=_aware(row["updated_at"]),
        rating=RatingSummary(row["id"], float(row["rating_average"]), int(row["rating_count"])),
    )


def variant_from_row(row: RowMapping) -> Variant:
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


def category_from_row(row: RowMapping) -> Category:
    return Category(
        id=row["id"],
        parent_id=row["parent_id"],
        slug=row["slug"],
        name=row["name"],
        description=row["description"],
        path=row["path"],
        position=row["position"],
    )


def review_from_row(row: RowMapping) -> Review:
    return Review(
        id=row["id"],
        product_id=row["product_id"],
        customer_id=row["customer_id"],
        rating=row["rating"],
        title=row["title"],
        body=row["body"],
        author_name=row["author_name"],
        created_at=_aware(row["created_at"]),
    )
