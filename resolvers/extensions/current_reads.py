"""Mutations read the primary: a payload answers from what the mutation just wrote."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from domain.read_consistency import current_reads


class MutationsReadCurrent(SchemaExtension):
    """In the schema only when a read replica is configured: without one it would cost
    every request a hook for nothing."""

    def on_execute(self) -> Iterator[None]:
        if self.execution_context.operation_type is OperationType.MUTATION:
            with current_reads():
                yield
        else:
            yield
