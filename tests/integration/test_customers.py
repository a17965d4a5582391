"""Accounts over the real stack: sign-up, tokens in Redis, logout, expiry, throttling."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import select

from persistence.db import Database
from persistence.tables import customers
from settings import Settings
from tests.client import LOG_IN, SIGN_UP, AppClient, running_app
from tests.conftest import (
    FAST_PASSWORDS,
    SEED_COLUMNS,
    TEST_PII_INDEX_KEY,
    TEST_PII_KEY,
    TEST_REDIS_URL,
)

ROOT = Path(__file__).resolve().parents[2]
LOG_OUT = """mutation($t: String!) { customerAccessTokenDelete(input: {accessToken: $t}) {
  deletedAccessToken userErrors { code } } }"""
ME = "{ me { id email name } }"


async def sign_up(
    client: AppClient, email: str = "ann@example.com", password: str = "correct horse"
) -> dict:
    result = await client.query(SIGN_UP, {"email": email, "password": password, "name": "Ann Lee"})
    return result.data["customerCreate"]


async def log_in(
    client: AppClient, email: str = "ann@example.com", password: str = "correct horse"
) -> dict:
    return (await client.query(LOG_IN, {"email": email, "password": password})).data[
        "customerAccessTokenCreate"
    ]


async def test_sign_up_log_in_and_me(client: AppClient, db: Database) -> None:
    created = await sign_up(client, email="Ann@Example.com")
    token = (await log_in(client, email="ann@EXAMPLE.com"))["customerAccessToken"]

    me = (await client.query(ME, token=token["accessToken"])).body

    assert created["userErrors"] == []
    assert me["data"]["me"] == {
        "id": created["customer"]["id"],
        "email": "ann@example.com",  # stored in its canonical form
        "name": "Ann Lee",
    }
    assert len(token["accessToken"]) >= 43  # 256 random bits, URL-safe base64
    async with db.reader.connect() as connection:
        stored = (await connection.execute(select(customers.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


async def test_sign_up_refuses_taken_emails_and_bad_input(client: AppClient) -> None:
    await sign_up(client)

    taken = await sign_up(client, email="ANN@example.com")
    short = await client.query(
        SIGN_UP, {"email": "x@example.com", "password": "1234567", "name": "X"}
    )
    long = await client.query(
        SIGN_UP, {"email": "y@example.com", "password": "p" * 257, "name": "Y"}
    )
    bad = await client.query(
        SIGN_UP, {"email": "not-an-email", "password": "long enough", "name": " "}
    )

    assert [e["code"] for e in taken["userErrors"]] == ["EMAIL_TAKEN"]
    assert short.data["customerCreate"]["userErrors"][0]["code"] == "TOO_SHORT"
    assert long.data["customerCreate"]["userErrors"][0]["code"] == "TOO_LONG"
    assert {(e["code"], e["field"][0]) for e in bad.data["customerCreate"]["userErrors"]} == {
        ("INVALID", "email"),
        ("BLANK", "name"),
    }


async def test_redis_holds_only_a_hash_of_the_token(client: AppClient, redis: Redis) -> None:
    await sign_up(client)
    token = (await log_in(client))["customerAccessToken"]["accessToken"]

    keys = [key async for key in redis.scan_iter("*")]
    values = [await redis.get(key) for key in keys if await redis.type(key) == b"string"]

    digest = hashlib.sha256(token.encode()).hexdigest()
    assert f"session:{digest}".encode() in keys
    assert all(token.encode() not in blob for blob in [*keys, *(v or b"" for v in values)])
    ttl = await redis.ttl(f"session:{digest}")
    assert 30 * 24 * 3600 - 60 < ttl <= 30 * 24 * 3600


async def test_logged_out_and_expired_tokens_stop_working(client: AppClient, redis: Redis) -> None:
    await sign_up(client)
    first = (await log_in(client))["customerAccessToken"]["accessToken"]
    second = (await log_in(client))["customerAccessToken"]["accessToken"]

    deleted = await client.query(LOG_OUT, {"t": first})
    await redis.pexpire(f"session:{hashlib.sha256(second.encode()).hexdigest()}", 1)
    await asyncio.sleep(0.05)

    assert deleted.data["customerAccessTokenDelete"]["deletedAccessToken"] == first
    assert (await client.query(ME, token=first)).data["me"] is None
    assert (await client.query(ME, token=second)).data["me"] is None
    assert (await client.query(ME, token="made-up")).data["me"] is None
    assert (await client.query(LOG_OUT, {"t": first})).data["customerAccessTokenDelete"][
        "deletedAccessToken"
    ] is None


async def test_wrong_password_and_unknown_email_give_the_same_error(client: AppClient) -> None:
    await sign_up(client)

    wrong = await log_in(client, password="wrong horse")
    unknown = await log_in(client, email="nobody@example.com")

    assert (
        wrong
        == unknown
        == {
            "customerAccessToken": None,
            "userErrors": [
                {
                    "field": None,
                    "code": "INVALID_CREDENTIALS",
                    "message": "email or password is incorrect",
                }
            ],
        }
    )


async def test_five_failures_lock_an_email_until_the_window_passes(
    database_url: str, clean: None
) -> None:
    settings = Settings(
        environment="test",
        database_url=database_url,
        redis_url=TEST_REDIS_URL,
        login_failure_window_seconds=1,
        **FAST_PASSWORDS,
    )
    async with running_app(settings) as client:
        await sign_up(client)
        for _ in range(5):
            assert (await log_in(client, password="wrong horse"))["userErrors"][0][
                "code"
            ] == "INVALID_CREDENTIALS"

        locked = await log_in(client)
        other_email = await log_in(client, email="other@example.com", password="whatever1")
        await asyncio.sleep(1.1)
        later = await log_in(client)

    assert locked["userErrors"][0]["code"] == "THROTTLED"
    assert other_email["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    assert later["userErrors"] == [] and later["customerAccessToken"]


async def test_twenty_failures_from_one_address_lock_that_address(client: AppClient) -> None:
    await sign_up(client)
    for n in range(20):
        await log_in(client, email=f"guess{n}@example.com")

    result = await log_in(client)

    assert result["userErrors"][0]["code"] == "THROTTLED"


async def test_create_staff_creates_or_promotes(
    database_url: str, db: Database, clean: None, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "PII_ENCRYPTION_KEYS": TEST_PII_KEY,
        "PII_INDEX_KEY": TEST_PII_INDEX_KEY,
        "LOG_LEVEL": "WARNING",
    }
    env.update({k.upper(): str(v) for k, v in FAST_PASSWORDS.items()})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "app.py"), "create-staff", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    created = await asyncio.to_thread(
        run, "--email", "boss@example.com", "--password", "long enough pw"
    )
    promoted = await asyncio.to_thread(
        run, "--email", "BOSS@example.com", "--password", "another pw!"
    )
    refused = await asyncio.to_thread(run, "--email", "x@example.com", "--password", "short")

    assert created.returncode == 0 and "created" in created.stdout
    assert promoted.returncode == 0 and "promoted" in promoted.stdout
    assert refused.returncode != 0 and "at least 8" in refused.stderr
    async with db.reader.connect() as connection:
        rows = (await connection.execute(select(*customers.c))).mappings().all()
    assert [(c.email, c.display_name, c.is_staff) for c in map(SEED_COLUMNS.customer, rows)] == [
        ("boss@example.com", "boss", True)
    ]
