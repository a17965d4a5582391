"""A document source over a dict, as `iter_search_documents` is over the database: the
search adapters take one of these instead of reaching into the catalog themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from domain.search import SearchDocument


def search_document(product_id: int, title: str, **fields: Any) -> SearchDocument:
    doc = SearchDocument(
        product_id=product_id,
        slug=title.lower().replace(" ", "-"),
        title=title,
        brand="Acme",
        description="",
        category_slugs=("audio",),
        category_names=("Audio",),
        attributes=(),
        price_min=1_000,
        price_max=1_000,
        in_stock=True,
        rating=0.0,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return replace(doc, **fields)


class DocumentCatalog:
    def __init__(self, *docs: SearchDocument, batch_size: int = 2) -> None:
        self.docs = {doc.product_id: doc for doc in docs}
        self.batch_size = batch_size  # small: a rebuild sends more than one bulk request

    async def __call__(self, ids: Sequence[int] | None) -> AsyncIterator[list[SearchDocument]]:
        wanted = sorted(self.docs) if ids is None else [i for i in ids if i in self.docs]
        for start in range(0, len(wanted), self.batch_size):
            yield [self.docs[i] for i in wanted[start : start + self.batch_size]]
