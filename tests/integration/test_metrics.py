"""Prometheus metrics after real requests through the app, parsed with prometheus-client's
own parser: what an operator's dashboard would read.

Each app here has its own registry (one process, no PROMETHEUS_MULTIPROC_DIR), so every
test starts from zero; tests/e2e/test_metrics_process.py covers the multiprocess mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from app import Components, build_event_worker
from domain.catalog import Product
from domain.pagination import Page
from domain.persisted_queries import Operation, document_hash, manifest_json
from persistence.catalog.repository import CatalogRepository
from persistence.db import Database
from persistence.events.gauges import EventGauges
from persistence.events.relay import stream_of
from settings import Settings
from tests.client import AppClient, running_app, screen_query
from tests.factories import CatalogFactory
from tests.redis_server import private_redis
from tests.shop import ready_cart

TOKEN = "metrics-token-for-tests-only"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
CHECKOUT = """mutation Checkout($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id status } userErrors { code } } }"""


@pytest.fixture
def metrics_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "metrics_token": SecretStr(TOKEN),
            "metrics_operation_names": ["ListingScreen", "Checkout"],
        }
    )


@pytest.fixture
async def metered(metrics_settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(metrics_settings) as client:
        yield client


async def scrape(client: AppClient, token: str = TOKEN) -> Samples:
    response = await client.http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def listing(client: AppClient, name: str = "ListingScreen") -> int:
    document = screen_query("listing_screen").replace("ListingScreen", name, 1)
    result = await client.query(document, {"first": 20})
    assert len(result.data["products"]["edges"]) == 3
    return result.statements


async def test_a_listing_is_timed_under_its_name_with_its_statement_count(
    metered: AppClient, db: Database
) -> None:
    make = CatalogFactory(db)
    for n in range(3):
        await make.product(f"Lamp {n}")

    cold = await listing(metered)
    warm = await listing(metered)
    samples = await scrape(metered)

    duration = "commerce_graphql_request_duration_seconds"
    assert value(samples, f"{duration}_count", operation="ListingScreen", outcome="ok") == 2
    assert value(samples, f"{duration}_sum", operation="ListingScreen", outcome="ok") > 0
    statements = "commerce_graphql_request_sql_statements"
    assert value(samples, f"{statements}_count", operation="ListingScreen") == 2
    assert value(samples, f"{statements}_sum", operation="ListingScreen") == cold + warm
    assert cold > warm > 0  # the second listing read its records from the cache
    # ...and the cache says so: the first read missed each product's variants and images,
    # the second hit them.
    lookups = "commerce_cache_lookups_total"
    for kind in ("product-variants", "product-images"):
        assert value(samples, lookups, kind=kind, result="miss") == 3
        assert value(samples, lookups, kind=kind, result="hit") == 3


async def test_names_the_server_does_not_know_are_anonymous(
    metered: AppClient, db: Database
) -> None:
    await CatalogFactory(db).product("Lamp")
    for n in range(5):  # an attacker's fresh name per request makes no new series
        await metered.query(
            f"query Random{n}x{id(metered)} {{ products(first: 1) {{ edges {{ cursor }} }} }}"
        )
    await metered.query("{ products(first: 1) { edges { cursor } } }")
    await metered.query("query Broken { products(first: 1) { nope } }")  # never validates

    samples = await scrape(metered)

    operations = {
        dict(labels).get("operation")
        for name, labels in samples
        if name.startswith("commerce_graphql_request_duration_seconds")
    }
    assert operations == {"anonymous"}
    duration = "commerce_graphql_request_duration_seconds_count"
    assert value(samples, duration, operation="anonymous", outcome="ok") == 6
    assert value(samples, duration, operation="anonymous", outcome="rejected") == 1


async def test_a_trusted_manifest_names_its_operations(
    metrics_settings: Settings, clean: None, tmp_path: Path, db: Database
) -> None:
    body = "query ShelfFromManifest { products(first: 2) { edges { cursor } } }"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(manifest_json([Operation(document_hash(body), "ShelfFromManifest", body)]))
    settings = metrics_settings.model_copy(update={"manifest_files": [str(manifest)]})
    await CatalogFactory(db).product("Lamp")

    async with running_app(settings) as client:
        persisted = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(body)}}
        response = await client.http.post("/graphql", json={"extensions": persisted})
        assert response.status_code == 200 and "errors" not in response.json()
        samples = await scrape(client)

    assert (
        value(
            samples,
            "commerce_graphql_request_duration_seconds_count",
            operation="ShelfFromManifest",
            outcome="ok",
        )
        == 1
    )


async def test_the_metrics_route_wants_the_token(metered: AppClient, settings: Settings) -> None:
    missing = await metered.http.get("/metrics")
    wrong = await metered.http.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    prefix = await metered.http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN[:-1]}"})
    right = await metered.http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert [missing.status_code, wrong.status_code, prefix.status_code] == [401, 401, 401]
    assert "commerce_" not in missing.text + wrong.text + prefix.text
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain")

    async with running_app(settings) as unmetered:  # no METRICS_TOKEN, no METRICS_PORT
        off = await unmetered.http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert off.status_code == 404


async def test_a_throttled_request_counts_a_rejection(
    metrics_settings: Settings, clean: None, db: Database
) -> None:
    await CatalogFactory(db).product("Lamp")
    tight = metrics_settings.model_copy(
        update={"rate_limit_capacity": 30, "rate_limit_restore_rate": 0.001}
    )
    async with running_app(tight) as client:
        codes = []
        for _ in range(4):  # the listing costs about 20 points
            codes.extend(
                (await client.query(screen_query("listing_screen"), {"first": 1})).error_codes
            )
        samples = await scrape(client)

    assert "THROTTLED" in codes
    throttled = codes.count("THROTTLED")
    assert value(samples, "commerce_rate_limit_rejections_total", operation="ListingScreen") == (
        throttled
    )
    assert (
        value(
            samples,
            "commerce_graphql_request_duration_seconds_count",
            operation="ListingScreen",
            outcome="throttled",
        )
        == throttled
    )


async def test_checkouts_count_by_outcome_and_the_gateway_is_timed(
    metered: AppClient, db: Database
) -> None:
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[1])
    first = await ready_cart(metered, [(mug, 1)])
    second = await ready_cart(metered, [(mug, 1)])

    outcomes = []
    for n, cart in enumerate((first, second)):
        result = await metered.query(
            CHECKOUT,
            {
                "input": {
                    "cartId": cart,
                    "idempotencyKey": f"checkout-key-{n:04d}",
                    "paymentMethod": "pm_card_visa",
                }
            },
        )
        payload = result.data["checkoutComplete"]
        outcomes.append(
            payload["order"]["status"] if payload["order"] else payload["userErrors"][0]["code"]
        )
    samples = await scrape(metered)

    assert outcomes == ["PAID", "OUT_OF_STOCK"]
    assert value(samples, "commerce_checkouts_total", outcome="PAID") == 1
    assert value(samples, "commerce_checkouts_total", outcome="OUT_OF_STOCK") == 1
    gateway = "commerce_payment_gateway_request_duration_seconds_count"
    assert (
        value(samples, gateway, call="charge", outcome="ok") == 1
    )  # the sold-out one never charged
    assert value(samples, "commerce_payment_gateway_errors_total", call="charge") == 0


class ProductsFail(CatalogRepository):
    async def list_products(self, *args: Any, **kwargs: Any) -> Page[Product]:
        raise RuntimeError("boom: an unexpected bug")


class RelatedFails(CatalogRepository):
    async def related_products(self, *args: Any, **kwargs: Any) -> dict[int, list[Product]]:
        raise ConnectionError("related ranking unavailable")


async def test_degraded_and_failed_requests_have_their_outcomes(
    metrics_settings: Settings, clean: None, db: Database
) -> None:
    made = await CatalogFactory(db).product("Lamp")
    async with running_app(metrics_settings, components=Components(catalog=RelatedFails)) as client:
        product = await client.query(screen_query("product_screen"), {"slug": made.slug})
        degraded = await scrape(client)
    async with running_app(metrics_settings, components=Components(catalog=ProductsFail)) as client:
        broken = await client.query(screen_query("listing_screen"), {"first": 5})
        failed = await scrape(client)

    assert product.body["extensions"]["degraded"][0]["reason"] == "RELATED_UNAVAILABLE"
    assert value(degraded, "commerce_degraded_responses_total", reason="RELATED_UNAVAILABLE") == 1
    duration = "commerce_graphql_request_duration_seconds_count"
    assert value(degraded, duration, operation="anonymous", outcome="degraded") == 1
    assert broken.error_codes == ["INTERNAL_SERVER_ERROR"]
    assert value(failed, duration, operation="ListingScreen", outcome="error") == 1


async def test_the_worker_samples_the_outbox_the_consumer_groups_and_the_pools(
    metered: AppClient, db: Database
) -> None:
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[5])
    cart = await ready_cart(metered, [(mug, 1)])
    await metered.query(
        CHECKOUT,
        {
            "input": {
                "cartId": cart,
                "idempotencyKey": "checkout-key-0001",
                "paymentMethod": "pm_card_visa",
            }
        },
    )
    container = metered.container
    assert container.metrics is not None
    worker = build_event_worker(container)
    gauges = EventGauges(container.db, container.events_redis, worker.consumers, container.metrics)

    await gauges.sample()  # nothing relayed yet: the order's events wait in the outbox
    waiting = await scrape(metered)
    assert worker.relay is not None
    relayed = await worker.relay.drain()
    for consumer in worker.consumers:
        await consumer.ensure_groups()
    await gauges.sample()
    after_relay = await scrape(metered)

    assert value(waiting, "commerce_outbox_oldest_unpublished_age_seconds") > 0
    assert relayed > 0
    assert value(after_relay, "commerce_outbox_oldest_unpublished_age_seconds") == 0
    # No consumer has read anything: each group lags its stream by the whole stream.
    lags = {
        (dict(labels)["group"], dict(labels)["stream"]): sample
        for (name, labels), sample in after_relay.items()
        if name == "commerce_event_consumer_lag_messages"
    }
    assert len(lags) == len(gauges_groups(worker.consumers))
    for (_group, stream), lag in lags.items():
        assert lag == await container.events_redis.xlen(stream)
    assert lags[("notifications", stream_of("OrderPaid"))] >= 1
    assert value(after_relay, "commerce_event_dead_letters") == 0
    capacity = 2 * container.settings.database_pool_size
    assert (
        value(after_relay, "commerce_db_pool_connections", engine="writer", state="capacity")
        == capacity
    )
    assert value(after_relay, "commerce_db_pool_connections", engine="writer", state="in_use") == 0


async def test_the_exposition_is_the_text_format_prometheus_reads(metered: AppClient) -> None:
    response = await metered.http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    families = {
        family.name: family.type for family in text_string_to_metric_families(response.text)
    }

    assert families["commerce_graphql_request_duration_seconds"] == "histogram"
    assert families["commerce_checkouts"] == "counter"
    assert families["commerce_db_pool_connections"] == "gauge"
    assert families["commerce_live_subscriptions"] == "gauge"
    assert families["commerce_live_deliveries"] == "counter"


def gauges_groups(consumers: Any) -> set[tuple[str, str]]:
    return {(c.group, stream) for c in consumers for stream in c.streams}


async def test_redis_failures_are_counted_by_component(
    metrics_settings: Settings, clean: None, db: Database
) -> None:
    mug = await CatalogFactory(db).product("Mug", prices=[900], stock=[5])
    with private_redis() as server:
        settings = metrics_settings.model_copy(
            update={"redis_url": SecretStr(server.url), "redis_timeout_seconds": 0.25}
        )
        async with running_app(settings) as client:
            cart_id = await ready_cart(client, [(mug, 1)])
            server.hang()
            try:
                catalog = await client.query('{ product(slug: "mug") { title variants { sku } } }')
                cart = await client.query(
                    "query($id: ID!) { cart(id: $id) { id } }", {"id": cart_id}
                )
            finally:
                server.wake()
            samples = await scrape(client)

    assert catalog.data["product"]["title"] == "Mug"  # read from PostgreSQL meanwhile
    assert cart.error_codes == ["SERVICE_UNAVAILABLE"]
    errors = "commerce_redis_errors_total"
    # One failure each opened its skip window; the cart read had no fallback.
    assert value(samples, errors, component="record_cache") == 1
    assert value(samples, errors, component="rate_limiter") == 1
    assert value(samples, errors, component="required") == 1
