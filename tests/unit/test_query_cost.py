"""Cost is taken at the values arguments will really have: given variables, variable
defaults, argument defaults, and every list-sized argument multiplies."""

from __future__ import annotations

from typing import Any

import pytest

from resolvers.extensions.cost import CostCache
from resolvers.schema import build_schema

NESTED = "products(first: {n}) {{ edges {{ node {{ reviews(first: {n}) {{ edges {{ node {{ title }} }} }} }} }} }}"
PRODUCT_ID = "UHJvZHVjdDox"  # any id: cost is static, nothing runs


def _cost(result: Any) -> int:
    """What the cost step charged (executed or not; without a context resolvers fail)."""
    return int(result.extensions["cost"]["requestedQueryCost"])


def _refused(result: Any) -> bool:
    return [e.extensions["code"] for e in result.errors or ()] == ["MAX_COST_EXCEEDED"]


async def test_a_variable_default_costs_what_the_literal_costs() -> None:
    schema = build_schema()
    literal = "{ " + NESTED.format(n=100) + " }"
    defaulted = "query($n: Int = 100) { " + NESTED.format(n="$n") + " }"

    literal_cost = _cost(await schema.execute(literal))
    defaulted_result = await schema.execute(defaulted)

    # each product: its edge, the node, its reviews connection (1 + 100 x edge and node)
    assert literal_cost == 1 + 100 * (1 + 1 + (1 + 100 * 2)) == 20_301
    assert _cost(defaulted_result) == literal_cost
    assert _refused(defaulted_result)  # over 1,000: nothing executed


async def test_the_cost_cache_keys_on_the_values_after_defaults() -> None:
    schema = build_schema()  # one cost cache for its life, as in the server
    document = "query($n: Int = 100) { products(first: $n) { edges { cursor } } }"

    costs = [
        _cost(await schema.execute(document, variables))
        for variables in ({"n": 1}, {}, {"n": 100}, {"n": 1}, {"n": None})
    ]

    # Absent means the default (100); an explicit null means the resolver's page of 20.
    assert costs == [1 + 1, 1 + 100, 1 + 100, 1 + 1, 1 + 20]


async def test_a_null_page_size_costs_the_default_page() -> None:
    document = "query($n: Int) { products(first: $n) { edges { node { title } } } }"

    result = await build_schema().execute(document, {"n": None})

    assert _cost(result) == 1 + 20 * 2


@pytest.mark.parametrize("how", ["literal", "variable", "items"])
async def test_every_id_of_nodes_is_counted(how: str) -> None:
    ids = [PRODUCT_ID] * 100
    selection = "{ id ... on Product { variants { sku } images { url } } }"
    if how == "literal":
        document = "{ nodes(ids: [" + ", ".join(f'"{i}"' for i in ids) + "]) " + selection + " }"
        variables: dict[str, Any] = {}
    elif how == "variable":
        document = "query($ids: [ID!]!) { nodes(ids: $ids) " + selection + " }"
        variables = {"ids": ids}
    else:
        names = [f"$i{k}" for k in range(100)]
        document = (
            "query("
            + ", ".join(f"{n}: ID!" for n in names)
            + ") { nodes(ids: ["
            + ", ".join(names)
            + "]) "
            + selection
            + " }"
        )
        variables = {f"i{k}": PRODUCT_ID for k in range(100)}

    result = await build_schema(max_cost=200).execute(document, variables)

    # the list, then 100 nodes x (their variants, their images)
    assert _cost(result) == 1 + 100 * 2
    assert _refused(result)


async def test_one_schema_prices_each_number_of_ids_on_its_own() -> None:
    schema = build_schema()
    document = "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Product { category { id } } } }"

    costs = [
        _cost(await schema.execute(document, {"ids": [PRODUCT_ID] * count}))
        for count in (1, 50, 1, 50)
    ]

    assert costs == [1 + 1, 1 + 50, 1 + 1, 1 + 50]


def test_the_cost_cache_is_bounded_by_bytes() -> None:
    schema = build_schema()._schema
    from graphql import parse

    cache = CostCache(max_bytes=64 * 1024)
    for k in range(200):
        text = "{ products(first: 3) { edges { cursor } } }" + f"# {k:04d} " + "x" * 2_000
        document = parse(text)
        operation = document.definitions[0]
        assert cache.cost(schema, text, document, operation, None, {}) == 4  # type: ignore[arg-type]
        assert cache.bytes_used <= 64 * 1024
