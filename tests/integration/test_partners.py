"""Partners: keys from the CLI, trusted documents from a manifest, their own rate-limit
bucket, revocation; and a public endpoint that runs only its manifests' operations."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from settings import Settings
from tests.client import AppClient, running_app
from tests.e2e.server import cli, run_cli, server_env

PRODUCT_CARD = """
query ProductCard($slug: String!) { product(slug: $slug) { ...Card } }
fragment Card on Product { title slug }
"""
CATEGORY_NAMES = "query CategoryNames { categories(first: 5) { edges { node { name } } } }"


@pytest.fixture
def operator(tmp_path: Path, database_url: str) -> dict[str, str]:
    """The environment an operator runs the CLI in."""
    return server_env(DATABASE_URL=database_url)


@pytest.fixture
def manifest(tmp_path: Path, operator: dict[str, str]) -> Path:
    (tmp_path / "card.graphql").write_text(PRODUCT_CARD)
    (tmp_path / "categories.graphql").write_text(CATEGORY_NAMES)
    output = tmp_path / "manifest.json"
    run_cli(
        tmp_path, operator, "manifest-build", "card.graphql", "categories.graphql",
        "--output", str(output),
    )  # fmt: skip
    return output


def operations(manifest: Path) -> dict[str, str]:
    return {o["name"]: o["id"] for o in json.loads(manifest.read_text())["operations"]}


def create_partner(cwd: Path, env: dict[str, str], *args: str) -> str:
    """The key: alone on the last line of what partner-create prints."""
    return run_cli(cwd, env, "partner-create", *args).strip().splitlines()[-1]


async def call(
    client: AppClient, key: str | None, body: dict[str, Any], **headers: str
) -> httpx.Response:
    if key is not None:
        headers["X-Api-Key"] = key
    return await client.http.post("/graphql", json=body, headers=headers)


def by_id(operation_id: str, **variables: Any) -> dict[str, Any]:
    return {
        "variables": variables,
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": operation_id}},
    }


def code(response: httpx.Response) -> str | None:
    errors = response.json().get("errors") or [{}]
    return errors[0].get("extensions", {}).get("code")


def test_manifest_build_writes_each_operation_with_its_fragments(manifest: Path) -> None:
    document = json.loads(manifest.read_text())

    assert document["format"] == "apollo-persisted-query-manifest"
    card = next(o for o in document["operations"] if o["name"] == "ProductCard")
    assert card["type"] == "query"
    assert "fragment Card on Product" in card["body"]
    assert card["id"] == hashlib.sha256(card["body"].encode()).hexdigest()
    names = next(o for o in document["operations"] if o["name"] == "CategoryNames")
    assert "fragment" not in names["body"]


def test_manifest_build_refuses_documents_our_schema_would_refuse(
    tmp_path: Path, operator: dict[str, str]
) -> None:
    (tmp_path / "bad.graphql").write_text("query Bad { product(slug: 1) { nope } }")
    (tmp_path / "anonymous.graphql").write_text("{ categories { edges { cursor } } }")

    bad = cli(tmp_path, operator, "manifest-build", "bad.graphql")
    anonymous = cli(tmp_path, operator, "manifest-build", "anonymous.graphql")

    assert bad.returncode != 0 and "nope" in bad.stderr
    assert anonymous.returncode != 0 and "needs a name" in anonymous.stderr


async def test_a_persisted_only_partner_runs_its_manifest_and_nothing_else(
    client: AppClient, tmp_path: Path, operator: dict[str, str], manifest: Path
) -> None:
    key = create_partner(
        tmp_path, operator, "--name", "Acme Mobile", "--persisted-only",
        "--manifest", str(manifest),
    )  # fmt: skip
    ids = operations(manifest)
    # Registered publicly by someone else: still not this partner's to run.
    other = "query Other { categories(first: 1) { edges { cursor } } }"
    other_id = hashlib.sha256(other.encode()).hexdigest()
    await call(client, None, {"query": other, **by_id(other_id)})

    manifest_op = await call(client, key, by_id(ids["CategoryNames"]))
    free_form = await call(client, key, {"query": CATEGORY_NAMES})
    unparsable = await call(client, key, {"query": "{ this is not graphql"})
    registered_elsewhere = await call(client, key, by_id(other_id))
    registering = await call(client, key, {"query": other, **by_id(other_id)})

    assert manifest_op.json()["data"] == {"categories": {"edges": []}}
    for refused in (free_form, unparsable, registered_elsewhere, registering):
        assert code(refused) == "PERSISTED_QUERY_NOT_ALLOWED", refused.json()
        assert refused.json().get("data") is None
    # Refused before parsing: an unparsable document gets the same answer as a valid one.
    assert code(unparsable) != "GRAPHQL_PARSE_FAILED"


async def test_unknown_and_revoked_keys_get_401(
    database_url: str, clean: None, settings: Settings, tmp_path: Path, operator: dict[str, str]
) -> None:
    quick = settings.model_copy(update={"partner_refresh_seconds": 0.2})
    key = create_partner(tmp_path, operator, "--name", "Shortlived")
    async with running_app(quick) as client:
        before = await call(client, key, {"query": "{ __typename }"})
        unknown = await call(client, "pk_" + "x" * 43, {"query": "{ __typename }"})
        run_cli(tmp_path, operator, "partner-revoke", "--name", "Shortlived")
        await asyncio.sleep(0.3)
        after = await call(client, key, {"query": "{ __typename }"})

    assert before.status_code == 200 and before.json()["data"] == {"__typename": "Query"}
    for refused in (unknown, after):
        assert refused.status_code == 401
        assert code(refused) == "UNAUTHENTICATED"
        assert refused.headers["www-authenticate"].startswith("ApiKey")


async def test_a_partner_created_after_start_works_at_once(
    client: AppClient, tmp_path: Path, operator: dict[str, str]
) -> None:
    await call(client, None, {"query": "{ __typename }"})  # the server is up and loaded
    await asyncio.sleep(1.1)

    key = create_partner(tmp_path, operator, "--name", "Newcomer")
    response = await call(client, key, {"query": "{ __typename }"})

    assert response.json()["data"] == {"__typename": "Query"}


async def test_partners_spend_their_own_tier_sized_bucket(
    database_url: str, clean: None, settings: Settings, tmp_path: Path, operator: dict[str, str]
) -> None:
    limited = settings.model_copy(
        update={
            "rate_limit_capacity": 10,
            "rate_limit_restore_rate": 1,
            "partner_tiers": {"standard": (10, 1), "premium": (500, 25)},
        }
    )
    key = create_partner(tmp_path, operator, "--name", "Big Partner", "--tier", "premium")
    expensive = {"query": "{ products(first: 4) { edges { node { title } } } }"}  # cost 9
    async with running_app(limited) as client:
        anonymous = [await call(client, None, expensive) for _ in range(2)]
        partner = [await call(client, key, expensive) for _ in range(2)]

    assert [r.status_code for r in anonymous] == [200, 429]
    assert [r.status_code for r in partner] == [200, 200]
    throttle = partner[1].json()["extensions"]["cost"]["throttleStatus"]
    assert throttle["maximumAvailable"] == 500 and throttle["restoreRate"] == 25
    assert 480 <= throttle["currentlyAvailable"] <= 483


def test_partner_create_refuses_what_cannot_work(
    tmp_path: Path, operator: dict[str, str], clean: None
) -> None:
    no_manifest = cli(tmp_path, operator, "partner-create", "--name", "A", "--persisted-only")
    bad_tier = cli(tmp_path, operator, "partner-create", "--name", "B", "--tier", "platinum")
    run_cli(tmp_path, operator, "partner-create", "--name", "Twice")
    twice = cli(tmp_path, operator, "partner-create", "--name", "Twice")
    (tmp_path / "forged.json").write_text(
        json.dumps([{"id": "0" * 64, "name": "Forged", "body": "{ __typename }"}])
    )
    forged = cli(tmp_path, operator, "partner-create", "--name", "C", "--manifest", "forged.json")

    assert no_manifest.returncode != 0 and "needs a manifest" in no_manifest.stderr
    assert bad_tier.returncode != 0 and "tier" in bad_tier.stderr
    assert twice.returncode != 0 and "exists" in twice.stderr
    assert forged.returncode != 0 and "sha256" in forged.stderr


async def test_a_persisted_only_public_endpoint_runs_only_its_manifests(
    database_url: str, clean: None, settings: Settings, manifest: Path
) -> None:
    locked = settings.model_copy(
        update={"persisted_queries_only": True, "manifest_files": [str(manifest)]}
    )
    ids = operations(manifest)
    async with running_app(locked) as client:
        allowed = await call(client, None, by_id(ids["ProductCard"], slug="nope"))
        free_form = await call(client, None, {"query": CATEGORY_NAMES})
        apq = await call(client, None, {"query": "{ __typename }", **by_id(
            hashlib.sha256(b"{ __typename }").hexdigest()
        )})  # fmt: skip

    assert allowed.json() == {"data": {"product": None}, **_extensions(allowed)}
    assert code(free_form) == "PERSISTED_QUERY_NOT_ALLOWED"
    assert code(apq) == "PERSISTED_QUERY_NOT_ALLOWED"


def _extensions(response: httpx.Response) -> dict[str, Any]:
    return {"extensions": response.json()["extensions"]}


async def test_a_replaced_manifest_takes_effect_on_the_next_refresh(
    database_url: str,
    clean: None,
    settings: Settings,
    tmp_path: Path,
    operator: dict[str, str],
    manifest: Path,
) -> None:
    key = create_partner(
        tmp_path, operator, "--name", "Versioned", "--persisted-only", "--manifest", str(manifest)
    )
    (tmp_path / "v2.graphql").write_text("query Typename { __typename }")
    run_cli(tmp_path, operator, "manifest-build", "v2.graphql", "--output", "v2.json")
    quick = settings.model_copy(update={"partner_refresh_seconds": 0.2})
    async with running_app(quick) as client:
        run_cli(
            tmp_path, operator, "partner-manifest", "--name", "Versioned", "--manifest", "v2.json"
        )
        await asyncio.sleep(0.3)
        new = await call(client, key, by_id(operations(tmp_path / "v2.json")["Typename"]))
        old = await call(client, key, by_id(operations(manifest)["CategoryNames"]))

    assert new.json()["data"] == {"__typename": "Query"}
    assert code(old) == "PERSISTED_QUERY_NOT_ALLOWED"
