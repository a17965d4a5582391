"""Pure ASGI middleware: cheap per-request bookkeeping around the app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class StatementCounter(Protocol):
    def scope(self) -> AbstractContextManager[list[int]]:
        """Counts the statements run inside it, in the list's one entry."""
        ...


class RequestMetaMiddleware:
    """Gives every response an `X-Request-Id` and, when `statement_counter` is given,
    `X-SQL-Statements` (a callable: the database exists once the app has started)."""

    def __init__(
        self, app: ASGIApp, *, statement_counter: Callable[[], StatementCounter] | None
    ) -> None:
        self.app = app
        self.statement_counter = statement_counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        counter = None if self.statement_counter is None else self.statement_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                if bucket is not None:
                    headers.append((b"x-sql-statements", str(bucket[0]).encode()))
                message["headers"] = headers
            await send(message)

        if counter is None:
            bucket = None
            await self.app(scope, receive, send_with_headers)
            return
        with counter.scope() as bucket:
            await self.app(scope, receive, send_with_headers)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")[:128]
            return decoded
    return None


class RequestTimeoutMiddleware:
    """Cancels a request's work after `seconds`; the client gets 503 and a coded error."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, watched_send)
        except TimeoutError:
            if started:
                raise
            body = orjson.dumps(
                {
                    "errors": [
                        {
                            "message": f"the request took longer than {self.seconds:g} s",
                            "extensions": {"code": "TIMEOUT"},
                        }
                    ]
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
