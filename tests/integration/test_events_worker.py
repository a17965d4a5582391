"""The worker as it runs: `python app.py worker` until SIGTERM, and in the server's
lifespan when configured so (the embedded mode's default)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import select, update

from integrations.sandbox_gateway import SandboxGateway
from persistence.db import Database, create_database
from persistence.events.relay import OutboxRelay, stream_of
from persistence.events.worker import EventWorker
from persistence.migrate import upgrade
from persistence.tables import notifications, outbox
from settings import Settings
from tests.client import running_app
from tests.conftest import TEST_PII_INDEX_KEY, TEST_PII_KEY
from tests.events import emit_rows, eventually, stream_event_ids, unpublished
from tests.factories import CatalogFactory
from tests.shop import ready_cart

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { number status } userErrors { code } } }"""


async def test_the_worker_command_relays_and_consumes_then_stops_cleanly_on_sigterm(
    database_url: str, shared_redis_url: str, db: Database, redis: Redis, clean: None
) -> None:
    [event_id] = await emit_rows(db, "ProductUpdated", [{"product": 1, "slug": "mug"}])
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": shared_redis_url,
        "PII_ENCRYPTION_KEYS": TEST_PII_KEY,
        "PII_INDEX_KEY": TEST_PII_INDEX_KEY,
        "EVENT_CONSUMER_BLOCK_MS": "100",
        "EVENT_RELAY_POLL_SECONDS": "0.05",
        "LOG_LEVEL": "INFO",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "app.py",
        "worker",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def relayed_and_acknowledged() -> bool:
            if await unpublished(db):
                return False
            groups = await redis.xinfo_groups(stream_of("ProductUpdated"))
            return any(g["name"] == b"cache-invalidator" and g["pending"] == 0 for g in groups)

        await eventually(relayed_and_acknowledged, seconds=20)
        assert await stream_event_ids(redis, stream_of("ProductUpdated")) == [event_id]

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            _out, err = await process.communicate()
        elapsed = time.monotonic() - started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    log = err.decode()
    assert process.returncode == 0, log
    assert "event worker started" in log and "event worker stopped" in log
    assert "Traceback" not in log
    assert elapsed < 3  # a blocked read returns within EVENT_CONSUMER_BLOCK_MS


async def test_an_in_process_worker_confirms_a_paid_order_without_any_other_process(
    settings: Settings, db: Database, clean: None
) -> None:
    in_process = settings.model_copy(
        update={
            "run_worker_in_process": True,
            "event_relay_poll_seconds": 0.05,
            "event_consumer_block_ms": 50,
        }
    )
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])

    async with running_app(in_process, gateway=SandboxGateway()) as client:
        cart_id = await ready_cart(client, [(mug, 1)])
        placed = await client.query(
            CHECKOUT,
            {
                "input": {
                    "cartId": cart_id,
                    "idempotencyKey": "in-process",
                    "paymentMethod": "pm_card_visa",
                }
            },
        )
        number = placed.data["checkoutComplete"]["order"]["number"]

        async def confirmed() -> list[str]:
            async with db.reader.connect() as connection:
                return list(
                    (await connection.execute(select(notifications.c.subject))).scalars().all()
                )

        await eventually(confirmed)
        started = time.monotonic()
    stopped_in = time.monotonic() - started

    assert await confirmed() == [f"Order {number} confirmed"]
    assert stopped_in < 2  # the lifespan stops the worker promptly


def test_the_worker_runs_in_process_by_default_only_with_the_in_process_redis() -> None:
    assert Settings(environment="development").worker_in_process is True
    assert Settings(redis_url="redis://127.0.0.1:6379/0").worker_in_process is False
    assert Settings(redis_url="redis://x", run_worker_in_process=True).worker_in_process is True


async def test_the_embedded_mode_runs_the_worker_on_sqlite_and_the_in_process_redis(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    await upgrade(url)
    embedded = Settings(
        environment="development",
        database_url=url,
        data_dir=str(tmp_path),
        event_relay_poll_seconds=0.05,
        event_consumer_block_ms=50,
        argon2_time_cost=1,
        argon2_memory_cost_kib=64,
        argon2_parallelism=1,
    )
    sqlite_db = create_database(url)
    try:
        mug = await CatalogFactory(sqlite_db).product("Mug", prices=[1200], stock=[10])
        async with running_app(embedded, gateway=SandboxGateway()) as client:
            assert embedded.redis_url is None and embedded.worker_in_process
            cart_id = await ready_cart(client, [(mug, 1)])
            placed = await client.query(
                CHECKOUT,
                {
                    "input": {
                        "cartId": cart_id,
                        "idempotencyKey": "embedded",
                        "paymentMethod": "pm_card_visa",
                    }
                },
            )
            number = placed.data["checkoutComplete"]["order"]["number"]

            async def confirmed() -> list[str]:
                async with sqlite_db.reader.connect() as connection:
                    return list(
                        (await connection.execute(select(notifications.c.subject))).scalars()
                    )

            await eventually(confirmed)
        assert await confirmed() == [f"Order {number} confirmed"]
        assert await unpublished(sqlite_db) == 0
    finally:
        await sqlite_db.dispose()


async def test_the_worker_does_the_housekeeping_and_a_failing_job_stops_no_other(
    settings: Settings, db: Database, redis: Redis, clean: None
) -> None:
    [old] = await emit_rows(db, "OrderPaid", [{"order": "A"}])
    await OutboxRelay(db, redis).drain()
    async with db.writer.begin() as connection:
        await connection.execute(
            update(outbox).values(published_at=datetime.now(UTC) - timedelta(days=8))
        )
    [recent] = await emit_rows(db, "OrderPaid", [{"order": "B"}])
    quick = settings.model_copy(
        update={
            "run_worker_in_process": True,
            "housekeeping_every_seconds": 0.05,
            "event_relay_poll_seconds": 0.05,
            "event_consumer_block_ms": 50,
        }
    )

    async def only_the_recent_row_left() -> bool:
        async with db.reader.connect() as connection:
            return list((await connection.execute(select(outbox.c.id))).scalars()) == [recent]

    async with running_app(quick):
        await eventually(only_the_recent_row_left)  # the old published row is gone

    async def broken() -> int:
        raise RuntimeError("the database is away")

    async def works() -> int:
        return 3

    worker = EventWorker(None, [], jobs=[("broken", broken), ("works", works)])
    assert await worker.run_jobs() == {"works": 3}
    assert old != recent
