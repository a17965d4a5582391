"""X-Forwarded-For on the real server process: believed only from FORWARDED_ALLOW_IPS.

The client here is on loopback, which uvicorn trusts by default; rotating the header
must not buy it a fresh login-failure counter or rate-limit bucket."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.client import LOG_IN
from tests.e2e.server import UVICORN, production_env, serving

pytestmark = pytest.mark.e2e

HEAVY = "{ products(first: 100) { edges { node { variants { sku } } } } }"  # 301 points
LIMITS = {
    "LOGIN_FAILURES_PER_CLIENT": "3",
    "LOGIN_FAILURES_PER_EMAIL": "100",
    "RATE_LIMIT_CAPACITY": "1000",
    "RATE_LIMIT_RESTORE_RATE": "0.01",
    "ARGON2_TIME_COST": "1",
    "ARGON2_MEMORY_COST_KIB": "64",
    "ARGON2_PARALLELISM": "1",
}


def _failed_login(client: httpx.Client, n: int, forwarded_for: str) -> str:
    response = client.post(
        "/graphql",
        json={"query": LOG_IN, "variables": {"email": f"guess{n}@example.com", "password": "nope"}},
        headers={"X-Forwarded-For": forwarded_for},
    )
    errors = response.json()["data"]["customerAccessTokenCreate"]["userErrors"]
    return str(errors[0]["code"])


def _heavy(client: httpx.Client, forwarded_for: str) -> int:
    response = client.post(
        "/graphql", json={"query": HEAVY}, headers={"X-Forwarded-For": forwarded_for}
    )
    return response.status_code


@pytest.mark.parametrize(
    "command",
    [None, (*UVICORN, "--no-proxy-headers")],
    ids=["python app.py serve", "uvicorn app:app --no-proxy-headers"],
)
def test_a_rotated_forwarded_for_from_loopback_changes_nothing(
    clean: None, database_url: str, tmp_path: Path, command: tuple[str, ...] | None
) -> None:
    env = production_env(database_url, **LIMITS)
    started = serving(tmp_path, env) if command is None else serving(tmp_path, env, command)
    with started as (client, log):
        logins = [_failed_login(client, n, f"198.51.100.{n}") for n in range(5)]
        heavy = [_heavy(client, f"203.0.113.{n}") for n in range(4)]

    assert logins == ["INVALID_CREDENTIALS"] * 3 + ["THROTTLED"] * 2
    assert 429 in heavy  # one bucket for every forwarded address
    assert "Traceback" not in log.read_text()


def test_a_trusted_proxy_forwards_the_client_address(
    clean: None, database_url: str, tmp_path: Path
) -> None:
    env = production_env(database_url, FORWARDED_ALLOW_IPS="127.0.0.1", **LIMITS)
    with serving(tmp_path, env) as (client, _):
        rotated = [_failed_login(client, n, f"198.51.100.{n}") for n in range(5)]
        repeated = [_failed_login(client, 10 + n, "198.51.100.77") for n in range(4)]
        heavy = [_heavy(client, f"203.0.113.{n}") for n in range(4)]

    assert rotated == ["INVALID_CREDENTIALS"] * 5  # five clients, one failure each
    assert repeated == ["INVALID_CREDENTIALS"] * 3 + ["THROTTLED"]  # one client
    assert heavy == [200] * 4  # a bucket per client
