"""Look-ahead: which fields a query selects below the current one.

Resolvers that build many objects at once use this to batch-load exactly the
relations the client asked for, then hand graphql-core plain values, instead of
one async resolver (and one asyncio task) per object and relation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)

from schema.context import Info


def selected_names(info: Info, *path: str) -> frozenset[str]:
    """Names of the fields selected under `path` (e.g. "edges", "node") of this field.

    Fragments are flattened whatever their type condition: over-including can only
    load a relation nobody reads, never leave out one somebody does.
    """
    raw = info._raw_info
    nodes: list[FieldNode] = list(raw.field_nodes)
    for step in path:
        nodes = [child for child in children(nodes, raw.fragments) if child.name.value == step]
    return frozenset(child.name.value for child in children(nodes, raw.fragments))


def children(
    nodes: Iterable[FieldNode], fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    """The field nodes selected directly below `nodes`, fragments flattened."""
    for node in nodes:
        if node.selection_set is not None:
            yield from _flatten(node.selection_set, fragments)


def _flatten(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _flatten(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _flatten(fragment.selection_set, fragments)
