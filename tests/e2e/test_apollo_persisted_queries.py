"""A real APQ client against the real server: Apollo Client's persisted-queries link,
from the npm registry, run by Node.js (installed by `make test` from package-lock.json)."""

from __future__ import annotations

from pathlib import Path

import pytest

from persistence.db import Database
from tests.e2e.server import production_env, require_node_package, run_node, serving
from tests.factories import CatalogFactory

pytestmark = pytest.mark.e2e
require_node_package("@apollo/client")


async def test_apollo_client_misses_registers_and_hits_over_get(
    db: Database, clean: None, database_url: str, tmp_path: Path
) -> None:
    product = await CatalogFactory(db).product("Espresso Cup", prices=[1250])
    env = production_env(database_url)

    with serving(tmp_path, env) as (client, log):
        report = await run_node("apq.mjs", str(client.base_url.join("/graphql")), product.slug)

    wire = report["wire"]
    # First device: hash only (miss), then hash + query (registers), all over GET.
    # Second device: hash only, and it hits what the first registered.
    assert [(w["method"], w["sentQuery"], w["code"]) for w in wire] == [
        ("GET", False, "PERSISTED_QUERY_NOT_FOUND"),
        ("GET", True, None),
        ("GET", False, None),
    ]
    assert len({w["hash"] for w in wire}) == 1
    assert wire[2]["status"] == 200 and wire[2]["cacheControl"].startswith("public")
    first, second = report["results"]
    assert first == second
    assert first["product"]["title"] == "Espresso Cup"
    assert first["product"]["priceRange"]["minVariantPrice"]["amount"] == "12.50"
    assert "Traceback" not in log.read_text()
