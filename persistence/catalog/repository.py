"""Catalog reads: every method takes a batch of keys and runs exactly one statement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    any_,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.catalog import (
    Category,
    InventoryLevel,
    Product,
    ProductFilter,
    ProductImage,
    ProductSortKey,
    ProductStatus,
    Review,
    Variant,
)
from domain.listing import (
    CATEGORIES_ORDERING,
    REVIEWS_ORDERING,
    ProductListQuery,
    product_ordering,
)
from domain.pagination import Page, PageRequest, SortKey, encode_cursor, invalid_cursor
from persistence import driver_reads
from persistence.catalog.records import (
    Mapping,
    category_from_row,
    image_from_row,
    product_from_row,
    review_from_row,
    variant_from_row,
)
from persistence.catalog.statements import (
    array_of,
    product_columns,
    products_with_rating,
    rating_average,
    statements_for,
    subtree_ids,
)
from persistence.cursor_keys import cursor_id, cursor_time, time_id_cursor, time_key
from persistence.db import Database
from persistence.driver_reads import DriverStatement
from persistence.pii import PiiCipher
from persistence.tables import (
    categories,
    inventory_levels,
    product_variants,
    products,
)

_sort_columns: dict[ProductSortKey, ColumnElement[Any]] = {
    ProductSortKey.ID: products.c.id,
    ProductSortKey.TITLE: products.c.title,
    ProductSortKey.PRICE: products.c.price_min,
    ProductSortKey.CREATED_AT: products.c.created_at,
    ProductSortKey.RATING: rating_average,
}


class CatalogRepository:
    """Reads catalog records for loaders and listings (AUTOCOMMIT, no transaction).

    Its reads may lag: they go to the read replica when one is in use. `current` runs
    the same reads on the primary, for what must be up to date: checkout's prices and
    stock, and the shared record cache's fills (a cache refilled from a lagging replica
    after an invalidation would keep the old record for the whole TTL).
    """

    def __init__(self, db: Database, pii: PiiCipher, *, current: bool = False) -> None:
        self._db = db
        self._pii = pii
        self._pg = db.is_postgres
        self._sql = statements_for(self._pg)
        self._reads_primary = current
        # The fixed statements, compiled for asyncpg once (PostgreSQL only): `_read` runs
        # them on the driver while `db.driver_reads` allows it.
        self._prepared: dict[Select[Any], DriverStatement] = (
            prepared_for(db) if driver_reads.uses_driver(db) else {}
        )
        self.current: CatalogRepository = self if current else type(self)(db, pii, current=True)

    async def _fetch(
        self, statement: Select[Any], parameters: dict[str, Any] | None = None
    ) -> Sequence[RowMapping]:
        if self._reads_primary or self._db.replica is None:  # the hot path: no closure
            async with self._db.primary_reader.connect() as connection:
                found: Sequence[RowMapping] = (
                    (await connection.execute(statement, parameters)).mappings().all()
                )
                return found

        async def rows(connection: AsyncConnection) -> Sequence[RowMapping]:
            routed: Sequence[RowMapping] = (
                (await connection.execute(statement, parameters)).mappings().all()
            )
            return routed

        return await self._db.read(rows)

    async def _read(self, statement: Select[Any], parameters: dict[str, Any]) -> Sequence[Mapping]:
        """A prepared statement's rows: asyncpg's records when it runs on the driver."""
        prepared = self._prepared.get(statement) if self._db.driver_reads else None
        if prepared is None:
            return await self._fetch(statement, parameters)
        return await driver_reads.fetch(self._db, prepared, parameters, primary=self._reads_primary)

    async def _fetch_keys(
        self, statement: Select[Any], keys: Sequence[Any], **parameters: Any
    ) -> Sequence[Mapping]:
        return await self._read(statement, {"keys": list(keys), **parameters})

    def _one_of(self, column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
        values = list(values)
        if self._pg:
            return column == any_(literal(values, array_of(column.type)))
        return column.in_(values)

    # -- products ---------------------------------------------------------------

    async def products_by_ids(self, ids: Sequence[int]) -> dict[int, Product]:
        rows = await self._fetch_keys(self._sql.products_by_ids, ids)
        return {row["id"]: product_from_row(row) for row in rows}

    async def products_by_slugs(self, slugs: Sequence[str]) -> dict[str, Product]:
        rows = await self._fetch_keys(self._sql.products_by_slugs, slugs)
        return {row["slug"]: product_from_row(row) for row in rows}

    async def list_products(self, query: ProductListQuery) -> Page[Product]:
        shape = _listing_shape(query) if self._prepared and self._db.driver_reads else None
        prepared = None if shape is None else _prepared_listing(shape, self._db)
        if prepared is None:
            rows: Sequence[Mapping] = await self._fetch(
                self._listing(query).order_by(*_order(query)).limit(query.page.first + 1)
            )
        else:
            rows = await driver_reads.fetch(
                self._db, prepared, _listing_parameters(query), primary=self._reads_primary
            )
        return _product_page(query, rows)

    async def list_products_by_category(
        self, slugs: Sequence[str], query: ProductListQuery
    ) -> dict[str, Page[Product]]:
        """A page of each category's subtree, all categories in one statement."""
        scope, member = categories.alias("scope"), categories.alias("member")
        rank = func.row_number().over(partition_by=scope.c.slug, order_by=_order(query))
        ranked = (
            self._listing(query)
            .join(member, member.c.id == products.c.category_id)
            .join(scope, member.c.path.startswith(scope.c.path))
            .where(self._one_of(scope.c.slug, slugs))
            .add_columns(scope.c.slug.label("scope_slug"), rank.label("rank"))
            .subquery()
        )
        rows = await self._fetch(
            select(ranked)
            .where(ranked.c.rank <= query.page.first + 1)
            .order_by(ranked.c.scope_slug, ranked.c.rank)
        )
        grouped: dict[str, list[RowMapping]] = defaultdict(list)
        for row in rows:
            grouped[row["scope_slug"]].append(row)
        return {slug: _product_page(query, grouped.get(slug, [])) for slug in slugs}

    def _listing(self, query: ProductListQuery) -> Select[Any]:
        """Active products matching the filter, after the cursor; unordered, unlimited."""
        statement = (
            select(*product_columns)
            .select_from(products_with_rating)
            .where(
                products.c.status == ProductStatus.ACTIVE.value,
                *self._filter_conditions(query.product_filter),
            )
        )
        if query.page.after is not None:
            sort_column = _sort_columns[query.sort_key]
            after_value = _key_to_sql(query.sort_key, query.page.after[0])
            key = tuple_(sort_column, products.c.id)
            bound = tuple_(literal(after_value, sort_column.type), literal(query.page.after[1]))
            statement = statement.where(key < bound if query.reverse else key > bound)
        return statement

    def _filter_conditions(self, f: ProductFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if f.category_slug is not None:
            conditions.append(products.c.category_id.in_(subtree_ids(f.category_slug)))
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
            grouped[row["product_id"]].append(image_from_row(row))
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
        return Page.from_rows(
            rows,
            first=page.first,
            after=page.after,
            cursor_of=lambda row: encode_cursor(CATEGORIES_ORDERING, (row["id"], row["id"])),
            node_of=category_from_row,
        )

    # -- reviews ----------------------------------------------------------------

    async def reviews_by_ids(self, ids: Sequence[int]) -> dict[int, Review]:
        rows = await self._fetch_keys(self._sql.reviews_by_ids, ids)
        return {row["id"]: review_from_row(row, self._pii) for row in rows}

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
                after_time=cursor_time(created_at),
                after_id=cursor_id(review_id),
            )
        grouped: dict[int, list[Review]] = defaultdict(list)
        for row in rows:
            grouped[row["product_id"]].append(review_from_row(row, self._pii))
        return {
            product_id: Page.from_rows(
                grouped.get(product_id, []),
                first=page.first,
                after=page.after,
                cursor_of=_review_cursor,
            )
            for product_id in product_ids
        }


