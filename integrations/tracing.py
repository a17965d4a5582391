"""Distributed traces with OpenTelemetry: the process's tracer provider, and the
instruments it lends our adapters (SQL, Redis, the payment gateway, search).

Off unless `OTEL_TRACES_EXPORTER` names an exporter: then `process_tracing` returns
None and nothing anywhere is instrumented, wrapped or added to the middleware stack, so
a request pays nothing for tracing it does not do. On, the SDK's own environment
variables configure the rest (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
`OTEL_BSP_*`, `OTEL_RESOURCE_ATTRIBUTES`); the sampler and the service name are read by
Settings, which refuses values the SDK would silently replace by its defaults.

What a span records is ids, names, counts and statuses: never a document's text, its
variables, a search's words, a card token or anyone's email.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, suppress_instrumentation
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from redis.asyncio import Redis, RedisCluster
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.payments import (
    ChargeDeclined,
    ChargeRequest,
    ChargeResult,
    PaymentGateway,
    PaymentState,
    RefundResult,
)
from domain.search import SearchIndex, SearchRequest, SearchResult
from settings import Settings

TRACER_NAME = "commerce"


def sampler_of(name: str, ratio: float | None) -> Sampler:
    """OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG as the SDK reads them."""
    ratio = 1.0 if ratio is None else ratio
    parent_based = name.startswith("parentbased_")
    kind = name.removeprefix("parentbased_")
    root: Sampler = (
        ALWAYS_ON
        if kind == "always_on"
        else ALWAYS_OFF
        if kind == "always_off"
        else TraceIdRatioBased(ratio)
    )
    return ParentBased(root) if parent_based else root


class Tracing:
    """A tracer provider and the instruments made with it. The app, the worker and the
    tests each hold one (the tests' exports to memory); nothing reaches for a global."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer(TRACER_NAME)
        # EngineTracer reports pool usage to a meter too; ours goes nowhere (metrics
        # are another part's), so a no-op meter keeps that free.
        self._connections = (
            metrics.NoOpMeterProvider()
            .get_meter(TRACER_NAME)
            .create_up_down_counter("db.client.connections.usage")
        )

    @classmethod
    def with_processor(cls, processor: SpanProcessor, settings: Settings) -> Tracing:
        provider = TracerProvider(
            sampler=sampler_of(settings.otel_traces_sampler, settings.otel_traces_sampler_arg),
            resource=Resource.create({SERVICE_NAME: settings.otel_service_name}),
        )
        provider.add_span_processor(processor)
        return cls(provider)

    def instrument_engines(self, engines: Sequence[AsyncEngine]) -> None:
        """A span per SQL statement (its text with placeholders, never the values)."""
        for engine in engines:
            # What SQLAlchemyInstrumentor().instrument(engine=...) makes, without its
            # process-wide patches of create_engine and Engine.connect (a span per
            # connection checkout, for every engine in the process).
            EngineTracer(self.tracer, engine.sync_engine, self._connections)  # type: ignore[no-untyped-call]

    def instrument_redis(self, client: Redis | RedisCluster) -> None:
        """A span per Redis command or pipeline (the command names, never the values:
        the instrumentation sanitises arguments)."""
        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def gateway(self, gateway: PaymentGateway) -> PaymentGateway:
        return TracedGateway(gateway, self.tracer)

    def search(self, index: SearchIndex) -> SearchIndex:
        return TracedSearchIndex(index, self.tracer)

    def flush(self, timeout_seconds: float = 5.0) -> None:
        self.provider.force_flush(int(timeout_seconds * 1000))


_process_tracing: dict[str, Tracing | None] = {}


def process_tracing(settings: Settings) -> Tracing | None:
    """The process's Tracing, made on first use from the settings; None when off. One
    provider (one export queue and thread) per process, however many apps it builds."""
    if settings.otel_traces_exporter == "none":
        return None
    if "tracing" not in _process_tracing:
        exporter = _exporter(settings.otel_traces_exporter)
        tracing = Tracing.with_processor(BatchSpanProcessor(exporter), settings)
        # Libraries that trace through the API (none of ours) find the same provider.
        trace.set_tracer_provider(tracing.provider)
        _process_tracing["tracing"] = tracing
    return _process_tracing["tracing"]


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    # HTTP/protobuf: no gRPC stack in the process; OTEL_EXPORTER_OTLP_* configure it.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


@contextmanager
def hooks_only_if_recorded(span: trace.Span) -> Iterator[None]:
    """Inside, the SQL, Redis, loader, operation, gateway and search hooks run only if
    this span is recorded: under a span the sampler left out they are suppressed, so
    they do no work for spans nobody keeps. (The span's context still travels.)"""
    if span.is_recording():
        yield
        return
    with suppress_instrumentation():
        yield


def _span(tracer: Tracer, name: str, **options: Any) -> AbstractContextManager[trace.Span]:
    """A span for an adapter call; none at all inside a request the sampler left out
    (instrumentation suppressed at the edge), like the SQL and Redis hooks."""
    if not is_instrumentation_enabled():
        return nullcontext(trace.INVALID_SPAN)
    return tracer.start_as_current_span(name, **options)


def _failed(span: trace.Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))


