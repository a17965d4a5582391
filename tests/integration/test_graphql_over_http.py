"""The HTTP edge per graphql.org's GraphQL-over-HTTP spec, caching and CORS."""

from __future__ import annotations

from persistence.db import Database
from settings import Settings
from tests.client import AppClient, running_app
from tests.factories import CatalogFactory

GQL = "application/graphql-response+json"


async def test_media_types_and_status_codes(client: AppClient) -> None:
    invalid = {"query": "{ nope }"}

    modern = await client.http.post("/graphql", json=invalid, headers={"Accept": GQL})
    legacy = await client.http.post(
        "/graphql", json=invalid, headers={"Accept": "application/json"}
    )
    ran = await client.http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": GQL}
    )
    field_error = await client.http.post(
        "/graphql", json={"query": '{ node(id: "%%%") { id } }'}, headers={"Accept": GQL}
    )
    plain = await client.http.post(
        "/graphql", content="{ __typename }", headers={"Content-Type": "text/plain"}
    )
    mutation_by_get = await client.http.get(
        "/graphql",
        params={
            "query": 'mutation { customerAccessTokenDelete(input: {accessToken: "x"}) { deletedAccessToken } }'
        },
    )

    assert modern.status_code == 400 and modern.headers["content-type"].startswith(GQL)
    assert (
        "data" not in modern.json()
        and modern.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    )
    assert legacy.status_code == 200 and legacy.headers["content-type"].startswith(
        "application/json"
    )
    assert ran.status_code == 200 and ran.json()["data"] == {"__typename": "Query"}
    assert field_error.status_code == 200 and field_error.json()["data"] == {"node": None}
    assert plain.status_code == 415
    assert mutation_by_get.status_code == 405 and mutation_by_get.headers["allow"] == "POST"


async def test_public_catalog_gets_are_cacheable_and_private_ones_are_not(
    client: AppClient, db: Database
) -> None:
    await CatalogFactory(db).product("Mug")
    query = {"query": '{ product(slug: "mug") { title } }'}

    public = await client.http.get("/graphql", params=query)
    revalidated = await client.http.get(
        "/graphql", params=query, headers={"If-None-Match": public.headers["etag"]}
    )
    signed_in = await client.http.get(
        "/graphql", params=query, headers={"Authorization": "Bearer t"}
    )
    cart = await client.http.get("/graphql", params={"query": '{ cart(id: "x") { id } }'})
    posted = await client.http.post("/graphql", json=query)

    assert public.status_code == 200 and public.headers["cache-control"] == "public, max-age=60"
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert signed_in.headers["cache-control"] == "private, no-store"
    assert cart.headers["cache-control"] == "private, no-store"
    assert posted.headers["cache-control"] == "private, no-store"


async def test_cors_allows_only_the_configured_origins(settings: Settings, clean: None) -> None:
    configured = settings.model_copy(update={"cors_allow_origins": ["https://shop.example"]})
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    async with running_app(configured) as client:
        allowed = await client.http.options(
            "/graphql", headers={"Origin": "https://shop.example", **preflight}
        )
        refused = await client.http.options(
            "/graphql", headers={"Origin": "https://evil.example", **preflight}
        )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "access-control-allow-origin" not in refused.headers
