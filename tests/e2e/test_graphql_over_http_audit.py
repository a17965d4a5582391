"""graphql-http's server audit (the GraphQL-over-HTTP spec's reference suite, from the
npm registry) against the real production server: every check passes, no warnings."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TEST_PII_KEY, TEST_REDIS_URL
from tests.e2e.server import server_env, serving

pytestmark = pytest.mark.e2e
CLIENTS = Path(__file__).resolve().parent / "apollo"

if shutil.which("node") is None or not (CLIENTS / "node_modules" / "graphql-http").is_dir():
    pytest.skip(
        "needs Node.js and `npm ci --prefix tests/e2e/apollo` (make test does both)",
        allow_module_level=True,
    )


async def test_the_server_passes_the_graphql_over_http_audit_without_warnings(
    clean: None, database_url: str, tmp_path: Path
) -> None:
    env = server_env(
        DATABASE_URL=database_url,
        REDIS_URL=TEST_REDIS_URL,
        ENVIRONMENT="production",
        PAYMENT_GATEWAY="test",
        PII_ENCRYPTION_KEYS=TEST_PII_KEY,
        INTROSPECTION="true",  # the audit's variable checks query `__type`
    )
    with serving(tmp_path, env) as (client, log):
        done = await asyncio.to_thread(
            subprocess.run,
            ["node", str(CLIENTS / "audit.mjs"), str(client.base_url.join("/graphql"))],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])

    assert len(results) > 50  # the whole audit ran
    problems = [r for r in results if r["status"] != "ok"]
    assert problems == [], json.dumps(problems, indent=1)
    assert "Traceback" not in log.read_text()
