"""Limits on what one request may ask for: aliases, tokens, body size, batches,
introspection in production, and time."""

from __future__ import annotations

import pytest

from integrations.sandbox_gateway import SandboxGateway
from persistence.db import Database
from settings import Settings
from tests.client import AppClient, running_app
from tests.conftest import PRODUCTION_EXTRAS
from tests.factories import CatalogFactory
from tests.shop import ready_cart


async def test_too_many_aliases_or_tokens_are_refused(client: AppClient) -> None:
    thirty = "{ " + " ".join(f"a{i}: __typename" for i in range(30)) + " }"
    thirty_one = "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"
    huge = "{ " + " ".join("a" for _ in range(10_001)) + " }"  # under MAX_QUERY_BYTES

    assert "errors" not in (await client.query(thirty)).body
    assert (await client.query(thirty_one)).error_codes == ["MAX_ALIASES_EXCEEDED"]
    assert (await client.query(huge)).error_codes == ["MAX_TOKENS_EXCEEDED"]


async def test_bodies_over_a_megabyte_get_413(client: AppClient) -> None:
    padding = "#" + "x" * 1_100_000 + "\n"

    response = await client.http.post("/graphql", json={"query": padding + "{ __typename }"})

    assert response.status_code == 413


async def test_batches_are_refused_unless_configured(settings: Settings, clean: None) -> None:
    batch = [{"query": "{ __typename }"}, {"query": "{ __typename }"}]
    async with running_app(settings) as client:
        refused = await client.http.post("/graphql", json=batch)
    async with running_app(settings.model_copy(update={"graphql_batch_max": 2})) as client:
        allowed = await client.http.post("/graphql", json=batch)
        too_many = await client.http.post("/graphql", json=[*batch, *batch])

    assert refused.status_code == 400
    assert (
        allowed.status_code == 200
        and [r["data"] for r in allowed.json()] == [{"__typename": "Query"}] * 2
    )
    assert too_many.status_code == 400


@pytest.mark.parametrize(("environment", "allowed"), [("production", False), ("development", True)])
async def test_introspection_is_off_in_production(
    settings: Settings, clean: None, environment: str, allowed: bool
) -> None:
    configured = settings.model_copy(update={"environment": environment, **PRODUCTION_EXTRAS})
    async with running_app(configured) as client:
        result = await client.query("{ __schema { queryType { name } } }")

    if allowed:
        assert result.data == {"__schema": {"queryType": {"name": "Query"}}}
    else:
        assert "INTROSPECTION_DISABLED" in result.error_codes


async def test_a_request_past_its_deadline_is_cancelled_with_503(
    settings: Settings, db: Database, clean: None
) -> None:
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
    slow_gateway = SandboxGateway(timeout_seconds=2.0)
    async with running_app(
        settings.model_copy(update={"request_timeout_seconds": 0.3}), gateway=slow_gateway
    ) as client:
        cart_id = await ready_cart(client, [(mug, 1)])
        response = await client.http.post(
            "/graphql",
            json={
                "query": "mutation($i: CheckoutCompleteInput!) { checkoutComplete(input: $i) { order { id } } }",
                "variables": {
                    "i": {
                        "cartId": cart_id,
                        "idempotencyKey": "slow-key-1",
                        "paymentMethod": "pm_card_timeout",
                    }
                },
            },
        )

    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
    assert response.headers["x-request-id"]
