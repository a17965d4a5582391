"""The SDL contract and the migrations both match the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from persistence.migrate import downgrade, upgrade
from persistence.tables import metadata
from resolvers.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_schema_graphql_is_current() -> None:
    checked_in = (ROOT / "schema.graphql").read_text()

    assert checked_in == str(build_schema()).rstrip() + "\n", (
        "schema.graphql is stale: run `make schema` and review the diff"
    )


async def _differences(url: str) -> list[object]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()


async def test_postgres_migrations_match_the_tables(database_url: str) -> None:
    assert await _differences(database_url) == []


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"


# SQLite cannot reflect expression indexes (lower(email)); PostgreSQL's test covers it.
@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")
async def test_sqlite_migrations_match_the_tables_and_downgrade_cleanly(sqlite_url: str) -> None:
    await upgrade(sqlite_url)
    assert await _differences(sqlite_url) == []

    await downgrade(sqlite_url, "base")
    await upgrade(sqlite_url)
    assert await _differences(sqlite_url) == []
