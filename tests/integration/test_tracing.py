"""Traces, exported to memory: what an operator sees for one listing screen, a checkout
and the events it wrote; and that with tracing off nothing is instrumented at all."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.instrumentation.sqlalchemy.engine import _after_cur_exec
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis
from sqlalchemy import event, select

from integrations.tracing import TracedGateway, TracedSearchIndex, Tracing
from persistence.db import Database
from persistence.events.consumer import DEAD_LETTER_STREAM, ConsumerPolicy, StreamConsumer
from persistence.events.relay import OutboxRelay, stream_of
from persistence.seed import seed_catalog
from persistence.tables import outbox
from resolvers.extensions.tracing import OperationTracing
from resolvers.http.tracing import TracingMiddleware
from settings import Settings
from tests.client import AppClient, customer_token, running_app, screen_query
from tests.conftest import SEED_COLUMNS
from tests.events import FAST, RecordingHandler, consume_until, emit_rows
from tests.factories import CatalogFactory
from tests.integration.test_statement_budgets import LISTING_COLD
from tests.shop import ready_cart

CHECKOUT = """mutation Buy($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id status } userErrors { code field message } } }"""
SEARCH = """query Find($q: String!) { search(query: $q, first: 5, sortKey: RELEVANCE,
  reverse: false) { edges { node { title } } } }"""
ME = "query Me { me { id email } }"
# A caller's W3C trace context (the example of the specification).
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


class Traces:
    """An in-memory exporter and the Tracing that feeds it, synchronously."""

    def __init__(self, settings: Settings) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracing = Tracing.with_processor(SimpleSpanProcessor(self.exporter), settings)

    @property
    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.named(name)
        return span

    def of_trace(self, trace_id: int) -> list[ReadableSpan]:
        return [span for span in self.spans if span.context.trace_id == trace_id]

    def clear(self) -> None:
        self.exporter.clear()


def _db_system(span: ReadableSpan) -> Any:
    attributes = span.attributes or {}
    return attributes.get("db.system") or attributes.get("db.system.name")


def sql_spans(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [span for span in spans if _db_system(span) == "postgresql"]


def redis_spans(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [span for span in spans if _db_system(span) == "redis"]


def every_attribute(spans: Sequence[ReadableSpan]) -> Iterator[str]:
    for span in spans:
        for value in (span.attributes or {}).values():
            yield str(value)
        for span_event in span.events:
            yield from (str(v) for v in (span_event.attributes or {}).values())


@pytest.fixture
def traces(settings: Settings) -> Traces:
    return Traces(settings)


@pytest.fixture
async def traced(settings: Settings, traces: Traces, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(settings, tracing=traces.tracing) as client:
        yield client


# -- off -------------------------------------------------------------------------------


async def test_with_no_exporter_nothing_is_instrumented_and_no_span_is_made(
    settings: Settings, traces: Traces, db: Database, clean: None
) -> None:
    assert settings.otel_traces_exporter == "none"
    await seed_catalog(db, customer_columns=SEED_COLUMNS, products=10, seed=3)
    async with running_app(settings) as client:
        listing = await client.query(screen_query("listing_screen"), {"first": 5})
        container = client.container

        assert len(listing.data["products"]["edges"]) == 5
        assert not any(m.cls is TracingMiddleware for m in client.app.user_middleware)
        for engine in (container.db.writer, container.db.reader):
            assert not event.contains(engine.sync_engine, "after_cursor_execute", _after_cur_exec)
        assert not getattr(container.redis, "_is_instrumented_by_opentelemetry", False)
        assert not isinstance(container.gateway, TracedGateway)
        assert not isinstance(container.search, TracedSearchIndex)
        assert container.tracing is None
        graphql = next(r for r in client.app.routes if getattr(r, "path", "") == "/graphql")
        schema = graphql.endpoint.schema  # type: ignore[attr-defined]
        kinds = {e if isinstance(e, type) else type(e()) for e in schema.extensions}
        assert OperationTracing not in kinds
    assert traces.spans == ()


# -- one listing screen ----------------------------------------------------------------


async def test_a_listing_screen_is_one_request_span_one_operation_span_and_its_batches(
    traced: AppClient, traces: Traces, db: Database
) -> None:
    await seed_catalog(db, customer_columns=SEED_COLUMNS, products=30, seed=7)
    traces.clear()
    document = screen_query("listing_screen")

    listing = await traced.query(document, {"first": 10})

    assert len(listing.data["products"]["edges"]) == 10
    http = traces.one("POST /graphql")
    assert http.kind is SpanKind.SERVER and http.parent is None
    assert http.attributes is not None
    assert http.attributes["http.request.method"] == "POST"
    assert http.attributes["http.route"] == "/graphql"
    assert http.attributes["http.response.status_code"] == 200
    operation = traces.one("query ListingScreen")
    assert operation.parent is not None and operation.parent.span_id == http.context.span_id
    assert operation.attributes is not None
    assert dict(operation.attributes) == {
        "graphql.operation.name": "ListingScreen",
        "graphql.operation.type": "query",
        "graphql.document": hashlib.sha256(document.encode()).hexdigest(),
        "graphql.operation.cost": listing.body["extensions"]["cost"]["requestedQueryCost"],
        "graphql.operation.throttled": False,
    }
    spans = traces.of_trace(http.context.trace_id)
    assert len(spans) == len(traces.spans)  # everything belongs to the one request
    loaders = {s.attributes["loader.name"] for s in spans if s.name.startswith("loader ")}  # type: ignore[index]
    assert {"VariantsByProductIdLoader", "InventoryByVariantIdLoader"} <= loaders
    assert all(
        s.attributes["loader.keys"] >= 1  # type: ignore[index, operator]
        for s in spans
        if s.name.startswith("loader ")
    )
    # A span per statement, as many as the statement budget counts; all inside.
    assert len(sql_spans(spans)) == listing.statements == LISTING_COLD
    assert redis_spans(spans), "the record cache's MGETs are traced"
    ends = http.end_time or 0
    assert all((s.end_time or 0) <= ends for s in spans)
    assert "products(" not in "".join(every_attribute(spans))  # not the document's text


async def test_the_callers_traceparent_makes_our_spans_part_of_its_trace(
    traced: AppClient, traces: Traces
) -> None:
    response = await traced.http.post(
        "/graphql",
        json={"query": "query Ping { __typename }"},
        headers={
            "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
            "tracestate": "vendor=opaque",
        },
    )

    assert response.status_code == 200
    http = traces.one("POST /graphql")
    assert http.parent is not None and http.parent.is_remote
    assert http.context.trace_id == int(CALLER_TRACE, 16)
    assert http.parent.span_id == int(CALLER_SPAN, 16)
    assert traces.one("query Ping").context.trace_id == int(CALLER_TRACE, 16)


@pytest.mark.parametrize(
    "header",
    ["garbage", f"00-{'0' * 32}-{CALLER_SPAN}-01", f"00-{CALLER_TRACE}-{CALLER_SPAN}", "x" * 5000],
)
async def test_a_malformed_traceparent_starts_a_trace_of_our_own(
    traced: AppClient, traces: Traces, header: str
) -> None:
    response = await traced.http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"traceparent": header}
    )

    assert response.status_code == 200
    http = traces.one("POST /graphql")
    assert http.parent is None
    assert http.context.trace_id != int(CALLER_TRACE, 16)


async def test_the_operation_span_names_the_customer_by_opaque_id_only(
    traced: AppClient, traces: Traces
) -> None:
    token = await customer_token(traced, "pat@example.com")
    traces.clear()

    me = await traced.query(ME, token=token)

    operation = traces.one("query Me")
    assert operation.attributes is not None
    assert operation.attributes["enduser.id"] == me.data["me"]["id"]
    seen = " ".join(every_attribute(traces.spans))
    assert "pat@example.com" not in seen and token not in seen


async def test_a_junk_path_is_a_span_without_a_route(traced: AppClient, traces: Traces) -> None:
    response = await traced.http.get("/wp-admin/../etc/passwd?x=1")

    assert response.status_code == 404
    [span] = [s for s in traces.spans if s.kind is SpanKind.SERVER]
    assert span.name == "GET"
    assert span.attributes is not None and span.attributes["http.response.status_code"] == 404


# -- sampled out ------------------------------------------------------------------------


class AskedSampler(Sampler):
    """The default sampler (parent based, always on), noting every span it is asked
    about: each question is a hook that ran."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self._decide = ParentBased(ALWAYS_ON)

    def should_sample(
        self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any
    ) -> SamplingResult:
        self.asked.append(name)
        return self._decide.should_sample(parent_context, trace_id, name, *args, **kwargs)

    def get_description(self) -> str:
        return "asked"