# -- listings on the driver: one statement per shape, values as parameters -----------

# What decides a listing's SQL text; the values go in as parameters. Bounded: five sort
# keys, two directions, and which of six filters are present (attribute filters, whose
# text grows with their values, stay with SQLAlchemy).
ListingShape = tuple[ProductSortKey, bool, bool, bool, bool, bool, bool, bool | None]

_listings: dict[ListingShape, DriverStatement | None] = {}


def _listing_shape(query: ProductListQuery) -> ListingShape | None:
    f = query.product_filter
    if f.attributes:
        return None
    return (
        query.sort_key,
        query.reverse,
        query.page.after is not None,
        f.category_slug is not None,
        f.brands is not None,
        f.price_min is not None,
        f.price_max is not None,
        f.in_stock,
    )


def _listing_parameters(query: ProductListQuery) -> dict[str, Any]:
    f = query.product_filter
    parameters: dict[str, Any] = {"limit": query.page.first + 1}
    if f.category_slug is not None:
        parameters["category_slug"] = f.category_slug
    if f.brands is not None:
        parameters["brands"] = list(f.brands)
    if f.price_min is not None:
        parameters["price_min"] = f.price_min
    if f.price_max is not None:
        parameters["price_max"] = f.price_max
    if query.page.after is not None:
        parameters["after_value"] = _key_to_sql(query.sort_key, query.page.after[0])
        parameters["after_id"] = query.page.after[1]
    return parameters


