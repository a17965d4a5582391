"""A real APQ client against the real server: Apollo Client's persisted-queries link,
from the npm registry, run by Node.js (installed by `make test` from package-lock.json)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from persistence.db import Database
from tests.conftest import TEST_PII_KEY, TEST_REDIS_URL
from tests.e2e.server import server_env, serving
from tests.factories import CatalogFactory

pytestmark = pytest.mark.e2e
APOLLO = Path(__file__).resolve().parent / "apollo"

if shutil.which("node") is None or not (APOLLO / "node_modules" / "@apollo").is_dir():
    pytest.skip(
        "needs Node.js and `npm ci --prefix tests/e2e/apollo` (make test does both)",
        allow_module_level=True,
    )


async def test_apollo_client_misses_registers_and_hits_over_get(
    db: Database, clean: None, database_url: str, tmp_path: Path
) -> None:
    product = await CatalogFactory(db).product("Espresso Cup", prices=[1250])
    env = server_env(
        DATABASE_URL=database_url,
        REDIS_URL=TEST_REDIS_URL,
        ENVIRONMENT="production",
        PAYMENT_GATEWAY="test",
        PII_ENCRYPTION_KEYS=TEST_PII_KEY,
    )

    with serving(tmp_path, env) as (client, log):
        done = await asyncio.to_thread(
            subprocess.run,
            ["node", str(APOLLO / "apq.mjs"), str(client.base_url.join("/graphql")), product.slug],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])

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