async def test_a_request_the_sampler_leaves_out_runs_no_hook_and_still_passes_its_context_on(
    settings: Settings, db: Database, clean: None
) -> None:
    sampler = AskedSampler()
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
    unsampled = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"}
    async with running_app(settings, tracing=Tracing(provider)) as client:
        cart_id = await ready_cart(client, [(mug, 1)])
        sampler.asked.clear()

        listing = await client.http.post(
            "/graphql",
            json={"query": screen_query("listing_screen"), "variables": {"first": 5}},
            headers=unsampled,
        )
        placed = await client.http.post(
            "/graphql",
            json={
                "query": CHECKOUT,
                "variables": {
                    "input": {
                        "cartId": cart_id,
                        "idempotencyKey": "unsampled-checkout-01",
                        "paymentMethod": "pm_card_visa",
                    }
                },
            },
            headers=unsampled,
        )
        asked_unsampled = list(sampler.asked)
        sampler.asked.clear()
        await client.query(screen_query("listing_screen"), {"first": 5})  # sampled in

    assert listing.status_code == 200 and len(listing.json()["data"]["products"]["edges"]) == 1
    assert placed.json()["data"]["checkoutComplete"]["order"]["status"] == "PAID", placed.text
    # One question per request (its SERVER span): no operation, loader, SQL, Redis or
    # payment span was even started, and nothing was exported.
    assert asked_unsampled == ["POST /graphql", "POST /graphql"]
    assert exporter.get_finished_spans() != ()  # the sampled-in listing's, below
    assert not any(
        s.context.trace_id == int(CALLER_TRACE, 16) for s in exporter.get_finished_spans()
    )
    # A request sampled in asks about all of them.
    assert "graphql.operation" in sampler.asked
    assert any(name.startswith("loader ") for name in sampler.asked)
    assert len(sampler.asked) > 5
    # The events of the unsampled checkout still name its trace, unsampled ("-00"), so
    # the relay and the consumers link to it and decide for themselves.
    async with db.reader.connect() as connection:
        stored = (await connection.execute(select(outbox.c.trace_context))).scalars().all()
    assert stored and all(c["traceparent"].startswith(f"00-{CALLER_TRACE}-") for c in stored)
    assert all(c["traceparent"].endswith("-00") for c in stored)


