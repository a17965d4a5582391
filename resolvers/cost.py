"""Static query cost, computed before anything executes.

Object fields cost 1, scalars and enums 0; a field taking `first` costs 1 plus `first`
times what is below it (its value, a variable, or the argument's default); a mutation
field costs 10 more; a few fields override their own cost where the resolver is expensive.
A document over the maximum is refused with MAX_COST_EXCEEDED and its cost, unexecuted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable, Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

MUTATION_COST = 10
# `first` above the page-size cap is refused by its resolver anyway (INVALID_PAGE_SIZE):
# count it at the cap, so the client hears about the real problem.
FIRST_CAP = 100
# Fields whose resolver costs more than reading an object (own cost, before children).
FIELD_COSTS: Mapping[tuple[str, str], int] = {
    ("Mutation", "checkoutComplete"): 50,
    ("Product", "related"): 5,
    ("Query", "search"): 20,  # a ranked match plus one aggregate per facet
}


def query_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    per_field = MUTATION_COST if operation.operation is OperationType.MUTATION else 0
    return _selection_cost(schema, root, operation.selection_set, fragments, variables, per_field)


def _selection_cost(
    schema: GraphQLSchema,
    parent: Any,
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    extra: int = 0,
) -> int:
    total = 0
    for parent_type, node in _fields(schema, parent, selection_set, fragments):
        field = parent_type.fields.get(node.name.value) if hasattr(parent_type, "fields") else None
        if field is None:  # __typename and friends
            continue
        own = FIELD_COSTS.get((parent_type.name, node.name.value))
        named = _named(field.type)
        is_object = isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType)
        children = _selection_cost(schema, named, node.selection_set, fragments, variables)
        own_cost = own if own is not None else (1 if is_object else 0)
        total += extra + own_cost + children * _multiplier(field, node, variables)
    return total


def _fields(
    schema: GraphQLSchema,
    parent: Any,
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> Iterator[tuple[Any, FieldNode]]:
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield parent, selection
        elif isinstance(selection, InlineFragmentNode):
            on = (
                schema.get_type(selection.type_condition.name.value)
                if selection.type_condition
                else parent
            )
            yield from _fields(schema, on or parent, selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                on = schema.get_type(fragment.type_condition.name.value) or parent
                yield from _fields(schema, on, fragment.selection_set, fragments)


def _multiplier(field: GraphQLField, node: FieldNode, variables: Mapping[str, Any]) -> int:
    if "first" not in field.args:
        return 1
    for argument in node.arguments or ():
        if argument.name.value == "first":
            value = argument.value
            if isinstance(value, IntValueNode):
                return _clamp(int(value.value))
            if isinstance(value, VariableNode):
                given = variables.get(value.name.value)
                return _clamp(given) if isinstance(given, int) else 1
    default = field.args["first"].default_value
    return _clamp(default) if isinstance(default, int) else 1


def _clamp(first: int) -> int:
    return min(max(1, first), FIRST_CAP)


def _named(graphql_type: Any) -> Any:
    while isinstance(graphql_type, GraphQLNonNull | GraphQLList):
        graphql_type = graphql_type.of_type
    return graphql_type


class _ReadVariables(dict[str, Any]):
    """Variables that remember which of them the cost walk read (the page sizes)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)


class CostCache:
    """A document's cost depends only on its text, its operation and the variables that
    size its pages; the same screen query with the same page sizes costs the same, so
    the walk runs once per shape rather than once per request."""

    def __init__(self, maxsize: int = 1024) -> None:
        self._maxsize = maxsize
        self._sizing: dict[tuple[str, str | None], tuple[str, ...]] = {}
        self._costs: OrderedDict[Hashable, int] = OrderedDict()

    def cost(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        operation_name: str | None,
        variables: Mapping[str, Any],
    ) -> int:
        shape = (query, operation_name)
        sizing = self._sizing.get(shape)
        key: Hashable = None
        if sizing is not None:
            key = (shape, tuple(variables.get(name) for name in sizing))
            try:
                cached = self._costs.get(key)
            except TypeError:  # an unhashable page size: refused later, not cached
                return query_cost(schema, operation, _fragments(document), variables)
            if cached is not None:
                return cached
        recording = _ReadVariables(variables)
        cost = query_cost(schema, operation, _fragments(document), recording)
        sizing = tuple(dict.fromkeys(recording.read))
        key = (shape, tuple(variables.get(name) for name in sizing))
        try:
            self._costs[key] = cost
        except TypeError:
            return cost
        if len(self._sizing) < self._maxsize:
            self._sizing[shape] = sizing
        while len(self._costs) > self._maxsize:
            self._costs.popitem(last=False)
        return cost


class QueryCost(SchemaExtension):
    """Refuses documents over `maximum`, charges the cost to the client's rate-limit
    bucket (THROTTLED, HTTP 429 with Retry-After when it is empty), and reports
    `extensions.cost` on every response."""

    def __init__(self, *, maximum: int, cache: CostCache) -> None:
        super().__init__()
        self._maximum = maximum
        self._cache = cache
        self._cost: int | None = None
        self._throttle: dict[str, float] | None = None

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        operation = _operation(document, context.operation_name) if document else None
        if operation is not None:
            self._cost = self._cache.cost(
                context.schema._schema,
                context.query or "",
                document,
                operation,
                context.operation_name,
                context.variables or {},
            )
            if self._cost > self._maximum:
                error = GraphQLError(
                    f"query cost {self._cost} exceeds the maximum of {self._maximum}",
                    extensions={
                        "code": "MAX_COST_EXCEEDED",
                        "cost": self._cost,
                        "maximum": self._maximum,
                    },
                )
                context.result = ExecutionResult(data=None, errors=[error])  # nothing executes
            else:
                await self._charge(self._cost)
        yield

    async def _charge(self, cost: int) -> None:
        request_context = self.execution_context.context
        limiter = getattr(request_context, "rate_limiter", None)
        if limiter is None:
            return
        decision = await limiter.take(
            await request_context.rate_limit_key(),
            cost,
            getattr(request_context, "rate_limit", None),
        )
        self._throttle = {
            "maximumAvailable": decision.capacity,
            "currentlyAvailable": round(decision.available, 2),
            "restoreRate": decision.restore_rate,
        }
        if not decision.allowed:
            error = GraphQLError(
                f"throttled: this request costs {cost} points; retry in "
                f"{decision.retry_after_seconds} s",
                extensions={"code": "THROTTLED", "retryAfter": decision.retry_after_seconds},
            )
            self.execution_context.result = ExecutionResult(data=None, errors=[error])
            request_context.response.status_code = 429
            request_context.response.headers["Retry-After"] = str(decision.retry_after_seconds)

    def get_results(self) -> dict[str, Any]:
        if self._cost is None:
            return {}
        cost: dict[str, Any] = {
            "requestedQueryCost": self._cost,
            "actualQueryCost": self._cost,  # static: no resolver reports more yet
            "maximumCost": self._maximum,
        }
        if self._throttle is not None:
            cost["throttleStatus"] = self._throttle
        return {"cost": cost}


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _operation(document: Any, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)
