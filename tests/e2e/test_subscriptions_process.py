"""Subscriptions against real `python app.py serve` and `worker` processes in production
mode: graphql-ws's JavaScript client from npm receives an event, and 1,000 concurrent
subscribers on one API process each receive one inventory event (fan-out time and the
server's memory per subscriber are printed for the README)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from websockets.asyncio.client import ClientConnection, connect

from persistence.db import Database
from persistence.tables import inventory_levels
from schema.global_id import encode_gid
from tests.e2e.processes import AppProcess, app_processes
from tests.e2e.server import NODE_CLIENTS, production_env
from tests.events import emit_rows
from tests.factories import CatalogFactory, MadeProduct

pytestmark = pytest.mark.e2e

SUBSCRIBERS = 1_000
METRICS_TOKEN = "subscriptions-test-metrics-token"
INVENTORY = """subscription($id: ID!) { productInventoryChanged(productId: $id) {
  variants { quantityAvailable } } }"""


@contextlib.contextmanager
def one_server(tmp_path: Path, database_url: str) -> Iterator[tuple[AppProcess, AppProcess]]:
    env = production_env(
        database_url,
        EVENT_RELAY_POLL_SECONDS="0.05",
        SUBSCRIPTION_CONNECTIONS_PER_CLIENT=str(SUBSCRIBERS + 10),
        RATE_LIMIT_CAPACITY="1000000",  # every subscriber here is one address
        METRICS_TOKEN=METRICS_TOKEN,
        METRICS_SAMPLE_SECONDS="0.1",
    )
    with app_processes(tmp_path, env, servers=1, workers=1) as ([api], [worker]):
        yield api, worker


async def live_metrics(api: AppProcess) -> dict[str, float]:
    """The API process's live-subscription samples, from its `/metrics`."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            api.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
    assert response.status_code == 200, response.text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith("commerce_live_")
    }


async def until_listening(api: AppProcess, count: int, seconds: float = 60.0) -> None:
    """Until `count` subscriptions listen in the process: an event emitted before a
    subscription is registered is, by design, never replayed to it."""
    deadline = time.monotonic() + seconds
    while (listening := (await live_metrics(api)).get("commerce_live_subscriptions")) != count:
        assert time.monotonic() < deadline, f"{listening} of {count} subscriptions listening"
        await asyncio.sleep(0.1)


def ws_url(api: AppProcess) -> str:
    return api.url.replace("http://", "ws://") + "/graphql"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def stock_changed(db: Database, made: MadeProduct, available: int) -> None:
    """What an inventory write does: the new level, and its event in the outbox."""
    variant = made.variant_ids[0]
    async with db.writer.begin() as connection:
        await connection.execute(
            update(inventory_levels)
            .where(inventory_levels.c.variant_id == variant)
            .values(available=available)
        )
    await emit_rows(db, "StockChanged", [{"variant": variant, "available": available}])


@contextlib.asynccontextmanager
async def connected(url: str, count: int) -> AsyncIterator[list[ClientConnection]]:
    """`count` acknowledged connections, no subscription yet."""
    gate = asyncio.Semaphore(50)

    async def one() -> ClientConnection:
        async with gate:
            connection = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
            await connection.send(orjson.dumps({"type": "connection_init"}).decode())
            ack = orjson.loads(await connection.recv())
            assert ack["type"] == "connection_ack", ack
            return connection

    connections = await asyncio.gather(*(one() for _ in range(count)))
    try:
        yield list(connections)
    finally:
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)


async def subscribe(connections: list[ClientConnection], product_id: str) -> None:
    """Subscribe them all, 50 at a time as clients arriving over a second or so would
    (all 1,000 in the same millisecond starve Redis calls of the loop for longer than
    REDIS_TIMEOUT_SECONDS: the rate limiter then fails open, as designed)."""
    payload = {"query": INVENTORY, "variables": {"id": product_id}}
    for start in range(0, len(connections), 50):
        await asyncio.gather(
            *(
                c.send(
                    orjson.dumps({"id": str(i), "type": "subscribe", "payload": payload}).decode()
                )
                for i, c in enumerate(connections[start : start + 50], start)
            )
        )
        await asyncio.sleep(0.05)


