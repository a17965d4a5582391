"""The real server process exports its traces over OTLP/HTTP to a collector: here a
small receiver the test runs, decoding the protobuf as a collector would."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from persistence.db import Database
from persistence.seed import seed_catalog
from tests.client import screen_query
from tests.conftest import SEED_COLUMNS
from tests.e2e.server import production_env, serving

pytestmark = pytest.mark.e2e

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class Received:
    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def spans(self) -> list[tuple[str, str, bytes]]:
        """(service name, span name, trace id) of every span received."""
        with self.lock:
            return [
                (_service(resource_spans), span.name, span.trace_id)
                for request in self.requests
                for resource_spans in request.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            ]


def _service(resource_spans: object) -> str:
    for attribute in resource_spans.resource.attributes:  # type: ignore[attr-defined]
        if attribute.key == "service.name":
            return str(attribute.value.string_value)
    return ""


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, Received]]:
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            with received.lock:
                received.requests.append(request)
                received.paths.append(self.path)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


async def test_the_server_exports_its_spans_to_an_otlp_collector(
    db: Database, clean: None, database_url: str, tmp_path: Path
) -> None:
    await seed_catalog(db, customer_columns=SEED_COLUMNS, products=20, seed=5)
    with otlp_receiver() as (endpoint, received):
        env = production_env(
            database_url,
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_SERVICE_NAME="commerce-e2e",
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        with serving(tmp_path, env) as (client, log):
            listing = client.post(
                "/graphql",
                json={"query": screen_query("listing_screen"), "variables": {"first": 5}},
                headers={"traceparent": f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"},
            )
            assert listing.status_code == 200, log.read_text()
            deadline = time.monotonic() + 15
            wanted = ("commerce-e2e", "POST /graphql", bytes.fromhex(CALLER_TRACE))
            while wanted not in received.spans():
                assert time.monotonic() < deadline, (received.spans(), log.read_text())
                await asyncio.sleep(0.1)

    spans = [span for span in received.spans() if span[2] == bytes.fromhex(CALLER_TRACE)]
    names = {name for _, name, _ in spans}
    assert {"POST /graphql", "query ListingScreen"} <= names
    assert any(name.startswith("loader ") for name in names)
    assert {service for service, _, _ in spans} == {"commerce-e2e"}
    assert set(received.paths) == {"/v1/traces"}
