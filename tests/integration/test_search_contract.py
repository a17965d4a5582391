"""Every SQL search index against the same seeded catalog: facet counts, filters and pages
checked by brute force in Python over the catalog's documents.

The PostgreSQL index runs on the test database; the SQLite one (the embedded mode) on a
migrated file of its own, seeded with the same deterministic catalog.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text

from domain.catalog import AttributeFilter, ProductFilter
from domain.errors import ErrorCode, InvalidInput
from domain.search import (
    MAX_FACET_VALUES,
    FacetValue,
    SearchDocument,
    SearchIndex,
    SearchRequest,
    SearchSortKey,
    price_bucket_of,
    price_bucket_value,
)
from persistence.db import Database, create_database
from persistence.migrate import upgrade
from persistence.search.documents import iter_search_documents
from persistence.search.postgres import PostgresSearchIndex
from persistence.search.sqlite import SqliteSearchIndex
from persistence.seed import seed_catalog
from persistence.tables import metadata
from tests.conftest import SEED_COLUMNS

PRODUCTS = 300


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
async def seeded(
    request: pytest.FixtureRequest, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[SearchIndex, list[SearchDocument]]]:
    if request.param == "postgres":
        names = ", ".join(table.name for table in metadata.sorted_tables)
        async with db.writer.begin() as connection:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        database, index = db, PostgresSearchIndex(db)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('search') / 'shop.db'}"
        await upgrade(url)
        database = create_database(url)
        index = SqliteSearchIndex(database)
    await seed_catalog(database, customer_columns=SEED_COLUMNS, products=PRODUCTS, seed=5)
    assert await index.rebuild() > 0
    documents = [d async for batch in iter_search_documents(database) for d in batch]
    yield index, documents
    if database is not db:
        await database.dispose()


async def _all_ids(index: SearchIndex, request: SearchRequest) -> list[int]:
    ids: list[int] = []
    after = None
    while True:
        page = await index.search(
            SearchRequest(
                text=request.text,
                filter=request.filter,
                sort_key=request.sort_key,
                reverse=request.reverse,
                first=37,
                after=after,
                with_facets=False,
                with_total=False,
            )
        )
        ids += [hit.product_id for hit in page.hits]
        if not page.has_next_page:
            return ids
        after = page.hits[-1].cursor


Predicate = Callable[[SearchDocument], bool]


def _predicates(f: ProductFilter) -> dict[str, Predicate]:
    """The filter as Python, one predicate per facet it narrows."""
    out: dict[str, Predicate] = {}
    if f.category_slug is not None:
        slug = f.category_slug
        out["category"] = lambda d: slug in d.category_slugs
    if f.brands is not None:
        brands = set(f.brands)
        out["brand"] = lambda d: d.brand in brands
    if f.price_min is not None or f.price_max is not None:
        low, high = f.price_min or 0, f.price_max if f.price_max is not None else 10**12
        out["price"] = lambda d: low <= d.price_min <= high
    if f.in_stock is not None:
        wanted = f.in_stock
        out["inStock"] = lambda d: d.in_stock == wanted
    for a in f.attributes:
        name, values = a.name, set(a.values)
        out[f"attribute:{name}"] = lambda d, n=name, v=values: any(  # type: ignore[misc]
            k == n and x in v for k, x in d.attributes
        )
    return out


def _expected_facets(docs: list[SearchDocument], f: ProductFilter) -> dict[str, dict[str, int]]:
    predicates = _predicates(f)

    def passing(but: str | None) -> list[SearchDocument]:
        return [d for d in docs if all(p(d) for name, p in predicates.items() if name != but)]

    facets: dict[str, Counter[str]] = {
        "category": Counter(s for d in passing("category") for s in d.category_slugs),
        "brand": Counter(d.brand for d in passing("brand") if d.brand),
        "price": Counter(
            price_bucket_value(price_bucket_of(d.price_min)) for d in passing("price")
        ),
        "inStock": Counter("true" if d.in_stock else "false" for d in passing("inStock")),
    }
    names = {k for d in docs for k, _ in d.attributes}
    for name in names:
        facet = f"attribute:{name}"
        facets[facet] = Counter(v for d in passing(facet) for k, v in d.attributes if k == name)
    # Each facet keeps its MAX_FACET_VALUES best values: most results first, then by value.
    return {
        name: dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_FACET_VALUES])
        for name, counts in facets.items()
        if counts
    }


def _facet_counts(values: tuple[FacetValue, ...]) -> dict[str, int]:
    return {v.value: v.count for v in values}


FILTERS = [
    ProductFilter(),
    ProductFilter(category_slug="electronics"),
    ProductFilter(brands=("Veltron", "Sonique"), in_stock=True),
    ProductFilter(price_min=2_500, price_max=9_999),
    ProductFilter(
        category_slug="clothing",
        attributes=(AttributeFilter("colour", ("Black", "White")),),
    ),
    ProductFilter(attributes=(AttributeFilter("type", ("Over-ear", "Earbuds")),), in_stock=False),
]


@pytest.mark.parametrize("words", ["", "quality", "head"])
@pytest.mark.parametrize("product_filter", FILTERS)
async def test_results_total_and_facets_match_a_brute_force_count(
    seeded: tuple[SearchIndex, list[SearchDocument]], words: str, product_filter: ProductFilter
) -> None:
    index, documents = seeded
    # What the words match is the engine's call; given that set, filters and facets are not.
    matched_ids = set(await _all_ids(index, SearchRequest(text=words)))
    matched = [d for d in documents if d.product_id in matched_ids]
    assert len(matched) == len(matched_ids)
    if not words:
        assert len(matched) == len(documents)
    expected_ids = {
        d.product_id for d in matched if all(p(d) for p in _predicates(product_filter).values())
    }

    result = await index.search(SearchRequest(text=words, filter=product_filter, first=100))

    assert result.total_count == len(expected_ids)
    assert set(await _all_ids(index, SearchRequest(text=words, filter=product_filter))) == (
        expected_ids
    )
    expected = _expected_facets(matched, product_filter)
    got = {f.name: _facet_counts(f.values) for f in result.facets}
    assert got == expected
    for facet in result.facets:
        counts = [v.count for v in facet.values]
        assert counts == sorted(counts, reverse=True)


async def test_a_facet_ignores_its_own_filter_but_not_the_others(
    seeded: tuple[SearchIndex, list[SearchDocument]],
) -> None:
    index, _ = seeded
    unfiltered = await index.search(SearchRequest(text=""))
    brands = {f.name: f for f in unfiltered.facets}["brand"]
    chosen = brands.values[0].value

    narrowed = await index.search(SearchRequest(text="", filter=ProductFilter(brands=(chosen,))))

    facets = {f.name: f for f in narrowed.facets}
    assert facets["brand"] == brands  # every brand still offered, with its full count
    assert narrowed.total_count == brands.values[0].count
    assert sum(v.count for v in facets["inStock"].values) == brands.values[0].count


async def test_the_typo_and_prefix_cases_on_the_seeded_catalog(
    seeded: tuple[SearchIndex, list[SearchDocument]],
) -> None:
    index, documents = seeded
    by_id = {d.product_id: d for d in documents}

    typo = await index.search(SearchRequest(text="televsion", first=50))
    prefix = await index.search(SearchRequest(text="head", first=50))

    assert typo.hits and all("televisions" in by_id[h.product_id].category_slugs for h in typo.hits)
    headphones = [d for d in documents if "Headphones" in d.title]
    assert headphones
    assert {h.product_id for h in prefix.hits[: len(headphones)]} <= {
        d.product_id for d in documents if "head" in (d.title + " ".join(d.category_names)).lower()
    }
    assert typo.engine == index.engine


async def test_sorted_pages_follow_the_sort_key(
    seeded: tuple[SearchIndex, list[SearchDocument]],
) -> None:
    index, documents = seeded
    by_id = {d.product_id: d for d in documents}
    for reverse in (False, True):
        ids = await _all_ids(
            index, SearchRequest(text="quality", sort_key=SearchSortKey.PRICE, reverse=reverse)
        )
        keys = [(by_id[i].price_min, i) for i in ids]
        assert keys == sorted(keys, reverse=reverse)
        assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "cursor", ["", "%%%", "WyJ4Il0", "WyJzZWFyY2g6UkVMRVZBTkNFOmZvcndhcmQiLCJ4IiwxXQ"]
)
async def test_a_bad_cursor_is_invalid_cursor(
    seeded: tuple[SearchIndex, list[SearchDocument]], cursor: str
) -> None:
    index, _ = seeded
    with pytest.raises(InvalidInput) as raised:
        await index.search(SearchRequest(text="black", after=cursor))
    assert raised.value.code is ErrorCode.INVALID_CURSOR
