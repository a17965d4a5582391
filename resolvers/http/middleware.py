"""Pure ASGI middleware: cheap per-request bookkeeping around the app."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability.logs import request_id_var


class StatementCounter(Protocol):
    def scope(self) -> AbstractContextManager[list[int]]:
        """Counts the statements run inside it, in the list's one entry."""
        ...


class RequestObserver(Protocol):
    """Told about every request once its answer is out (metrics, the request log)."""

    def finished(
        self, scope: Scope, status: int, seconds: float, statements: int, request_id: str
    ) -> None: ...


class RequestMetaMiddleware:
    """Gives every response an `X-Request-Id` and, with `expose_statements`,
    `X-SQL-Statements`; with an `observer`, times each request, counts its statements
    and tells the observer (which records metrics and writes the request log line).

    The statement counter is a callable (the database exists once the app has started);
    its scope is the one context variable set per request, and only when something
    reads the count. With neither an observer nor the header, a request costs a header.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        statement_counter: Callable[[], StatementCounter] | None,
        expose_statements: bool = True,
        observer: RequestObserver | None = None,
    ) -> None:
        self.app = app
        self.statement_counter = statement_counter
        self.expose_statements = expose_statements and statement_counter is not None
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # 128 random bits in 32 hex digits, as uuid4().hex gave, in one call instead of five.
        request_id = _header(scope, b"x-request-id") or os.urandom(16).hex()
        counter = None if self.statement_counter is None else self.statement_counter()
        expose = self.expose_statements
        status = 500  # what the client saw if the app raised before answering

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                if expose and bucket is not None:
                    headers.append((b"x-sql-statements", str(bucket[0]).encode()))
                message["headers"] = headers
            await send(message)

        if counter is None:
            bucket = None
            await self.app(scope, receive, send_with_headers)
            return
        observer = self.observer
        if observer is None:
            with counter.scope() as bucket:
                await self.app(scope, receive, send_with_headers)
            return
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        with counter.scope() as counted:
            bucket = counted
            try:
                await self.app(scope, receive, send_with_headers)
            finally:
                elapsed = time.perf_counter() - started
                observer.finished(scope, status, elapsed, counted[0], request_id)
                request_id_var.reset(token)


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
