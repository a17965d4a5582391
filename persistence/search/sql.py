"""What the PostgreSQL and SQLite search indexes share: the documents table, keyset
pages, filters and facet aggregation. Each adapter supplies its text matching and score
(`match`) and the few JSON/array fragments its dialect spells differently.

Statements per search: one for the page; one more for the total and every facet (a
single UNION ALL of aggregates over the matched documents), only when asked for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Float, Integer, String, bindparam, delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from domain.catalog import ProductFilter
from domain.pagination import Page, SortKey, decode_cursor, encode_cursor, invalid_cursor
from domain.search import (
    ATTRIBUTE_FACET_PREFIX,
    FACET_BRAND,
    FACET_CATEGORY,
    FACET_IN_STOCK,
    FACET_PRICE,
    PRICE_BUCKETS,
    FacetCount,
    SearchDocument,
    SearchHit,
    SearchRequest,
    SearchResult,
    SearchSortKey,
    assemble_facets,
    price_bucket_value,
    search_words,
)
from persistence.cursor_keys import parse_time, time_key
from persistence.db import Database
from persistence.search.documents import iter_search_documents
from persistence.tables import products, search_documents

REBUILD_BATCH = 1_000


@dataclass
class Match:
    """How an adapter matches the shopper's words: where the documents come from (the
    table, or a union of index scans), a condition on them, a score, their binds."""

    source: str = "search_documents"
    condition: str = "1 = 1"
    score: str = "0"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Filters:
    """Each filter as a boolean SQL expression over `d`, named by the facet it narrows."""

    conditions: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def all_but(self, facet: str | None, alias: str = "d") -> str:
        """Every filter but `facet`'s; over `m` (the facet CTE) each is a precomputed flag."""
        parts = [
            condition if alias == "d" else f"{alias}.{self.flag(name)}"
            for name, condition in self.conditions.items()
            if name != facet
        ]
        return " AND ".join(f"({p})" for p in parts) or "1 = 1"

    def flag(self, facet: str) -> str:
        return f"flag_{list(self.conditions).index(facet)}"


@dataclass
class _PageParts:
    """A keyset page over rows aliased `alias` that carry `sort_value` and `product_id`."""

    sort_expression: str
    keyset: str
    order_by: str
    params: dict[str, Any]
    binds: list[Any]


