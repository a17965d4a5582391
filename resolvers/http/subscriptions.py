"""GraphQL subscriptions over WebSocket (graphql-transport-ws) on /graphql.

The protocol is strawberry's; this adds what the HTTP edge does for a request:

- `connection_init`'s payload authenticates, as HTTP headers do: `Authorization:
  "Bearer <token>"` for a customer or staff, `X-Api-Key` for a partner (an unknown key
  closes with 4403). A partner's manifest and persisted-only flag apply to each
  `subscribe`, whose `extensions.persistedQuery` is resolved like a POST's.
- Each `subscribe` runs through the schema's extensions: depth, alias, token and cost
  limits, and the rate limit, charged once when it subscribes. Refusals are `error`
  messages whose errors carry `extensions.code`.
- Only subscriptions run here: queries and mutations belong to HTTP, where a request's
  loaders, timeout and cache headers are its own.
- Bounds (see README "Subscriptions"): MAX_SUBSCRIPTIONS_PER_CONNECTION (a coded
  error), SUBSCRIPTION_CONNECTIONS_PER_CLIENT per address and per partner (close 4429),
  a server ping every SUBSCRIPTION_PING_SECONDS answered within
  SUBSCRIPTION_PONG_TIMEOUT_SECONDS (else close 4408), and a slow consumer, more than
  SUBSCRIPTION_QUEUE_SIZE events behind, closed with 4008.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import orjson
from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.aio import aclosing

from domain.errors import ErrorCode
from domain.live_updates import ConnectionQuota
from domain.persisted_queries import PersistedQueryError
from resolvers.http.persisted_queries import _size_refusal
from schema.context import Context

log = logging.getLogger(__name__)

CLOSE_SLOW_CONSUMER = 4008
CLOSE_PING_TIMEOUT = 4408
CLOSE_TOO_MANY_CONNECTIONS = 4429
CLOSE_SECONDS = 2.0  # a close frame that cannot be written by then is abandoned

SUBSCRIPTION_ONLY = frozenset({OperationType.SUBSCRIPTION})


class LiveLimits:
    """What bounds one connection (from Settings; the view hands it to each handler)."""

    def __init__(
        self,
        *,
        max_subscriptions: int,
        ping_seconds: float,
        pong_timeout_seconds: float,
        quota: ConnectionQuota,
    ) -> None:
        self.max_subscriptions = max_subscriptions
        self.ping_seconds = ping_seconds
        self.pong_timeout_seconds = pong_timeout_seconds
        self.quota = quota


class LiveConnection(BaseGraphQLTransportWSHandler[Context, None]):
    """One graphql-transport-ws connection, bounded by the view's LiveLimits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits: LiveLimits = self.view.live_limits  # type: ignore[attr-defined]
        self._clients: list[str] = []
        self._last_heard = time.monotonic()
        self._pinger: asyncio.Task[None] | None = None

    async def handle(self) -> None:
        client = "ip:" + self.context.client_address
        if not self.limits.quota.take(client):
            await self._close(CLOSE_TOO_MANY_CONNECTIONS, "too many connections from this client")
            return
        self._clients.append(client)
        self._pinger = asyncio.create_task(self._ping(), name="ws-ping")
        try:
            await super().handle()
        finally:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
            if self.context.live is not None:
                self.context.live.close()
            for taken in self._clients:
                self.limits.quota.give_back(taken)

    async def handle_message(self, message: Any) -> None:
        self._last_heard = time.monotonic()
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.handle_invalid_message("a message is a JSON object with a type")
            return
        await super().handle_message(cast("Any", message))

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        partner = self.context.partner
        if self.connection_acknowledged and partner is not None:
            client = f"partner:{partner.id}"
            if not self.limits.quota.take(client):
                await self._close(CLOSE_TOO_MANY_CONNECTIONS, "too many connections for this key")
                return
            self._clients.append(client)

    async def handle_subscribe(self, message: Any) -> None:
        payload = message.get("payload")
        operation_id = message.get("id")
        if not isinstance(operation_id, str) or not _well_formed(payload):
            await self.handle_invalid_message("subscribe needs an id and a GraphQL request")
            return
        if not self.connection_acknowledged or operation_id in self.operations:
            await super().handle_subscribe(message)  # closes with the protocol's code
            return
        if len(self.operations) >= self.limits.max_subscriptions:
            await self._refuse(
                operation_id,
                GraphQLError(
                    f"a connection runs at most {self.limits.max_subscriptions} subscriptions",
                    extensions={
                        "code": ErrorCode.SUBSCRIPTION_LIMIT_REACHED.value,
                        "maximum": self.limits.max_subscriptions,
                    },
                ),
            )
            return
        context = self.context
        too_large = _size_refusal(payload.get("query"), context.settings.max_query_bytes)
        if too_large is not None:
            await self._refuse(operation_id, too_large)
            return
        try:
            resolved = await context.documents.resolve(
                payload.get("query"), payload.get("extensions"), context.document_policy
            )
        except PersistedQueryError as refused:
            await self._refuse(
                operation_id, GraphQLError(refused.message, extensions={"code": refused.code})
            )
            return
        await super().handle_subscribe(
            cast("Any", {**message, "payload": {**payload, "query": resolved.query or ""}})
        )

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        # strawberry's, with subscriptions the only operation type allowed.
        try:
            result_source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=self.context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
                allowed_operation_types=SUBSCRIPTION_ONLY,
            )
            async with aclosing(result_source):
                await self._send_result_stream(operation, result_source)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except _OperationStreamClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def _send_result_stream(self, operation: Any, result_source: Any) -> None:
        first = True
        async for result in result_source:
            if (
                first
                and result.errors
                and (isinstance(result, PreExecutionError) or result.data is None)
            ):
                # Refused before anything was sent (a limit, NOT_FOUND): an `error`
                # message, which ends the operation, not a `next`.
                if isinstance(result, PreExecutionError) and self._closes(result.errors[0]):
                    await self._handle_pre_execution_error(operation, result)
                    return
                await operation.send_initial_errors(result.errors)
                return
            if not isinstance(result, ExecutionResult):
                await self._reject_incremental_delivery(operation)
                return
            await operation.send_next(result)
            first = False

    def _closes(self, error: GraphQLError) -> bool:
        return self._get_pre_execution_close_reason(error) is not None and not isinstance(
            error.original_error, CannotGetOperationTypeError
        )

    async def _refuse(self, operation_id: str, error: GraphQLError) -> None:
        await self.send_message({"id": operation_id, "type": "error", "payload": [error.formatted]})

    async def _ping(self) -> None:
        limits = self.limits
        while True:
            await asyncio.sleep(limits.ping_seconds)
            asked = time.monotonic()
            with contextlib.suppress(Exception):
                await self.send_message({"type": "ping"})
            await asyncio.sleep(limits.pong_timeout_seconds)
            if self._last_heard < asked:
                await self._close(CLOSE_PING_TIMEOUT, "no pong: ping timeout")
                return

    async def _close(self, code: int, reason: str) -> None:
        await close_socket(self.websocket, code, reason)


