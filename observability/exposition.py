"""Where Prometheus scrapes: its own port (`METRICS_PORT`) or `/metrics` behind a token.

- `METRICS_PORT`: prometheus-client's own HTTP server on a daemon thread, started once
  by the process that owns the port: under `python app.py serve` the parent (uvicorn's
  supervisor with `--workers N`, or the one server process), which reads every worker's
  files; under `python app.py worker` the worker itself. The workers never bind it.
- `METRICS_TOKEN`: `GET /metrics` on the app with `Authorization: Bearer <token>`,
  compared in constant time; a missing or wrong token is 401. Without the setting there
  is no route (404).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from observability.metrics import Metrics, exposition, multiprocess_dir


def serve_metrics_port(port: int, host: str, metrics: Metrics | None = None) -> Any:
    """prometheus-client's HTTP server for this process: every worker's files in
    multiprocess mode, else `metrics`' registry. Returns the server (`.shutdown()`)."""
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    elif metrics is not None:
        registry = metrics.registry
    else:
        raise ValueError("METRICS_PORT needs a multiprocess directory or this process's metrics")
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


def mark_this_process_dead() -> None:
    """A worker leaving: its live gauges (the DB pool) stop counting in the sums."""
    if multiprocess_dir() is None:
        return
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class MetricsEndpoint:
    """`GET /metrics` behind `Authorization: Bearer <METRICS_TOKEN>`."""

    def __init__(self, token: str, metrics: Metrics) -> None:
        self._expected = f"Bearer {token}".encode()
        self._metrics = metrics

    async def respond(self, request: Request) -> Response:
        given = request.headers.get("authorization", "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, self._expected):
            return PlainTextResponse(
                "metrics need Authorization: Bearer <METRICS_TOKEN>\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        # Reading every worker's files is file I/O: off the event loop.
        body, content_type = await asyncio.to_thread(exposition, self._metrics)
        return Response(body, media_type=content_type)
