"""Product search: what the storefront asks and what an index must answer.

Adapters (PostgreSQL full-text, SQLite for the embedded mode, Elasticsearch) implement
`SearchIndex`; the search indexer consumer keeps them current through `index_products`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class SearchIndexWriter(Protocol):
    """Keeps an index in step with the catalog (the search indexer consumer calls it)."""

    async def index_products(self, product_ids: Sequence[int]) -> None:
        """(Re)index these products from the catalog as it is now; archived or deleted
        ones leave the index. Idempotent: indexing twice changes nothing."""
        ...
