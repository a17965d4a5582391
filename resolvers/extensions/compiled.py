"""Compiled operations: a query's execution planned once per document, run many times.

Storefronts send the same few documents millions of times. graphql-core re-derives
for every request and every object what the document already fixes: which fields a
selection collects (fragments, aliases, `@include`/`@skip`), each field's definition,
resolver and argument values, and how its type completes (non-null, list, leaf or
object). A plan does that once per (document, operation, values of the variables the
`@include`/`@skip` directives read) and keeps it in a bounded cache.

Running a plan calls the same resolvers graphql-core would call, with the same
`info` (path, field nodes, fragments, context), in the same order: siblings first,
their awaitables gathered together, list items likewise, so per-request loaders batch
exactly as before. Plain attributes (strawberry's basic fields) are read directly.

Errors follow graphql-core's rules with graphql-core's own pieces: its located errors,
its error collection (which drops errors below a position already nulled), non-null
propagation to the nearest nullable parent, `gather_with_cancel` for siblings and its
background settling of abandoned awaitables; messages are graphql-core's. So an error
costs no second execution and no extra statement. Where a selection has no resolver
below it, a path-free completion runs first; anything unusual there (null in a non-null
position, a value that does not serialise, an unexpected type) makes the reporting
completion redo that selection, which only reads attributes again.

What a plan does not express is never planned and runs on the executor as before:
mutations, subscriptions, interfaces and unions, introspection other than
`__typename`, directives other than `@include`/`@skip`, fragment arguments, documents
past MAX_PLAN_STEPS. An async iterable met where a list belongs abandons the plan at
run time (`Abandon`): the executor then runs the operation on the same context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import isfinite
from typing import Any

from cachetools import LRUCache
from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    VariableNode,
    Visitor,
    located_error,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.executor import CollectedErrors, Executor
from graphql.execution.values import VariableValues, get_argument_values
from graphql.pyutils import Path, gather_with_cancel, inspect, is_iterable

from schema.common import SHARED_COMPLETIONS, SHARED_SELECTIONS_MAX

# An entry weighs its plans' field steps plus its document's text (a step per
# CHARACTERS_PER_STEP characters: the document is kept alive with its plans); the cache
# holds at most PLAN_CACHE_STEPS in all, whatever stream of documents arrives. The
# listing screen weighs about 120 (45 steps, 1,200 characters).
PLAN_CACHE_STEPS = 20_000
CHARACTERS_PER_STEP = 16
# One document's plan past this many steps (fragments can multiply a small text) is
# not planned: the ordinary executor runs it, as before.
MAX_PLAN_STEPS = 5_000
# Distinct values of the directive variables kept per operation.
MAX_VARIANTS = 16

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_CONDITIONS = frozenset({"include", "skip"})
_INCREMENTAL = frozenset({"defer", "stream"})


class Abandon(BaseException):
    """The plan met what only the ordinary executor handles (an async iterable where a
    list belongs). A BaseException, so no field's error handling turns it into an error."""


class Unplannable(Exception):
    """The operation cannot be planned; the ordinary executor always runs it."""


# (run, value, path) -> completed value or an awaitable of it; field errors are handled
# the way graphql-core handles them (null here, or raised to the nearest nullable parent).
Complete = Callable[["Run", Any, Path], Any]
# (value) -> completed value, for a selection with no resolver below: no paths, no error
# handling. Any exception means "complete it again with `Complete`", which reports it.
Fast = Callable[[Any], Any]


@dataclass(slots=True)
class Completion:
    complete: Complete
    fast: Fast | None  # None when a resolver runs somewhere below
    may_await: bool  # whether `complete` can return an awaitable
    exact: type | None = None  # a leaf's python type that completes as itself


@dataclass(slots=True)
class FieldStep:
    key: str  # the response key: the alias, or the field name
    name: str
    nodes: list[FieldNode]
    return_type: GraphQLOutputType
    field_def: GraphQLField | None  # None for __typename
    attribute: str | None  # a basic field: read this attribute, no resolver
    resolve: Callable[..., Any] | None
    arguments: dict[str, Any] | None  # constant arguments; None: coerce per request
    completion: Completion | None
    non_null: bool = False