def _prepared_listing(shape: ListingShape, db: Database) -> DriverStatement | None:
    """The listing of this shape compiled for the driver (once); None if it cannot run
    there (then SQLAlchemy runs it)."""
    if shape not in _listings:
        try:
            _listings[shape] = DriverStatement.compile(
                _listing_statement(shape), db.primary_reader.dialect
            )
        except ValueError:
            _listings[shape] = None
    return _listings[shape]


def _listing_statement(shape: ListingShape) -> Select[Any]:
    """`CatalogRepository._listing` ordered and limited, with bind parameters for the
    values (PostgreSQL's forms: `= ANY(array)`, JSON-free)."""
    sort_key, reverse, after, category, brands, price_min, price_max, in_stock = shape
    conditions: list[ColumnElement[bool]] = [products.c.status == ProductStatus.ACTIVE.value]
    if category:
        slug = bindparam("category_slug", type_=categories.c.slug.type)
        conditions.append(products.c.category_id.in_(subtree_ids(slug)))
    if brands:
        brand_type = array_of(products.c.brand.type)
        conditions.append(products.c.brand == any_(bindparam("brands", type_=brand_type)))
    if price_min or price_max:
        price = product_variants.c.price
        price_conditions = [product_variants.c.product_id == products.c.id]
        if price_min:
            price_conditions.append(price >= bindparam("price_min", type_=price.type))
        if price_max:
            price_conditions.append(price <= bindparam("price_max", type_=price.type))
        conditions.append(exists().where(*price_conditions))
    if in_stock is not None:
        stocked = exists().where(
            product_variants.c.product_id == products.c.id,
            inventory_levels.c.variant_id == product_variants.c.id,
            inventory_levels.c.available > 0,
        )
        conditions.append(stocked if in_stock else ~stocked)
    if after:
        sort_column = _sort_columns[sort_key]
        key = tuple_(sort_column, products.c.id)
        bound = tuple_(
            bindparam("after_value", type_=sort_column.type),
            bindparam("after_id", type_=products.c.id.type),
        )
        conditions.append(key < bound if reverse else key > bound)
    sort_column = _sort_columns[sort_key]
    order = (sort_column.desc(), products.c.id.desc()) if reverse else (sort_column, products.c.id)
    return (
        select(*product_columns)
        .select_from(products_with_rating)
        .where(*conditions)
        .order_by(*order)
        .limit(bindparam("limit", type_=Integer()))
    )


_prepared_statements: dict[int, dict[Select[Any], DriverStatement]] = {}


def prepared_for(db: Database) -> dict[Select[Any], DriverStatement]:
    """Every fixed catalog statement compiled for the driver, once per process."""
    statements = statements_for(True)
    key = id(statements)
    if key not in _prepared_statements:
        dialect = db.primary_reader.dialect
        _prepared_statements[key] = {
            statement: DriverStatement.compile(statement, dialect)
            for statement in vars(statements).values()
            if isinstance(statement, Select)
        }
    return _prepared_statements[key]


# -- keys and rows ------------------------------------------------------------------


def _order(query: ProductListQuery) -> tuple[ColumnElement[Any], ...]:
    sort_column = _sort_columns[query.sort_key]
    if query.reverse:
        return (sort_column.desc(), products.c.id.desc())
    return (sort_column, products.c.id)


def _review_cursor(review: Review) -> str:
    return time_id_cursor(REVIEWS_ORDERING, review.created_at, review.id)


def _product_page(query: ProductListQuery, rows: Sequence[Mapping]) -> Page[Product]:
    ordering = product_ordering(query.sort_key, query.reverse)
    return Page.from_rows(
        rows,
        first=query.page.first,
        after=query.page.after,
        cursor_of=lambda row: encode_cursor(ordering, _product_key(query.sort_key, row)),
        node_of=product_from_row,
    )


def _product_key(sort_key: ProductSortKey, row: Mapping) -> SortKey:
    value: Any
    if sort_key is ProductSortKey.CREATED_AT:
        value = time_key(row["created_at"])
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
        raise invalid_cursor()
    if sort_key is ProductSortKey.CREATED_AT:
        return cursor_time(value)
    if sort_key is ProductSortKey.RATING and isinstance(value, int | float):
        return float(value)  # checked above; the isinstance is for the type checker
    return value
