"""A real PostgreSQL streaming replica behind the app (tests/pg_replica.py).

What an operator relies on: catalog pages are read from the replica; what must see its
own write (checkout, staff edits and their answers, a new customer) reads the primary;
with replay paused nothing sells stock that is gone, and a page is stale by at most the
staleness bound before reads move to the primary; a stopped replica fails no request
and is used again once it is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import text

from persistence.db import Database
from persistence.migrate import upgrade
from persistence.read_router import ReplicaRouter
from persistence.tables import metadata
from schema.global_id import encode_gid
from settings import Settings
from tests.client import AppClient, running_app
from tests.conftest import TEST_REDIS_URL, settings_for
from tests.factories import CatalogFactory, MadeProduct
from tests.pg_replica import (
    ReplicaPair,
    create_database,
    server_binaries,
    start_pair,
    wait_until_replayed,
)
from tests.shop import ready_cart, staff_token, vid

MAX_LAG = 3.0
PROBE = 0.2
TIMEOUT = 1.0
BOUND = MAX_LAG + PROBE + TIMEOUT  # Settings.replica_staleness_bound_seconds

LISTING = "{ products(first: 10) { edges { node { title variants { quantityAvailable } } } } }"
CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { status lines { unitPrice { amount } } } userErrors { field code } } }"""
CART = "query($id: ID!) { cart(id: $id) { lines { cost { amountPerQuantity { amount } } } } }"
VARIANT_UPDATE = """mutation($input: VariantUpdateInput!) { variantUpdate(input: $input) {
  variant { price { amount } quantityAvailable } userErrors { code } } }"""
ADJUST = """mutation($input: InventoryAdjustInput!) { inventoryAdjust(input: $input) {
  variant { quantityAvailable } userErrors { code } } }"""
PRODUCT_UPDATE = """mutation($input: ProductUpdateInput!) { productUpdate(input: $input) {
  product { title variants { quantityAvailable } } userErrors { code } } }"""
ME = "{ me { email } }"
SEARCH = "query($q: String!) { search(query: $q) { edges { node { title } } } }"


@pytest.fixture(scope="session")
async def pair() -> AsyncIterator[ReplicaPair]:
    binaries = server_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not installed")
    started = await asyncio.to_thread(start_pair, binaries)
    try:
        await create_database(started)
        await upgrade(started.primary_url)
        await wait_until_replayed(started)
        yield started
    finally:
        await asyncio.to_thread(started.stop)


@dataclass
class Standby:
    """The standby's controls, on a direct connection (not the app's pools)."""

    pair: ReplicaPair

    async def _fetch(self, sql: str) -> object:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.pair.standby_port, user="postgres", database="postgres"
        )
        try:
            return await connection.fetchval(sql)
        finally:
            await connection.close()

    async def _execute(self, sql: str) -> None:
        await self._fetch(sql)

    async def pause(self) -> None:
        """Replay stopped, and seen to stay stopped: pg_wal_replay_pause() only asks, and
        right after a restart we saw a standby report "paused" and replay on."""
        for _ in range(5):
            await self._execute("SELECT pg_wal_replay_pause()")

            async def paused() -> bool:
                return await self._fetch("SELECT pg_get_wal_replay_pause_state()") == "paused"

            await until(paused, within=10)
            replayed = await self._fetch("SELECT pg_last_wal_replay_lsn()")
            await self._on_primary("SELECT txid_current()")  # a commit to (not) replay
            await asyncio.sleep(0.5)  # past wal_writer_delay and a round of streaming
            if await self._fetch("SELECT pg_last_wal_replay_lsn()") == replayed:
                return
            await self.resume()
        raise AssertionError("the standby would not stay paused")

    async def _on_primary(self, sql: str) -> None:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.pair.primary_port, user="postgres", database="postgres"
        )
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def resume(self) -> None:
        await self._execute("SELECT pg_wal_replay_resume()")

    async def stop(self) -> None:
        await asyncio.to_thread(self.pair.stop_standby)

    async def start(self) -> None:
        await asyncio.to_thread(self.pair.start_standby)


def replica_settings(pair: ReplicaPair) -> Settings:
    return settings_for(
        pair.primary_url,
        TEST_REDIS_URL,
        database_read_url=pair.standby_url,
        database_read_max_lag_seconds=MAX_LAG,
        database_read_probe_seconds=PROBE,
        database_read_timeout_seconds=TIMEOUT,
    )


@pytest.fixture
async def standby(pair: ReplicaPair) -> AsyncIterator[Standby]:
    controls = Standby(pair)
    yield controls
    if not (pair.standby_data / "postmaster.pid").exists():
        await controls.start()
    await controls.resume()


@pytest.fixture
async def shop(pair: ReplicaPair, standby: Standby) -> AsyncIterator[AppClient]:
    """The app on the pair, from empty tables the standby has replayed."""
    settings = replica_settings(pair)
    async with running_app(settings) as client:
        db = client.container.db
        names = ", ".join(table.name for table in metadata.sorted_tables)
        async with db.writer.begin() as connection:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        redis = Redis.from_url(TEST_REDIS_URL)
        await redis.flushdb()
        await redis.aclose()
        yield client


