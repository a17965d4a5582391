"""refusals_as: a mutation's Rejected becomes its payload, and the schema keeps the
resolver's arguments, description and return type."""

from __future__ import annotations

import strawberry

from domain.errors import ForbiddenError, Rejected, UserErrorCode
from schema.errors import UserError
from schema.refusals import refusals_as


@strawberry.type
class Thing:
    name: str


@strawberry.type
class ThingPayload:
    thing: Thing | None
    user_errors: list[UserError]


@strawberry.input
class ThingInput:
    name: str


@strawberry.type
class Query:
    ping: bool = True


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Make a thing.")
    @refusals_as(ThingPayload)
    async def thing_create(self, info: strawberry.Info, input: ThingInput) -> ThingPayload:
        if input.name == "forbidden":
            raise ForbiddenError()
        if not input.name:
            raise Rejected.one(UserErrorCode.PRODUCT_NOT_FOUND, "no such product", "name")
        return ThingPayload(thing=Thing(name=input.name), user_errors=[])


SCHEMA = strawberry.Schema(query=Query, mutation=Mutation)
CREATE = "mutation($n: String!) { thingCreate(input: {name: $n}) { thing { name } userErrors { field code message } } }"


def test_the_schema_sees_the_resolvers_own_signature() -> None:
    sdl = str(SCHEMA)
    assert '"""Make a thing."""\n  thingCreate(input: ThingInput!): ThingPayload!' in sdl


async def test_a_rejection_is_the_payload_with_user_errors_and_no_object() -> None:
    refused = await SCHEMA.execute(CREATE, {"n": ""})
    made = await SCHEMA.execute(CREATE, {"n": "lamp"})

    assert refused.errors is None
    assert refused.data == {
        "thingCreate": {
            "thing": None,
            "userErrors": [
                {"field": ["name"], "code": "PRODUCT_NOT_FOUND", "message": "no such product"}
            ],
        }
    }
    assert made.data == {"thingCreate": {"thing": {"name": "lamp"}, "userErrors": []}}


async def test_other_errors_are_not_turned_into_user_errors() -> None:
    result = await SCHEMA.execute(CREATE, {"n": "forbidden"})

    assert result.data is None
    assert result.errors is not None
    assert isinstance(result.errors[0].original_error, ForbiddenError)
