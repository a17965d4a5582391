"""Search documents built from the catalog tables, in batches: what every index stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.catalog import ProductStatus
from domain.search import SearchDocument
from persistence.catalog.statements import product_columns, products_with_rating
from persistence.db import Database, aware
from persistence.tables import (
    categories,
    inventory_levels,
    product_variants,
    products,
    search_documents,
)


async def iter_search_documents(
    db: Database, product_ids: Sequence[int] | None = None, batch_size: int = 500
) -> AsyncIterator[list[SearchDocument]]:
    """Documents of the active products among `product_ids` (all when None), in id order,
    `batch_size` at a time. Products that are not active (or do not exist) yield nothing:
    the caller removes them from its index."""
    # The primary, not a replica: the indexer runs right after a write and must see it.
    async with db.writer.connect() as connection:
        trail = await _category_trails(connection)
        if product_ids is None:
            after = 0
            while True:
                rows = await _products(connection, after=after, limit=batch_size)
                if not rows:
                    return
                yield await _documents(connection, rows, trail)
                after = rows[-1]["id"]
        else:
            wanted = sorted(set(product_ids))
            for start in range(0, len(wanted), batch_size):
                rows = await _products(connection, ids=wanted[start : start + batch_size])
                if rows:
                    yield await _documents(connection, rows, trail)


async def search_documents_exist(db: Database) -> bool:
    async with db.primary_reader.connect() as connection:
        found = await connection.scalar(select(search_documents.c.product_id).limit(1))
        return found is not None


Trail = dict[int, tuple[tuple[str, ...], tuple[str, ...]]]


async def _category_trails(connection: AsyncConnection) -> Trail:
    """Each category's (slugs, names): itself first, then its ancestors up to the root.
    The whole tree is read once: stores have hundreds of categories, not millions."""
    rows = (
        await connection.execute(
            select(categories.c.id, categories.c.parent_id, categories.c.slug, categories.c.name)
        )
    ).all()
    by_id = {row.id: row for row in rows}
    trails: Trail = {}
    for row in rows:
        slugs, names, seen = [], [], set()
        node: Any = row
        while node is not None and node.id not in seen:  # a cycle would be a data bug
            seen.add(node.id)
            slugs.append(node.slug)
            names.append(node.name)
            node = by_id.get(node.parent_id) if node.parent_id is not None else None
        trails[row.id] = (tuple(slugs), tuple(names))
    return trails


async def _products(
    connection: AsyncConnection,
    *,
    after: int | None = None,
    limit: int | None = None,
    ids: Sequence[int] | None = None,
) -> Sequence[RowMapping]:
    statement = (
        select(*product_columns)
        .select_from(products_with_rating)
        .where(products.c.status == ProductStatus.ACTIVE.value)
        .order_by(products.c.id)
    )
    if ids is not None:
        statement = statement.where(products.c.id.in_(ids))
    if after is not None:
        statement = statement.where(products.c.id > after)
    if limit is not None:
        statement = statement.limit(limit)
    return (await connection.execute(statement)).mappings().all()


async def _documents(
    connection: AsyncConnection, rows: Sequence[RowMapping], trail: Trail
) -> list[SearchDocument]:
    ids = [row["id"] for row in rows]
    stocked = set(
        (
            await connection.execute(
                select(product_variants.c.product_id)
                .distinct()
                .join(inventory_levels, inventory_levels.c.variant_id == product_variants.c.id)
                .where(product_variants.c.product_id.in_(ids), inventory_levels.c.available > 0)
            )
        )
        .scalars()
        .all()
    )
    documents = []
    for row in rows:
        slugs, names = trail.get(row["category_id"], ((), ())) if row["category_id"] else ((), ())
        documents.append(
            SearchDocument(
                product_id=row["id"],
                slug=row["slug"],
                title=row["title"],
                brand=row["brand"],
                description=row["description"],
                category_slugs=slugs,
                category_names=names,
                attributes=tuple((a["name"], a["value"]) for a in row["attributes"]),
                price_min=row["price_min"],
                price_max=row["price_max"],
                in_stock=row["id"] in stocked,
                rating=float(row["rating_average"]),
                created_at=aware(row["created_at"]),
            )
        )
    return documents