async def test_a_thousand_subscribers_on_one_process_each_get_the_inventory_event(
    db: Database, clean: None, database_url: str, tmp_path: Path
) -> None:
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
    product_id = encode_gid("Product", mug.id)
    with one_server(tmp_path, database_url) as (api, _worker):
        await api.ready()
        await _worker.ready()
        before = rss_kib(api.pid)
        async with connected(ws_url(api), SUBSCRIBERS) as connections:
            await asyncio.sleep(0.5)
            open_only = rss_kib(api.pid)
            await subscribe(connections, product_id)
            await until_listening(api, SUBSCRIBERS)
            during = rss_kib(api.pid)

            arrivals: list[float] = []

            async def receive(connection: ClientConnection) -> None:
                while True:
                    message = orjson.loads(await connection.recv())
                    if message["type"] == "ping":
                        continue
                    assert message["type"] == "next", message
                    data = message["payload"]["data"]["productInventoryChanged"]
                    assert data == {"variants": [{"quantityAvailable": 7}]}
                    arrivals.append(time.monotonic())
                    return

            emitted = time.monotonic()
            await stock_changed(db, mug, 7)
            try:
                async with asyncio.timeout(30):
                    await asyncio.gather(*(receive(c) for c in connections))
            except TimeoutError:
                raise AssertionError(
                    f"{len(arrivals)} of {SUBSCRIBERS} received the event; the server: "
                    f"{await live_metrics(api)}\n{api.output()[-4000:]}"
                ) from None
        deadline = time.monotonic() + 10
        while (
            delivered := (await live_metrics(api))["commerce_live_deliveries_total"]
        ) < SUBSCRIBERS:
            assert time.monotonic() < deadline, delivered
            await asyncio.sleep(0.1)
        log = api.output()

    fan_out = max(arrivals) - min(arrivals)
    per_subscriber = (during - before) / SUBSCRIBERS
    print(
        f"\nfan-out to {SUBSCRIBERS} subscribers: first {min(arrivals) - emitted:.3f} s after "
        f"the outbox row, first to last {fan_out:.3f} s; server RSS +{during - before} KiB "
        f"= {per_subscriber:.1f} KiB per subscriber, of which the open connection "
        f"{(open_only - before) / SUBSCRIBERS:.1f} KiB and the subscription "
        f"{(during - open_only) / SUBSCRIBERS:.1f} KiB"
    )
    assert len(arrivals) == SUBSCRIBERS
    assert fan_out < 10.0
    assert per_subscriber < 200  # KiB
    assert "Traceback" not in log


async def test_graphql_ws_from_npm_subscribes_and_receives_an_event(
    db: Database, clean: None, database_url: str, tmp_path: Path
) -> None:
    if not (NODE_CLIENTS / "node_modules" / "graphql-ws").exists():
        pytest.skip("needs Node.js and `npm ci --prefix tests/e2e/apollo` (make node-client)")
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
    with one_server(tmp_path, database_url) as (api, worker):
        await api.ready()
        await worker.ready()
        node = await asyncio.create_subprocess_exec(
            "node",
            str(NODE_CLIENTS / "subscribe.mjs"),
            ws_url(api),
            encode_gid("Product", mug.id),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert node.stdout is not None
        try:
            async with asyncio.timeout(20):
                ready = json.loads(await node.stdout.readline())
                assert ready == {"ready": True}
                await asyncio.sleep(0.5)  # the subscribe message has reached the server
                await stock_changed(db, mug, 4)
                line = json.loads(await node.stdout.readline())
                await node.wait()
        finally:
            if node.returncode is None:
                node.kill()
                await node.wait()

    assert line["event"]["data"] == {
        "productInventoryChanged": {"title": "Mug", "variants": [{"quantityAvailable": 4}]}
    }
    assert node.returncode == 0
