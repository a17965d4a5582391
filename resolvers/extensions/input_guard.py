"""The one gate every client string passes before anything runs.

Before execution, each string in the request's variables and each string literal of
its document is checked by `domain.text_input` (no control characters or unpaired
surrogates, at most the global length). A bad one refuses the whole operation,
unexecuted, with BAD_USER_INPUT and `extensions.field` = the path of the offending
value: `<variable>.<input field>.<list index>...` for variables, `<field>.<argument>...`
for literals (a variable's default value counts as that variable's value).

Literals are walked once per document (the verdict is kept with the cached document,
beside its AST and validation errors); variables are walked per request, and are usually a
handful of short strings.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, cast

from graphql import (
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    GraphQLError,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
)
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from domain.errors import ErrorCode
from domain.text_input import string_problem
from resolvers.extensions.documents import DocumentCache

# (path, problem) of the first refused string, or None.
Refusal = tuple[str, str] | None
# Deeper nesting than any of our inputs has; bounds the walk of a hostile variable.
MAX_NESTING = 32


LITERALS = "input_guard.literals"  # the key of a document's literal verdict in its facts


class InputGuard(SchemaExtension):
    def __init__(self, *, documents: DocumentCache, max_length: int) -> None:
        super().__init__()
        self._documents = documents
        self._max_length = max_length

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        refusal = _variables_refusal(context.variables, self._max_length)
        document = context.graphql_document
        if refusal is None and document is not None:
            refusal = self._literals_refusal(context.query or "", document)
        if refusal is not None:
            path, problem = refusal
            error = GraphQLError(
                f"{path} {problem}",
                extensions={"code": ErrorCode.BAD_USER_INPUT.value, "field": path},
            )
            context.result = ExecutionResult(data=None, errors=[error])  # nothing executes
        yield

    def _literals_refusal(self, query: str, document: DocumentNode) -> Refusal:
        """Walked once per cached document; a document too big to cache, every time."""
        facts = self._documents.facts_of(query, document)
        if facts is not None and LITERALS in facts:
            return cast(Refusal, facts[LITERALS])
        refusal = _document_refusal(document, self._max_length)
        if facts is not None:
            facts[LITERALS] = refusal
        return refusal


def _variables_refusal(variables: Mapping[str, Any] | None, max_length: int) -> Refusal:
    if not variables:
        return None
    for name, value in variables.items():
        refusal = _value_refusal(value, name, max_length, 0)
        if refusal is not None:
            return refusal
    return None


def _value_refusal(value: Any, path: str, max_length: int, depth: int) -> Refusal:
    if isinstance(value, str):
        problem = string_problem(value, max_length)
        return None if problem is None else (path, problem)
    if depth > MAX_NESTING and isinstance(value, (dict, list)):
        return path, "is nested too deeply"
    if isinstance(value, dict):
        for key, item in value.items():
            refusal = _value_refusal(item, f"{path}.{key}", max_length, depth + 1)
            if refusal is not None:
                return refusal
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refusal = _value_refusal(item, f"{path}.{index}", max_length, depth + 1)
            if refusal is not None:
                return refusal
    return None


def _document_refusal(document: DocumentNode, max_length: int) -> Refusal:
    for definition in document.definitions:
        if not isinstance(definition, ExecutableDefinitionNode):
            continue
        if isinstance(definition, OperationDefinitionNode):
            for variable in definition.variable_definitions or ():
                if variable.default_value is not None:
                    path = variable.variable.name.value
                    refusal = _literal_refusal(variable.default_value, path, max_length)
                    if refusal is not None:
                        return refusal
        refusal = _selections_refusal(definition.selection_set, max_length)
        if refusal is not None:
            return refusal
    return None


def _selections_refusal(selection_set: SelectionSetNode | None, max_length: int) -> Refusal:
    if selection_set is None:
        return None
    for selection in selection_set.selections:
        arguments = [*(getattr(selection, "arguments", None) or ())]
        for directive in selection.directives or ():
            arguments.extend(directive.arguments or ())
        owner = selection.name.value if isinstance(selection, FieldNode) else "@"
        for argument in arguments:
            path = f"{owner}.{argument.name.value}"
            refusal = _literal_refusal(argument.value, path, max_length)
            if refusal is not None:
                return refusal
        refusal = _selections_refusal(getattr(selection, "selection_set", None), max_length)
        if refusal is not None:
            return refusal
    return None


def _literal_refusal(node: ValueNode, path: str, max_length: int) -> Refusal:
    if isinstance(node, StringValueNode):
        problem = string_problem(node.value, max_length)
        return None if problem is None else (path, problem)
    if isinstance(node, ObjectValueNode):
        for field in node.fields:
            refusal = _literal_refusal(field.value, f"{path}.{field.name.value}", max_length)
            if refusal is not None:
                return refusal
    elif isinstance(node, ListValueNode):
        for index, item in enumerate(node.values):
            refusal = _literal_refusal(item, f"{path}.{index}", max_length)
            if refusal is not None:
                return refusal
    return None
