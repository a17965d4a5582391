"""What a warm request asks Redis for its edge: its persisted document comes from the
server's memory after the first look-up, and its rate limit from the worker's local
bucket (the spend goes to Redis in the background), so neither costs a round trip."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from integrations.tracing import Tracing
from settings import Settings
from tests.client import AppClient, CountingRedis, running_app, screen_query
from tests.conftest import TEST_REDIS_URL

LISTING = screen_query("listing_screen")
LISTING_HASH = hashlib.sha256(LISTING.encode()).hexdigest()


def by_hash(variables: dict[str, Any]) -> dict[str, Any]:
    return {
        "variables": variables,
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": LISTING_HASH}},
    }


async def listing_by_hash(client: AppClient) -> dict[str, Any]:
    response = await client.http.post("/graphql", json=by_hash({"first": 5}))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


async def test_a_persisted_listing_costs_no_round_trip_for_its_document_or_its_limit(
    settings: Settings, clean: None
) -> None:
    configured = settings.model_copy(
        update={"rate_limit_local_share": 0.05, "rate_limit_sync_ms": 1_000}
    )
    first_server, second_server = (
        CountingRedis.from_url(TEST_REDIS_URL),
        CountingRedis.from_url(TEST_REDIS_URL),
    )
    async with (
        running_app(configured, redis=first_server) as first,
        running_app(configured, redis=second_server) as second,
    ):
        registered = await first.http.post(
            "/graphql", json={"query": LISTING, **by_hash({"first": 5})}
        )
        await listing_by_hash(first)
        before = first_server.commands.copy()
        warm = [await listing_by_hash(first) for _ in range(10)]
        after = first_server.commands.copy()

        other_before = second_server.commands["GET"]
        await listing_by_hash(second)  # its own memory is empty: one look-up
        looked_up = second_server.commands["GET"] - other_before
        others = [await listing_by_hash(second) for _ in range(5)]
        other_after = second_server.commands["GET"] - other_before
    await first_server.aclose()
    await second_server.aclose()

    assert registered.status_code == 200 and "errors" not in registered.json()
    assert all(body["data"] == warm[0]["data"] for body in [*warm, *others])
    assert after["GET"] - before["GET"] == 0  # the document, from this server's memory
    assert after["EVALSHA"] - before["EVALSHA"] <= 2  # ten requests, a flush a second
    assert (looked_up, other_after) == (1, 1)  # the other server read it from Redis once


async def test_the_background_flush_of_rate_limit_spends_is_no_trace_of_its_own(
    settings: Settings, clean: None
) -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing.with_processor(SimpleSpanProcessor(exporter), settings)
    counting = CountingRedis.from_url(TEST_REDIS_URL)
    async with running_app(settings, redis=counting, tracing=tracing) as client:
        for _ in range(3):
            await listing_by_hash_or_text(client)
        before = counting.commands["EVALSHA"]
        await asyncio.sleep(0.3)  # several RATE_LIMIT_SYNC_MS: the spend is flushed
        flushed = counting.commands["EVALSHA"] - before
    await counting.aclose()

    spans = exporter.get_finished_spans()
    requests = {s.context.trace_id for s in spans if s.name == "POST /graphql"}
    assert flushed >= 1
    assert len(requests) == 3
    outside = [
        s.name
        for s in spans
        if s.context.trace_id not in requests and (s.attributes or {}).get("db.system") == "redis"
    ]
    assert outside == []  # no Redis span outside a request


async def listing_by_hash_or_text(client: AppClient) -> None:
    response = await client.http.post("/graphql", json={"query": LISTING, **by_hash({"first": 5})})
    assert response.status_code == 200 and "errors" not in response.json(), response.text
