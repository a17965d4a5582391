"""Static query cost, computed before anything executes.

Object fields cost 1, scalars and enums 0; a field that sizes a list costs 1 plus that
size times what is below it: `first` (capped at 100) or the length of a list argument
(`nodes(ids:)`), each taken at the value it will have when the field runs (given
variables, else the variable's default, else the argument's default, exactly as
graphql-core coerces them); a mutation field costs 10 more; a few fields override their
own cost where the resolver is expensive. A document over the maximum is refused with
MAX_COST_EXCEEDED and its cost, unexecuted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as Operation

from domain.pagination import DEFAULT_PAGE_SIZE
from schema.context import context_of

MUTATION_COST = 10
# A size above the cap is refused by its resolver anyway (INVALID_PAGE_SIZE, or at most
# 100 ids): count it at the cap, so the client hears about the real problem.
SIZE_CAP = 100
PAGE_ARGUMENT = "first"
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
    variables: VariableValues | None,
    views: SizingViews | None = None,
) -> int:
    """The cost of `operation` with these coerced variables (None: none usable)."""
    return _CostWalk(schema, fragments, variables, views).operation(operation)


def sizing_variables(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    views: SizingViews | None = None,
) -> frozenset[str]:
    """The variables some sizing argument reads: the only ones the cost depends on."""
    walk = _CostWalk(schema, fragments, None, views)
    walk.operation(operation)
    return frozenset(walk.read)


class _CostWalk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues | None,
        views: SizingViews | None,
    ) -> None:
        self._views: SizingViews = {} if views is None else views
        self._schema = schema
        self._fragments = fragments
        self._variables = variables
        self.read: set[str] = set()

    def operation(self, operation: OperationDefinitionNode) -> int:
        root = self._schema.get_root_type(operation.operation)
        if root is None:
            return 0
        per_field = MUTATION_COST if operation.operation is OperationType.MUTATION else 0
        return self._selection(root, operation.selection_set, per_field)

    def _selection(
        self, parent: Any, selection_set: SelectionSetNode | None, extra: int = 0
    ) -> int:
        total = 0
        for parent_type, node in _fields(self._schema, parent, selection_set, self._fragments):
            fields = getattr(parent_type, "fields", None)
            definition = fields.get(node.name.value) if fields else None
            if definition is None:  # __typename and friends
                continue
            own = FIELD_COSTS.get((parent_type.name, node.name.value))
            named = _named(definition.type)
            is_object = isinstance(
                named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType
            )
            children = self._selection(named, node.selection_set)
            own_cost = own if own is not None else (1 if is_object else 0)
            total += (
                extra + own_cost + children * self._multiplier(parent_type.name, definition, node)
            )
        return total

    def _multiplier(self, parent: str, definition: GraphQLField, node: FieldNode) -> int:
        key = (parent, node.name.value)
        if key not in self._views:
            self._views[key] = _sizing_view(definition)
        sizing = self._views[key]
        if sizing is None:
            return 1
        for argument in node.arguments or ():
            if argument.name.value in sizing.args:
                self.read.update(_variables_in(argument.value))
        try:
            values = get_argument_values(sizing, node, self._variables)
        except GraphQLError:  # an unusable value: execution refuses it the same way
            return 1
        sizes = [_size(name, value) for name, value in values.items()]
        return max(sizes, default=1)


def _size(argument: str, value: Any) -> int:
    if argument == PAGE_ARGUMENT:
        page = DEFAULT_PAGE_SIZE if value is None else value  # null means the default page
        return min(max(1, page), SIZE_CAP) if isinstance(page, int) else 1
    return min(max(1, len(value)), SIZE_CAP) if isinstance(value, list) else 1


# (parent type, field) -> the field with only its sizing arguments, or None.
SizingViews = dict[tuple[str, str], GraphQLField | None]


def _sizing_view(definition: GraphQLField) -> GraphQLField | None:
    """The field with only its sizing arguments (`first`, list-typed ones), so that
    graphql-core coerces just those, as it will when the field runs."""
    args = {
        name: argument
        for name, argument in definition.args.items()
        if name == PAGE_ARGUMENT or _is_list(argument)
    }
    return GraphQLField(definition.type, args) if args else None


def _is_list(argument: GraphQLArgument) -> bool:
    argument_type = argument.type
    if isinstance(argument_type, GraphQLNonNull):
        argument_type = argument_type.of_type
    return isinstance(argument_type, GraphQLList)


def _variables_in(value: ValueNode) -> Iterator[str]:
    if isinstance(value, VariableNode):
        yield value.name.value
    elif isinstance(value, ListValueNode):
        for item in value.values:
            yield from _variables_in(item)
    elif isinstance(value, ObjectValueNode):
        for object_field in value.fields:
            yield from _variables_in(object_field.value)


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


def _named(graphql_type: Any) -> Any:
    while isinstance(graphql_type, GraphQLNonNull | GraphQLList):
        graphql_type = graphql_type.of_type
    return graphql_type


def _signature(value: Any) -> Hashable:
    """What of a sizing variable's value the cost depends on: a page size, or a length."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, list):
        return ("length", len(value))
    return type(value).__name__  # an item of a list literal: only its presence counts


