"""A refused mutation answers with its payload: the changed object null, the reasons in
`userErrors`. One decorator says so for every mutation resolver."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from domain.errors import Rejected
from schema.errors import UserError

P = ParamSpec("P")
PayloadT = TypeVar("PayloadT")


def refusals_as(
    payload: type[PayloadT],
) -> Callable[[Callable[P, Awaitable[PayloadT]]], Callable[P, Awaitable[PayloadT]]]:
    """A `Rejected` the resolver raises (nothing was written) is answered as `payload`
    with its other fields null and `user_errors` from the rejection. Put it under
    `@strawberry.mutation`: the resolver keeps its name, arguments and return type, so
    the schema does not change."""
    fields: tuple[Any, ...] = dataclasses.fields(payload)  # type: ignore[arg-type]
    nothing = {f.name: None for f in fields if f.name != "user_errors"}
    build: Callable[..., PayloadT] = payload  # a strawberry type: a dataclass

    def decorate(resolver: Callable[P, Awaitable[PayloadT]]) -> Callable[P, Awaitable[PayloadT]]:
        @functools.wraps(resolver)
        async def refusing(*args: P.args, **kwargs: P.kwargs) -> PayloadT:
            try:
                return await resolver(*args, **kwargs)
            except Rejected as rejected:
                return build(**nothing, user_errors=UserError.all(rejected))

        return refusing

    return decorate
