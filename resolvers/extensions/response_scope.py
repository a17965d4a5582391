"""Which answers the response cache may keep: decided on the parsed operation.

An anonymous GET whose operation is a query selecting only catalog root fields
(`CATALOG_ROOT_FIELDS`, directly or through fragments) gets a `ResponseTags` on its
request state; the code that builds catalog objects notes into it what the answer was
built from, and the HTTP edge keeps the answer under those tags. Any other request has
none, and nothing of it is kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

from domain.response_cache import (
    CATALOG_ROOT_FIELDS,
    CATEGORIES_TAG,
    CATEGORY_ROOT_FIELDS,
    ResponseTags,
)
from schema.context import context_of


class ResponseScope(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context = context_of(execution)
        document = execution.graphql_document
        if (
            context is not None
            and document is not None
            and context.request.scope.get("method") == "GET"
            and context.partner is None
            and context.access_token is None
        ):
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            name = execution.operation_name
            operation = (
                next((o for o in operations if o.name and o.name.value == name), None)
                if name is not None
                else (operations[0] if len(operations) == 1 else None)
            )
            if operation is not None and operation.operation is OperationType.QUERY:
                roots = set(_root_fields(operation.selection_set, fragments, set()))
                if roots <= CATALOG_ROOT_FIELDS:
                    tags = ResponseTags()
                    if roots & CATEGORY_ROOT_FIELDS:
                        tags.note_collection(CATEGORIES_TAG)
                    context.state.response_tags = tags
        yield


def _root_fields(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: set[str],
) -> Iterator[str]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None:
                yield "?"  # validation refuses it; never cacheable
            elif name not in seen:
                seen.add(name)
                yield from _root_fields(fragment.selection_set, fragments, seen)
