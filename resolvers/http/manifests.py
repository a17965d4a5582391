"""Building an operation manifest from .graphql files, for `python app.py manifest-build`.

Each named operation becomes one entry whose body is the operation followed by the
fragments it uses (from any of the files), printed in graphql-js's canonical form; its
id is the sha256 of that body. Everything is validated against our schema first, so a
manifest never promises an operation the server would refuse.
"""

from __future__ import annotations

from collections.abc import Iterable

from graphql import (
    DefinitionNode,
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    Visitor,
    parse,
    print_ast,
    validate,
    visit,
)

from domain.persisted_queries import Operation, document_hash


class ManifestError(ValueError):
    pass


def build_manifest(sources: Iterable[tuple[str, str]], schema: GraphQLSchema) -> list[Operation]:
    """`sources` are (file name, text) pairs."""
    definitions: list[DefinitionNode] = []
    for name, text in sources:
        try:
            definitions.extend(parse(text).definitions)
        except GraphQLError as error:
            raise ManifestError(f"{name}: {error.message}") from None
    document = DocumentNode(definitions=tuple(definitions))
    if problems := validate(schema, document):
        raise ManifestError("; ".join(p.message for p in problems))
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    operations = []
    for definition in definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if definition.name is None:
            raise ManifestError("every operation in a manifest needs a name")
        used = _fragments_used(definition, fragments)
        body = print_ast(DocumentNode(definitions=(definition, *used)))
        operations.append(Operation(id=document_hash(body), name=definition.name.value, body=body))
    return operations


def _fragments_used(
    node: OperationDefinitionNode | FragmentDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
) -> list[FragmentDefinitionNode]:
    found: dict[str, FragmentDefinitionNode] = {}
    pending = [node]
    while pending:
        spreads = _SpreadNames()
        visit(pending.pop(), spreads)
        for name in spreads.names:
            if name not in found:
                found[name] = fragments[name]
                pending.append(fragments[name])
    return [found[name] for name in sorted(found)]


class _SpreadNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: object) -> None:
        self.names.append(node.name.value)