async def test_a_consumer_batch_the_sampler_leaves_out_runs_no_hook(
    settings: Settings, db: Database, redis: Redis, clean: None
) -> None:
    sampler = AskedSampler()
    sampler._decide = ParentBased(ALWAYS_OFF)
    provider = TracerProvider(sampler=sampler)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    own = Redis.from_url(settings.redis_url.get_secret_value())
    tracing.instrument_redis(own)

    class Looking(RecordingHandler):
        async def handle(self, events: Sequence[Any]) -> None:
            await own.get("looked-up")  # a Redis call: a hook, were it not suppressed
            await super().handle(events)

    try:
        await emit_rows(db, "OrderPaid", [{"order_id": 1, "amount": 1200}])
        await OutboxRelay(db, redis).drain()
        handler = Looking("sampled-out-test", ("OrderPaid",))
        consumer = StreamConsumer(redis, handler, ConsumerPolicy(**FAST), tracer=tracing.tracer)
        sampler.asked.clear()
        await consume_until(consumer, lambda: len(handler.handled) == 1)
    finally:
        await own.aclose()

    assert sampler.asked == ["sampled-out-test process"]  # not GET
    assert exporter.get_finished_spans() == ()


# -- checkout, events, consumers -------------------------------------------------------


async def test_a_checkouts_events_carry_its_trace_to_the_relay_and_the_consumers(
    traced: AppClient, traces: Traces, db: Database, redis: Redis
) -> None:
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
    cart_id = await ready_cart(traced, [(mug, 1)])
    traces.clear()

    placed = await traced.query(
        CHECKOUT,
        {
            "input": {
                "cartId": cart_id,
                "idempotencyKey": "traced-checkout-0001",
                "paymentMethod": "pm_card_visa",
            }
        },
    )

    assert placed.body["data"]["checkoutComplete"]["userErrors"] == [], placed.body
    assert placed.data["checkoutComplete"]["order"]["status"] == "PAID"
    checkout = traces.one("POST /graphql")
    charge = traces.one("payment.charge")
    assert charge.kind is SpanKind.CLIENT
    assert charge.context.trace_id == checkout.context.trace_id
    assert charge.attributes is not None
    assert charge.attributes["payment.outcome"] == "ChargeSucceeded"
    seen = " ".join(every_attribute(traces.spans))
    assert "ann@example.com" not in seen and "pm_card_visa" not in seen
    async with db.reader.connect() as connection:
        stored = (await connection.execute(select(outbox.c.topic, outbox.c.trace_context))).all()
    assert {row.topic for row in stored} >= {"OrderPlaced", "OrderPaid"}
    assert all(
        row.trace_context["traceparent"].split("-")[1] == f"{checkout.context.trace_id:032x}"
        for row in stored
    )

    tracer = traces.tracing.tracer
    traces.clear()
    assert await OutboxRelay(db, redis, tracer=tracer).drain() == len(stored)
    handler = RecordingHandler("confirmations-test", ("OrderPlaced", "OrderPaid"))
    consumer = StreamConsumer(redis, handler, ConsumerPolicy(**FAST), tracer=tracer)
    await consume_until(consumer, lambda: len(handler.handled) == 2)

    relay = traces.one("outbox.relay")
    consumed = traces.one("confirmations-test process")
    for span in (relay, consumed):
        # Traces of their own, linked to the checkout's.
        assert span.context.trace_id != checkout.context.trace_id
        assert [link.context.trace_id for link in span.links] == [checkout.context.trace_id]
    assert consumed.kind is SpanKind.CONSUMER
    assert consumed.attributes is not None
    assert consumed.attributes["messaging.batch.message_count"] == 2
    # The polling is not traced: no span of the consumer's XREADGROUP or the relay's SELECT.
    assert sql_spans(traces.spans) == [] and redis_spans(traces.spans) == []


