"""Programmatic Alembic: `python app.py migrate` and the test fixtures use this."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config

from persistence.db import ensure_sqlite_directory

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class PiiKeys:
    """What the revisions that encrypt or decrypt rows use (0010): PII_ENCRYPTION_KEYS
    and PII_INDEX_KEY as the app reads them. Without it they read the settings."""

    encryption_keys: list[str]
    index_key: str


def alembic_config(database_url: str, pii: PiiKeys | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if pii is not None:
        config.attributes["pii_keys"] = pii.encryption_keys
        config.attributes["pii_index_key"] = pii.index_key
    return config


async def upgrade(database_url: str, revision: str = "head", pii: PiiKeys | None = None) -> None:
    ensure_sqlite_directory(database_url)
    # Alembic's env.py runs its own event loop; keep it off ours.
    await asyncio.to_thread(command.upgrade, alembic_config(database_url, pii), revision)


async def downgrade(database_url: str, revision: str, pii: PiiKeys | None = None) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(database_url, pii), revision)
