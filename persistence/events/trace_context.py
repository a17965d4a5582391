"""The W3C trace context an event carries from the request that wrote it to the relay,
the consumers and the dead-letter stream.

Only `traceparent` and `tracestate` travel (never baggage, which a client could fill
with anything). With tracing off there is no current span, so nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Link
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

FIELDS = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()


def current_trace_context() -> dict[str, str] | None:
    """The current span's context as W3C headers, or None outside a trace."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier or None


def link_to(carrier: Mapping[str, str] | None) -> Link | None:
    """A span link to the context these headers name; None when they name none (or a
    malformed one, which the propagator ignores)."""
    if not carrier:
        return None
    span_context = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    return Link(span_context) if span_context.is_valid else None


def links_to(carriers: Iterable[Mapping[str, str] | None]) -> list[Link]:
    """One link per distinct originating context."""
    links: dict[tuple[int, int], Link] = {}
    for carrier in carriers:
        link = link_to(carrier)
        if link is not None:
            links.setdefault((link.context.trace_id, link.context.span_id), link)
    return list(links.values())


def stream_fields(trace_context: Mapping[str, str] | None) -> dict[str, str]:
    """The stream entry fields that carry a stored trace context."""
    if not trace_context:
        return {}
    return {name: str(trace_context[name]) for name in FIELDS if trace_context.get(name)}


def from_stream_fields(fields: Mapping[bytes, bytes]) -> dict[str, str] | None:
    """The trace context a stream entry (or a dead-letter entry) carries, if any."""
    found = {
        name: value.decode(errors="replace")
        for name in FIELDS
        if (value := fields.get(name.encode())) is not None
    }
    return found or None


@contextmanager
def untraced() -> Iterator[None]:
    """No SQL or Redis spans inside: the relay's and the consumers' polling (a query or
    a blocking read every second, mostly finding nothing) would be a trace a second."""
    with suppress_instrumentation():
        yield


@contextmanager
def new_trace() -> Iterator[None]:
    """An empty context (no current span, instrumentation on again): the span started
    inside begins a trace of its own."""
    token = context.attach(context.Context())
    try:
        yield
    finally:
        context.detach(token)
