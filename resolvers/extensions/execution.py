"""A fast path through graphql-core's executor for plain data.

After the look-ahead loaders have run, most of a storefront screen is plain data
already in memory: products, variants, prices, images. graphql-core still spends
most of a request on it, building a resolve-info tuple, calling strawberry's
wrapper and dispatching value completion for every one of ~1,500 fields.

For a field that strawberry marks as basic (no resolver, no arguments, no
extensions) this context completes the whole selection below it directly: reads
attributes, serialises scalars, recurses into objects and lists. It gives up as
soon as it meets anything that is not plain (a field with a resolver or arguments,
an abstract type, a null in a non-null position, a value that fails to serialise,
a deferred fragment) and hands the field to the ordinary executor, which then
reports errors exactly as before. Giving up is always safe: the fast path only reads
attributes of objects that are already built, so nothing runs twice.

With a plan cache (`plain_data_context(schema, PlanCache())`, what build_schema installs)
queries run compiled plans instead (resolvers/extensions/compiled.py); this path stays
for mutations and whatever a plan does not cover.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationType,
    Undefined,
    is_leaf_type,
)
from graphql.execution.executor import CollectedErrors
from strawberry.schema.schema import (
    StrawberryGraphQLCoreExecutionContext,
    _OperationContextAwareGraphQLResolveInfo,
)
from strawberry.types.field import StrawberryField

from resolvers.extensions.compiled import Abandon, OperationPlan, PlanBuilder, PlanCache, Run
from schema.degradation import Degradations, current_degradations

_ABANDONED = object()

# (object type name, field name) -> python attribute, for every basic field.
BasicFields = dict[tuple[str, str], str]


class _NotPlain(Exception):
    """The selection below this field needs the ordinary executor."""


def basic_fields(schema: GraphQLSchema) -> BasicFields:
    fields: BasicFields = {}
    for type_name, graphql_type in schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, field in graphql_type.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            if (
                isinstance(definition, StrawberryField)
                and definition.is_basic_field
                and not field.args
                and getattr(field.resolve, "_is_default", False)
            ):
                fields[(type_name, field_name)] = definition.python_name
    return fields


class PlainDataExecutionContext(StrawberryGraphQLCoreExecutionContext):
    basic: BasicFields = {}
    plans: PlanCache | None = None  # None: every operation through the executor
    document: DocumentNode

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        built = super().build(*args, **kwargs)
        if isinstance(built, PlainDataExecutionContext):
            built.document = args[1] if len(args) > 1 else kwargs["document"]
        if isinstance(built, list):
            # Errors instead of an executor: the variables did not coerce (strawberry
            # has already refused a document whose operation it cannot pick).
            for error in built:
                error.extensions = {"code": "BAD_USER_INPUT", **(error.extensions or {})}
        return built

    def execute_operation(self, serially: bool | None = None) -> Any:
        plan = self._plan() if serially is None else None
        if plan is not None:
            result = self._execute_plan(plan)
        else:
            result = super().execute_operation(serially)
        if not self.is_awaitable(result):
            self._release()
            return result

        async def released() -> Any:
            try:
                return await result
            finally:
                self._release()

        return released()

    def _plan(self) -> OperationPlan | None:
        plans = self.plans
        if (
            plans is None
            or self.operation.operation is not OperationType.QUERY
            or self.abort_signal is not None
            or self.hooks is not None
            or not self.error_propagation
            or (self.middleware_manager is not None and self.middleware_manager.middlewares)
        ):
            return None
        return plans.plan(self.document, self.operation, self.variable_values, self._build_plan)

    def _build_plan(self) -> OperationPlan:
        """Only on a miss: a known document's plan is found without making a builder."""
        return PlanBuilder(
            self.schema,
            self.fragments,
            self.variable_values,
            self.operation,
            self.hide_suggestions,
            self.basic,
            self.field_resolver,
        ).build()

    def _execute_plan(self, plan: OperationPlan) -> Any:
        run = Run(
            _OperationContextAwareGraphQLResolveInfo,
            (
                self.schema,
                self.fragment_definitions,
                self.root_value,
                self.operation,
                self.variable_values.coerced,
                self.context_value,
                self.is_awaitable,
                self.abort_signal,
                self.async_helpers,
                self.operation_extensions,
            ),
            self.variable_values,
            self.is_awaitable,
            self.is_async_iterable,
            self.hide_suggestions,
            self.collected_errors,
            self.settle_in_background,
        )
        degradations = current_degradations.get()
        recorded = len(degradations.entries) if degradations is not None else 0
        assert self.plans is not None
        self.plans.executed += 1
        # Errors are handled inside the plan as graphql-core handles them; only an
        # Abandon hands the operation over, outside the `except` block, so the
        # executor's errors do not carry the plan's exception as their context.
        abandoned = False
        try:
            data = plan.execute(run, self.root_value)
        except GraphQLError as error:  # a non-null root field failed: no data
            self.collected_errors.add(error, None)
            return self.finish(self.build_response(None))
        except Abandon:
            abandoned = True
        if abandoned:
            return self._abandon_plan(degradations, recorded)
        if not self.is_awaitable(data):
            return self.finish(self.build_response(data))

        async def finished() -> Any:
            abandoned = False
            try:
                completed = await data
            except GraphQLError as error:
                self.collected_errors.add(error, None)
                return self.build_response(None)
            except Abandon:
                abandoned = True
            if abandoned:
                fallback = self._abandon_plan(degradations, recorded)
                return await fallback if self.is_awaitable(fallback) else fallback
            return self.build_response(completed)

        return finished()

    def _abandon_plan(self, degradations: Degradations | None, recorded: int) -> Any:
        # The executor runs the resolvers again (on loaders the plan primed): what they
        # reported must be reported once, and the plan's stragglers write elsewhere.
        if degradations is not None:
            del degradations.entries[recorded:]
        self.collected_errors = CollectedErrors()
        assert self.plans is not None
        self.plans.abandoned += 1
        return super().execute_operation(None)

    def _release(self) -> None:
        # graphql-core's executor refers to itself through its async helpers (bound
        # methods), and the request's context and every record hang off it: a cycle per
        # request that only a full collection frees, seconds of pause after thousands of
        # requests. Cutting it once the result exists lets reference counting free it all.
        self.async_helpers = None  # type: ignore[assignment]

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        attribute = self.basic.get((parent_type.name, node.name.value))
        if attribute is not None and not node.arguments:
            field = parent_type.fields[node.name.value]
            try:
                return self._complete(field.type, field_details_list, getattr(source, attribute))
            except _NotPlain:
                pass
        return self.execute_ordinary_field(
            parent_type, source, field_details_list, path, position_context
        )

    def execute_ordinary_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _complete(self, graphql_type: Any, details: Any, value: Any) -> Any:
        if isinstance(graphql_type, GraphQLNonNull):
            if value is None:
                raise _NotPlain
            graphql_type = graphql_type.of_type
        elif value is None:
            return None
        if isinstance(graphql_type, GraphQLList):
            item_type = graphql_type.of_type
            return [self._complete(item_type, details, item) for item in value]
        if is_leaf_type(graphql_type):
            try:
                coerced = graphql_type.coerce_output_value(value)
            except Exception:
                raise _NotPlain from None
            if coerced is None or coerced is Undefined:
                raise _NotPlain
            return coerced
        if not isinstance(graphql_type, GraphQLObjectType):
            raise _NotPlain  # interfaces and unions resolve their type the ordinary way
        # strawberry's is_type_of reads only the value; a ResolveInfo per object would be
        # the per-field cost this path exists to avoid.
        checker = graphql_type.is_type_of
        if checker is not None and not checker(value, None):  # type: ignore[arg-type]
            raise _NotPlain
        grouped, deferred, _ = self.collect_subfields(graphql_type, details)
        if deferred:
            raise _NotPlain
        completed = {}
        type_name = graphql_type.name
        for response_key, sub_details in grouped.items():
            sub_node = sub_details[0].node
            name = sub_node.name.value
            if name == "__typename":
                completed[response_key] = type_name
                continue
            attribute = self.basic.get((type_name, name))
            if attribute is None or sub_node.arguments:
                raise _NotPlain
            completed[response_key] = self._complete(
                graphql_type.fields[name].type, sub_details, getattr(value, attribute)
            )
        return completed


def plain_data_context(
    schema: GraphQLSchema, plans: PlanCache | None = None
) -> type[PlainDataExecutionContext]:
    """The schema's execution context; with `plans`, queries run compiled plans."""
    return type(
        "SchemaPlainDataExecutionContext",
        (PlainDataExecutionContext,),
        {"basic": basic_fields(schema), "plans": plans},
    )
