"""Every Prometheus metric the server exports, in one registry per app.

Imported only when metrics are on (`METRICS_PORT` or `METRICS_TOKEN`): app.py and the
command line import this module lazily, so with metrics off prometheus-client is never
even loaded, and the hooks it would feed stay None in the hot path.

Under `python app.py serve` with metrics on, `PROMETHEUS_MULTIPROC_DIR` is set before
this module is first imported (prometheus-client picks its value class at import), so
every uvicorn worker writes its samples to memory-mapped files there and the exposition
(`exposition()`) sums them with a `MultiProcessCollector`. Without the variable (tests,
`uvicorn app:app`, one process) the metrics live in this object's own registry.

Label values are bounded: `operation` comes from `OperationLabels` (names the server
knows, else `anonymous`), `outcome` from five words, codes from the domain's enums.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

ANONYMOUS = "anonymous"
# The request histogram's buckets: the benchmark's p50 is 30-90 ms, its p99 50-300 ms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A screen costs a fixed handful of statements (README, Performance); a checkout ~16.
STATEMENT_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 20, 30, 50, 100)
GATEWAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 6.0, 10.0)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class OperationLabels:
    """The `operation` label of a request: the operation's name when the server knows
    the document, `anonymous` otherwise.

    Known: documents from a trusted manifest (public `MANIFEST_FILES` or a partner's,
    which operators deploy), and names listed in `METRICS_OPERATION_NAMES`. Any other
    name is the client's free text: an attacker sending a fresh name per request would
    otherwise make a new time series per request, so it is `anonymous`. (A first-seen
    set capped at N would stay bounded too, but whoever sent the first N names after a
    restart would own the labels, and each worker would own different ones.)
    """

    def __init__(self, names: Iterable[str]) -> None:
        self._names = frozenset(names)

    def of(self, name: str | None, trusted: bool) -> str:
        if name is None:
            return ANONYMOUS
        if trusted or name in self._names:
            return name
        return ANONYMOUS


class Metrics:
    def __init__(self, operation_names: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.operations = OperationLabels(operation_names)
        registry = self.registry
        self.request_duration = Histogram(
            "commerce_graphql_request_duration_seconds",
            "GraphQL requests by operation and outcome (ok, degraded, rejected, throttled, "
            "error): time from the first byte in to the last byte out.",
            ["operation", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.request_statements = Histogram(
            "commerce_graphql_request_sql_statements",
            "SQL statements run by one GraphQL request, by operation.",
            ["operation"],
            buckets=STATEMENT_BUCKETS,
            registry=registry,
        )
        self.rate_limit_rejections = Counter(
            "commerce_rate_limit_rejections_total",
            "Requests refused with THROTTLED because the client's bucket was empty.",
            ["operation"],
            registry=registry,
        )
        self.degraded_responses = Counter(
            "commerce_degraded_responses_total",
            "Responses with extensions.degraded, once per response and reason.",
            ["reason"],
            registry=registry,
        )
        self.checkouts = Counter(
            "commerce_checkouts_total",
            "checkoutComplete results: the order's status (PAID, PENDING_PAYMENT, "
            "PAYMENT_ACTION_REQUIRED, PAYMENT_FAILED) or the first userError code.",
            ["outcome"],
            registry=registry,
        )
        self.cache_lookups = Counter(
            "commerce_cache_lookups_total",
            "Record cache keys looked up in Redis, by record kind and result (hit, miss).",
            ["kind", "result"],
            registry=registry,
        )
        self.redis_errors = Counter(
            "commerce_redis_errors_total",
            "Redis calls that failed (timeout, connection, error reply), by component.",
            ["component"],
            registry=registry,
        )
        self.gateway_duration = Histogram(
            "commerce_payment_gateway_request_duration_seconds",
            "Calls to the payment gateway, by call and outcome (ok, error).",
            ["call", "outcome"],
            buckets=GATEWAY_BUCKETS,
            registry=registry,
        )
        self.gateway_errors = Counter(
            "commerce_payment_gateway_errors_total",
            "Gateway calls that raised, or answered that they could not tell (unknown, pending).",
            ["call"],
            registry=registry,
        )
        # Sampled on a timer by each process that owns the pool; summed over live workers.
        self.db_pool = Gauge(
            "commerce_db_pool_connections",
            "Database pool connections by engine (writer, reader) and state (in_use, idle, "
            "overflow, waiting: tasks queued for a connection, capacity).",
            ["engine", "state"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        # Sampled on the same timer by each API process from its LiveFeed.
        self.live_subscriptions = Gauge(
            "commerce_live_subscriptions",
            "Subscriptions listening for events (WebSocket, graphql-transport-ws), summed "
            "over live API processes.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.live_deliveries = Counter(
            "commerce_live_deliveries",
            "Events handed to a listening subscription (one per subscription woken).",
            registry=registry,
        )
        # Sampled by the event worker (`python app.py worker`): state shared by all.
        self.outbox_oldest_age = Gauge(
            "commerce_outbox_oldest_unpublished_age_seconds",
            "Age of the oldest outbox row not yet relayed to Redis Streams (0 when none).",
            multiprocess_mode="max",
            registry=registry,
        )
        self.consumer_pending = Gauge(
            "commerce_event_consumer_pending_messages",
            "Messages read by a consumer group and not yet acknowledged (XINFO GROUPS pending).",
            ["group", "stream"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "commerce_event_consumer_lag_messages",
            "Entries of a stream not yet delivered to a consumer group (XINFO GROUPS lag).",
            ["group", "stream"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.dead_letters = Gauge(
            "commerce_event_dead_letters",
            "Entries in the events:dead-letter stream (XLEN).",
            multiprocess_mode="max",
            registry=registry,
        )

    # -- hooks handed to the parts that observe ----------------------------------------

    def cache_looked_up(self, kind: str, hits: int, misses: int) -> None:
        if hits:
            self.cache_lookups.labels(kind, "hit").inc(hits)
        if misses:
            self.cache_lookups.labels(kind, "miss").inc(misses)

    def redis_failed(self, component: str) -> None:
        self.redis_errors.labels(component).inc()

    def gateway_called(self, call: str, seconds: float, failed: bool) -> None:
        self.gateway_duration.labels(call, "error" if failed else "ok").observe(seconds)
        if failed:
            self.gateway_errors.labels(call).inc()


def exposition(metrics: Metrics | None) -> tuple[bytes, str]:
    """The text format of every process's samples (multiprocess mode) or of `metrics`."""
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    if metrics is None:
        return b"", CONTENT_TYPE_LATEST
    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST
