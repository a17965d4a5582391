"""Migration 0008 rewrites emails stored before canonical emails, on PostgreSQL."""

from __future__ import annotations

import os

import asyncpg
import sqlalchemy as sa
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from persistence.db import create_database
from persistence.migrate import PiiKeys, upgrade
from persistence.pii import PiiCipher
from persistence.tables import customers
from settings import Settings
from tests.client import SIGN_UP, running_app
from tests.conftest import (
    FAST_PASSWORDS,
    TEST_DATABASE_URL,
    TEST_PII_INDEX_KEY,
    TEST_PII_KEY,
    TEST_REDIS_URL,
    _recreate_database,
)
from tests.integration.test_email_identity import fullwidth

KEYS = PiiKeys([TEST_PII_KEY], TEST_PII_INDEX_KEY)
# The customers table as it was before 0010 encrypted its email and name.
plain_customers = sa.table(
    "customers",
    sa.column("id", sa.BigInteger),
    sa.column("email", sa.String),
    sa.column("display_name", sa.String),
    sa.column("password_hash", sa.String),
    sa.column("is_staff", sa.Boolean),
)

# A database of its own: this test migrates from an older revision.
URL = os.environ.get(
    "TEST_MIGRATION_DATABASE_URL",
    str(make_url(TEST_DATABASE_URL).set(database=f"{make_url(TEST_DATABASE_URL).database}_m")),
)


async def test_old_spellings_become_canonical_and_keep_their_address() -> None:
    await _recreate_database(URL)
    await upgrade(URL, "0006")
    db = create_database(URL)
    old = [
        fullwidth("BOB") + "@example.com",  # an account the old rules let in
        "Elise@Example.COM".replace("E", "\u00c9", 1),  # ÉLISE: C-collation lower() keeps it
        "bob@EXAMPLE.com",  # the same mailbox as the first: a collision
        "ann@example.com",  # already canonical
    ]
    try:
        async with db.writer.begin() as connection:
            for email in old:
                await connection.execute(
                    insert(plain_customers).values(
                        email=email, display_name="x", password_hash=None, is_staff=False
                    )
                )

        await upgrade(URL, pii=KEYS)

        async with db.reader.connect() as connection:
            tokens = (
                (
                    await connection.execute(
                        select(customers.c.email_encrypted).order_by(customers.c.id)
                    )
                )
                .scalars()
                .all()
            )
        stored = [PiiCipher([TEST_PII_KEY]).decrypt(token) for token in tokens]
    finally:
        await db.dispose()

    # Of the colliding pair, the account that owned the address under lower() (the one
    # that could log in with it) keeps it; the other keeps its old spelling.
    assert stored == [
        fullwidth("BOB") + "@example.com",
        "\u00e9lise@example.com",
        "bob@example.com",
        "ann@example.com",
    ]

    settings = Settings(
        environment="test",
        database_url=URL,
        redis_url=TEST_REDIS_URL,
        pii_encryption_keys=TEST_PII_KEY,
        pii_index_key=TEST_PII_INDEX_KEY,
        **FAST_PASSWORDS,
    )
    async with running_app(settings) as client:
        taken = await client.query(
            SIGN_UP, {"email": "\u00c9LISE@example.com", "password": "correct horse", "name": "E"}
        )
    await _drop_database(URL)
    # Before 0008 the database's lower() kept the accented capital: a second account.
    assert [e["code"] for e in taken.data["customerCreate"]["userErrors"]] == ["EMAIL_TAKEN"]


async def _drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database="postgres"
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await admin.close()