# A shape's entry holds its text (the key) and up to this many priced size signatures.
SIGNATURES_PER_SHAPE = 32
SIGNATURE_BYTES = 64


@dataclass(slots=True)
class _Shape:
    sizing: tuple[str, ...]
    weight: int
    costs: dict[Hashable, int] = field(default_factory=dict)


class CostCache:
    """A document's cost depends only on its text, its operation and the values of the
    variables that size its lists (after defaults apply); the same screen query with
    the same page sizes costs the same, so the walk runs once per shape and sizes.
    Bounded by bytes: each shape weighs its text plus room for its signatures."""

    def __init__(self, max_bytes: int = 4 * 1024 * 1024) -> None:
        self._shapes: LRUCache[tuple[str, str | None], _Shape] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda shape: shape.weight
        )
        self._views: SizingViews = {}  # one schema's fields: bounded by the schema

    @property
    def bytes_used(self) -> int:
        return int(self._shapes.currsize)

    def cost(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        operation_name: str | None,
        variables: Mapping[str, Any],
    ) -> int:
        key = (query, operation_name)
        shape = self._shapes.get(key)
        if shape is None:
            names = sizing_variables(schema, operation, _fragments(document), self._views)
            shape = _Shape(
                sizing=tuple(sorted(names)),
                weight=len(query) + SIGNATURES_PER_SHAPE * SIGNATURE_BYTES,
            )
            if shape.weight <= self._shapes.maxsize:
                self._shapes[key] = shape
        coerced = _coerce(schema, operation, shape.sizing, variables)
        signature = (
            None
            if coerced is None
            else tuple(_signature(coerced.coerced.get(n)) for n in shape.sizing)
        )
        cached = shape.costs.get(signature)
        if cached is not None:
            return cached
        cost = query_cost(schema, operation, _fragments(document), coerced, self._views)
        if len(shape.costs) >= SIGNATURES_PER_SHAPE:
            shape.costs.clear()  # page sizes churning: start over rather than grow
        shape.costs[signature] = cost
        return cost


def _coerce(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    sizing: tuple[str, ...],
    variables: Mapping[str, Any],
) -> VariableValues | None:
    """The sizing variables as execution will see them (defaults applied); None when
    they do not coerce, which execution refuses the same way."""
    if not sizing:
        return VariableValues({}, {})
    definitions = [
        d for d in operation.variable_definitions or () if d.variable.name.value in sizing
    ]
    inputs = dict(variables) if isinstance(variables, Mapping) else {}
    values = get_variable_values(schema, definitions, inputs)
    return None if isinstance(values, list) else values


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
        if document is not None and operation is not None:
            request_context = context_of(context)
            state = None if request_context is None else request_context.state
            if state is not None:
                state.operation_name = operation.name.value if operation.name else None
                state.operation_type = operation.operation.value
            self._cost = self._cache.cost(
                context.schema._schema,
                context.query or "",
                document,
                operation,
                context.operation_name,
                context.variables or {},
            )
            if state is not None:
                state.query_cost = self._cost
            if (
                operation.operation is OperationType.SUBSCRIPTION
                and request_context is not None
                and request_context.live is None
            ):
                # Over HTTP: nothing would ever deliver its events.
                request_context.response.status_code = 400
                if state is not None:
                    state.never_executed = True
                context.result = ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            "subscriptions run over WebSocket (graphql-transport-ws) on /graphql",
                            extensions={"code": "BAD_REQUEST"},
                        )
                    ],
                )
            elif self._cost > self._maximum:
                error = GraphQLError(
                    f"query cost {self._cost} exceeds the maximum of {self._maximum}",
                    extensions={
                        "code": "MAX_COST_EXCEEDED",
                        "cost": self._cost,
                        "maximum": self._maximum,
                    },
                )
                self._refuse(error)  # nothing executes
            else:
                await self._charge(self._cost)
        yield

    def _refuse(self, error: GraphQLError) -> None:
        context = self.execution_context
        if context.operation_type is Operation.SUBSCRIPTION:
            # strawberry subscribes whatever the result says; a raise stops it.
            raise error
        context.result = ExecutionResult(data=None, errors=[error])

    async def _charge(self, cost: int) -> None:
        request_context = context_of(self.execution_context)
        if request_context is None or request_context.rate_limiter is None:
            return
        decision = await request_context.rate_limiter.take(
            await request_context.rate_limit_key(), cost, request_context.rate_limit
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
            request_context.state.throttled = True
            request_context.response.status_code = 429
            request_context.response.headers["Retry-After"] = str(decision.retry_after_seconds)
            self._refuse(error)

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