@dataclass(slots=True, eq=False)  # hashed by identity: shared completions are keyed by it
class ObjectPlan:
    type: GraphQLObjectType
    name: str
    steps: list[FieldStep] = field(default_factory=list)
    resolvers_below: bool = False


class Run:
    """One request's execution of a plan: what every resolver's info shares, and where
    field errors go."""

    __slots__ = (
        "errors",
        "hide_suggestions",
        "info_class",
        "info_tail",
        "is_async_iterable",
        "is_awaitable",
        "settle_in_background",
        "variable_values",
    )

    def __init__(
        self,
        info_class: Callable[..., Any],
        info_tail: tuple[Any, ...],
        variable_values: VariableValues,
        is_awaitable: Callable[[Any], bool],
        is_async_iterable: Callable[[Any], bool],
        hide_suggestions: bool,
        errors: CollectedErrors,
        settle_in_background: Callable[[list[Any]], None],
    ) -> None:
        self.info_class = info_class
        self.info_tail = info_tail
        self.variable_values = variable_values
        self.is_awaitable = is_awaitable
        self.is_async_iterable = is_async_iterable
        self.hide_suggestions = hide_suggestions
        self.errors = errors
        self.settle_in_background = settle_in_background

    def field_error(
        self, raw: Exception, return_type: Any, nodes: list[FieldNode], path: Path
    ) -> None:
        """graphql-core's handle_field_error: raise for a non-null position, else record."""
        error = located_error(raw, nodes, path.as_list())
        if isinstance(return_type, GraphQLNonNull):
            raise error
        self.errors.add(error, path)


@dataclass(slots=True)
class OperationPlan:
    root: ObjectPlan
    steps: int

    def execute(self, run: Run, root_value: Any) -> Any:
        return execute_fields(run, self.root, root_value, None)


def execute_fields(run: Run, plan: ObjectPlan, source: Any, path: Path | None) -> Any:
    results: dict[str, Any] = {}
    pending: list[str] | None = None
    is_awaitable = run.is_awaitable
    type_name = plan.name
    try:
        for step in plan.steps:
            key = step.key
            completion = step.completion
            if completion is None:  # __typename
                results[key] = type_name
                continue
            try:
                attribute = step.attribute
                if attribute is not None:
                    value = getattr(source, attribute)
                    fast = completion.fast
                    completed = _MISSING
                    if fast is not None:
                        try:
                            completed = fast(value)
                        except Exception:
                            completed = _MISSING
                    if completed is _MISSING:
                        completed = completion.complete(run, value, Path(path, key, type_name))
                else:
                    completed = _resolve(run, plan, step, completion, source, path)
            except Exception as raw:
                run.field_error(raw, step.return_type, step.nodes, Path(path, key, type_name))
                completed = None
            results[key] = completed
            if (attribute is None or completion.may_await) and is_awaitable(completed):
                if pending is None:
                    pending = [key]
                else:
                    pending.append(key)
    except Exception:
        if pending:
            run.settle_in_background([results[key] for key in pending])
        raise
    if pending is None:
        return results
    return _gather_into(results, pending)


_MISSING: Any = object()


def _resolve(
    run: Run,
    plan: ObjectPlan,
    step: FieldStep,
    completion: Completion,
    source: Any,
    parent: Path | None,
) -> Any:
    path = Path(parent, step.key, plan.name)
    info = run.info_class(step.name, step.nodes, step.return_type, plan.type, path, *run.info_tail)
    arguments = step.arguments
    if arguments is None:
        assert step.field_def is not None
        arguments = get_argument_values(
            step.field_def, step.nodes[0], run.variable_values, None, run.hide_suggestions
        )
    assert step.resolve is not None
    value = step.resolve(source, info, **arguments)
    if run.is_awaitable(value):
        return _complete_awaited(run, step, completion, value, path)
    completed = _complete(run, completion, value, path)
    if completion.may_await and run.is_awaitable(completed):
        return _await_completed(run, step, completed, path)
    return completed


