"""Compiled plans: the same data and errors as graphql-core's executor on a small schema
(errors at nullable and non-null positions, in lists, from async resolvers), loaders that
batch as before, and a plan cache whose size no stream of documents can grow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import strawberry
from aiodataloader import DataLoader
from graphql import GraphQLError, parse
from graphql.execution.values import VariableValues

from resolvers.extensions.compiled import OperationPlan, PlanCache
from resolvers.extensions.execution import plain_data_context
from tests.unit.test_plain_data_execution import DOCUMENTS as PLAIN_DOCUMENTS
from tests.unit.test_plain_data_execution import Query as PlainQuery
from tests.unit.test_plain_data_execution import Tag


class Batches(DataLoader[int, str]):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[int]] = []

    async def batch_load_fn(self, keys: Sequence[int]) -> list[str]:
        self.calls.append(list(keys))
        return [f"label {key}" for key in keys]


@strawberry.type
class Leaf:
    n: int

    @strawberry.field
    async def label(self, info: strawberry.Info) -> str:
        loader: Batches = info.context["loader"]
        return await loader.load(self.n)

    @strawberry.field
    def coded(self) -> str | None:
        if self.n % 2:
            raise GraphQLError("odd", extensions={"code": "ODD"})
        return "even"

    @strawberry.field
    async def strict(self) -> str:
        if self.n == 2:
            raise GraphQLError("two is refused", extensions={"code": "TWO"})
        return "fine"

    @strawberry.field
    def missing(self) -> str:
        return None  # type: ignore[return-value]  # a non-null violation


@strawberry.type
class Branch:
    name: str
    leaves: list[Leaf]
    maybe: list[Leaf | None] | None


@strawberry.type
class Query:
    @strawberry.field
    def branches(self, count: int = 2) -> list[Branch]:
        return [
            Branch(name=f"b{i}", leaves=[Leaf(n=j) for j in range(3)], maybe=[Leaf(n=i), None])
            for i in range(count)
        ]

    @strawberry.field
    async def later(self) -> Branch | None:
        return Branch(name="later", leaves=[Leaf(n=5)], maybe=None)

    @strawberry.field
    def counted(self) -> list[int]:
        async def numbers() -> AsyncIterator[int]:
            for n in range(3):
                yield n

        return numbers()  # type: ignore[return-value]  # graphql-core takes async iterables

    @strawberry.field
    def refused(self) -> Branch:
        raise GraphQLError("refused at the root", extensions={"code": "NOPE"})


ERROR_DOCUMENTS = [
    "{ branches { name leaves { n label } } }",
    "query($c: Int) { branches(count: $c) { leaves { n coded } } }",
    "{ branches { name leaves { n strict } } }",  # non-null error: nulls the list item's
    "{ branches { maybe { n strict label } } }",  # ... nullable item
    "{ branches { leaves { missing } } later { name } }",
    "{ later { name leaves { label strict } } refused { name } }",
    "{ later { name } alias: later { leaves { n } } refused { name } }",
    "{ later { ...F } } fragment F on Branch { __typename name maybe { n } }",
    "query($yes: Boolean!) { branches { name @include(if: $yes) leaves @skip(if: $yes) { n } } }",
]


def _formatted(result: Any) -> tuple[Any, list[Any]]:
    return result.data, [error.formatted for error in result.errors or []]


@pytest.mark.parametrize("document", ERROR_DOCUMENTS)
async def test_plans_answer_what_the_executor_answers(document: str) -> None:
    ordinary = strawberry.Schema(query=Query)
    ordinary.execution_context_class = plain_data_context(ordinary._schema)
    compiled = strawberry.Schema(query=Query)
    plans = PlanCache()
    compiled.execution_context_class = plain_data_context(compiled._schema, plans)
    variables = {"c": 3, "yes": True}

    expected_loader, actual_loader = Batches(), Batches()
    expected = await ordinary.execute(
        document, variable_values=variables, context_value={"loader": expected_loader}
    )
    actual = await compiled.execute(
        document, variable_values=variables, context_value={"loader": actual_loader}
    )

    assert _formatted(actual) == _formatted(expected)
    assert actual_loader.calls == expected_loader.calls  # batched the same way
    assert plans.executed == 1 and plans.abandoned == 0


@pytest.mark.parametrize("document", PLAIN_DOCUMENTS)
async def test_plans_answer_what_the_plain_data_path_answers(document: str) -> None:
    ordinary = strawberry.Schema(query=PlainQuery, types=[Tag])
    compiled = strawberry.Schema(query=PlainQuery, types=[Tag])
    compiled.execution_context_class = plain_data_context(compiled._schema, PlanCache())

    expected = await ordinary.execute(document, variable_values={"skip": True})
    actual = await compiled.execute(document, variable_values={"skip": True})

    assert _formatted(actual) == _formatted(expected)


async def test_an_async_iterable_list_hands_the_operation_to_the_executor() -> None:
    compiled = strawberry.Schema(query=Query)
    plans = PlanCache()
    compiled.execution_context_class = plain_data_context(compiled._schema, plans)

    result = await compiled.execute(
        "{ counted later { name } }", context_value={"loader": Batches()}
    )

    assert result.errors is None
    assert result.data == {"counted": [0, 1, 2], "later": {"name": "later"}}
    assert (plans.executed, plans.abandoned) == (1, 1)


async def test_a_list_of_objects_with_resolvers_loads_in_one_batch() -> None:
    compiled = strawberry.Schema(query=Query)
    compiled.execution_context_class = plain_data_context(compiled._schema, PlanCache())
    loader = Batches()

    result = await compiled.execute(
        "{ branches(count: 4) { leaves { label } } }", context_value={"loader": loader}
    )

    assert result.errors is None
    assert loader.calls == [[0, 1, 2]]  # 12 leaves, 3 distinct keys, one batch


def test_the_plan_cache_is_bounded_by_steps_whatever_the_documents() -> None:
    cache = PlanCache(max_steps=200)
    built = 0

    def build_with(steps: int) -> Any:
        def build() -> OperationPlan:
            nonlocal built
            built += 1
            return OperationPlan(root=None, steps=steps)  # type: ignore[arg-type]

        return build

    empty = VariableValues({}, {})
    for n in range(2_000):
        document = parse(f"{{ branches(count: {n}) {{ name }} }}")
        operation = document.definitions[0]
        cache.plan(document, operation, empty, build_with(7))  # type: ignore[arg-type]
        assert cache.steps_used <= cache.max_steps

    assert built == 2_000
    assert len(cache) <= 200 // 8
    # A document seen again is not planned again.
    kept = parse("{ later { name } }")
    operation = kept.definitions[0]
    cache.plan(kept, operation, empty, build_with(3))  # type: ignore[arg-type]
    cache.plan(kept, operation, empty, build_with(3))  # type: ignore[arg-type]
    assert built == 2_001
    # One too big to keep is built and used, never kept.
    huge = parse("{ later { leaves { n } } }")
    plan = cache.plan(huge, huge.definitions[0], empty, build_with(500))  # type: ignore[arg-type]
    assert plan is not None and plan.steps == 500
    assert cache.steps_used <= cache.max_steps


def test_directive_values_pick_a_plan_and_their_variants_are_bounded() -> None:
    cache = PlanCache()
    document = parse(
        "query($a: Boolean!, $b: Boolean!) { later { name @include(if: $a) } "
        "branches @skip(if: $b) { name } }"
    )
    operation = document.definitions[0]
    built: list[tuple[bool, bool]] = []

    def build_for(a: bool, b: bool) -> Any:
        def build() -> OperationPlan:
            built.append((a, b))
            return OperationPlan(root=None, steps=1)  # type: ignore[arg-type]

        return build

    for a in (True, False):
        for b in (True, False):
            for _ in range(3):
                values = VariableValues({}, {"a": a, "b": b})
                cache.plan(document, operation, values, build_for(a, b))  # type: ignore[arg-type]

    assert sorted(built) == [(False, False), (False, True), (True, False), (True, True)]


def test_documents_with_other_directives_are_never_planned() -> None:
    cache = PlanCache()
    document = parse("{ later @deprecatedThing { name } }")

    def build() -> OperationPlan:
        raise AssertionError("must not be built")

    assert cache.plan(document, document.definitions[0], VariableValues({}, {}), build) is None  # type: ignore[arg-type]
