"""Which product a variant belongs to: events about stock name only the variant."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from persistence.db import Database
from persistence.tables import product_variants


class SqlVariantOwners:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def products_of_variants(self, variant_ids: Sequence[int]) -> dict[int, int]:
        if not variant_ids:
            return {}
        # The primary: the search indexer asks right after the write that moved the stock.
        async with self._db.primary_reader.connect() as connection:
            rows = await connection.execute(
                select(product_variants.c.id, product_variants.c.product_id).where(
                    product_variants.c.id.in_(list(variant_ids))
                )
            )
            return {int(variant_id): int(product_id) for variant_id, product_id in rows}
