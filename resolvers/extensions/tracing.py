"""A span per GraphQL operation (not per field: strawberry's stock OpenTelemetry
extension makes one per resolved field, which here would halve the throughput).

It records what ran, from the RequestState QueryCost fills: the operation's name and
type, the document's SHA-256 (never its text, never the variables), its static cost,
whether it was throttled, the calling partner's name and the signed-in customer's
opaque id when the request looked it up anyway. Nothing else about a person. In the
schema only when tracing is on; inside a request the sampler left out (instrumentation
suppressed, see resolvers/http/tracing.py) it does nothing at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Status, StatusCode, Tracer
from strawberry.extensions import SchemaExtension

from schema.context import context_of
from schema.global_id import encode_gid


class OperationTracing(SchemaExtension):
    def __init__(self, *, tracer: Tracer) -> None:
        super().__init__()
        self._tracer = tracer

    def on_operation(self) -> Iterator[None]:
        if not is_instrumentation_enabled():
            yield
            return
        with self._tracer.start_as_current_span("graphql.operation") as span:
            yield
            if not span.is_recording():  # sampled out: nothing to describe
                return
            execution = self.execution_context
            context = context_of(execution)
            state = None if context is None else context.state
            kind = state.operation_type if state is not None else None
            name = state.operation_name if state is not None else execution.operation_name
            span.update_name(f"{kind or 'graphql'} {name}" if name else kind or "graphql")
            if execution.query:
                document = hashlib.sha256(execution.query.encode()).hexdigest()
                span.set_attribute("graphql.document", document)
            if name:
                span.set_attribute("graphql.operation.name", name)
            if kind:
                span.set_attribute("graphql.operation.type", kind)
            if state is not None:
                if state.query_cost is not None:
                    span.set_attribute("graphql.operation.cost", state.query_cost)
                span.set_attribute("graphql.operation.throttled", state.throttled)
                if state.partner is not None:
                    span.set_attribute("commerce.partner", state.partner.name)
            if context is not None:
                customer = context.known_customer_id()
                if customer is not None:
                    span.set_attribute("enduser.id", encode_gid("Customer", customer))
            result = execution.result
            errors = getattr(result, "errors", None) if result is not None else None
            if errors:
                codes = sorted(
                    {str((e.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")) for e in errors}
                )
                span.set_attribute("graphql.errors.codes", codes)
                if "INTERNAL_SERVER_ERROR" in codes:  # ours; the other codes are the client's
                    span.set_status(Status(StatusCode.ERROR, "INTERNAL_SERVER_ERROR"))
