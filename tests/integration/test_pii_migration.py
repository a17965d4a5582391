"""Migration 0010 encrypts existing customers' emails and names, indexes them blindly,
and its downgrade gives the plain columns back, on PostgreSQL and on SQLite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from integrations.passwords import Argon2Passwords
from persistence.accounts.customers import CustomerColumns, SqlCustomerRepository
from persistence.db import create_database
from persistence.migrate import PiiKeys, downgrade, upgrade
from persistence.pii import BlindIndex, PiiCipher
from persistence.tables import customers
from tests.conftest import (
    FAST_PASSWORDS,
    TEST_DATABASE_URL,
    TEST_PII_INDEX_KEY,
    TEST_PII_KEY,
    _recreate_database,
)
from tests.integration.test_email_identity import fullwidth
from tests.integration.test_email_migration import _drop_database

KEYS = PiiKeys([TEST_PII_KEY], TEST_PII_INDEX_KEY)
COLUMNS = CustomerColumns(PiiCipher([TEST_PII_KEY]), BlindIndex(TEST_PII_INDEX_KEY))
PG_URL = os.environ.get(
    "TEST_PII_MIGRATION_DATABASE_URL",
    str(make_url(TEST_DATABASE_URL).set(database=f"{make_url(TEST_DATABASE_URL).database}_p")),
)
plain_customers = sa.table(
    "customers",
    sa.column("id", sa.BigInteger),
    sa.column("email", sa.String),
    sa.column("display_name", sa.String),
    sa.column("password_hash", sa.String),
    sa.column("is_staff", sa.Boolean),
)
HASHER = Argon2Passwords(
    time_cost=FAST_PASSWORDS["argon2_time_cost"],
    memory_cost_kib=FAST_PASSWORDS["argon2_memory_cost_kib"],
    parallelism=FAST_PASSWORDS["argon2_parallelism"],
)
# (email, name) as 0008 left them: the last keeps a non-canonical spelling because the
# first holds its canonical form (it could never log in with it).
PLAIN = [
    ("ann@example.com", "Ann Lee"),
    ("bob@example.com", "Bob O'Neil"),
    ("\u00e9lise@example.com", "\u00c9lise Dupont"),
    (fullwidth("ANN") + "@example.com", "Other Ann"),
]


@pytest.fixture(params=["postgresql", "sqlite"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
        return
    await _recreate_database(PG_URL)
    yield PG_URL
    await _drop_database(PG_URL)


async def test_existing_customers_are_encrypted_and_come_back_on_downgrade(url: str) -> None:
    # Given customers stored in clear by revision 0008
    await upgrade(url, "0008")
    db = create_database(url)
    try:
        async with db.writer.begin() as connection:
            for email, name in PLAIN:
                await connection.execute(
                    insert(plain_customers).values(
                        email=email,
                        display_name=name,
                        password_hash=HASHER.hash("correct horse"),
                        is_staff=False,
                    )
                )

        # When the database is migrated to head
        await upgrade(url, pii=KEYS)
        async with db.reader.connect() as connection:
            rows = (
                (await connection.execute(select(customers).order_by(customers.c.id)))
                .mappings()
                .all()
            )
        repository = SqlCustomerRepository(db, COLUMNS)
        by_any_spelling = await repository.credentials(fullwidth("ANN@EXAMPLE.COM"))
        elise = await repository.credentials("\u00c9LISE@example.com")
        with pytest.raises(IntegrityError):  # the blind index is unique
            async with db.writer.begin() as connection:
                await connection.execute(
                    insert(customers).values(
                        COLUMNS.stored(email="BOB@example.com", display_name="B")
                    )
                )
    finally:
        await db.dispose()

    # Then nothing is left in clear, every value decrypts, and log-in finds the owner
    raw = " ".join(str(dict(row)) for row in rows).lower()
    # Whole values only: a random ciphertext or hash holds a short word like "lee" by chance
    # (about one run in thirty), never an "@" or a space.
    clear = ("ann@", "bob@", "lise@", "ann lee", "o'neil", "dupont", "other ann")
    assert [word for word in clear if word in raw] == []
    assert [(c.email, c.display_name) for c in map(COLUMNS.customer, rows)] == PLAIN
    assert [row["email_index"] for row in rows[:3]] == [COLUMNS.index_of(e) for e, _ in PLAIN[:3]]
    assert rows[3]["email_index"] not in {COLUMNS.index_of(e) for e, _ in PLAIN}
    assert by_any_spelling is not None and by_any_spelling[0].display_name == "Ann Lee"
    assert elise is not None and HASHER.verify(elise[1] or "", "correct horse")

    # When it is downgraded again, Then the plain columns hold what they held
    await downgrade(url, "0008", pii=KEYS)
    db = create_database(url)
    try:
        async with db.reader.connect() as connection:
            back = (
                await connection.execute(
                    select(plain_customers.c.email, plain_customers.c.display_name).order_by(
                        plain_customers.c.id
                    )
                )
            ).all()
    finally:
        await db.dispose()
    assert [tuple(row) for row in back] == PLAIN
    await upgrade(url, pii=KEYS)  # and up once more: the round trip is repeatable