def _complete(run: Run, completion: Completion, value: Any, path: Path) -> Any:
    fast = completion.fast
    if fast is not None:
        try:
            return fast(value)
        except Exception:
            pass
    return completion.complete(run, value, path)


async def _complete_awaited(
    run: Run, step: FieldStep, completion: Completion, value: Any, path: Path
) -> Any:
    try:
        completed = _complete(run, completion, await value, path)
        if completion.may_await and run.is_awaitable(completed):
            completed = await completed
    except Exception as raw:
        run.field_error(raw, step.return_type, step.nodes, path)
        return None
    return completed


async def _await_completed(run: Run, step: FieldStep, completed: Any, path: Path) -> Any:
    try:
        return await completed
    except Exception as raw:
        run.field_error(raw, step.return_type, step.nodes, path)
        return None


async def _gather_into(results: Any, pending: Sequence[Any]) -> Any:
    if len(pending) == 1:
        key = pending[0]
        results[key] = await results[key]
        return results
    awaited = await gather_with_cancel(*(results[key] for key in pending))
    for key, value in zip(pending, awaited, strict=True):
        results[key] = value
    return results


# Completions ---------------------------------------------------------------------------


def _non_null_message(parent: str, field_name: str) -> str:
    return f"Cannot return null for non-nullable field {parent}.{field_name}."


def _is_null(value: Any, nullable: bool, message: str) -> bool:
    """True for a null that a nullable field passes on; raises what a resolver returned
    as an error, and the non-null violation, as graphql-core's completion does."""
    if isinstance(value, Exception):
        raise value
    if value is None or value is Undefined:
        if nullable:
            return True
        raise TypeError(message)
    return False


def _leaf(
    leaf_type: GraphQLScalarType | GraphQLEnumType, nullable: bool, label: tuple[str, str]
) -> Completion:
    coerce = leaf_type.coerce_output_value
    message = _non_null_message(*label)

    def complete(run: Run, value: Any, path: Path) -> Any:
        if _is_null(value, nullable, message):
            return None
        return Executor.complete_leaf_value(leaf_type, value)

    fast: Fast
    if leaf_type is GraphQLString or leaf_type is GraphQLID:

        def fast(value: Any) -> Any:
            if type(value) is str:
                return value
            if value is None and nullable:
                return None
            return _fast_coerced(coerce, value)

    elif leaf_type is GraphQLInt:

        def fast(value: Any) -> Any:
            if type(value) is int and _INT_MIN <= value <= _INT_MAX:
                return value
            if value is None and nullable:
                return None
            return _fast_coerced(coerce, value)

    elif leaf_type is GraphQLBoolean:

        def fast(value: Any) -> Any:
            if type(value) is bool:
                return value
            if value is None and nullable:
                return None
            return _fast_coerced(coerce, value)

    elif leaf_type is GraphQLFloat:

        def fast(value: Any) -> Any:
            if type(value) is float and isfinite(value):
                return value
            if value is None and nullable:
                return None
            return _fast_coerced(coerce, value)

    else:

        def fast(value: Any) -> Any:
            if value is None and nullable:
                return None
            return _fast_coerced(coerce, value)

    exact = (
        str
        if leaf_type is GraphQLString or leaf_type is GraphQLID
        else bool
        if leaf_type is GraphQLBoolean
        else None
    )
    return Completion(complete, fast, may_await=False, exact=exact)


def _fast_coerced(coerce: Callable[[Any], Any], value: Any) -> Any:
    if value is None or isinstance(value, Exception):
        raise _Slow
    result = coerce(value)
    if result is None or result is Undefined:
        raise _Slow
    return result


class _Slow(Exception):
    """The fast completion declines: the reporting one takes over."""


