"""`python app.py serve --workers 2` with METRICS_PORT: each worker writes its samples to
the multiprocess directory, the parent serves their sum on its own port, and every log
line of the server (uvicorn's included) is one JSON object."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from persistence.db import Database
from persistence.seed import seed_catalog
from tests.client import screen_query
from tests.conftest import SEED_COLUMNS
from tests.e2e.server import ROOT, free_port, production_env, serving

pytestmark = pytest.mark.e2e

REQUESTS = 24
POOL_CAPACITY = 20  # DATABASE_POOL_SIZE 10 plus as many overflow, per engine and process


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_two_workers_observations_are_summed_on_the_metrics_port(
    db: Database, clean: None, database_url: str, tmp_path: Path
) -> None:
    await seed_catalog(db, customer_columns=SEED_COLUMNS, products=30, seed=3)
    metrics_port = free_port()
    shared = tmp_path / "prometheus"
    env = production_env(
        database_url,
        METRICS_PORT=str(metrics_port),
        METRICS_OPERATION_NAMES='["ListingScreen"]',
        PROMETHEUS_MULTIPROC_DIR=str(shared),
        RATE_LIMIT_CAPACITY="1000000",
        RATE_LIMIT_RESTORE_RATE="1000000",
    )
    env["LOG_LEVEL"] = "INFO"
    writer_capacity = (
        "commerce_db_pool_connections",
        frozenset({("engine", "writer"), ("state", "capacity")}),
    )

    with serving(tmp_path, env, (str(ROOT / "app.py"), "serve", "--workers", "2")) as (client, log):
        deadline = time.monotonic() + 90  # a loaded machine starts workers slowly
        while scrape(metrics_port).get(writer_capacity) != 2 * POOL_CAPACITY:  # both are up
            assert time.monotonic() < deadline, scrape(metrics_port).get(writer_capacity)
            await asyncio.sleep(0.2)
        body = {"query": screen_query("listing_screen"), "variables": {"first": 10}}
        base = str(client.base_url)

        def listing(_: int) -> int:
            # A connection each, so the kernel hands them to both workers.
            return httpx.post(
                f"{base}/graphql", json=body, headers={"Connection": "close"}
            ).status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(listing, range(REQUESTS)))
        samples = scrape(metrics_port)
        live_files = len(list(shared.glob("gauge_livesum_*.db")))

    assert statuses == [200] * REQUESTS
    count = (
        "commerce_graphql_request_duration_seconds_count",
        frozenset({("operation", "ListingScreen"), ("outcome", "ok")}),
    )
    assert samples[count] == REQUESTS
    assert samples[writer_capacity] == 2 * POOL_CAPACITY  # livesum over two live workers
    assert live_files == 2  # one per worker...
    assert list(shared.glob("gauge_livesum_*.db")) == []  # ...gone once they stopped
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, uvicorn's too, is JSON
    assert any(r["logger"].startswith("uvicorn") for r in records)
    request_lines = [r for r in records if r["logger"] == "commerce.request"]
    assert len(request_lines) == REQUESTS
    assert {r["operation"] for r in request_lines} == {"ListingScreen"}