class SqlSearchIndex:
    """A `SearchIndex` over the `search_documents` table (see the adapters)."""

    engine = "sql"

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- dialect hooks ----------------------------------------------------------------

    def match(self, words: list[str], text_: str) -> Match:
        raise NotImplementedError

    def in_list(self, expression: str, param: str) -> str:
        raise NotImplementedError

    def list_value(self, values: Sequence[str]) -> Any:
        raise NotImplementedError

    def has_category(self, param: str) -> str:
        raise NotImplementedError

    def category_elements(self) -> tuple[str, str, str]:
        """(FROM fragment over m, slug expression, name expression)."""
        raise NotImplementedError

    def attribute_elements(self, source: str) -> tuple[str, str, str]:
        """(FROM fragment over `source`.attributes as `a`, name expression, value expression)."""
        raise NotImplementedError

    def score_type(self) -> TypeEngine[Any]:
        raise NotImplementedError

    def score_key(self, value: Any) -> Any:
        raise NotImplementedError

    def score_bind(self, value: Any) -> Any:
        raise NotImplementedError

    async def after_write(self, connection: AsyncConnection, ids: list[int]) -> None:
        return None

    async def after_rebuild(self) -> None:
        return None

    # -- SearchIndex ------------------------------------------------------------------

    async def search(self, request: SearchRequest) -> SearchResult:
        words = search_words(request.text)
        match = self.match(words, request.text) if words else Match()
        filters = self._filters(request.filter)
        ordering = _ordering(request)
        after = (
            decode_cursor(ordering, request.after, arity=2) if request.after is not None else None
        )

        # May lag: a search may miss a change by the read replica's staleness bound.
        async def run(connection: AsyncConnection) -> tuple[Any, Any]:
            return await self._run(connection, request, match, filters, after)

        rows, counts = await self._db.read(run)
        total = 0
        facet_counts: list[FacetCount] = []
        for facet, value, label, count in counts:
            if facet == "":
                total = int(count)
            else:
                facet_counts.append(FacetCount(facet, str(value), int(count), label or ""))
        page = Page.from_rows(
            rows,
            first=request.first,
            after=request.after,
            cursor_of=lambda row: encode_cursor(
                ordering, (self._key(request.sort_key, row.sort_value), row.product_id)
            ),
            node_of=lambda row: int(row.product_id),
        )
        return SearchResult(
            hits=tuple(SearchHit(product_id=edge.node, cursor=edge.cursor) for edge in page.edges),
            has_next_page=page.has_next_page,
            total_count=total,
            facets=assemble_facets(facet_counts) if request.with_facets else (),
            engine=self.engine,
        )

    async def index_products(self, product_ids: Sequence[int]) -> int:
        """Rewrites only the documents that differ from the catalog now (a stock move
        that leaves a product in stock changes nothing); the number rewritten or removed.

        Several workers' indexers may write one product at once (each handles other
        events about it). The products' rows are locked first, in id order, and the
        catalog is read only then: the writers of one product take turns, none fails on
        another's insert, and the last to write has read the latest catalog."""
        ids = sorted(set(product_ids))
        if not ids:
            return 0
        async with self._db.writer.begin() as connection:
            # NO KEY UPDATE: reviews (foreign keys) and readers are not held up.
            await connection.execute(
                select(products.c.id)
                .where(products.c.id.in_(ids))
                .order_by(products.c.id)
                .with_for_update(key_share=True)
            )
            fresh = {
                row["product_id"]: row
                for batch in [b async for b in iter_search_documents(self._db, ids)]
                for row in map(document_row, batch)
            }
            stored = {
                row["product_id"]: row
                for row in (
                    await connection.execute(
                        select(*_COMPARED).where(search_documents.c.product_id.in_(ids))
                    )
                ).mappings()
            }
            stale = [i for i in ids if _differs(stored.get(i), fresh.get(i))]
            if not stale:
                return 0
            await connection.execute(
                delete(search_documents).where(search_documents.c.product_id.in_(stale))
            )
            rows = [fresh[i] for i in stale if i in fresh]
            if rows:
                await connection.execute(insert(search_documents), rows)
                await self.after_write(connection, [row["product_id"] for row in rows])
        return len(stale)

    async def rebuild(self) -> int:
        written = 0
        async with self._db.writer.begin() as connection:
            await connection.execute(delete(search_documents))
            async for batch in iter_search_documents(self._db, batch_size=REBUILD_BATCH):
                await connection.execute(insert(search_documents), [document_row(d) for d in batch])
                await self.after_write(connection, [d.product_id for d in batch])
                written += len(batch)
        await self.after_rebuild()
        return written

    # -- statements -------------------------------------------------------------------

    async def _run(
        self,
        connection: AsyncConnection,
        request: SearchRequest,
        match: Match,
        filters: _Filters,
        after: SortKey | None,
    ) -> tuple[list[Any], list[Any]]:
        """The page's rows (product_id, sort_value) and the (facet, value, label, count)
        rows, the total being facet "": one statement for each."""
        rows = list((await connection.execute(*self._page(request, match, filters, after))).all())
        counts: list[Any] = []
        if request.with_facets or request.with_total:
            counts = list((await connection.execute(*self._facets(request, match, filters))).all())
        return rows, counts

    def _filters(self, f: ProductFilter) -> _Filters:
        out = _Filters()
        if f.category_slug is not None:
            out.conditions[FACET_CATEGORY] = self.has_category("f_category")
            out.params["f_category"] = f.category_slug
        if f.brands is not None:
            out.conditions[FACET_BRAND] = self.in_list("d.brand", "f_brands")
            out.params["f_brands"] = self.list_value(f.brands)
        if f.price_min is not None or f.price_max is not None:
            # A product's lowest price, as its price facet counts it: choosing a bucket
            # keeps exactly the products that bucket counted.
            bounds = []
            if f.price_min is not None:
                bounds.append("d.price_min >= :f_price_min")
                out.params["f_price_min"] = f.price_min
            if f.price_max is not None:
                bounds.append("d.price_min <= :f_price_max")
                out.params["f_price_max"] = f.price_max
            out.conditions[FACET_PRICE] = " AND ".join(bounds)
        if f.in_stock is not None:
            out.conditions[FACET_IN_STOCK] = "d.in_stock = :f_in_stock"
            out.params["f_in_stock"] = f.in_stock
        for i, attribute in enumerate(f.attributes):
            facet = ATTRIBUTE_FACET_PREFIX + attribute.name
            elements, name, value = self.attribute_elements("d")
            condition = (
                f"EXISTS (SELECT 1 FROM {elements} WHERE {name} = :f_an{i} "
                f"AND {self.in_list(value, f'f_av{i}')})"
            )
            # Two filters on one attribute name both hold (AND), like the listing's.
            previous = out.conditions.get(facet)
            out.conditions[facet] = condition if previous is None else f"{previous} AND {condition}"
            out.params[f"f_an{i}"] = attribute.name
            out.params[f"f_av{i}"] = self.list_value(attribute.values)
        return out

    def _page(
        self, request: SearchRequest, match: Match, filters: _Filters, after: SortKey | None
    ) -> tuple[Any, dict[str, Any]]:
        page = self._page_parts(request, match, after, "s")
        sql = (
            f"SELECT s.product_id, s.sort_value FROM ("
            f"SELECT d.product_id, {page.sort_expression} AS sort_value FROM {match.source} d "
            f"WHERE {match.condition} AND {filters.all_but(None)}) s "
            f"WHERE {page.keyset} ORDER BY {page.order_by} LIMIT :limit"
        )
        statement = (
            text(sql)
            .bindparams(*page.binds)
            .columns(product_id=Integer(), sort_value=self._sort_type(request.sort_key))
        )
        return statement, {**match.params, **filters.params, **page.params}

    def _page_parts(
        self, request: SearchRequest, match: Match, after: SortKey | None, alias: str
    ) -> _PageParts:
        sort_expression = {
            SearchSortKey.RELEVANCE: match.score,
            SearchSortKey.TITLE: "d.title",
            SearchSortKey.PRICE: "d.price_min",
            SearchSortKey.CREATED_AT: "d.created_at",
            SearchSortKey.RATING: "d.rating",
        }[request.sort_key]
        # Relevance is best first; the other keys ascending; `reverse` flips both the key
        # and the id that breaks its ties (the listing's convention).
        descending = (request.sort_key is SearchSortKey.RELEVANCE) != request.reverse
        id_descending = request.reverse
        params: dict[str, Any] = {"limit": request.first + 1}
        keyset = "1 = 1"
        binds = [bindparam("limit", type_=Integer())]
        alias = f"{alias}." if alias else ""
        if after is not None:
            params["after_value"] = self._bind(request.sort_key, after[0])
            params["after_id"] = _int_key(after[1])
            binds.append(bindparam("after_value", type_=self._sort_type(request.sort_key)))
            keyset = (
                f"({alias}sort_value {'<' if descending else '>'} :after_value OR "
                f"({alias}sort_value = :after_value AND "
                f"{alias}product_id {'<' if id_descending else '>'} :after_id))"
            )
        order_by = (
            f"{alias}sort_value {'DESC' if descending else 'ASC'}, "
            f"{alias}product_id {'DESC' if id_descending else 'ASC'}"
        )
        return _PageParts(sort_expression, keyset, order_by, params, binds)

    def _facets(
        self, request: SearchRequest, match: Match, filters: _Filters
    ) -> tuple[Any, dict[str, Any]]:
        parts, params = self._facet_parts(request, match, filters)
        sql = f"WITH m AS ({self._matched(match, self._flags(filters))}) " + " UNION ALL ".join(
            parts
        )
        statement = text(sql).columns(facet=String(), value=String(), label=String(), n=Integer())
        return statement, params

    def _facet_parts(
        self, request: SearchRequest, match: Match, filters: _Filters
    ) -> tuple[list[str], dict[str, Any]]:
        """SELECTs of (facet, value, label, count) over `m`, the total first (facet "")."""
        params: dict[str, Any] = {**match.params, **filters.params}
        parts = [
            f"SELECT '' AS facet, '' AS value, '' AS label, COUNT(*) AS n FROM m "
            f"WHERE {filters.all_but(None, 'm')}"
        ]
        if request.with_facets:
            elements, slug, name = self.category_elements()
            parts.append(
                f"SELECT '{FACET_CATEGORY}', {slug}, MAX({name}), COUNT(*) FROM m, {elements} "
                f"WHERE {filters.all_but(FACET_CATEGORY, 'm')} GROUP BY {slug}"
            )
            parts.append(
                f"SELECT '{FACET_BRAND}', m.brand, m.brand, COUNT(*) FROM m "
                f"WHERE {filters.all_but(FACET_BRAND, 'm')} AND m.brand <> '' GROUP BY m.brand"
            )
            buckets = " ".join(
                f"WHEN m.price_min < {high} THEN '{price_bucket_value((low, high))}'"
                for low, high in PRICE_BUCKETS
                if high is not None
            )
            last = price_bucket_value(PRICE_BUCKETS[-1])
            price = f"CASE {buckets} ELSE '{last}' END"
            parts.append(
                f"SELECT '{FACET_PRICE}', {price}, '', COUNT(*) FROM m "
                f"WHERE {filters.all_but(FACET_PRICE, 'm')} GROUP BY {price}"
            )
            stock = "CASE WHEN m.in_stock THEN 'true' ELSE 'false' END"
            parts.append(
                f"SELECT '{FACET_IN_STOCK}', {stock}, '', COUNT(*) FROM m "
                f"WHERE {filters.all_but(FACET_IN_STOCK, 'm')} GROUP BY {stock}"
            )
            elements, name, value = self.attribute_elements("m")
            facet = f"'{ATTRIBUTE_FACET_PREFIX}' || {name}"
            filtered = [
                n.removeprefix(ATTRIBUTE_FACET_PREFIX)
                for n in filters.conditions
                if n.startswith(ATTRIBUTE_FACET_PREFIX)
            ]
            unfiltered = ""
            if filtered:
                params["facet_filtered"] = self.list_value(filtered)
                unfiltered = f" AND NOT ({self.in_list(name, 'facet_filtered')})"
            parts.append(
                f"SELECT {facet}, {value}, '', COUNT(*) FROM m, {elements} "
                f"WHERE {filters.all_but(None, 'm')}{unfiltered} GROUP BY {name}, {value}"
            )
            # A filtered attribute counts its values without its own filter.
            for i, attribute_name in enumerate(filtered):
                params[f"facet_an{i}"] = attribute_name
                own = ATTRIBUTE_FACET_PREFIX + attribute_name
                parts.append(
                    f"SELECT {facet}, {value}, '', COUNT(*) FROM m, {elements} "
                    f"WHERE {filters.all_but(own, 'm')} AND {name} = :facet_an{i} "
                    f"GROUP BY {name}, {value}"
                )
        return parts, params

    def _flags(self, filters: _Filters) -> str:
        return "".join(
            f", ({condition}) AS {filters.flag(name)}"
            for name, condition in filters.conditions.items()
        )

    @staticmethod
    def _matched(match: Match, flags: str, extra: str = "") -> str:
        """Every matched document with what facets need and a flag per filter."""
        return (
            f"SELECT d.product_id, d.brand, d.category_slugs, d.category_names, "
            f"d.price_min, d.in_stock, d.attributes{flags}{extra} FROM {match.source} d "
            f"WHERE {match.condition}"
        )

    # -- cursor keys ------------------------------------------------------------------

    def _sort_type(self, sort_key: SearchSortKey) -> TypeEngine[Any]:
        return {
            SearchSortKey.RELEVANCE: self.score_type(),
            SearchSortKey.TITLE: String(),
            SearchSortKey.PRICE: Integer(),
            SearchSortKey.CREATED_AT: DateTime(timezone=True),
            SearchSortKey.RATING: Float(),
        }[sort_key]

    def _key(self, sort_key: SearchSortKey, value: Any) -> Any:
        if sort_key is SearchSortKey.RELEVANCE:
            return self.score_key(value)
        if sort_key is SearchSortKey.CREATED_AT:
            return time_key(value)
        if sort_key is SearchSortKey.RATING:
            return float(value)
        return value

    def _bind(self, sort_key: SearchSortKey, value: Any) -> Any:
        """A cursor's sort value, checked; INVALID_CURSOR when it is not one we wrote."""
        try:
            if sort_key is SearchSortKey.RELEVANCE:
                return self.score_bind(value)
            if sort_key is SearchSortKey.CREATED_AT:
                return parse_time(value)
            if sort_key is SearchSortKey.RATING:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError("rating")
                return float(value)
            if sort_key is SearchSortKey.PRICE:
                return _int_key(value)
            if not isinstance(value, str):
                raise ValueError("title")
            return value
        except (ValueError, ArithmeticError):
            raise invalid_cursor() from None