def _list(
    item: Completion,
    item_type: Any,
    nullable: bool,
    label: tuple[str, str],
    nodes: list[FieldNode],
) -> Completion:
    complete_item = item.complete
    item_fast = item.fast
    item_may_await = item.may_await
    message = _non_null_message(*label)
    not_iterable = f"Expected Iterable, but did not find one for field '{label[0]}.{label[1]}'."

    def complete(run: Run, value: Any, path: Path) -> Any:
        if _is_null(value, nullable, message):
            return None
        if type(value) is not list and type(value) is not tuple:
            if run.is_async_iterable(value):
                raise Abandon
            if not is_iterable(value):
                raise GraphQLError(not_iterable)
        is_awaitable = run.is_awaitable
        completed: list[Any] = []
        pending: list[int] = []
        try:
            for index, element in enumerate(value):
                item_path = Path(path, index, None)
                if is_awaitable(element):
                    completed.append(
                        _complete_awaited_item(run, item, item_type, nodes, element, item_path)
                    )
                    pending.append(index)
                    continue
                try:
                    result = _MISSING
                    if item_fast is not None:
                        try:
                            result = item_fast(element)
                        except Exception:
                            result = _MISSING
                    if result is _MISSING:
                        result = complete_item(run, element, item_path)
                    if item_may_await and is_awaitable(result):
                        completed.append(
                            _await_completed_item(run, item_type, nodes, result, item_path)
                        )
                        pending.append(index)
                        continue
                except Exception as raw:
                    run.field_error(raw, item_type, nodes, item_path)
                    result = None
                completed.append(result)
        except Exception:
            if pending:
                run.settle_in_background([completed[index] for index in pending])
            raise
        if not pending:
            return completed
        return _gather_into(completed, pending)

    fast: Fast | None = None
    if item_fast is not None:

        def fast(value: Any) -> Any:
            if value is None and nullable:
                return None
            if type(value) is not list and type(value) is not tuple:
                raise _Slow
            return [item_fast(element) for element in value]

    return Completion(complete, fast, may_await=True)


async def _complete_awaited_item(
    run: Run, item: Completion, item_type: Any, nodes: list[FieldNode], value: Any, path: Path
) -> Any:
    try:
        completed = _complete(run, item, await value, path)
        if item.may_await and run.is_awaitable(completed):
            completed = await completed
    except Exception as raw:
        run.field_error(raw, item_type, nodes, path)
        return None
    return completed


async def _await_completed_item(
    run: Run, item_type: Any, nodes: list[FieldNode], completed: Any, path: Path
) -> Any:
    try:
        return await completed
    except Exception as raw:
        run.field_error(raw, item_type, nodes, path)
        return None


def _object(
    plan: ObjectPlan, nullable: bool, label: tuple[str, str], nodes: list[FieldNode]
) -> Completion:
    object_type = plan.type
    is_type_of = object_type.is_type_of
    message = _non_null_message(*label)

    def complete(run: Run, value: Any, path: Path) -> Any:
        if _is_null(value, nullable, message):
            return None
        # strawberry's is_type_of reads only the value (the plain-data path relies on it).
        if is_type_of is not None and not is_type_of(value, None):  # type: ignore[arg-type]
            raise GraphQLError(
                f"Expected value of type '{object_type}' but got: {inspect(value)}.", nodes
            )
        return execute_fields(run, plan, value, path)

    fast: Fast | None = None
    if not plan.resolvers_below:
        # (key, attribute, fast completion, the one python type it passes through as is)
        steps: list[tuple[str, str | None, Fast | None, type | None]] = []
        for step in plan.steps:
            step_fast = step.completion.fast if step.completion is not None else None
            exact = step.completion.exact if step.completion is not None else None
            steps.append((step.key, step.attribute, step_fast, exact))
        type_name = plan.name
        if all(step[1] is None or step[2] is not None for step in steps):

            def fast(value: Any) -> Any:
                if value is None and nullable:
                    return None
                known = getattr(value, SHARED_COMPLETIONS, None)
                if known is not None and (done := known.get(plan)) is not None:
                    return done
                if is_type_of is not None and is_type_of(value, None) is not True:  # type: ignore[arg-type]
                    raise _Slow
                results: dict[str, Any] = {}
                for key, attribute, step_fast, exact in steps:
                    if attribute is None:
                        results[key] = type_name
                        continue
                    found = getattr(value, attribute)
                    # Strings and booleans, most of a screen, without a call each.
                    if type(found) is exact:
                        results[key] = found
                    else:
                        results[key] = step_fast(found)  # type: ignore[misc]
                if known is not None:
                    # A shared object never changes, nor does what its plain selection
                    # completes to: kept on it, keyed by the plan itself (held, so no
                    # other plan can be mistaken for it), and shared by the responses
                    # that include it (nothing changes a completed value afterwards).
                    if len(known) >= SHARED_SELECTIONS_MAX:
                        known.clear()
                    known[plan] = results
                return results

    return Completion(complete, fast, may_await=plan.resolvers_below)