async def test_a_dead_lettered_event_keeps_its_trace_context(
    traced: AppClient, traces: Traces, db: Database, redis: Redis
) -> None:
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
    cart_id = await ready_cart(traced, [(mug, 1)])
    traces.clear()
    await traced.query(
        CHECKOUT,
        {
            "input": {
                "cartId": cart_id,
                "idempotencyKey": "traced-checkout-0002",
                "paymentMethod": "pm_card_visa",
            }
        },
    )
    checkout = traces.one("POST /graphql")
    tracer = traces.tracing.tracer
    await OutboxRelay(db, redis, tracer=tracer).drain()
    handler = RecordingHandler(
        "doomed-test", ("OrderPlaced",), poisoned=lambda _event: True, handled=[]
    )
    policy = ConsumerPolicy(**{**FAST, "max_deliveries": 1})
    consumer = StreamConsumer(redis, handler, policy, tracer=tracer)

    async def dead() -> bool:
        return bool(await redis.xlen(DEAD_LETTER_STREAM))

    await consume_until(consumer, dead)

    [(_, fields)] = await redis.xrange(DEAD_LETTER_STREAM)
    traceparent = fields[b"traceparent"].decode()
    assert traceparent.split("-")[1] == f"{checkout.context.trace_id:032x}"
    [entry] = await redis.xrange(stream_of("OrderPlaced"))
    assert entry[1][b"traceparent"] == fields[b"traceparent"]
    failed = traces.one("doomed-test process")
    assert failed.status.status_code.name == "ERROR"
    assert [link.context.trace_id for link in failed.links] == [checkout.context.trace_id]


async def test_events_written_outside_a_trace_carry_none(
    traced: AppClient, traces: Traces, db: Database, redis: Redis
) -> None:
    # Written by a job or a command: no request, no span.
    await emit_rows(db, "ProductUpdated", [{"product": 1, "slug": "mug"}])
    await OutboxRelay(db, redis, tracer=traces.tracing.tracer).drain()

    [(_, fields)] = await redis.xrange(stream_of("ProductUpdated"))
    assert b"traceparent" not in fields
    assert traces.one("outbox.relay").links == ()


# -- search ------------------------------------------------------------------------------


async def test_a_search_is_a_span_saying_who_answered_but_not_what_was_asked(
    traced: AppClient, traces: Traces, db: Database
) -> None:
    make = CatalogFactory(db)
    await make.product("Aurora Lamp", prices=[4900], stock=[3])
    await traced.container.search.rebuild()
    traces.clear()

    found = await traced.query(SEARCH, {"q": "aurora"})

    assert [e["node"]["title"] for e in found.data["search"]["edges"]] == ["Aurora Lamp"]
    search = traces.one("search")
    assert search.attributes is not None
    assert search.attributes["search.engine"] == "postgres"
    assert search.attributes["search.hits"] == 1
    assert search.context.trace_id == traces.one("POST /graphql").context.trace_id
    assert "aurora" not in " ".join(every_attribute([search]))
