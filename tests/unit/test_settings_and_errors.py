"""Settings rules and how protocol errors are coded, without any I/O."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from resolvers.schema import build_schema
from settings import EMBEDDED_DATABASE_URL, Settings


def test_development_defaults_to_the_embedded_stack() -> None:
    settings = Settings(_env_file=None, environment="development")

    assert settings.effective_database_url == EMBEDDED_DATABASE_URL
    assert settings.redis_url is None
    assert settings.graphiql_enabled is True


def test_production_refuses_to_start_without_its_services() -> None:
    with pytest.raises(
        ValidationError,
        match="DATABASE_URL, REDIS_URL, PAYMENT_GATEWAY, PII_ENCRYPTION_KEYS, PII_INDEX_KEY, "
        "ORDER_STATUS_TOKEN_KEY, GIFT_CARD_CODE_KEY",
    ):
        Settings(_env_file=None, environment="production")
    with pytest.raises(ValidationError, match="STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET"):
        Settings(
            _env_file=None,
            environment="production",
            database_url="postgresql+asyncpg://db/x",
            redis_url="redis://r",
            payment_gateway="stripe",
            pii_encryption_keys="k",
            pii_index_key="i" * 32,
            order_status_token_key="s" * 32,
            gift_card_code_key="g" * 32,
        )
    settings = Settings(
        _env_file=None,
        environment="production",
        database_url="postgresql+asyncpg://db/x",
        redis_url="redis://r",
        payment_gateway="test",
        pii_encryption_keys="k",
        pii_index_key="i" * 32,
        order_status_token_key="s" * 32,
        gift_card_code_key="g" * 32,
    )
    assert settings.graphiql_enabled is False
    assert settings.statement_count_exposed is False


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("{", "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
        ("query($n: Int!) { products(first: $n) { edges { cursor } } }", "BAD_USER_INPUT"),
        (
            "{ categories { edges { node " + "{ children " * 15 + "{ slug }" + " }" * 15 + " } } }",
            "MAX_DEPTH_EXCEEDED",
        ),
    ],
)
async def test_protocol_errors_carry_a_code(document: str, code: str) -> None:
    result = await build_schema().execute(document)

    assert result.errors is not None
    assert [e.extensions["code"] for e in result.errors] == [code]


@pytest.mark.parametrize(
    ("document", "variables", "cost"),
    [
        ("{ __typename }", {}, 0),
        ("{ products { edges { cursor } } }", {}, 1 + 20 * 1),  # first defaults to 20
        (
            "query($n: Int) { products(first: $n) { edges { node { title } } } }",
            {"n": 5},
            1 + 5 * 2,
        ),
        ("{ products(first: 500) { edges { cursor } } }", {}, 1 + 100 * 1),  # counted at the cap
        (
            "{ products(first: 2) { edges { node { variants { sku price { amount } } } } } }",
            {},
            1 + 2 * 4,
        ),
        (
            "{ products(first: 2) { edges { node { ...F } } } } fragment F on Product { category { slug } }",
            {},
            1 + 2 * 3,
        ),
    ],
)
async def test_query_cost_is_static_and_reported(
    document: str, variables: dict[str, int], cost: int
) -> None:
    result = await build_schema().execute(document, variables)

    # No context here, so no rate limiter and no throttleStatus.
    assert result.extensions == {
        "cost": {"requestedQueryCost": cost, "actualQueryCost": cost, "maximumCost": 1000}
    }


async def test_queries_over_the_cost_limit_do_not_run() -> None:
    expensive = "{ products(first: 100) { edges { node { variants { sku } images { url } } } } }"

    result = await build_schema(max_cost=300).execute(expensive)

    assert result.data is None
    assert result.errors is not None and result.errors[0].extensions == {
        "code": "MAX_COST_EXCEEDED",
        "cost": 401,
        "maximum": 300,
    }


async def test_one_schema_prices_each_page_size_of_a_document_on_its_own() -> None:
    schema = build_schema()  # one cost cache for its life, as in the server
    document = """query($n: Int!, $q: String) {
      product(slug: $q) { id } products(first: $n) { edges { node { id } } } }"""

    costs = [
        (await schema.execute(document, variables)).extensions["cost"]["requestedQueryCost"]  # type: ignore[index]
        for variables in ({"n": 5, "q": "a"}, {"n": 50, "q": "a"}, {"n": 5, "q": "b"}, {"n": 50})
    ]

    # Variables that size no page (q) share a cache entry; page sizes never do.
    assert costs == [2 + 5 * 2, 2 + 50 * 2, 2 + 5 * 2, 2 + 50 * 2]


def test_forwarded_allow_ips_takes_addresses_and_networks_only() -> None:
    settings = Settings(_env_file=None, forwarded_allow_ips="10.0.0.0/8, 127.0.0.1,::1")

    assert settings.trusted_proxies == ["10.0.0.0/8", "127.0.0.1", "::1"]
    assert Settings(_env_file=None).trusted_proxies == []
    with pytest.raises(ValidationError, match=r"'proxy\.internal' is not an IP address"):
        Settings(_env_file=None, forwarded_allow_ips="proxy.internal")
