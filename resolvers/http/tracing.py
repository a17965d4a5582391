"""A SERVER span per HTTP request, continuing the caller's W3C `traceparent`.

Pure ASGI and small on purpose: opentelemetry-instrumentation-asgi does the same with
two more spans per request (receive and send) and more attributes than we want; this
records the method, the route (our few fixed ones; anything else is not a route, so
junk paths cannot multiply span names), the status and the request id. Never the query
string: a GET query carries the document and its variables. Added to the app only when
tracing is on.

The sampler decides here, once per request. A request it leaves out runs with
instrumentation suppressed, so no SQL, Redis, loader, operation, gateway or search hook
below does any work for spans nobody keeps (a sampled-out request costs one
non-recording span). Its span context still travels: the outbox rows it writes carry
the `traceparent`, unsampled, so the relay and the consumers decide for themselves.
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from integrations.tracing import hooks_only_if_recorded

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = {b"traceparent": "traceparent", b"tracestate": "tracestate"}


class TracingMiddleware:
    def __init__(self, app: ASGIApp, *, tracer: Tracer, routes: frozenset[str]) -> None:
        self.app = app
        self.tracer = tracer
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            _TRACE_HEADERS[name]: value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _TRACE_HEADERS
        }
        # A malformed traceparent is ignored by the propagator: a trace of our own.
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        method = scope["method"]
        path = scope["path"]
        route = path if path in self.routes else None
        with self.tracer.start_as_current_span(
            f"{method} {route}" if route else method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:
            if not span.is_recording():
                with hooks_only_if_recorded(span):
                    await self.app(scope, receive, send)
                return
            if route:
                span.set_attribute("http.route", route)

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                    for name, value in message.get("headers", ()):
                        if name == b"x-request-id":
                            span.set_attribute("commerce.request_id", value.decode("latin-1"))
                await send(message)

            await self.app(scope, receive, send_traced)
