"""What one request leaves behind: its samples in the metrics and its request log line.

`RequestMetaMiddleware` calls `finished` once per HTTP request, after the answer went
out, with what it measured; the rest comes from the request's `RequestState` (what
ran, its cost, errors, degraded parts, checkout results). The per-request work is a
few dictionary look-ups and, with metrics on, two histogram observations (each a
write to a memory-mapped file under `serve`), and with the request log on, one line.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from schema.request_state import RequestState

if TYPE_CHECKING:  # prometheus-client is only imported when metrics are on
    from observability.metrics import Metrics

request_log = logging.getLogger("commerce.request")

GRAPHQL_PATH = "/graphql"
# Probes and scrapes: neither metrics nor log lines (they would drown the real traffic).
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
OUTCOMES = ("ok", "degraded", "rejected", "throttled", "error")


def outcome_of(state: RequestState | None, status: int) -> str:
    """One of OUTCOMES: a server failure, a refusal for the rate limit, a client's
    mistake or refused document, a partial screen, or a complete answer."""
    if status >= 500 or (state is not None and (state.error_ids or state.service_unavailable)):
        return "error"
    if state is None:
        return "rejected" if status >= 400 else "ok"
    if state.throttled:
        return "throttled"
    if state.had_errors or status >= 400:
        return "rejected"
    if state.degraded_reasons:
        return "degraded"
    return "ok"


class RequestRecorder:
    def __init__(self, metrics: Metrics | None, log_requests: bool) -> None:
        self._metrics = metrics
        self._log_requests = log_requests
        # (operation, outcome) -> the histogram children: label values are bounded, and
        # `labels()` takes a lock and builds a tuple on every call.
        self._durations: dict[tuple[str, str], Any] = {}
        self._statements: dict[str, Any] = {}

    def finished(
        self, scope: Scope, status: int, seconds: float, statements: int, request_id: str
    ) -> None:
        path = scope.get("path", "")
        if path in QUIET_PATHS:
            return
        state = RequestState.found_in(scope)
        outcome = outcome_of(state, status)
        operation = None
        if path == GRAPHQL_PATH and self._metrics is not None:
            operation = self._metrics.operations.of(
                None if state is None else state.operation_name,
                state is not None and state.trusted_document,
            )
            self._record(operation, outcome, seconds, statements, state)
        # The line's fields are gathered only for a logger that writes INFO lines.
        if self._log_requests and request_log.isEnabledFor(logging.INFO):
            method = str(scope.get("method", ""))
            self._log(method, path, status, seconds, statements, request_id, outcome, state)

    def _record(
        self,
        operation: str,
        outcome: str,
        seconds: float,
        statements: int,
        state: RequestState | None,
    ) -> None:
        metrics = self._metrics
        assert metrics is not None
        key = (operation, outcome)
        duration = self._durations.get(key)
        if duration is None:
            duration = self._durations[key] = metrics.request_duration.labels(*key)
        duration.observe(seconds)
        per_request = self._statements.get(operation)
        if per_request is None:
            per_request = self._statements[operation] = metrics.request_statements.labels(operation)
        per_request.observe(statements)
        if state is None:
            return
        if state.throttled:
            metrics.rate_limit_rejections.labels(operation).inc()
        for reason in state.degraded_reasons:
            metrics.degraded_responses.labels(reason).inc()
        for code in state.checkout_outcomes or ():
            metrics.checkouts.labels(code).inc()
        if state.service_unavailable:
            metrics.redis_failed("required")

    def _log(
        self,
        method: str,
        path: str,
        status: int,
        seconds: float,
        statements: int,
        request_id: str,
        outcome: str,
        state: RequestState | None,
    ) -> None:
        # The name as the client sent it is fine in a log line (no series per value);
        # it is cut short so a client cannot write kilobytes into every line.
        fields: dict[str, object] = {
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "outcome": outcome,
            "duration_ms": round(seconds * 1000, 2),
            "statements": statements,
        }
        if state is not None:
            name = state.operation_name
            fields["operation"] = None if name is None else name[:100]
            fields["operation_type"] = state.operation_type
            fields["cost"] = state.query_cost
            if state.error_ids:
                fields["error_ids"] = state.error_ids
            if state.degraded_reasons:
                fields["degraded"] = sorted(state.degraded_reasons)
        request_log.info(
            "%s %s %d %s %.1f ms %d statements",
            path,
            fields.get("operation") or "-",
            status,
            outcome,
            seconds * 1000,
            statements,
            extra=fields,
        )
