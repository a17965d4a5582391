"""The thin path for GraphQL over HTTP: `/graphql`'s GET and POST skip Starlette's router.

Every GraphQL request used to cross Starlette's whole stack: the server-error
middleware, the body-limit responder, our middlewares, the exception middleware, the
router (a regex per route) and the route. `EdgeApp` dispatches on the scope's path
first: a GET or POST to `/graphql` goes to the same middlewares (the app's own list:
tracing, forwarded headers, request id and statement count, CORS, the timeout, in the
same order) around `GraphQLHttpPath`, which does what the skipped Starlette layers did
for this path, and then to the view. Everything else (the WebSocket on `/graphql`,
OPTIONS and HEAD, probes, metrics, webhooks, lifespan) is Starlette's, as before.

`GraphQLHttpPath` holds the body limit (413 with a GraphQL error coded
`BODY_TOO_LARGE`, before the view runs when `Content-Length` says so, else as soon as
the body read passes it) and the last resort: an exception nothing handled becomes a
500 coded `INTERNAL_SERVER_ERROR`, and is raised on for the server's log, as Starlette's
server-error middleware did.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

GRAPHQL_PATH = "/graphql"
_THIN_METHODS = frozenset({"GET", "POST"})
_GRAPHQL_RESPONSE = b"application/graphql-response+json"


class EdgeApp(Starlette):
    """Starlette, with `/graphql`'s GET and POST answered before the router sees them.
    `graphql_http` is the view they go to (set by `serve_graphql`); until then, and for
    everything else, this is plain Starlette."""

    graphql_http: ASGIApp | None = None
    _graphql_stack: ASGIApp | None = None

    def serve_graphql(self, view: ASGIApp, max_body_bytes: int) -> None:
        self.graphql_http = GraphQLHttpPath(view, max_body_bytes)
        self._graphql_stack = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == GRAPHQL_PATH
            and scope["method"] in _THIN_METHODS
            and self.graphql_http is not None
        ):
            stack = self._graphql_stack
            if stack is None:  # built on first use, after every add_middleware
                stack = self._graphql_stack = wrapped(self.graphql_http, self.user_middleware)
            scope["app"] = self
            await stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def wrapped(app: ASGIApp, middleware: Sequence[Middleware]) -> ASGIApp:
    """`app` inside `middleware`, the first one outermost (as Starlette builds its stack)."""
    for cls, args, kwargs in reversed(middleware):
        app = cls(app, *args, **kwargs)
    return app


class BodyTooLarge(Exception):
    """The request body passed the limit while the view was reading it."""


class GraphQLHttpPath:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, 413, _too_large(limit))
            return
        started = False
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            # A GET has no body to count: the view gets the server's receive.
            await self.app(
                scope, receive if scope["method"] == "GET" else limited_receive, watched_send
            )
        except BodyTooLarge:
            if started:
                raise
            await _refuse(scope, send, 413, _too_large(limit))
        except Exception:
            if not started:
                error: dict[str, object] = {
                    "message": "internal server error",
                    "code": "INTERNAL_SERVER_ERROR",
                }
                await _refuse(scope, send, 500, error)
            raise


def _too_large(limit: int) -> dict[str, object]:
    return {
        "message": f"the request body is larger than {limit} bytes",
        "code": "BODY_TOO_LARGE",
        "maximum": limit,
    }


async def _refuse(scope: Scope, send: Send, status: int, error: dict[str, object]) -> None:
    message = error["message"]
    extensions = {k: v for k, v in error.items() if k != "message"}
    body = orjson.dumps({"errors": [{"message": message, "extensions": extensions}]})
    media = b"application/json"
    for name, value in scope["headers"]:
        if name == b"accept" and _GRAPHQL_RESPONSE in value:
            media = _GRAPHQL_RESPONSE + b"; charset=utf-8"
    headers = [
        (b"content-type", media),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"private, no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