# Building ------------------------------------------------------------------------------


class PlanBuilder:
    """Builds the plan of one operation for one set of directive variable values."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDetails],
        variable_values: VariableValues,
        operation: OperationDefinitionNode,
        hide_suggestions: bool,
        basic: dict[tuple[str, str], str],
        default_resolver: Callable[..., Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variable_values = variable_values
        self.operation = operation
        self.hide_suggestions = hide_suggestions
        self.basic = basic
        self.default_resolver = default_resolver
        self.steps = 0

    def build(self) -> OperationPlan:
        operation = self.operation
        if operation.operation is not OperationType.QUERY:
            raise Unplannable
        root_type = self.schema.query_type
        if root_type is None:
            raise Unplannable
        grouped, defers, _ = collect_fields(
            self.schema,
            self.fragments,
            self.variable_values,
            root_type,
            operation,
            self.hide_suggestions,
        )
        if defers:
            raise Unplannable
        root = self._object_plan(root_type, grouped)
        return OperationPlan(root=root, steps=self.steps)

    def _object_plan(
        self, object_type: GraphQLObjectType, grouped: dict[str, list[FieldDetails]]
    ) -> ObjectPlan:
        plan = ObjectPlan(type=object_type, name=object_type.name)
        for key, details in grouped.items():
            self.steps += 1
            if self.steps > MAX_PLAN_STEPS:
                raise Unplannable
            if any(d.fragment_variable_values is not None for d in details):
                raise Unplannable
            node = details[0].node
            name = node.name.value
            nodes = [d.node for d in details]
            if name == "__typename":
                plan.steps.append(
                    FieldStep(key, name, nodes, object_type, None, None, None, None, None)
                )
                continue
            if name.startswith("__"):
                raise Unplannable  # introspection: rare, and the executor's
            field_def = object_type.fields.get(name)
            if field_def is None:
                raise Unplannable
            completion = self._completion(field_def.type, details, (object_type.name, name), nodes)
            attribute = self.basic.get((object_type.name, name))
            if attribute is not None and not node.arguments:
                resolve = None
                arguments: dict[str, Any] | None = {}
            else:
                attribute = None
                resolve = field_def.resolve or self.default_resolver
                arguments = self._constant_arguments(field_def, node)
                plan.resolvers_below = True
            if completion.fast is None:
                plan.resolvers_below = True
            plan.steps.append(
                FieldStep(
                    key=key,
                    name=name,
                    nodes=nodes,
                    return_type=field_def.type,
                    field_def=field_def,
                    attribute=attribute,
                    resolve=resolve,
                    arguments=arguments,
                    completion=completion,
                )
            )
        return plan

    def _constant_arguments(
        self, field_def: GraphQLField, node: FieldNode
    ) -> dict[str, Any] | None:
        if not field_def.args and not node.arguments:
            return {}
        if any(_has_variable(argument.value) for argument in node.arguments or ()):
            return None  # coerced per request, the way the executor does
        try:
            return get_argument_values(
                field_def, node, self.variable_values, None, self.hide_suggestions
            )
        except Exception:
            return None  # coerced (and refused) per request: the executor's error

    def _completion(
        self,
        graphql_type: Any,
        details: list[FieldDetails],
        label: tuple[str, str],
        nodes: list[FieldNode],
    ) -> Completion:
        nullable = True
        if isinstance(graphql_type, GraphQLNonNull):
            nullable = False
            graphql_type = graphql_type.of_type
        if isinstance(graphql_type, GraphQLList):
            item_type = graphql_type.of_type
            item = self._completion(item_type, details, label, nodes)
            return _list(item, item_type, nullable, label, nodes)
        if isinstance(graphql_type, (GraphQLScalarType, GraphQLEnumType)):
            return _leaf(graphql_type, nullable, label)
        if isinstance(graphql_type, GraphQLObjectType):
            grouped, defers, _ = collect_subfields(
                self.schema,
                self.fragments,
                self.variable_values,
                self.operation,
                graphql_type,
                details,
                self.hide_suggestions,
            )
            if defers:
                raise Unplannable
            return _object(self._object_plan(graphql_type, grouped), nullable, label, nodes)
        raise Unplannable  # interfaces and unions: the executor resolves their types


def _has_variable(value: Any) -> bool:
    found = False

    class Finder(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            nonlocal found
            found = True

    visit(value, Finder())
    return found


# The cache -----------------------------------------------------------------------------


@dataclass(slots=True)
class _DocumentPlans:
    document: DocumentNode  # kept alive, so its id names it while the entry lives
    condition_variables: tuple[str, ...] | None  # None: the document is never planned
    plans: dict[tuple[int, tuple[Any, ...]], OperationPlan | None] = field(default_factory=dict)
    weight: int = 1


class PlanCache:
    """Plans by document identity, operation and directive variable values; bounded by
    the total number of steps its plans hold (an LRU over documents)."""

    def __init__(self, max_steps: int = PLAN_CACHE_STEPS) -> None:
        self.executed = 0  # operations that ran a plan, abandoned ones included
        self.abandoned = 0  # of which the ordinary executor took over
        self._entries: LRUCache[int, _DocumentPlans] = LRUCache(
            maxsize=max_steps, getsizeof=lambda entry: entry.weight
        )

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def steps_used(self) -> int:
        return int(self._entries.currsize)

    @property
    def max_steps(self) -> int:
        return int(self._entries.maxsize)

    def plan(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variable_values: VariableValues,
        build: Callable[[], OperationPlan],
    ) -> OperationPlan | None:
        entry = self._entries.get(id(document))
        if entry is None or entry.document is not document:
            text = document.loc.source.body if document.loc is not None else ""
            entry = _DocumentPlans(
                document,
                _condition_variables(document),
                weight=1 + len(text) // CHARACTERS_PER_STEP,
            )
        if entry.condition_variables is None:
            self._put(entry)
            return None
        coerced = variable_values.coerced
        try:
            key = (id(operation), tuple(coerced.get(n) for n in entry.condition_variables))
            hash(key)
        except TypeError:
            return None
        if key in entry.plans:
            return entry.plans[key]
        try:
            plan: OperationPlan | None = build()
        except Unplannable:
            plan = None
        except RecursionError:
            plan = None
        if len(entry.plans) < MAX_VARIANTS:
            entry.plans[key] = plan
            entry.weight += plan.steps if plan is not None else 1
            self._entries.pop(id(document), None)  # re-weighed on the way back in
            self._put(entry)
        return plan

    def _put(self, entry: _DocumentPlans) -> None:
        if entry.weight <= self._entries.maxsize:
            self._entries[id(entry.document)] = entry


def _condition_variables(document: DocumentNode) -> tuple[str, ...] | None:
    """The variables `@include`/`@skip` read anywhere in the document (their values pick
    the plan), or None when the document uses directives a plan does not evaluate."""
    names: set[str] = set()
    unplannable = False

    class Finder(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            nonlocal unplannable
            name = node.name.value
            if name in _INCREMENTAL or name not in _CONDITIONS:
                unplannable = True
                return
            for argument in node.arguments or ():
                if isinstance(argument.value, VariableNode):
                    names.add(argument.value.name.value)

    visit(document, Finder())
    return None if unplannable else tuple(sorted(names))
