"""Request bodies and parameters that are not GraphQL requests: a coded 400, never a 500.

GraphQL over HTTP: a body must be a JSON object (or, with batching on, an array of
objects of the allowed size), in UTF-8; GET's `variables` and `extensions` must be
JSON objects. Anything else is a 400 whose body is a GraphQL error with a code.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.client import AppClient, running_app
from tests.integration.test_hostile_input import production_settings

JSON = {"Content-Type": "application/json"}
GQL = "application/graphql-response+json"


@pytest.fixture
async def production(database_url: str, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(production_settings(database_url)) as app_client:
        yield app_client


@pytest.fixture
async def batching(database_url: str, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(production_settings(database_url, graphql_batch_max=2)) as app_client:
        yield app_client


def assert_bad_request(
    response: httpx.Response, status: int = 400, code: str = "BAD_REQUEST"
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(("application/json", GQL))
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == code, body
    assert "Traceback" not in response.text


async def test_wrong_media_types_and_mutations_over_get_are_coded_too(
    production: AppClient,
) -> None:
    plain = await production.http.post(
        "/graphql", content="{ __typename }", headers={"Content-Type": "text/plain"}
    )
    mutation = await production.http.get(
        "/graphql",
        params={
            "query": 'mutation { customerAccessTokenDelete(input: {accessToken: "x"}) { deletedAccessToken } }'
        },
    )

    assert_bad_request(plain, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_bad_request(mutation, 405, "METHOD_NOT_ALLOWED")
    assert mutation.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "body",
    [
        b'"{ __typename }"',
        b"42",
        b"null",
        b"true",
        b"[]",
        b'[{"query": "{ __typename }"}]',  # batching is off
        b"\xff\xfe{}",
        b'{"query": "{ __typename }"',
        b"",
        b'{"query": "{ product(slug: \\"\\ud800\\") { id } }"}',  # a lone surrogate
        b'{"query": 5}',
        b'{"query": "{ __typename }", "variables": "x"}',
        b'{"query": "{ __typename }", "variables": [1]}',
        b'{"query": "{ __typename }", "extensions": 7}',
        b'{"query": "{ __typename }", "operationName": 5}',
    ],
)
async def test_a_body_that_is_not_a_graphql_request_is_a_coded_400(
    production: AppClient, body: bytes
) -> None:
    for accept in (GQL, "application/json"):
        response = await production.http.post(
            "/graphql", content=body, headers={**JSON, "Accept": accept}
        )

        assert_bad_request(response)


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": "x"},
        {"persistedQuery": {"version": 1, "sha256Hash": 5}},
        {"persistedQuery": {"version": [], "sha256Hash": "a"}},
    ],
)
async def test_malformed_persisted_query_extensions_are_coded_errors(
    production: AppClient, extensions: dict[str, object]
) -> None:
    posted = await production.http.post(
        "/graphql", json={"extensions": extensions}, headers={"Accept": GQL}
    )
    got = await production.http.get(
        "/graphql", params={"extensions": json.dumps(extensions)}, headers={"Accept": GQL}
    )

    for response in (posted, got):
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "params",
    [
        {"query": "{ __typename }", "variables": "not json"},
        {"query": "{ __typename }", "variables": '"a string"'},
        {"query": "{ __typename }", "variables": "[1, 2]"},
        {"query": "{ __typename }", "variables": "42"},
        {"query": "{ __typename }", "extensions": "[]"},
        {"query": "{ __typename }", "extensions": "{"},
    ],
)
async def test_get_parameters_that_are_not_json_objects_are_a_coded_400(
    production: AppClient, params: dict[str, str]
) -> None:
    response = await production.http.get("/graphql", params=params)

    assert_bad_request(response)


async def test_get_parameters_that_are_not_utf8_are_a_coded_400(production: AppClient) -> None:
    response = await production.http.get("/graphql?query=%7B__typename%7D&variables=%FF%FE")

    assert_bad_request(response)


@pytest.mark.parametrize(
    "body",
    [
        b"[1]",
        b'[{"query": "{ __typename }"}, "x"]',
        b'[{"query": "{ __typename }"}, null]',
        b'[{"query": "{ __typename }"}, {"query": "{ __typename }"}, {"query": "{ __typename }"}]',
    ],
)
async def test_batches_must_be_arrays_of_objects_of_the_allowed_size(
    batching: AppClient, body: bytes
) -> None:
    response = await batching.http.post("/graphql", content=body, headers=JSON)

    assert_bad_request(response)


async def test_well_formed_requests_still_run(batching: AppClient) -> None:
    single = await batching.http.post("/graphql", json={"query": "{ __typename }"})
    batch = await batching.http.post(
        "/graphql", json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}]
    )
    get = await batching.http.get(
        "/graphql", params={"query": "{ __typename }", "variables": "{}", "extensions": "{}"}
    )

    assert single.json()["data"] == {"__typename": "Query"}
    assert [item["data"] for item in batch.json()] == [{"__typename": "Query"}] * 2
    assert get.json()["data"] == {"__typename": "Query"}
