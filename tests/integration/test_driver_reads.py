"""The catalog's fixed-shape reads on asyncpg itself (persistence/driver_reads.py) give
what SQLAlchemy's execute gives: the same records and pages for the same rows, every
statement counted, and the same coded error when the database drops the connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from domain.catalog import ProductFilter, ProductSortKey
from domain.listing import ProductListQuery, products_page_request
from domain.pagination import PageRequest
from persistence.catalog.repository import CatalogRepository
from persistence.db import Database, create_database
from persistence.driver_reads import fetch_on
from persistence.pii import PiiCipher
from persistence.seed import seed_catalog
from tests.client import AppClient
from tests.conftest import SEED_COLUMNS, TEST_PII_KEY

LISTING = "{ products(first: 5) { edges { node { title variants { quantityAvailable } } } } }"


@contextmanager
def sqlalchemy_executes(db: Database) -> Iterator[list[int]]:
    """How many statements went through SQLAlchemy's execute on the reader (its cursor
    events, which a statement run on the driver never fires)."""
    seen = [0]

    def executed(*_: Any) -> None:
        seen[0] += 1

    engine = db.primary_reader.sync_engine
    event.listen(engine, "before_cursor_execute", executed)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", executed)


@contextmanager
def through_sqlalchemy(db: Database) -> Iterator[None]:
    db.driver_reads = False
    try:
        yield
    finally:
        db.driver_reads = True


@pytest.fixture
async def catalog(db: Database, clean: None) -> CatalogRepository:
    await seed_catalog(db, customer_columns=SEED_COLUMNS, products=40, seed=11)
    return CatalogRepository(db, PiiCipher([TEST_PII_KEY]))


async def both_ways(db: Database, read: Callable[[], Awaitable[Any]]) -> Any:
    """`read` on the driver, then through SQLAlchemy: one statement each, counted, and
    the same answer (returned)."""
    with sqlalchemy_executes(db) as executed, db.counter.scope() as counted:
        on_driver = await read()
    assert (counted[0], executed[0]) == (1, 0)  # counted, and not through SQLAlchemy
    with through_sqlalchemy(db), sqlalchemy_executes(db) as executed, db.counter.scope() as counted:
        through = await read()
    assert (counted[0], executed[0]) == (1, 1)
    assert on_driver == through
    return on_driver


async def test_every_fixed_read_gives_the_same_records_on_the_driver(
    db: Database, catalog: CatalogRepository
) -> None:
    page = await catalog.list_products(
        ProductListQuery(ProductFilter(), ProductSortKey.ID, False, PageRequest(100))
    )
    assert 0 < len(page.edges) < 40  # the seed archives some: the by-id reads return them
    ids = list(range(1, 41))
    products = list((await both_ways(db, lambda: catalog.products_by_ids(ids))).values())
    assert len(products) == 40
    variants = await both_ways(db, lambda: catalog.variants_by_product_ids(ids))
    variant_ids = [v.id for vs in variants.values() for v in vs]
    assert len(variant_ids) > 40
    category_ids = sorted({p.category_id for p in products if p.category_id is not None})
    slugs = [p.slug for p in products]
    assert len(await both_ways(db, lambda: catalog.products_by_slugs(slugs))) == 40
    assert len(await both_ways(db, lambda: catalog.variants_by_ids(variant_ids))) == len(
        variant_ids
    )
    stock = await both_ways(db, lambda: catalog.inventory_by_variant_ids(variant_ids))
    assert len(stock) == len(variant_ids)
    assert any(await both_ways(db, lambda: catalog.images_by_product_ids(ids)))
    categories = await both_ways(db, lambda: catalog.categories_by_ids(category_ids))
    assert set(category_ids) <= set(categories)
    category_slugs = [c.slug for c in categories.values()]
    assert len(await both_ways(db, lambda: catalog.categories_by_slugs(category_slugs))) == len(
        category_slugs
    )
    await both_ways(db, lambda: catalog.children_by_category_ids(list(categories)))
    related = await both_ways(db, lambda: catalog.related_products(ids, 4))
    assert any(related.values())
    reviews = await both_ways(db, lambda: catalog.newest_reviews(ids, PageRequest(3)))
    written = [edge.node for page in reviews.values() for edge in page.edges]
    assert written, "the seed writes reviews"
    assert all(review.author_name for review in written)  # decrypted the same way
    after = next(page for page in reviews.values() if page.has_next_page)
    last = after.edges[-1].node
    await both_ways(
        db,
        lambda: catalog.newest_reviews(ids, PageRequest(3, (last.created_at.isoformat(), last.id))),
    )
    review_ids = [review.id for review in written]
    assert len(await both_ways(db, lambda: catalog.reviews_by_ids(review_ids))) == len(review_ids)


@pytest.mark.parametrize("sort_key", list(ProductSortKey))
@pytest.mark.parametrize("reverse", [False, True])
async def test_listings_of_every_sort_and_cursor_are_the_same_on_the_driver(
    db: Database, catalog: CatalogRepository, sort_key: ProductSortKey, reverse: bool
) -> None:
    first = await both_ways(
        db,
        lambda: catalog.list_products(
            ProductListQuery(ProductFilter(), sort_key, reverse, PageRequest(7))
        ),
    )
    assert len(first.edges) == 7 and first.has_next_page
    after = products_page_request(sort_key, reverse, 7, first.edges[-1].cursor, 100)
    second = await both_ways(
        db,
        lambda: catalog.list_products(ProductListQuery(ProductFilter(), sort_key, reverse, after)),
    )
    assert len(second.edges) == 7
    assert not {e.node.id for e in first.edges} & {e.node.id for e in second.edges}


async def test_filtered_listings_are_the_same_on_the_driver(
    db: Database, catalog: CatalogRepository
) -> None:
    everything = await catalog.list_products(
        ProductListQuery(ProductFilter(), ProductSortKey.ID, False, PageRequest(100))
    )
    products = [edge.node for edge in everything.edges]
    brands = tuple(sorted({p.brand for p in products})[:2])
    category = await catalog.categories_by_ids([products[0].category_id or 0])
    root = min(category.values(), key=lambda c: len(c.path))
    filters = [
        ProductFilter(brands=brands),
        ProductFilter(category_slug=root.slug),
        ProductFilter(price_min=products[0].price_min),
        ProductFilter(price_max=products[0].price_max),
        ProductFilter(price_min=1, price_max=products[0].price_max, in_stock=True),
        ProductFilter(in_stock=False),
        ProductFilter(category_slug="no-such-category", brands=("nobody",)),
    ]
    answered = 0
    for product_filter in filters:
        page = await both_ways(
            db,
            lambda f=product_filter: catalog.list_products(
                ProductListQuery(f, ProductSortKey.PRICE, True, PageRequest(50))
            ),
        )
        answered += bool(page.edges)
    assert answered >= 4  # the filters select something, so the comparisons compare rows


async def test_a_connection_the_server_dropped_answers_503_then_the_next_request_works(
    client: AppClient, db: Database, database_url: str
) -> None:
    for driver in (True, False):
        client.container.db.driver_reads = driver
        # A few connections in the reader's pool, all of which the server then drops.
        warm = await asyncio.gather(*(client.query(LISTING) for _ in range(3)))
        assert all(response.status == 200 for response in warm)
        await _terminate_other_backends(database_url)
        response = await client.query(LISTING)
        assert response.status == 503, (driver, response.body)
        assert response.error_codes == ["SERVICE_UNAVAILABLE"]
        assert "errorId" not in response.errors[0]["extensions"]
        # The dropped connections are not handed out again: the next requests answer.
        again = await asyncio.gather(*(client.query(LISTING) for _ in range(3)))
        assert [r.status for r in again] == [200, 200, 200], driver
    client.container.db.driver_reads = True
    # The tests' own engines lost their connections too: new ones for the next test.
    await db.writer.dispose()
    await db.primary_reader.dispose()


async def test_a_read_cancelled_mid_statement_leaves_no_broken_connection(db: Database) -> None:
    """A request timeout cancels the read while PostgreSQL runs it: the connection goes
    back to the pool (closed, as SQLAlchemy closes one cancelled mid-statement) and the
    next read answers at once."""
    engine = db.primary_reader
    pool = engine.sync_engine.pool
    for _ in range(3):
        slow = asyncio.create_task(fetch_on(engine, "SELECT pg_sleep(5)", [], db.counter))
        await asyncio.sleep(0.2)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError) as cancelled:
            await slow
        # Checked in by the read itself: the traceback still holds the read's frame, so
        # a connection it had not returned would still be out.
        assert cancelled.traceback and pool.checkedout() == 0  # type: ignore[attr-defined]
        async with asyncio.timeout(2):
            rows = await fetch_on(engine, "SELECT $1::int AS n", [7], db.counter)
        assert [row["n"] for row in rows] == [7]


async def test_connections_beyond_the_pool_size_close_cleanly_on_return(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Under a burst the pool opens overflow connections; given back, they are closed
    (an await, so in SQLAlchemy's greenlet): no error logged, none left checked out."""
    db = create_database(database_url, pool_size=1)
    engine = db.primary_reader
    try:
        burst = [fetch_on(engine, "SELECT pg_sleep(0.05)", [], db.counter) for _ in range(4)]
        await asyncio.gather(*burst)
        pool: Any = engine.sync_engine.pool
        assert (pool.checkedout(), pool.overflow(), db.counter.total) == (0, 0, 4)
    finally:
        await db.dispose()
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


async def _terminate_other_backends(database_url: str) -> None:
    url = make_url(database_url)
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
