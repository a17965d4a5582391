"""A partner's webhook receiver on loopback: a tiny HTTP/1.1 server (asyncio streams)
that records every request and answers as its `answer` says (status, delay)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() when it arrived


# (request number from 1) -> (status, seconds to wait before answering)
Answer = Callable[[int], tuple[int, float]]


@dataclass
class Receiver:
    port: int = 0
    answer: Answer = lambda _n: (200, 0.0)
    received: list[Received] = field(default_factory=list)
    extra_headers: dict[str, str] = field(default_factory=dict)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.headers.get("x-webhook-event-type") == event_type]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(
                Received(request_line.split(" ")[1], headers, body, time.monotonic())
            )
            status, delay = self.answer(len(self.received))
            await asyncio.sleep(delay)
            extra = "".join(f"{k}: {v}\r\n" for k, v in self.extra_headers.items())
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n{extra}Connection: close\r\n\r\nok".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.handlers.discard(task)


@asynccontextmanager
async def receiving(answer: Answer = lambda _n: (200, 0.0)) -> AsyncIterator[Receiver]:
    receiver = Receiver(answer=answer)
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        for task in list(receiver.handlers):  # a slow answer still waiting
            task.cancel()
        await asyncio.gather(*receiver.handlers, return_exceptions=True)
