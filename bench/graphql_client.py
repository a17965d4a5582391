"""The harness's own GraphQL requests: one POST, checked (errors, nulls, userErrors)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from bench.config import HTTP_TIMEOUT_S, BenchError


def graphql_request(
    client: httpx.Client,
    url: str,
    scenario: str,
    body: str,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> int | None:
    """POST one body; abort on HTTP or GraphQL errors, a null root field or non-empty
    userErrors (or when `check` raises); return X-SQL-Statements (if sent)."""
    response, data = graphql_post(client, url, scenario, body)
    if check is not None:
        check(data)
    header = response.headers.get("x-sql-statements")
    return int(header) if header is not None and header.strip().isdigit() else None


def graphql_post(
    client: httpx.Client, url: str, scenario: str, body: str
) -> tuple[httpx.Response, dict[str, Any]]:
    """POST one body; abort on HTTP or GraphQL errors, a null root field or a root payload
    with non-empty userErrors; return the response and its `data`."""
    try:
        response = client.post(url, content=body, headers={"Content-Type": "application/json"})
    except httpx.HTTPError as exc:
        raise BenchError(f"{scenario}: request failed: {exc!r}") from exc
    return response, checked_data(response, scenario, body)


def checked_data(response: httpx.Response, scenario: str, body: str) -> dict[str, Any]:
    """The `data` of a GraphQL response; BenchError on HTTP or GraphQL errors, a null root
    field or a root payload with non-empty userErrors."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise BenchError(
            f"{scenario}: HTTP {response.status_code}, not a JSON object:\n{response.text[:2000]}"
        )
    if "errors" in payload:
        errors = json.dumps(payload["errors"], indent=2)[:4000]
        raise BenchError(f"{scenario}: GraphQL errors (HTTP {response.status_code}):\n{errors}")
    data = payload.get("data")
    if response.status_code != 200 or not isinstance(data, dict):
        raise BenchError(f"{scenario}: HTTP {response.status_code}:\n{response.text[:2000]}")
    if nulls := [key for key, value in data.items() if value is None]:
        raise BenchError(f"{scenario}: data.{nulls[0]} is null for body {body[-200:]}")
    for key, value in data.items():
        if isinstance(value, dict) and value.get("userErrors"):
            errors = json.dumps(value["userErrors"], indent=2)[:4000]
            raise BenchError(f"{scenario}: data.{key}.userErrors for body {body[-300:]}:\n{errors}")
    return data


def http_client() -> httpx.Client:
    # trust_env=False: never route loopback requests through a proxy from the environment.
    return httpx.Client(timeout=HTTP_TIMEOUT_S, trust_env=False)
