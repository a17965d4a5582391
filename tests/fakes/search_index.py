"""An in-memory `SearchIndex` for unit tests: answers with the products it indexed, in id
order, and can be told to be unavailable or to refuse cursors it did not make."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from domain.errors import ErrorCode, InvalidInput
from domain.search import SearchHit, SearchRequest, SearchResult, SearchUnavailable


@dataclass
class FakeSearchIndex:
    engine: str
    product_ids: set[int] = field(default_factory=set)
    down: str | None = None  # the SearchUnavailable reason while it is down
    writes_fail: bool = False
    searches: int = 0
    rebuilds: int = 0
    index_calls: list[list[int]] = field(default_factory=list)  # one entry per write

    async def search(self, request: SearchRequest) -> SearchResult:
        self.searches += 1
        start = 0
        if request.after is not None:
            engine, _, position = request.after.partition(":")
            if engine != self.engine or not position.isdigit():
                raise InvalidInput("bad cursor", code=ErrorCode.INVALID_CURSOR, field="after")
            start = int(position)
        if self.down is not None:
            raise SearchUnavailable(self.down)
        ids = sorted(self.product_ids)
        page = ids[start : start + request.first]
        return SearchResult(
            hits=tuple(
                SearchHit(pid, f"{self.engine}:{start + n + 1}") for n, pid in enumerate(page)
            ),
            has_next_page=start + request.first < len(ids),
            total_count=len(ids),
            facets=(),
            engine=self.engine,
        )

    async def index_products(self, product_ids: Sequence[int]) -> int:
        if self.writes_fail:
            raise ConnectionError(f"{self.engine} refused the write")
        self.index_calls.append(list(product_ids))
        self.product_ids.update(product_ids)
        return len(product_ids)

    async def rebuild(self) -> int:
        if self.writes_fail:
            raise ConnectionError(f"{self.engine} refused the rebuild")
        self.rebuilds += 1
        return len(self.product_ids)


if TYPE_CHECKING:
    from domain.search import SearchIndex

    _conforms: SearchIndex = FakeSearchIndex("fake")
