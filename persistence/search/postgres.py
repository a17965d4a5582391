"""Product search on PostgreSQL: weighted full-text, prefixes and typos, SQL facets.

Matching, all three served by GIN indexes on `search_documents`:
- `websearch_to_tsquery` over the weighted tsvector (A title, B brand and categories,
  C description and attribute values): the shopper's words, stemmed ("televisions"
  finds "television");
- the same words with the last one as a prefix (`head` finds "headphones"), since
  shoppers type as they search;
- pg_trgm word similarity against title, brand and category names: one typo
  ("televsion") still shares most trigrams with the word meant.
RELEVANCE ranks by `ts_rank` (weights keep title over brand/category over description),
plus a smaller trigram similarity to the title, so exact words beat typo matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Numeric, String, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from domain.pagination import SortKey
from domain.search import SearchRequest
from persistence.search.sql import Match, SqlSearchIndex, _Filters, decimal_key

TEXT_CONFIG = "english"
# ts_rank of one A-weighted word is about 0.06: scaled so a title word (~0.6) outweighs
# a brand/category word (~0.24), which outweighs a description one (~0.06); a typo match
# scores its trigram similarity (at most 0.25), more for the title.
_SCORE = (
    "ROUND(CAST("
    "10 * ts_rank(d.search_vector, websearch_to_tsquery('english', :q_web)) "
    "+ 5 * ts_rank(d.search_vector, to_tsquery('english', :q_prefix)) "
    # Trigram similarity only where no word matched exactly: it costs most of the
    # ranking's time (39 ms -> 9 ms for 2,500 matches) and only orders the typo matches.
    "+ CASE WHEN d.search_vector @@ "
    "(websearch_to_tsquery('english', :q_web) || to_tsquery('english', :q_prefix)) THEN 0 "
    "ELSE 0.2 * word_similarity(:q_words, lower(d.title)) "
    "+ 0.05 * word_similarity(:q_words, d.search_text) END AS numeric), 6)"
)
# The matched documents as two index scans appended: the words (or the last as a prefix)
# through the tsvector index, and, of the rest, those a word is a typo away from through
# the trigram index. As one OR the planner reads the whole table, testing trigram
# similarity on every row (50 ms at 10,000 products); as a semi-join on the ids it
# fetches every match twice (16 ms against 9 ms for 2,574 matches).
_WORDS = "(websearch_to_tsquery('english', :q_web) || to_tsquery('english', :q_prefix))"
_SOURCE = (
    f"(SELECT * FROM search_documents WHERE search_vector @@ {_WORDS} "
    f"UNION ALL SELECT * FROM search_documents "
    f"WHERE :q_words <% search_text AND NOT (search_vector @@ {_WORDS}))"
)
_VECTOR = text(
    "UPDATE search_documents SET search_vector = "
    "setweight(to_tsvector('english', title), 'A') || "
    "setweight(to_tsvector('english', brand || ' ' || coalesce((SELECT string_agg(value, ' ') "
    "FROM jsonb_array_elements_text(category_names)), '')), 'B') || "
    "setweight(to_tsvector('english', description || ' ' || coalesce((SELECT "
    "string_agg(pair ->> 1, ' ') FROM jsonb_array_elements(attributes) AS pair), '')), 'C') "
    "WHERE product_id = ANY(:ids)"
)


class PostgresSearchIndex(SqlSearchIndex):
    engine = "postgres"

    async def _run(
        self,
        connection: AsyncConnection,
        request: SearchRequest,
        match: Match,
        filters: _Filters,
        after: SortKey | None,
    ) -> tuple[list[Any], list[Any]]:
        """Page, total and facets in one statement: the documents are matched once
        (matching is most of a search's time) and one plan serves all three."""
        if not (request.with_facets or request.with_total):
            return await super()._run(connection, request, match, filters, after)
        page = self._page_parts(request, match, after, "m")
        outer = self._page_parts(request, match, after, "")
        parts, params = self._facet_parts(request, match, filters)
        matched = self._matched(
            match, self._flags(filters), f", {page.sort_expression} AS sort_value"
        )
        sql = (
            f"WITH m AS MATERIALIZED ({matched}), "
            f"p AS (SELECT m.product_id, m.sort_value FROM m "
            f"WHERE {filters.all_but(None, 'm')} AND {page.keyset} "
            f"ORDER BY {page.order_by} LIMIT :limit), "
            f"f AS (SELECT COALESCE(json_agg(json_build_array(facet, value, label, n)), '[]') "
            f"AS counts FROM ({' UNION ALL '.join(parts)}) AS x(facet, value, label, n)) "
            f"SELECT 0 AS part, p.product_id, p.sort_value, NULL AS counts FROM p "
            f"UNION ALL SELECT 1, NULL, NULL, f.counts FROM f "
            f"ORDER BY part, {outer.order_by}"
        )
        statement = (
            text(sql)
            .bindparams(*page.binds)
            .columns(
                part=Integer(),
                product_id=Integer(),
                sort_value=self._sort_type(request.sort_key),
                counts=String(),
            )
        )
        rows = (await connection.execute(statement, {**params, **page.params})).all()
        hits = [row for row in rows if row.part == 0]
        # The driver decodes json itself (SQLAlchemy's asyncpg codec).
        counts: list[Any] = next((row.counts for row in rows if row.part == 1), [])
        return hits, counts

    def match(self, words: list[str], text_: str) -> Match:
        prefix = " & ".join([*words[:-1], f"{words[-1]}:*"])
        return Match(
            source=_SOURCE,
            score=_SCORE,
            params={"q_web": text_, "q_prefix": prefix, "q_words": " ".join(words)},
        )

    def in_list(self, expression: str, param: str) -> str:
        return f"{expression} = ANY(:{param})"

    def list_value(self, values: Sequence[str]) -> Any:
        return list(values)

    def has_category(self, param: str) -> str:
        return f"d.category_slugs @> jsonb_build_array(CAST(:{param} AS text))"

    def category_elements(self) -> tuple[str, str, str]:
        return (
            "jsonb_array_elements_text(m.category_slugs) WITH ORDINALITY AS c(slug, ord)",
            "c.slug",
            "m.category_names ->> CAST(c.ord - 1 AS integer)",
        )

    def attribute_elements(self, source: str) -> tuple[str, str, str]:
        return (
            f"jsonb_array_elements({source}.attributes) AS a(pair)",
            "(a.pair ->> 0)",
            "(a.pair ->> 1)",
        )

    def score_type(self) -> TypeEngine[Any]:
        return Numeric(asdecimal=True)

    def score_key(self, value: Any) -> Any:
        return str(Decimal(value))

    def score_bind(self, value: Any) -> Any:
        return decimal_key(value)

    async def after_write(self, connection: AsyncConnection, ids: list[int]) -> None:
        await connection.execute(_VECTOR, {"ids": ids})

    async def after_rebuild(self) -> None:
        # A rebuild leaves every old row dead: without a vacuum and fresh statistics the
        # planner prices the GIN scans above a sequential scan (measured: 70 ms vs 18 ms).
        # AUTOCOMMIT, which VACUUM needs, on the primary (a standby refuses it).
        async with self._db.primary_reader.connect() as connection:
            await connection.execute(text("VACUUM ANALYZE search_documents"))