class TracedGateway:
    """A PaymentGateway whose calls are CLIENT spans: the operation, the amount and
    currency, the outcome; never the payment method token."""

    def __init__(self, gateway: PaymentGateway, tracer: Tracer) -> None:
        self._gateway = gateway
        self._tracer = tracer

    def __getattr__(self, name: str) -> Any:  # aclose, and what tests read from fakes
        return getattr(self._gateway, name)

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        with _span(
            self._tracer,
            "payment.charge",
            kind=SpanKind.CLIENT,
            attributes={
                "payment.amount": request.amount,
                "payment.currency": request.currency_code,
            },
            record_exception=False,
        ) as span:
            try:
                result = await self._gateway.charge(request)
            except BaseException as error:
                _failed(span, error)
                raise
            # ChargeSucceeded, ChargeDeclined, ...: the outcome, not its details.
            span.set_attribute("payment.outcome", type(result).__name__)
            if isinstance(result, ChargeDeclined):
                span.set_attribute("payment.decline_code", result.decline_code)
            return result

    async def refund(
        self, payment_id: str, amount: int, currency_code: str, idempotency_key: str
    ) -> RefundResult:
        with _span(
            self._tracer,
            "payment.refund",
            kind=SpanKind.CLIENT,
            attributes={"payment.amount": amount, "payment.currency": currency_code},
            record_exception=False,
        ) as span:
            try:
                result = await self._gateway.refund(
                    payment_id, amount, currency_code, idempotency_key
                )
            except BaseException as error:
                _failed(span, error)
                raise
            span.set_attribute("payment.refund.succeeded", result.succeeded)
            span.set_attribute("payment.refund.pending", result.pending)
            return result

    async def payment_status(self, payment_id: str) -> PaymentState:
        state = await self._state("payment.status", self._gateway.payment_status(payment_id))
        assert state is not None
        return state

    async def find_payment(self, order_id: str) -> PaymentState | None:
        return await self._state("payment.find", self._gateway.find_payment(order_id))

    async def cancel_payment(self, payment_id: str) -> PaymentState:
        state = await self._state("payment.cancel", self._gateway.cancel_payment(payment_id))
        assert state is not None
        return state

    async def _state(
        self, name: str, call: Coroutine[Any, Any, PaymentState | None]
    ) -> PaymentState | None:
        with _span(self._tracer, name, kind=SpanKind.CLIENT, record_exception=False) as span:
            try:
                state = await call
            except BaseException as error:
                _failed(span, error)
                raise
            if state is not None:
                span.set_attribute("payment.status", str(state.status.value))
            return state


class TracedSearchIndex:
    """A SearchIndex whose searches are spans: who answered, how many hits, and the
    fallback's reason; never the words searched for."""

    def __init__(self, index: SearchIndex, tracer: Tracer) -> None:
        self._index = index
        self._tracer = tracer
        self.engine = index.engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)

    async def search(self, request: SearchRequest) -> SearchResult:
        with _span(
            self._tracer,
            "search",
            kind=SpanKind.CLIENT,
            attributes={"search.configured_engine": self.engine},
        ) as span:
            result = await self._index.search(request)
            span.set_attribute("search.engine", result.engine)
            span.set_attribute("search.hits", len(result.hits))
            span.set_attribute("search.total_count", result.total_count)
            if result.fallback_reason is not None:
                span.set_attribute("search.fallback_reason", result.fallback_reason)
            return result

    async def index_products(self, product_ids: Sequence[int]) -> int:
        with _span(
            self._tracer, "search.index_products", attributes={"search.products": len(product_ids)}
        ):
            return await self._index.index_products(product_ids)

    async def rebuild(self) -> int:
        with _span(self._tracer, "search.rebuild"):
            return await self._index.rebuild()
