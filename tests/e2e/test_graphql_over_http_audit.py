"""graphql-http's server audit (the GraphQL-over-HTTP spec's reference suite, from the
npm registry) against the real production server: every check passes, no warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.server import production_env, require_node_package, run_node, serving

pytestmark = pytest.mark.e2e
require_node_package("graphql-http")


async def test_the_server_passes_the_graphql_over_http_audit_without_warnings(
    clean: None, database_url: str, tmp_path: Path
) -> None:
    # The audit's variable checks query `__type`, so introspection stays on here.
    env = production_env(database_url, INTROSPECTION="true")
    with serving(tmp_path, env) as (client, log):
        results = await run_node("audit.mjs", str(client.base_url.join("/graphql")))

    assert len(results) > 50  # the whole audit ran
    problems = [r for r in results if r["status"] != "ok"]
    assert problems == [], json.dumps(problems, indent=1)
    assert "Traceback" not in log.read_text()
