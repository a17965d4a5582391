"""The real server process over HTTP: production mode on PostgreSQL + Redis, and the
embedded mode (SQLite + in-process Redis) exactly as `make run` starts it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from persistence.db import Database
from persistence.seed import seed_catalog
from tests.client import LOG_IN, SIGN_UP, screen_query
from tests.conftest import SEED_COLUMNS
from tests.e2e.server import production_env, run_cli, server_env, serving

pytestmark = pytest.mark.e2e

CART_CREATE = "mutation($l: [CartLineInput!]!) { cartCreate(input: {lines: $l}) { cart { id } userErrors { code } } }"
CART_ADD = """mutation($id: ID!, $l: [CartLineInput!]!) { cartLinesAdd(input: {cartId: $id, lines: $l}) {
  cart { totalQuantity } userErrors { code } } }"""


def _gql(
    client: httpx.Client, document: str, variables: dict[str, object], token: str | None = None
) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = client.post(
        "/graphql", json={"query": document, "variables": variables}, headers=headers
    ).json()
    assert "errors" not in body, body
    return dict(body["data"])


async def test_production_server_serves_both_screens_over_http(
    db: Database, clean: None, database_url: str, tmp_path: Path
) -> None:
    await seed_catalog(db, customer_columns=SEED_COLUMNS, products=60, seed=5)
    env = production_env(database_url, EXPOSE_STATEMENT_COUNT="true")

    with serving(tmp_path, env) as (client, log):
        listing = client.post(
            "/graphql", json={"query": screen_query("listing_screen"), "variables": {"first": 20}}
        )
        slug = listing.json()["data"]["products"]["edges"][0]["node"]["slug"]
        product = client.post(
            "/graphql", json={"query": screen_query("product_screen"), "variables": {"slug": slug}}
        )
        bad = client.post(
            "/graphql", json={"query": "{ products(first: 500) { edges { cursor } } }"}
        )
        ready = client.get("/readyz")
        ide = client.get("/graphql", headers={"Accept": "text/html"})

    assert listing.status_code == 200 and "errors" not in listing.json()
    assert len(listing.json()["data"]["products"]["edges"]) == 20
    assert int(listing.headers["x-sql-statements"]) <= 5
    assert product.json()["data"]["product"]["slug"] == slug
    assert bad.json()["errors"][0]["extensions"]["code"] == "INVALID_PAGE_SIZE"
    assert ready.status_code == 200
    assert ide.status_code == 404  # no GraphiQL in production
    assert "Traceback" not in log.read_text()


def test_embedded_mode_migrates_seeds_and_serves_without_any_service(tmp_path: Path) -> None:
    env = server_env()  # no DATABASE_URL, no REDIS_URL: SQLite file + in-process Redis

    run_cli(tmp_path, env, "migrate")
    first = run_cli(tmp_path, env, "seed", "--products", "30", "--if-empty")
    again = run_cli(tmp_path, env, "seed", "--products", "30", "--if-empty")
    with serving(tmp_path, env) as (client, _):
        result = client.post(
            "/graphql",
            json={
                "query": "{ products(first: 3, filter: {inStock: true}) { edges { node { title variants { id sku } } } } }"
            },
        )
        ide = client.get("/graphql", headers={"Accept": "text/html"})
        ready = client.get("/readyz")
        variant = result.json()["data"]["products"]["edges"][0]["node"]["variants"][0]["id"]
        signed_up = _gql(
            client,
            SIGN_UP,
            {"email": "ann@example.com", "password": "correct horse", "name": "Ann"},
        )
        logged_in = _gql(client, LOG_IN, {"email": "ann@example.com", "password": "correct horse"})
        token = logged_in["customerAccessTokenCreate"]["customerAccessToken"]["accessToken"]
        cart = _gql(client, CART_CREATE, {"l": [{"variantId": variant, "quantity": 2}]}, token)
        cart_id = cart["cartCreate"]["cart"]["id"]
        added = _gql(
            client, CART_ADD, {"id": cart_id, "l": [{"variantId": variant, "quantity": 1}]}, token
        )

    assert "seeded 30 products" in first and ", 2 discounts in " in first
    assert re.search(r"^gift card: [A-Z0-9]{4}(-[A-Z0-9]{4}){3} \(50\.00 USD\)$", first, re.M)
    assert "nothing to do" in again
    assert (tmp_path / "var" / "shop.db").exists()
    assert len(result.json()["data"]["products"]["edges"]) == 3
    assert ide.status_code == 200  # GraphiQL in development
    assert ready.json() == {"status": "ok", "database": "ok", "redis": "ok"}
    assert signed_up["customerCreate"]["userErrors"] == []
    assert added["cartLinesAdd"]["cart"]["totalQuantity"] == 3  # Lua scripts on in-process Redis
