"""A database that cannot serve is an outage the client is told of (SERVICE_UNAVAILABLE,
503, retry), not an internal error: the load balancer and the client both see it, and no
error id is minted for what is not a bug."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from persistence.db import Database, database_unavailable
from tests.client import AppClient
from tests.redis_server import free_port

LISTING = "{ products(first: 5) { edges { node { title } } } }"


@contextmanager
def engines_replaced(db: Database, engine: AsyncEngine) -> Iterator[None]:
    """Every read and write of the running app goes to `engine` (a real one that cannot
    serve) until the block ends."""
    writer, reader = db.writer, db.primary_reader
    db.writer = db.primary_reader = engine
    try:
        yield
    finally:
        db.writer, db.primary_reader = writer, reader


@asynccontextmanager
async def exhausted_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """A pool of one connection, held: the next checkout waits 0.2 s and gives up."""
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    held = await engine.connect()
    try:
        yield engine
    finally:
        await held.close()
        await engine.dispose()


async def test_a_refused_database_answers_503_service_unavailable(client: AppClient) -> None:
    dead = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    with engines_replaced(client.container.db, dead):
        response = await client.query(LISTING)
    await dead.dispose()
    assert response.status == 503
    assert response.error_codes == ["SERVICE_UNAVAILABLE"]
    assert response.body["data"] is None
    assert "errorId" not in response.errors[0]["extensions"]
    again = await client.query(LISTING)  # the database back: the same query answers
    assert again.status == 200 and again.data == {"products": {"edges": []}}


async def test_a_full_pool_answers_503_service_unavailable(
    client: AppClient, database_url: str
) -> None:
    async with exhausted_engine(database_url) as full:
        with engines_replaced(client.container.db, full):
            response = await client.query(LISTING)
    assert response.status == 503
    assert response.error_codes == ["SERVICE_UNAVAILABLE"]


async def test_what_counts_as_the_database_being_unavailable(database_url: str) -> None:
    async def failure(engine: AsyncEngine, statement: str = "SELECT 1") -> BaseException:
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        except Exception as error:
            return error
        finally:
            await engine.dispose()
        raise AssertionError("the statement ran")

    refused = await failure(
        create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    )
    assert database_unavailable(refused)
    async with exhausted_engine(database_url) as full:
        assert database_unavailable(await failure(full))
    # A mistake in the query or the settings is not an outage: it stays an internal error.
    assert not database_unavailable(
        await failure(create_async_engine(database_url), "SELECT * FROM no_such_table")
    )
    assert not database_unavailable(ValueError("a bug"))
