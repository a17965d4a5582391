"""Subscriptions under test: the app on a real uvicorn server in the test's own loop
(so a test can still reach its container), and a small graphql-transport-ws client on
the `websockets` package."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app import RunningContainer, create_app
from settings import Settings
from tests.client import AppClient
from tests.e2e.server import free_port

PROTOCOL = "graphql-transport-ws"


@dataclass
class LiveApp:
    client: AppClient  # HTTP to the same server
    ws_url: str
    server: uvicorn.Server


@contextlib.asynccontextmanager
async def live_app(settings: Settings) -> AsyncIterator[LiveApp]:
    running = RunningContainer()
    app = create_app(settings, running=running)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="warning",
        ws_max_size=settings.max_body_bytes,
        ws_ping_interval=None,  # our own graphql-transport-ws pings are under test
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            yield LiveApp(
                AppClient(app=app, http=http, running=running),
                f"ws://127.0.0.1:{port}/graphql",
                server,
            )
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


class Closed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class GraphQLSocket:
    """One graphql-transport-ws connection, message by message."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(orjson.dumps(message).decode())

    async def receive(self, seconds: float = 2.0) -> dict[str, Any]:
        """The next message; Closed when the server closed the connection instead."""
        try:
            async with asyncio.timeout(seconds):
                raw = await self.connection.recv()
        except ConnectionClosed as closed:
            received = closed.rcvd
            raise Closed(
                None if received is None else received.code,
                "" if received is None else received.reason,
            ) from None
        message: dict[str, Any] = orjson.loads(raw)
        return message

    async def receive_other_than_ping(self, seconds: float = 2.0) -> dict[str, Any]:
        while True:
            message = await self.receive(seconds)
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.send({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def subscribe(
        self,
        operation_id: str,
        query: str | None,
        variables: dict[str, Any] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        payload: dict[str, Any] = {"query": query, "variables": variables or {}}
        if extensions is not None:
            payload["extensions"] = extensions
        await self.send({"id": operation_id, "type": "subscribe", "payload": payload})

    async def closed(self, seconds: float = 5.0) -> Closed:
        """Wait for the server to close; what it said."""
        try:
            while True:
                await self.receive(seconds)
        except Closed as closed:
            return closed


@contextlib.asynccontextmanager
async def socket(url: str, *, ack: dict[str, Any] | None = None) -> AsyncIterator[GraphQLSocket]:
    """A connection; with `ack`, initialised with that payload (and acknowledged)."""
    async with connect(url, subprotocols=[PROTOCOL], max_size=2**22) as connection:  # type: ignore[list-item]
        ws = GraphQLSocket(connection)
        if ack is not None:
            reply = await ws.init(ack)
            assert reply["type"] == "connection_ack", reply
        yield ws
