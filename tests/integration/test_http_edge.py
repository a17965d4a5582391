"""The thin path for GET and POST /graphql (resolvers/http/edge.py): what Starlette's
router and its generic middlewares did for this path still happens, with coded errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

from settings import Settings
from tests.client import AppClient, running_app

GRAPHQL_RESPONSE = "application/graphql-response+json"


async def test_a_body_over_the_limit_is_refused_with_a_code_before_anything_runs(
    client: AppClient,
) -> None:
    limit = client.container.settings.max_body_bytes
    padding = "#" + "x" * limit + "\n"

    response = await client.http.post("/graphql", json={"query": padding + "{ __typename }"})
    negotiated = await client.http.post(
        "/graphql",
        json={"query": padding + "{ __typename }"},
        headers={"Accept": GRAPHQL_RESPONSE, "X-Request-Id": "big-body-1"},
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "errors": [
            {
                "message": f"the request body is larger than {limit} bytes",
                "extensions": {"code": "BODY_TOO_LARGE", "maximum": limit},
            }
        ]
    }
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["x-sql-statements"] == "0"
    assert negotiated.status_code == 413
    assert negotiated.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert negotiated.headers["x-request-id"] == "big-body-1"
    assert negotiated.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"


async def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(
    client: AppClient,
) -> None:
    limit = client.container.settings.max_body_bytes
    chunk = b"x" * 65_536
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        yield b'{"query": "#'
        for _ in range(limit // len(chunk) + 2):
            sent.append(len(chunk))
            yield chunk

    response = await client.http.post(
        "/graphql", content=body(), headers={"Content-Type": "application/json"}
    )

    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"] == {
        "code": "BODY_TOO_LARGE",
        "maximum": limit,
    }


async def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_not(
    client: AppClient,
) -> None:
    limit = client.container.settings.max_body_bytes

    def body_of(size: int) -> bytes:
        empty = b'{"query": "{ __typename }", "extensions": {"padding": ""}}'
        return empty.replace(b'""', b'"' + b"x" * (size - len(empty)) + b'"')

    at_limit = await client.http.post(
        "/graphql", content=body_of(limit), headers={"Content-Type": "application/json"}
    )
    over = await client.http.post(
        "/graphql", content=body_of(limit + 1), headers={"Content-Type": "application/json"}
    )

    assert len(body_of(limit)) == limit
    assert at_limit.status_code == 200, at_limit.text
    assert at_limit.json()["data"] == {"__typename": "Query"}
    assert over.status_code == 413
    assert over.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"


async def test_a_cross_origin_post_gets_the_cors_headers_on_the_thin_path(
    settings: Settings, clean: None
) -> None:
    configured = settings.model_copy(update={"cors_allow_origins": ["https://shop.example"]})
    async with running_app(configured) as client:
        allowed = await client.http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Origin": "https://shop.example"},
        )
        other = await client.http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Origin": "https://evil.example"},
        )
        got = await client.http.get(
            "/graphql",
            params={"query": "{ __typename }"},
            headers={"Origin": "https://shop.example"},
        )

    assert allowed.status_code == 200 and allowed.json()["data"] == {"__typename": "Query"}
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in other.headers
    assert got.headers["access-control-allow-origin"] == "https://shop.example"


async def test_every_header_is_written_once(client: AppClient) -> None:
    response = await client.http.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Accept": GRAPHQL_RESPONSE},
    )
    refused = await client.http.post(
        "/graphql", content=b"[1, 2", headers={"Content-Type": "application/json"}
    )

    for answer in (response, refused):
        names = [name.lower() for name, _ in answer.headers.multi_items()]
        assert sorted(names) == sorted(set(names)), names
        assert {"content-type", "content-length", "cache-control", "x-request-id"} <= set(names)
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_other_methods_and_paths_are_still_the_routers(client: AppClient) -> None:
    put = await client.http.put("/graphql", json={"query": "{ __typename }"})
    trailing = await client.http.post("/graphql/", json={"query": "{ __typename }"})
    health = await client.http.get("/healthz")

    assert put.status_code == 405
    assert "x-request-id" in put.headers
    assert trailing.status_code in (307, 404)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