def router_of(client: AppClient) -> ReplicaRouter:
    router = client.container.db.replica
    assert router is not None
    return router


async def until(condition: Callable[[], Awaitable[bool]], within: float) -> float:
    """Seconds until `condition` held; fails past `within`."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < within, "condition not met in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def fresh_start(client: AppClient, pair: ReplicaPair) -> None:
    """A commit the standby has replayed, and the router reading from it: lag starts at 0."""
    db = client.container.db
    async with db.writer.begin() as connection:
        await connection.execute(text("SELECT txid_current()"))  # a commit of its own
    await wait_until_replayed(pair)
    router = router_of(client)

    async def on_replica() -> bool:
        return router.on_replica

    await until(on_replica, within=BOUND + 5)


async def listing(client: AppClient) -> list[tuple[str, int]]:
    edges = (await client.query(LISTING)).data["products"]["edges"]
    return [(e["node"]["title"], e["node"]["variants"][0]["quantityAvailable"]) for e in edges]


async def product(
    db: Database, title: str = "Mug", price: int = 1000, units: int = 1
) -> MadeProduct:
    return await CatalogFactory(db).product(title, prices=[price], stock=[units])


async def test_catalog_pages_come_from_the_replica_and_a_stale_one_never_sells_gone_stock(
    shop: AppClient, pair: ReplicaPair, standby: Standby
) -> None:
    db = shop.container.db
    router = router_of(shop)
    mug = await product(db, units=1)
    cart_id = await ready_cart(shop, [(mug, 1)])
    staff = await staff_token(shop, db)
    await fresh_start(shop, pair)
    assert await listing(shop) == [("Mug", 1)]
    replica_reads = router.counts.replica
    assert replica_reads > 0  # the page came from the replica

    # Given the replica stops replaying, when staff sell the last unit elsewhere and
    # reprice the mug on the primary...
    await standby.pause()
    adjusted = await shop.query(
        ADJUST, {"input": {"variantId": vid(mug), "setQuantity": 0}}, token=staff
    )
    changed_at = time.monotonic()
    repriced = await shop.query(
        VARIANT_UPDATE, {"input": {"id": vid(mug), "price": "12.00"}}, token=staff
    )

    # ...their answers are current (mutations read the primary)...
    assert adjusted.data["inventoryAdjust"]["variant"]["quantityAvailable"] == 0
    assert repriced.data["variantUpdate"]["variant"] == {
        "price": {"amount": "12.00"},
        "quantityAvailable": 0,
    }
    # ...the storefront page still shows the unit the replica remembers...
    assert router.on_replica
    assert await listing(shop) == [("Mug", 1)]
    assert router.counts.replica > replica_reads
    # ...the cart is priced from current records (the record cache fills from the primary)...
    cart = (await shop.query(CART, {"id": cart_id})).data["cart"]
    assert cart["lines"][0]["cost"]["amountPerQuantity"]["amount"] == "12.00"
    # ...and checkout refuses the unit that is gone.
    placed = await shop.query(
        CHECKOUT,
        {
            "input": {
                "cartId": cart_id,
                "idempotencyKey": "replica-key-1",
                "paymentMethod": "pm_card_visa",
            }
        },
    )
    assert placed.data["checkoutComplete"]["order"] is None
    assert [e["code"] for e in placed.data["checkoutComplete"]["userErrors"]] == ["OUT_OF_STOCK"]

    # Then the lag passes the maximum and pages move to the primary within the bound.
    async def page_is_current() -> bool:
        return await listing(shop) == [("Mug", 0)]

    await until(page_is_current, within=BOUND + 2)
    stale_for = time.monotonic() - changed_at
    assert not router.on_replica
    assert stale_for <= BOUND, stale_for
    print(f"replica lag test: page stale for {stale_for:.2f} s (bound {BOUND:g} s)")

    # And once replay resumes, pages come from the replica again.
    resumed_at = time.monotonic()
    await standby.resume()

    async def back_on_replica() -> bool:
        return router.on_replica

    back_after = await until(back_on_replica, within=BOUND + 2)
    await wait_until_replayed(pair)  # in use again may still mean up to MAX_LAG behind
    replica_reads = router.counts.replica
    assert await listing(shop) == [("Mug", 0)]
    assert router.counts.replica > replica_reads
    print(
        f"replica lag test: back on the replica {time.monotonic() - resumed_at:.2f} s after resume"
    )
    assert back_after <= PROBE + TIMEOUT + 1


async def test_what_must_see_its_own_write_reads_the_primary(
    shop: AppClient, pair: ReplicaPair, standby: Standby
) -> None:
    db = shop.container.db
    mug = await product(db, units=5)
    staff = await staff_token(shop, db)
    await fresh_start(shop, pair)
    await standby.pause()

    # A new customer is known at once (sessions and customer records read the primary).
    token = await staff_token(shop, db, "new@example.com")
    assert (await shop.query(ME, token=token)).data["me"] == {"email": "new@example.com"}

    # A staff edit answers with what it wrote, stock included, while the replica lags.
    renamed = await shop.query(
        PRODUCT_UPDATE,
        {"input": {"id": encode_gid("Product", mug.id), "title": "Cup"}},
        token=staff,
    )
    assert renamed.data["productUpdate"]["product"] == {
        "title": "Cup",
        "variants": [{"quantityAvailable": 5}],
    }
    # The storefront page may still show the old title: it is the replica's.
    assert await listing(shop) == [("Mug", 5)]


async def test_a_stopped_replica_fails_no_request_and_is_used_again_once_back(
    shop: AppClient, pair: ReplicaPair, standby: Standby
) -> None:
    router = router_of(shop)
    await product(shop.container.db, units=3)
    await fresh_start(shop, pair)
    assert await listing(shop) == [("Mug", 3)]

    # When the replica dies, every request still answers, from the primary.
    await standby.stop()
    stopped_at = time.monotonic()
    answers = [await listing(shop) for _ in range(5)]
    assert answers == [[("Mug", 3)]] * 5
    assert not router.on_replica
    noticed_after = time.monotonic() - stopped_at
    assert router.counts.retried + router.counts.primary >= 5
    print(f"replica stopped: noticed within {noticed_after:.2f} s, no request failed")

    # When it is back, reads return to it.
    await standby.start()
    restarted_at = time.monotonic()

    async def back_on_replica() -> bool:
        return router.on_replica

    back_after = await until(back_on_replica, within=PROBE + TIMEOUT + 5)
    await wait_until_replayed(pair)  # it restarts from its last restartpoint, then catches up
    replica_reads = router.counts.replica
    assert await listing(shop) == [("Mug", 3)]
    assert router.counts.replica > replica_reads
    print(f"replica restarted: reads back on it after {time.monotonic() - restarted_at:.2f} s")
    assert back_after < PROBE + TIMEOUT + 5


async def test_a_replica_that_dies_between_probes_costs_a_retry_not_an_error(
    pair: ReplicaPair, standby: Standby, shop: AppClient
) -> None:
    await product(shop.container.db, units=2)
    await fresh_start(shop, pair)
    # An app that probes once, at start: only the failed read can tell it the replica died.
    slow_probe = replica_settings(pair).model_copy(update={"database_read_probe_seconds": 60})
    async with running_app(slow_probe) as client:
        router = router_of(client)
        assert router.on_replica
        assert await listing(client) == [("Mug", 2)]
        await standby.stop()

        assert await listing(client) == [("Mug", 2)]

        assert router.counts.retried == 1 and not router.on_replica
        assert await listing(client) == [("Mug", 2)]  # straight to the primary now
        assert router.counts.retried == 1


async def search(client: AppClient, words: str) -> list[str]:
    edges = (await client.query(SEARCH, {"q": words})).data["search"]["edges"]
    return [edge["node"]["title"] for edge in edges]


async def test_cached_search_answers_end_only_once_the_replica_has_the_change(
    shop: AppClient, pair: ReplicaPair, standby: Standby
) -> None:
    db = shop.container.db
    index = shop.container.search
    lamp = await product(db, "Aurora Lamp")
    await index.index_products([lamp.id])
    await fresh_start(shop, pair)
    assert await search(shop, "borealis") == []  # an answer now cached

    # Given the replica stops replaying, when the lamp is renamed and re-indexed...
    await standby.pause()
    async with db.writer.begin() as connection:
        await connection.execute(
            text("UPDATE products SET title = 'Borealis Lamp' WHERE id = :id"), {"id": lamp.id}
        )
    indexing = asyncio.create_task(index.index_products([lamp.id]))
    # ...the search index changes on the primary, but the cached answers stay until the
    # replica has the change: a search on the replica now would cache the old answer
    # under the new generation for the whole TTL.
    await asyncio.sleep(0.3)  # what indexing takes without a replica to wait for
    assert await search(shop, "borealis") == []
    assert not indexing.done()

    await standby.resume()
    await asyncio.wait_for(indexing, timeout=BOUND + 2)
    assert router_of(shop).on_replica
    assert await search(shop, "borealis") == ["Borealis Lamp"]


def test_a_read_url_needs_postgresql() -> None:
    with pytest.raises(ValidationError, match="DATABASE_READ_URL"):
        Settings(database_read_url="sqlite+aiosqlite:///var/replica.db")


def test_the_staleness_bound_is_what_the_readme_states() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://p/x", database_read_url="postgresql+asyncpg://r/x"
    )
    assert settings.replica_staleness_bound_seconds == 4.0  # 2 s lag + 1 s probe + 1 s timeout
