"""One place decides what a client sees of an error.

Business failures (`DomainError`) and protocol problems keep their message and get
an `extensions.code`; anything unexpected is logged with its traceback under an id
and reaches the client only as that id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import InvalidOperationTypeError

from domain.errors import DomainError, ErrorCode
from schema.context import context_of

log = logging.getLogger("commerce.errors")

# What a client waits before retrying a request Redis could not serve.
RETRY_AFTER_SECONDS = 1


class ErrorPolicy(SchemaExtension):
    """`backend_unavailable` tells an outage (the database refused, dropped or could not
    take the request) from a bug: the client gets SERVICE_UNAVAILABLE (503 when nothing
    answered) and retries, a load balancer sees the failure, and no error id is minted."""

    def __init__(
        self,
        *,
        expose_details: bool = False,
        backend_unavailable: Callable[[BaseException], bool] | None = None,
    ) -> None:
        super().__init__()
        self._expose_details = expose_details
        self._backend_unavailable = backend_unavailable

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [self._present(error) for error in errors]  # type: ignore[union-attr]
            self._unavailable(result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # A subscription's results (its refusal, then one per event) go out one by
        # one, each presented like a request's.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [self._present(error) for error in errors]
        yield

    def _unavailable(self, result: Any) -> None:
        """Nothing answered because a backing service (Redis) is down: the whole request
        failed, so it says so over HTTP too (503, Retry-After), with `data: null` as
        GraphQL over HTTP wants of a non-2xx answer. A partial answer stays a 200."""
        codes = {(error.extensions or {}).get("code") for error in result.errors}
        if ErrorCode.SERVICE_UNAVAILABLE.value not in codes:
            return
        context = context_of(self.execution_context)
        if context is not None:
            context.state.service_unavailable = True
        if result.data is not None and any(v is not None for v in result.data.values()):
            return
        result.data = None
        if context is not None:
            context.response.status_code = 503
            context.response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)

    def _present(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        while isinstance(original, GraphQLError) and original.original_error is not None:
            original = original.original_error
        if isinstance(original, InvalidOperationTypeError):  # a query over WebSocket
            message = f"{original.operation_type.value} operations are not run here"
            return _with(error, message, {"code": "BAD_REQUEST"})
        if isinstance(original, DomainError):
            extensions: dict[str, object] = {"code": original.code.value}
            if original.field:
                extensions["field"] = original.field
            return _with(error, original.message, extensions)
        if original is None or isinstance(original, GraphQLError):
            return _with(
                error, error.message, {**(error.extensions or {}), "code": _protocol_code(error)}
            )
        if self._backend_unavailable is not None and self._backend_unavailable(original):
            log.warning("backend unavailable at %s: %r", error.path, original)
            return _with(
                error,
                "a backing service is unavailable; retry shortly",
                {"code": ErrorCode.SERVICE_UNAVAILABLE.value},
            )
        error_id = uuid.uuid4().hex
        log.error(
            "unexpected error %s at %s",
            error_id,
            error.path,
            exc_info=original,
            extra={"error_id": error_id},
        )
        context = context_of(self.execution_context)
        if context is not None:  # the request log line names it too
            ids = context.state.error_ids
            if ids is None:
                context.state.error_ids = [error_id]
            else:
                ids.append(error_id)
        extensions = {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}
        if self._expose_details:
            extensions["exception"] = repr(original)
        return _with(error, f"Internal server error (error id {error_id}).", extensions)


def _protocol_code(error: GraphQLError) -> str:
    """The code its producer gave (validation rules, the parser step, variable coercion,
    the edge's own checks); an uncoded syntax error is a parse failure, anything else a
    validation failure."""
    existing = (error.extensions or {}).get("code")
    if isinstance(existing, str):
        return existing
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    return "GRAPHQL_VALIDATION_FAILED"


def _with(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )
