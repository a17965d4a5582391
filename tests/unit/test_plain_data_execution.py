"""The plain-data fast path returns exactly what graphql-core's executor returns,
errors included, and falls back whenever the data is not plain."""

from __future__ import annotations

from enum import Enum
from typing import Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from resolvers.extensions.execution import plain_data_context


@strawberry.enum
class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Tag(Named):
    colour: Colour
    weight: int | None


@strawberry.type
class Item:
    title: str
    price: float
    tags: list[Tag]
    main_tag: Tag | None
    required_code: str  # set to None below to provoke a non-null error
    count: int  # set to a string below to provoke a serialisation error

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.title.upper() * times

    @strawberry.field
    async def later(self) -> str:
        return f"later {self.title}"


def _item(title: str, **overrides: Any) -> Item:
    tags = [
        Tag(name=f"{title}-a", colour=Colour.RED, weight=1),
        Tag(name=f"{title}-b", colour=Colour.BLUE, weight=None),
    ]
    values: dict[str, Any] = {
        "title": title,
        "price": 1.5,
        "tags": tags,
        "main_tag": tags[0],
        "required_code": "X",
        "count": 3,
    }
    values.update(overrides)
    return Item(**values)


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [_item("a"), _item("b", main_tag=None)]

    @strawberry.field
    def broken(self) -> list[Item]:
        return [_item("c"), _item("d", required_code=None)]

    @strawberry.field
    def unserialisable(self) -> Item:
        return _item("e", count="many")

    @strawberry.field
    def named(self) -> list[Named]:
        return [Tag(name="n", colour=Colour.RED, weight=2)]


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    ordinary = strawberry.Schema(query=Query, types=[Tag])
    fast = strawberry.Schema(query=Query, types=[Tag])
    fast.execution_context_class = plain_data_context(fast._schema)
    assert ordinary.execution_context_class in (None, StrawberryGraphQLCoreExecutionContext)
    return ordinary, fast


DOCUMENTS = [
    "{ items { title price tags { name colour weight } mainTag { name } } }",
    "{ items { __typename t: title tags { ...T } mainTag { ... on Tag { colour } } } } fragment T on Tag { n: name }",
    "query($skip: Boolean!) { items { title @skip(if: $skip) tags { name @include(if: $skip) weight } } }",
    "{ items { title shout(times: 2) later tags { name } } }",
    "{ broken { title requiredCode tags { name } } }",
    "{ unserialisable { title count } }",
    "{ named { name ... on Tag { colour } } }",
    "{ items { tags { __typename name } mainTag { __typename kind: __typename colour } } }",
]


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_fast_path_matches_the_ordinary_executor(document: str) -> None:
    ordinary, fast = _schemas()
    variables = {"skip": True}

    expected = await ordinary.execute(document, variable_values=variables)
    actual = await fast.execute(document, variable_values=variables)

    assert actual.data == expected.data
    assert [(e.message, e.path) for e in actual.errors or []] == [
        (e.message, e.path) for e in expected.errors or []
    ]


async def test_errors_still_surface_through_the_fast_path() -> None:
    _, fast = _schemas()

    broken = await fast.execute("{ broken { title requiredCode } }")
    unserialisable = await fast.execute("{ unserialisable { count } }")

    assert broken.errors and broken.errors[0].path == ["broken", 1, "requiredCode"]
    assert unserialisable.errors and unserialisable.errors[0].path == ["unserialisable", "count"]


async def test_plain_selections_are_completed_without_the_ordinary_executor() -> None:
    _, fast = _schemas()
    ordinary_calls: list[str] = []

    class Recording(fast.execution_context_class):  # type: ignore[misc, name-defined]
        def execute_ordinary_field(
            self, parent_type: Any, source: Any, details: Any, *rest: Any
        ) -> Any:
            ordinary_calls.append(f"{parent_type.name}.{details[0].node.name.value}")
            return super().execute_ordinary_field(parent_type, source, details, *rest)

    fast.execution_context_class = Recording
    result = await fast.execute("{ items { title tags { name colour } mainTag { name } later } }")

    assert result.errors is None
    # Plain fields are completed directly; only resolvers meet graphql-core's executor.
    assert ordinary_calls == ["Query.items", "Item.later", "Item.later"]