def _ordering(request: SearchRequest) -> str:
    return f"search:{request.sort_key.value}:{'reverse' if request.reverse else 'forward'}"


def _int_key(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_cursor()
    return value


def decimal_key(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError("score")
    score = Decimal(value)
    if not score.is_finite():
        raise ValueError("score")
    return score


_COMPARED = [c for c in search_documents.c if c.name != "search_vector"]


def _differs(stored: Mapping[Any, Any] | None, fresh: dict[str, Any] | None) -> bool:
    if stored is None or fresh is None:
        return stored is not fresh
    return any(stored[c.name] != fresh[c.name] for c in _COMPARED)


def document_row(document: SearchDocument) -> dict[str, Any]:
    return {
        "product_id": document.product_id,
        "slug": document.slug,
        "title": document.title,
        "brand": document.brand,
        "description": document.description,
        "category_slugs": list(document.category_slugs),
        "category_names": list(document.category_names),
        "attributes": [list(pair) for pair in document.attributes],
        "price_min": document.price_min,
        "price_max": document.price_max,
        "in_stock": document.in_stock,
        "rating": document.rating,
        "created_at": document.created_at,
        "search_text": " ".join([document.title, document.brand, *document.category_names]).lower(),
        "search_vector": None,
    }


def json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values))
