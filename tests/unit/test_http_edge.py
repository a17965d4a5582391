"""GraphQLHttpPath's last resort: what an exception nothing handled turns into."""

from __future__ import annotations

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from resolvers.http.edge import GraphQLHttpPath


def http_scope(headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "query_string": b"",
        "headers": headers or [(b"content-type", b"application/json")],
    }


async def nothing() -> Message:
    return {"type": "http.request", "body": b"{}", "more_body": False}


class Broken(Exception):
    pass


async def test_an_unhandled_exception_is_a_coded_500_and_is_raised_on_for_the_log() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise Broken("a bug")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(Broken):
        await GraphQLHttpPath(failing, 1_024)(http_scope(), nothing, send)

    start, body = sent
    assert start["status"] == 500
    assert (b"content-type", b"application/json") in start["headers"]
    assert orjson.loads(body["body"]) == {
        "errors": [
            {"message": "internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        ]
    }


async def test_an_exception_after_the_answer_started_sends_nothing_more() -> None:
    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise Broken("mid-body")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(Broken):
        await GraphQLHttpPath(half, 1_024)(http_scope(), nothing, send)

    assert [m["type"] for m in sent] == ["http.response.start"]


async def test_a_declared_length_over_the_limit_never_reaches_the_view() -> None:
    reached: list[Scope] = []

    async def view(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"content-length", b"1025"), (b"accept", b"application/graphql-response+json")]
    await GraphQLHttpPath(view, 1_024)(http_scope(headers), nothing, send)

    assert reached == []
    assert sent[0]["status"] == 413
    assert (
        b"content-type",
        b"application/graphql-response+json; charset=utf-8",
    ) in sent[0]["headers"]
    assert orjson.loads(sent[1]["body"])["errors"][0]["extensions"] == {
        "code": "BODY_TOO_LARGE",
        "maximum": 1_024,
    }