async def close_socket(websocket: Any, code: int, reason: str) -> None:
    """Close, giving up on a peer that does not take the close frame in time."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_SECONDS):
            await websocket.close(code=code, reason=reason)


def _well_formed(payload: object) -> bool:
    if not isinstance(payload, dict):
        return False
    return (
        isinstance(payload.get("query"), (str, type(None)))
        and isinstance(payload.get("operationName"), (str, type(None)))
        and isinstance(payload.get("variables"), (dict, type(None)))
        and isinstance(payload.get("extensions"), (dict, type(None)))
    )


class TextFrames(ASGIWebSocketAdapter):
    """graphql-transport-ws messages are text frames; the view's orjson encoder gives
    bytes, which strawberry would send as binary frames (graphql-ws's client rejects
    them)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class LiveSubscriptionsHttp:
    """The view's side: `connection_init` authenticates a partner key."""

    live_limits: LiveLimits

    async def on_ws_connect(self, context: Context) -> Any:
        params = context.connection_params or {}
        api_key = params.get("X-Api-Key", params.get("x-api-key"))
        if api_key is not None:
            if not isinstance(api_key, str) or len(api_key) > 512:
                raise ConnectionRejectionError()
            partner = await self.partner_keys().authenticate(api_key)  # type: ignore[attr-defined]
            if partner is None:
                raise ConnectionRejectionError()
            context.state.partner = partner
            context.document_policy = partner.policy
            context.rate_limit = context.settings.partner_tiers.get(partner.tier)
        return await super().on_ws_connect(context)  # type: ignore[misc]
